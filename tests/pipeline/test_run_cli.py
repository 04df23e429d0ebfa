"""`mlops-bot run` as a user runs it: a real subprocess, exit codes, --json, Ctrl-C."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from mlops_bot.pipeline.cache import read_lock
from mlops_bot.registry import open_registry
from tests.helpers.pipeline_project import cli, executions, run_until


def test_run_json_then_cached(project: Path, counter: Path) -> None:
    first = cli(project, "--json", counter=counter)
    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    assert [(s["name"], s["status"]) for s in doc["steps"]] == [
        ("prepare", "ran"), ("train", "ran"), ("evaluate", "ran")]
    assert doc["metrics"] == {"accuracy": 0.9, "rows": 10.0} and doc["run_id"] and doc["reused"] is False
    assert "[train] trained with C 0.5" in first.stderr
    assert "step 2/3 train: running (never run (not in ml.lock))" in first.stderr
    second = cli(project, "--json", counter=counter)
    assert second.returncode == 0, second.stderr
    assert [s["status"] for s in json.loads(second.stdout)["steps"]] == ["cached"] * 3
    assert json.loads(second.stdout)["run_id"] == doc["run_id"]
    assert executions(counter) == ["prepare", "train", "evaluate"]


def test_dry_run_prints_the_plan(project: Path, counter: Path) -> None:
    assert cli(project, counter=counter).returncode == 0
    (project / "params.yaml").write_text("seed: 1\ntrain: {C: 1.5}\n")
    done = cli(project, "--dry-run", counter=counter)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "prepare: cached",
        "train: would run: param 'train.C' changed (0.5 -> 1.5)",
        "evaluate: would run: upstream 'train' runs first",
    ]
    assert len(executions(counter)) == 3


def test_failed_step_exits_3_with_its_last_lines(project: Path) -> None:
    (project / "train.py").write_text("import sys\nprint('loss exploded')\nsys.exit(9)\n")
    done = cli(project, "--json")
    assert done.returncode == 3
    assert "step 'train' failed with exit code 9" in done.stderr and "loss exploded" in done.stderr
    doc = json.loads(done.stdout)
    assert [(s["name"], s["status"]) for s in doc["steps"]] == [
        ("prepare", "ran"), ("train", "failed"), ("evaluate", "skipped")]
    assert "Traceback" not in done.stderr


def test_command_not_found_exits_3_without_a_traceback(project: Path) -> None:
    text = (project / "ml.yaml").read_text().replace("cmd: [", "cmd: [no-such-python-xyz, ", 1)
    (project / "ml.yaml").write_text(text)
    done = cli(project)
    assert done.returncode == 3
    assert "command 'no-such-python-xyz' not found" in done.stderr and "Traceback" not in done.stderr


SLOW_TRAIN = """\
import pathlib, subprocess, time
child = subprocess.Popen(["sleep", "60"])
pathlib.Path("{marker}").write_text(str(child.pid))
time.sleep(60)
"""


@pytest.mark.slow  # a signal timed into a running step, then the group's end waited for
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_kills_the_step_and_records_nothing_half_done(project: Path, tmp_path: Path,
                                                                sig: signal.Signals) -> None:
    marker = tmp_path / "child.pid"
    (project / "train.py").write_text(SLOW_TRAIN.format(marker=marker))
    proc = run_until(project, marker)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    grandchild = int(marker.read_text())
    assert not Path(f"/proc/{grandchild}").exists() or \
        Path(f"/proc/{grandchild}/stat").read_text().split()[2] == "Z"
    assert sorted(read_lock(project / "ml.lock")) == ["prepare"]
    registry = open_registry("local", project)
    try:
        experiment = registry.get_or_create_experiment("demo")
        runs = registry.search_runs([experiment.experiment_id])
        assert [r.status for r in runs] == ["KILLED"]
    finally:
        registry.close()
