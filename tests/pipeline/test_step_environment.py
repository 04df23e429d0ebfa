"""What the code of a pull request can read: a pipeline step runs with none of the job's secrets.

The action exports GITHUB_TOKEN for the bot itself; the steps it runs are the pull request's code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SPY = "import json, os, pathlib\npathlib.Path('build').mkdir(exist_ok=True)\n" \
      "json.dump(dict(os.environ), open('build/seen.json', 'w'))\n"
ML_YAML = """\
version: 1
model: {name: spy, artifact: build}
pipeline:
  spy:
    cmd: [python, spy.py]
    deps: [spy.py]
    outs: [build]
    env: {DECLARED: "yes"}
    pass_env: [DATA_*]
"""
JOB_SECRETS = {
    "GITHUB_TOKEN": "ghs_canary1", "GH_TOKEN": "canary2", "CI_JOB_TOKEN": "canary3", "GITLAB_TOKEN": "canary4",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "canary5", "MLOPS_BOT_GITHUB_WEBHOOK_SECRET": "canary6",
    "MLOPS_BOT_GITLAB_WEBHOOK_TOKEN": "canary7", "AWS_SECRET_ACCESS_KEY": "canary8",
}


def run_spy(tmp_path: Path, ml_yaml: str = ML_YAML) -> tuple[subprocess.CompletedProcess[str], Path]:
    root = tmp_path / "p"
    root.mkdir()
    (root / "spy.py").write_text(SPY)
    (root / "ml.yaml").write_text(ml_yaml)
    outputs = tmp_path / "github_output"
    env = {**os.environ, **JOB_SECRETS, "DATA_BUCKET": "s3://data", "GITHUB_OUTPUT": str(outputs),
           "GITHUB_ENV": str(tmp_path / "github_env")}
    done = subprocess.run([sys.executable, "-m", "mlops_bot", "-C", str(root), "run"], env=env,
                          capture_output=True, text=True, timeout=120)
    return done, root


def test_a_step_cannot_read_the_forge_token_or_any_secret_of_the_job(tmp_path: Path) -> None:
    done, root = run_spy(tmp_path)
    assert done.returncode == 0, done.stderr
    seen = json.loads((root / "build" / "seen.json").read_text())
    assert not {name for name, value in seen.items() if "canary" in value}
    assert "GITHUB_OUTPUT" not in seen and "GITHUB_ENV" not in seen  # no way to set the workflow's outputs
    assert seen["DECLARED"] == "yes" and seen["DATA_BUCKET"] == "s3://data"  # what ml.yaml declares passes
    assert seen["MLFLOW_TRACKING_URI"]  # where to log is the bot's to say


def test_pass_env_cannot_ask_for_the_forge_token(tmp_path: Path) -> None:
    done, root = run_spy(tmp_path, ML_YAML.replace("pass_env: [DATA_*]", "pass_env: [DATA_*, GITHUB_TOKEN]"))
    assert done.returncode == 2
    assert "ml.yaml:9" in done.stderr and "pipeline.spy.pass_env[1]" in done.stderr
    assert "GITHUB_TOKEN is never passed" in done.stderr
    assert not (root / "build").exists()


def test_ml_yaml_cannot_read_the_forge_token_through_interpolation(tmp_path: Path) -> None:
    done, root = run_spy(tmp_path, ML_YAML.replace('DECLARED: "yes"', 'DECLARED: "${GITHUB_TOKEN}"'))
    assert done.returncode == 2
    assert "ml.yaml:8" in done.stderr and "GITHUB_TOKEN" in done.stderr
    assert "canary" not in done.stderr + done.stdout
    assert not (root / "build").exists()
