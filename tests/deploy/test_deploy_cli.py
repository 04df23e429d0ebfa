"""`mlops-bot deploy` as a user runs it: a real subprocess on a project with the embedded store; exit codes,
--json, and a deploy killed half-way that a re-run completes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlops_bot.config import load_config
from mlops_bot.registry.local.store import LocalRegistry
from mlops_bot.registry.tags import deploy_tag as tag
from tests.helpers.deploy import MODEL
from tests.helpers.gitops import Remote

# The command target blocks until the test creates `go`, so the test can stop the deploy while it runs; it
# writes its shell's pid ($$$$: ml.yaml reads $$ as a literal $).
ML_YAML = """\
version: 1
model: {{name: {model}, artifact: build/model}}
tracking: {{uri: local, experiment: iris}}
pipeline:
  train: {{cmd: "true"}}
deploy:
  - name: prod
    type: gitops
    repo: {repo}
    file: deploy/inference.yaml
    set: {{spec.predictor.model.storageUri: "{{model_uri}}"}}
  - name: ship
    type: command
    cmd: 'if [ -e go ]; then echo "$MODEL_URI" >> shipped.txt; else echo $$$$ > started; sleep 60; fi'
"""


@pytest.fixture
def project(tmp_path: Path, store: LocalRegistry, remote: Remote) -> Path:
    root = tmp_path / "project"  # where `store` keeps .mlops-bot
    (root / "ml.yaml").write_text(ML_YAML.format(model=MODEL, repo=remote.bare))
    load_config(root / "ml.yaml")  # the fixture itself must be a valid ml.yaml
    return root


def cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlops_bot", "-C", str(project), "deploy", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def start(project: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-m", "mlops_bot", "-C", str(project), "deploy"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (project / "started").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (project / "started").exists(), proc.communicate(timeout=5)
    time.sleep(0.1)  # the pid is written before sleep starts
    return proc


def statuses(store: LocalRegistry, version: str = "3") -> dict[str, str]:
    tags = store.get_model_version(MODEL, version).tags
    return {t: tags.get(tag(t, "status"), "") for t in ("prod", "ship")}


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_deploy_json_then_failure_exit_3_then_retry(project: Path, store: LocalRegistry, remote: Remote) -> None:
    (project / "go").touch()
    done = cli(project, "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["model"] == MODEL and doc["version"] == "3"  # the champion, by default
    assert [(r["target"], r["status"]) for r in doc["results"]] == [("prod", "succeeded"), ("ship", "succeeded")]
    assert (project / "shipped.txt").read_text() == f"models:/{MODEL}/3\n"
    (project / "go").unlink()
    (project / "go").mkdir()  # `[ -e go ]` still true: make the command fail another way
    failing = ML_YAML.format(model=MODEL, repo=remote.bare).replace("echo \"$MODEL_URI\" >> shipped.txt", "exit 5")
    (project / "ml.yaml").write_text(failing)
    bad = cli(project, "--version", "2", "--target", "ship")
    assert bad.returncode == 3
    assert "1 of 1 deploy target(s) failed" in bad.stderr and "exited with 5" in bad.stderr
    assert statuses(store, "2") == {"prod": "", "ship": "failed"}
    table = cli(project, "--version", "2", "--target", "prod")
    assert table.returncode == 0 and table.stdout.startswith("prod  gitops  succeeded")


def test_a_deploy_killed_half_way_is_completed_by_a_rerun(project: Path, store: LocalRegistry,
                                                          remote: Remote) -> None:
    proc = start(project)
    shell = int((project / "started").read_text())
    os.kill(proc.pid, signal.SIGKILL)  # no chance to record anything
    proc.communicate(timeout=30)
    os.killpg(shell, signal.SIGKILL)  # the command runs in its own process group; the test stops it
    assert statuses(store) == {"prod": "succeeded", "ship": "running"}
    key = store.get_model_version(MODEL, "3").tags[tag("ship", "key")]
    commits = remote.count()
    (project / "go").touch()
    done = cli(project)
    assert done.returncode == 0, done.stderr
    assert statuses(store) == {"prod": "succeeded", "ship": "succeeded"}
    assert store.get_model_version(MODEL, "3").tags[tag("ship", "key")] == key  # the same deployment, retried
    assert remote.count() == commits and (project / "shipped.txt").read_text() == f"models:/{MODEL}/3\n"


@pytest.mark.slow  # a signal timed into a running deploy command, then a rerun
def test_sigterm_stops_the_command_records_interrupted_and_a_rerun_completes(project: Path,
                                                                             store: LocalRegistry) -> None:
    proc = start(project)
    shell = int((project / "started").read_text())
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert not alive(shell)
    tags = store.get_model_version(MODEL, "3").tags
    assert (tags[tag("ship", "status")], tags[tag("ship", "detail")]) == ("failed", "interrupted")
    (project / "go").touch()
    assert cli(project).returncode == 0
    assert statuses(store) == {"prod": "succeeded", "ship": "succeeded"}


def test_no_champion_is_a_usage_error(project: Path, store: LocalRegistry) -> None:
    store.delete_alias(MODEL, "champion")
    done = cli(project)
    assert done.returncode == 2 and "holds the alias 'champion'" in done.stderr
