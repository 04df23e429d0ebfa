"""A kill at any point of promote/deploy, then a re-run, ends in the state of an uninterrupted run."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_bot.config.model import Config
from mlops_bot.registry import open_registry, tags
from mlops_bot.registry.base import Registry

from .conftest import make_run

SLOW_DEPLOY = """\
  - name: first
    type: command
    cmd: "sleep 0.2 && echo $MODEL_VERSION >> first.txt"
  - name: second
    type: command
    cmd: "sleep 0.2 && echo $MODEL_VERSION >> second.txt"
"""
KILL_POINTS = 8


def promote(config: Config, run_id: str, kill_after: float | None) -> int | None:
    argv = [sys.executable, "-m", "mlops_bot", "-C", str(config.root), "promote", "--run", run_id]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    if kill_after is None:
        return proc.wait(timeout=120)
    time.sleep(kill_after)
    os.killpg(proc.pid, signal.SIGKILL)  # the bot and its deploy commands, with no chance to clean up
    proc.wait(timeout=30)
    return None


def state(registry: Registry, config: Config) -> dict[str, object]:
    keep = (tags.VERDICT, tags.COMPARED_WITH, tags.REPLACED_BY, tags.deploy_status("first"),
            tags.deploy_status("second"))
    versions = {v.version: (v.aliases, {k: v.tags.get(k) for k in keep}) for v in
                registry.search_model_versions(config.model.name)}
    last = {name: (config.root / f"{name}.txt").read_text().split()[-1:] for name in ("first", "second")
            if (config.root / f"{name}.txt").exists()}
    return {"versions": versions, "last_deployed": last}


def history(config: Config, tmp_path: Path, kill_after: float | None) -> dict[str, object]:
    registry = open_registry("local", config.root)
    runs = [make_run(registry, config, accuracy, tmp_path / config.root.name) for accuracy in (0.8, 0.9)]
    for run_id in runs:
        if kill_after is not None:
            promote(config, run_id, kill_after)
        assert promote(config, run_id, None) == 0
    result = state(registry, config)
    registry.close()
    return result


def test_kill_anywhere_then_rerun_converges(project: Callable[..., Config], tmp_path: Path) -> None:
    expected = history(project(deploy=SLOW_DEPLOY, name="calm"), tmp_path, None)
    assert expected["last_deployed"] == {"first": ["2"], "second": ["2"]}
    chooser = random.Random(20261121)
    for i in range(KILL_POINTS):
        kill_after = chooser.uniform(0.1, 1.6)
        got = history(project(deploy=SLOW_DEPLOY, name=f"killed-{i}"), tmp_path, kill_after)
        assert got == expected, f"killed after {kill_after:.2f}s"


@pytest.fixture(autouse=True)
def _no_mlflow_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
