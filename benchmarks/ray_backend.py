"""What `backend: ray` costs a trivial step: from the moment the bot starts the step to the first line of its log
in the CI log, and to its outs back in the project (the `done` line, after run_remote fetched them from the run),
beside the same step run locally, in one run on this machine.

Run: .venv/bin/python benchmarks/ray_backend.py [--runs 3]

A real `mlflow server` (tests/servers/mlflow_server.py) and a real single-node Ray head (tests/helpers/ray_cluster.py,
`ray start --head` on 127.0.0.1, 2 CPUs) are started; one project with a single step (`print`, write one out) is run
with `mlops-bot run --force`, alternating ray and local, --runs times each. Each stderr line is timestamped as it
arrives: `running` (the bot starts the step) -> `submitted` (ray only: probe, client, staging, upload), the first
`[step]` line (on Ray: its runtime env line), the step's own first line, and `done` (outs back). Medians and the
ray/local ratio are printed. Both servers are stopped and the temp directory removed at the end; only 127.0.0.1.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import ray_cluster
from tests.servers import mlflow_server

ML_YAML = """\
version: 1
model: {{name: bench, artifact: out/model.txt}}
tracking: {{uri: "{uri}", experiment: "ray-bench"}}
pipeline:
  step:
    cmd: python step.py
    deps: [step.py]
    outs: [out/model.txt]
{backend}"""
STEP = 'import pathlib\nprint("hello from the step", flush=True)\npathlib.Path("out").mkdir(exist_ok=True)\n' \
       'pathlib.Path("out/model.txt").write_text("trivial\\n")\n'


def project(root: Path, uri: str, address: str | None) -> Path:
    root.mkdir(parents=True)
    (root / "step.py").write_text(STEP)
    backend = f'    backend: {{type: ray, address: "{address}"}}\n' if address else ""
    (root / "ml.yaml").write_text(ML_YAML.format(uri=uri, backend=backend))
    return root


def timed_run(root: Path) -> dict[str, float]:
    """Seconds from `running` to the first step line, the step's own line and `done`."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.Popen([sys.executable, "-m", "mlops_bot", "-C", str(root), "run", "--force"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    marks: dict[str, float] = {}
    lines = []
    for line in proc.stderr:
        now = time.monotonic()
        lines.append(line)
        if "step: running" in line:
            marks.setdefault("running", now)
        elif "step: submitted to the Ray cluster" in line:
            marks.setdefault("submitted", now)
        elif line.startswith("[step] "):
            marks.setdefault("first line", now)
            if "hello from the step" in line:
                marks.setdefault("step's line", now)
        elif "step: done" in line:
            marks.setdefault("outs back", now)
    if proc.wait(timeout=300) != 0 or len(marks) < 4:  # "submitted" on ray only
        raise SystemExit(f"run failed ({proc.returncode}):\n{''.join(lines)}")
    return {k: v - marks["running"] for k, v in marks.items() if k != "running"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ray-bench-"))
    server = mlflow_server.start(work / "mlflow")
    cluster = ray_cluster.start("ray-bench")
    try:
        on_ray = project(work / "on-ray", server.uri, cluster.address)
        local = project(work / "local", server.uri, None)
        results: dict[str, list[dict[str, float]]] = {"ray": [], "local": []}
        for _ in range(args.runs):
            results["ray"].append(timed_run(on_ray))
            results["local"].append(timed_run(local))
        print(f"trivial step, median of {args.runs} runs each (seconds from the bot starting the step)")
        print(f"{'':>14} {'ray':>8} {'local':>8} {'ratio':>8}")
        print(f"{'submitted':>14} {statistics.median(r['submitted'] for r in results['ray']):8.2f}")
        for key in ("first line", "step's line", "outs back"):
            ray = statistics.median(r[key] for r in results["ray"])
            loc = statistics.median(r[key] for r in results["local"])
            print(f"{key:>14} {ray:8.2f} {loc:8.2f} {ray / loc:8.1f}x")
        print("ray runs:", [round(r["outs back"], 2) for r in results["ray"]])
    finally:
        cluster.stop()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
