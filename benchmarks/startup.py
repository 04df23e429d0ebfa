"""Start-up cost of `mlops-bot --version`, measured beside a bare `python -c pass` in the same run.

Budget (DESIGN.md): well under 100 ms, and no import of github/gitlab/httpx before they are needed.
Run: .venv/bin/python benchmarks/startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def timed(argv: list[str], runs: int) -> list[float]:
    subprocess.run(argv, capture_output=True, check=True)  # warm the page cache
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    runs = parser.parse_args().runs
    script = shutil.which("mlops-bot", path=str(Path(sys.executable).parent)) or "mlops-bot"
    rows = {
        "python -c pass": timed([sys.executable, "-c", "pass"], runs),
        "mlops-bot --version": timed([script, "--version"], runs),
        "mlops-bot validate (quickstart)": timed(
            [script, "-C", str(Path(__file__).resolve().parents[1] / "examples" / "quickstart"), "validate"], runs),
    }
    base = statistics.median(rows["python -c pass"])
    print(f"{'command':34} {'median ms':>10} {'p90 ms':>8} {'x python':>9}")
    for name, samples in rows.items():
        median = statistics.median(samples)
        p90 = statistics.quantiles(samples, n=10)[-1]
        print(f"{name:34} {median:10.1f} {p90:8.1f} {median / base:9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
