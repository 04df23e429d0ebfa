"""What the tap of an `mlflow_serve` version costs a client: scoring latency through the tap (deploy/tap.py, which
forwards to `mlflow models serve` and counts for Prometheus) beside the same model server called directly, in one
run, alternating requests so both see the same machine.

Run: .venv/bin/python benchmarks/tap_overhead.py [--requests 400] [--rows 50] [--shadow]

A logistic regression (4 features, 3 classes) is saved as an MLflow Model in a temp directory. One tap is started
as the bot starts it (its own session; the tap starts `mlflow models serve` as its child); its model server's
internal port is read from the process table. Each round scores the same --rows rows once through the tap and once
directly, in alternating order; p50, p95 and p99 of each and their ratio are printed. With --shadow a second tap
serves the same model and the first mirrors 100% of its requests to it (the user's answer does not wait for the
shadow: this shows what mirroring costs the user). Only 127.0.0.1; bounded by --requests; all processes stopped
and the temp directory removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from mlops_bot.deploy.serving import alive, free_port


def model(directory: Path) -> list[list[float]]:
    import mlflow.sklearn
    import numpy as np
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    labels = np.arange(600) % 3
    features = rng.normal(size=(600, 4)) * 0.6 + labels[:, None] * 2.0
    fitted = LogisticRegression(max_iter=500).fit(features, labels)
    mlflow.sklearn.save_model(fitted, str(directory), signature=infer_signature(features, fitted.predict(features)))
    return [[round(float(v), 4) for v in row] for row in features]


def start_tap(model_dir: Path, work: Path, name: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    argv = [sys.executable, "-m", "mlops_bot.deploy.tap", "--port", str(port), "--target", "bench", "--version",
            name, "--model-dir", str(model_dir), "--workers", "1", "--log-file", str(work / f"{name}.log"),
            "--shadow-file", str(work / f"{name}-shadow.json")]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return process, port
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"the tap did not answer /health in 120 s; see {work / f'{name}.log'}")


def internal_port(tap_pid: int) -> int:
    """The `-p` of the `mlflow models serve` the tap started (its child)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode().split("\0")
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if parent == tap_pid and "serve" in argv and "-p" in argv:
            return int(argv[argv.index("-p") + 1])
    raise SystemExit("the tap's model server was not found in the process table")


def timed(client: httpx.Client, url: str, body: bytes) -> float:
    started = time.perf_counter()
    answer = client.post(url + "/invocations", content=body, headers={"Content-Type": "application/json"})
    answer.raise_for_status()
    return (time.perf_counter() - started) * 1000


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--rows", type=int, default=50)
    parser.add_argument("--shadow", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mlops-bot-tap-bench-"))
    taps: list[subprocess.Popen[bytes]] = []
    try:
        rows = model(work / "model")
        first, port = start_tap(work / "model", work, "1")
        taps.append(first)
        if args.shadow:
            second, shadow_port = start_tap(work / "model", work, "2")
            taps.append(second)
            (work / "1-shadow.json").write_text(json.dumps({"url": f"http://127.0.0.1:{shadow_port}", "version": "2",
                                                            "share": 100}))
        tap, direct = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{internal_port(first.pid)}"
        body = json.dumps({"inputs": rows[:args.rows]}).encode()
        through, around = [], []
        with httpx.Client(timeout=30) as client:
            for _ in range(20):  # warm-up, unmeasured
                timed(client, tap, body), timed(client, direct, body)
            for n in range(args.requests):
                pair = [(through, tap), (around, direct)]
                for sink, url in pair if n % 2 else reversed(pair):
                    sink.append(timed(client, url, body))
        mirrored = " (the tap mirrors 100%)" if args.shadow else ""
        print(f"{args.requests} requests of {args.rows} rows each, alternating{mirrored}")
        print(f"{'':<22}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
        for name, values in (("through the tap", through), ("mlflow models serve", around)):
            print(f"{name:<22}{statistics.median(values):9.2f}{percentile(values, 0.95):9.2f}"
                  f"{percentile(values, 0.99):9.2f}")
        p50_tap, p50_direct = statistics.median(through), statistics.median(around)
        print(f"ratio (p50, tap / direct): {p50_tap / p50_direct:.2f}x; added p50: {p50_tap - p50_direct:.2f} ms")
        return 0
    finally:
        for process in taps:
            if alive(process.pid):
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
