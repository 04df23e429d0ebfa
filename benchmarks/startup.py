"""Start-up cost of `mlops-bot --version` and `mlops-bot validate`, measured beside a bare `python -c pass` in the
same run.

Budget (DESIGN.md): well under 100 ms, and no import of github/gitlab/httpx before they are needed; issue #17:
`--version` under 60 ms, `validate` on the quickstart under 200 ms. The quickstart is copied into a temp
directory twice: once as a fresh checkout (no `.mlops-bot/`, so every `validate` runs the JSON Schema) and once
with a state directory, where the first (unmeasured) run records the file as valid and the measured ones skip
the schema. Byte-compiled modules go to a temp prefix, whatever PYTHONDONTWRITEBYTECODE says, as an installed
package's would.
Run: .venv/bin/python benchmarks/startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QUICKSTART = Path(__file__).resolve().parents[1] / "examples" / "quickstart"


def timed(argv: list[str], runs: int, env: dict[str, str]) -> list[float]:
    subprocess.run(argv, capture_output=True, check=True, env=env)  # warm the page cache (and the records)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True, env=env)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    runs = parser.parse_args().runs
    script = shutil.which("mlops-bot", path=str(Path(sys.executable).parent)) or "mlops-bot"
    with tempfile.TemporaryDirectory(prefix="mlops-bot-startup-") as tmp:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        fresh, known = Path(tmp) / "fresh", Path(tmp) / "known"
        for copy in (fresh, known):
            shutil.copytree(QUICKSTART, copy, ignore=shutil.ignore_patterns(".mlops-bot", "build"))
        (known / ".mlops-bot").mkdir()
        rows = {
            "python -c pass": timed([sys.executable, "-c", "pass"], runs, env),
            "mlops-bot --version": timed([script, "--version"], runs, env),
            "mlops-bot validate (fresh checkout)": timed([script, "-C", str(fresh), "validate"], runs, env),
            "mlops-bot validate (recorded valid)": timed([script, "-C", str(known), "validate"], runs, env),
        }
    base = statistics.median(rows["python -c pass"])
    print(f"{'command':36} {'median ms':>10} {'p90 ms':>8} {'x python':>9}")
    for name, samples in rows.items():
        median = statistics.median(samples)
        p90 = statistics.quantiles(samples, n=10)[-1]
        print(f"{name:36} {median:10.1f} {p90:8.1f} {median / base:9.2f}")
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
