"""A small real project for pipeline tests: three Python steps (prepare -> train -> evaluate).

Each step appends its name to the file named by $MLOPS_TEST_COUNTER (kept outside the project), so a
test can count executions across runs and copies of the project.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from mlops_bot.config import load_config
from mlops_bot.config.model import Config

PY = sys.executable
COUNTER_ENV = "MLOPS_TEST_COUNTER"

COUNT = textwrap.dedent("""\
    import json, os, pathlib, sys
    def count(name):
        path = os.environ.get("MLOPS_TEST_COUNTER")
        if path:
            with open(path, "a") as handle:
                handle.write(name + "\\n")
    """)

SCRIPTS = {
    "prepare.py": COUNT + textwrap.dedent("""\
        count("prepare")
        rows = pathlib.Path("data/raw.csv").read_text().splitlines()
        pathlib.Path("build").mkdir(exist_ok=True)
        pathlib.Path("build/train.csv").write_text("\\n".join(rows[::2]) + "\\n")
        pathlib.Path("build/test.csv").write_text("\\n".join(rows[1::2]) + "\\n")
        """),
    "train.py": COUNT + textwrap.dedent("""\
        import yaml
        count("train")
        c = yaml.safe_load(open("params.yaml"))["train"]["C"]
        rows = pathlib.Path("build/train.csv").read_text().split()
        pathlib.Path("build/model").mkdir(parents=True, exist_ok=True)
        pathlib.Path("build/model/model.txt").write_text(f"C={c} rows={len(rows)}\\n")
        pathlib.Path("build/model/MLmodel").write_text("flavors: {}\\n")
        print("trained with C", c)
        """),
    "evaluate.py": COUNT + textwrap.dedent("""\
        count("evaluate")
        model = pathlib.Path("build/model/model.txt").read_text()
        test = pathlib.Path("build/test.csv").read_text().split()
        json.dump({"accuracy": 0.9 if "C=0.5" in model else 0.8, "rows": len(test)},
                  open("build/metrics.json", "w"))
        pathlib.Path("build/predictions.csv").write_text("y_true,y_pred\\n1,1\\n0,1\\n")
        json.dump({k: v for k, v in os.environ.items() if k.startswith(("MLFLOW_", "STEP_"))},
                  open("build/env.json", "w"))
        """),
}

ML_YAML = """\
version: 1
model: {{name: demo-model, artifact: build/model}}
tracking: {{uri: "{uri}", experiment: "{experiment}"}}
params: params.yaml
pipeline:
  prepare:
    cmd: {py} prepare.py
    deps: [prepare.py, data/raw.csv]
    params: [seed]
    outs: [build/train.csv, build/test.csv]
    pass_env: [MLOPS_TEST_*]
  train:
    cmd: [{py_json}, train.py]
    deps: [train.py, build/train.csv]
    params: [train.C]
    outs: [build/model]
    pass_env: [MLOPS_TEST_COUNTER]
  evaluate:
    cmd: {py} evaluate.py
    deps: [evaluate.py, build/test.csv, build/model]
    env: {{STEP_FLAVOUR: vanilla}}
    pass_env: [MLOPS_TEST_COUNTER]
    metrics: build/metrics.json
    predictions: build/predictions.csv
"""


def make_project(root: Path, uri: str = "local", experiment: str = "demo") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in SCRIPTS.items():
        (root / name).write_text(text)
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "raw.csv").write_text("".join(f"{i},{i % 3}\n" for i in range(20)))
    (root / "params.yaml").write_text("seed: 1\ntrain: {C: 0.5}\n")
    (root / "ml.yaml").write_text(ML_YAML.format(uri=uri, experiment=experiment, py=shlex.quote(PY),
                                                 py_json=json.dumps(PY)))
    return root


def config(root: Path) -> Config:
    return load_config(root / "ml.yaml")


def executions(counter: Path) -> list[str]:
    return counter.read_text().split() if counter.exists() else []


def cli(project: Path, *args: str, counter: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`mlops-bot -C PROJECT run ARGS` as a subprocess; `counter`: where the steps count their executions."""
    env = {**os.environ, **({COUNTER_ENV: str(counter)} if counter else {})}
    return subprocess.run([sys.executable, "-m", "mlops_bot", "-C", str(project), "run", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)

def run_until(project: Path, marker: Path) -> subprocess.Popen[str]:
    """`mlops-bot -C PROJECT run` in the background, returned once a step has written `marker` (its pid)."""
    proc = subprocess.Popen([sys.executable, "-m", "mlops_bot", "-C", str(project), "run"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert marker.exists(), proc.communicate()[1]
    time.sleep(0.2)  # let the step settle into its work
    return proc
