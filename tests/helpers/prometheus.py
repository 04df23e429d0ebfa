"""A real Prometheus (Debian's /usr/bin/prometheus) on 127.0.0.1 for the tests: scraping every second the targets
listed in file_sd files, the way the bot will tell it what to scrape. Prometheus passes what discovery finds
to its scrapers at most every 5 s: a target shows up (or goes) some seconds after its file changes.

`Prometheus.start(directory)` writes prometheus.yml (one job, `mlops-bot`, whose file_sd_configs list the
watched files; refresh 1s), starts the server with the lifecycle API and waits, bounded, for /-/ready.
`watch(path)` / `unwatch(path)` change the file list and reload (POST /-/reload); `query` and `scalar` ask
/api/v1/query; `wait_for` polls a query until a predicate holds. Every failure shows the tail of its log. With no
prometheus binary the test is skipped, saying so.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlops_bot.deploy.serving import free_port

BINARY = "prometheus"
READY_WAIT_S = 60.0
JOB = "mlops-bot"
# Always one target group, even empty: Prometheus 2.42 keeps the targets of a dropped file when, after a reload,
# no file of the job yields a group at all (they would be scraped until it restarts).
KEEP = "keep.json"


def binary() -> str | None:
    return shutil.which(BINARY) or next((p for p in ("/usr/bin/prometheus",) if Path(p).exists()), None)


def sd_file(path: Path, port: int, target: str) -> Path:
    """The file_sd JSON the bot writes for one version's tap."""
    path.write_text(json.dumps([{"targets": [f"127.0.0.1:{port}"], "labels": {"mlops_bot_target": target}}]))
    return path


class Prometheus:
    def __init__(self, directory: Path) -> None:
        self.directory, self.port = directory, free_port()
        self.watched: list[Path] = []
        self.client = httpx.Client(timeout=10)
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(cls, directory: Path) -> Prometheus:
        found = binary()
        if found is None:
            pytest.skip("prometheus is not installed (Debian package `prometheus`); the scrape tests need it")
        server = cls(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / KEEP).write_text('[{"targets": []}]')
        server._write_config()
        argv = [found, f"--config.file={directory / 'prometheus.yml'}", f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{server.port}", "--web.enable-lifecycle"]
        with open(directory / "prometheus.log", "ab") as log:
            server.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                              start_new_session=True)
        server._wait_ready()
        return server

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join((self.directory / "prometheus.log").read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"

    def watch(self, path: Path) -> None:
        """Scrape the targets `path` lists (a file_sd JSON file, which may not exist yet)."""
        if path not in self.watched:
            self.watched.append(path)
            self.reload()

    def unwatch(self, *paths: Path) -> None:
        kept = [p for p in self.watched if p not in paths]
        if kept != self.watched:
            self.watched = kept
            self.reload()

    def reload(self) -> None:
        self._write_config()
        answer = self.client.post(self.url + "/-/reload")
        if answer.status_code != 200:
            raise AssertionError(f"prometheus refused its configuration: HTTP {answer.status_code} {answer.text}\n"
                                 f"{self.log()}")

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector of `promql` (each element: metric labels and value)."""
        answer = self.client.get(self.url + "/api/v1/query", params={"query": promql})
        data = answer.json()
        if answer.status_code != 200 or data.get("status") != "success":
            raise AssertionError(f"prometheus answered {promql!r} with HTTP {answer.status_code}: {answer.text}")
        result: list[dict[str, Any]] = data["data"]["result"]
        return result

    def scalar(self, promql: str) -> float | None:
        """The value of a query that yields at most one series; None when it yields none."""
        result = self.query(promql)
        if len(result) > 1:
            raise AssertionError(f"{promql!r} yields {len(result)} series, not one: {result}")
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, promql: str, predicate: Callable[[float | None], bool], timeout: float = 30.0) -> float | None:
        """Polls `scalar(promql)` until `predicate` holds; fails with the last value, the targets and the log."""
        deadline, value = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            value = self.scalar(promql)
            if predicate(value):
                return value
            time.sleep(0.25)
        targets = self.client.get(self.url + "/api/v1/targets").text
        raise AssertionError(f"{promql!r} was {value} after {timeout:g}s; targets: {targets[:1500]}\n{self.log()}")

    def stop(self) -> None:
        self.client.close()
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)

    def _write_config(self) -> None:
        files = [str(self.directory / KEEP), *map(str, self.watched)]
        config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                  "scrape_configs": [{"job_name": JOB, "scrape_interval": "1s", "scrape_timeout": "1s",
                                      "file_sd_configs": [{"files": files, "refresh_interval": "1s"}]}]}
        (self.directory / "prometheus.yml").write_text(json.dumps(config, indent=2))  # JSON is YAML

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_WAIT_S
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"prometheus exited with {self.process.returncode}:\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if self.client.get(self.url + "/-/ready").status_code == 200:
                    return
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"prometheus did not answer /-/ready within {READY_WAIT_S:g}s:\n{self.log()}")
