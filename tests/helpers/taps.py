"""Taps (`python -m mlops_bot.deploy.tap`) started as the bot will start them: the leader of a new process group
in front of a real `mlflow models serve`; and what their /metrics say, read with prometheus_client's parser."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from mlops_bot.deploy.serving import free_port
from mlops_bot.deploy.tap import VERSION_HEADER

ROOT = Path(__file__).resolve().parents[2]
START_WAIT_S = 120.0


@dataclass
class RunningTap:
    process: subprocess.Popen[bytes]
    port: int
    version: str
    log_file: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_file.read_text(errors="replace")[-3000:]
        return "(no log)"

    def upstream(self) -> str:
        """The internal address of its mlflow models serve, from the tap's first log line."""
        found = re.search(r"mlflow models serve pid \d+ on (127\.0\.0\.1:\d+)", self.log())
        assert found, self.log()
        return f"http://{found.group(1)}"

    def group(self) -> list[int]:
        """Live members of its process group (zombies aside)."""
        from mlops_bot.deploy.serving import alive

        members = []
        for entry in Path("/proc").iterdir():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if entry.name.isdigit() and int(fields[2]) == self.process.pid and alive(int(entry.name)):
                    members.append(int(entry.name))
        return members

    def stop(self) -> None:
        from mlops_bot.deploy.serving import stop_group

        stop_group(self.process.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


def start_tap(directory: Path, model_dir: Path, version: str, *extra: str) -> RunningTap:
    """A tap (target "t") on a free port, healthy, or a failure showing its log."""
    port, log_file = free_port(), directory / f"tap-v{version}-{time.monotonic_ns()}.log"
    argv = [sys.executable, "-m", "mlops_bot.deploy.tap", "--port", str(port), "--target", "t", "--version", version,
            "--model-dir", str(model_dir), "--workers", "1", "--log-file", str(log_file), *extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(log_file, "ab") as log:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)
    tap = RunningTap(process, port, version, log_file)
    deadline = time.monotonic() + START_WAIT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the tap exited with {process.returncode}:\n{tap.log()}")
        with contextlib.suppress(httpx.HTTPError):
            answer = httpx.get(tap.url + "/health", timeout=2)
            if answer.status_code == 200 and answer.headers.get(VERSION_HEADER) == version:
                return tap
        time.sleep(0.3)
    tap.stop()
    raise AssertionError(f"the tap did not answer /health within {START_WAIT_S:g}s:\n{tap.log()}")


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(url: str) -> Samples:
    """Every sample of url/metrics: (name, labels) -> value."""
    return parse(httpx.get(url + "/metrics", timeout=10).text)


def parse(text: str) -> Samples:
    from prometheus_client.parser import text_string_to_metric_families

    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(found: Samples, name: str, **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels` (0 when there is none)."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in found.items() if n == name and wanted <= have)


def signal_group(tap: RunningTap, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(tap.process.pid, sig)
