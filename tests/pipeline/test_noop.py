"""The no-op shortcut replays a fully cached result only while nothing it depends on changed."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import pytest

from mlops_bot import __version__
from mlops_bot.flows import run as run_flow
from mlops_bot.flows.project import Project
from mlops_bot.pipeline import noop
from mlops_bot.pipeline.execute import run_pipeline
from mlops_bot.pipeline.result import RunOptions
from mlops_bot.registry.base import Registry
from mlops_bot.support.state import NOOP_FILE, state_path
from tests.helpers.pipeline_project import config, executions

QUIET = RunOptions(echo=lambda line: None)


def age(root: Path) -> None:
    """Every file and directory 10 s old: past the racy window, as on a real runner a while later."""
    past = time.time_ns() - 10 * 10**9
    for folder, dirs, files in os.walk(root):
        for name in [*files, *dirs]:
            os.utime(os.path.join(folder, name), ns=(past, past))


def args(project: Path, **extra: object) -> argparse.Namespace:
    base = {"directory": str(project), "config": "ml.yaml", "json": True, "force": False, "step": None,
            "dry_run": False}
    return argparse.Namespace(**{**base, **extra})


@pytest.fixture
def settled(project: Path, registry: Registry, counter: Path) -> Path:
    """A project that ran, then ran again fully cached (which records the shortcut)."""
    run_pipeline(config(project), registry, QUIET)
    age(project)
    result = run_pipeline(config(project), registry, QUIET)
    assert [s.status for s in result.steps] == ["cached"] * 3
    assert state_path(project, NOOP_FILE).exists()
    return project


def no_full_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*a: object, **k: object) -> None:
        raise AssertionError("the full path ran")

    monkeypatch.setattr("mlops_bot.config.load_config", refuse)


def test_nothing_changed_replays_without_loading_the_config(settled: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    expected = run_pipeline(config(settled), lambda: None, QUIET).as_json()  # type: ignore[arg-type, return-value]
    no_full_path(monkeypatch)
    assert run_flow.main(args(settled), Project(settled)) == 0
    out = capsys.readouterr()
    doc = json.loads(out.out)
    assert {k: v for k, v in doc.items() if k != "duration_s"} == \
        {k: v for k, v in expected.items() if k != "duration_s"}
    assert "step 3/3 evaluate: cached" in out.err


@pytest.mark.parametrize("change", ["dep", "param", "out", "out-dir", "lock", "config"])
def test_any_change_is_a_miss(settled: Path, change: str) -> None:
    path = {"dep": "data/raw.csv", "param": "params.yaml", "out": "build/metrics.json",
            "out-dir": "build/model/new.txt", "lock": "ml.lock", "config": "ml.yaml"}[change]
    with open(settled / path, "a") as handle:
        handle.write("\n")
    assert noop.replay(settled / "ml.yaml", __version__) is None


def test_a_touch_without_a_change_is_a_miss_too(settled: Path) -> None:
    os.utime(settled / "train.py")
    assert noop.replay(settled / "ml.yaml", __version__) is None


def test_interpolated_variables_are_part_of_the_state(settled: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    version = __version__
    text = (settled / "ml.yaml").read_text().replace('experiment: "demo"', 'experiment: "${EXP_NAME:-demo}"')
    (settled / "ml.yaml").write_text(text)
    age(settled)
    run_pipeline(config(settled), lambda: None, QUIET)  # type: ignore[arg-type]
    assert noop.replay(settled / "ml.yaml", version) is not None
    monkeypatch.setenv("EXP_NAME", "other")
    assert noop.replay(settled / "ml.yaml", version) is None
    assert noop.replay(settled / "ml.yaml", "9.9.9") is None


def test_young_files_are_never_recorded(project: Path, registry: Registry, counter: Path) -> None:
    run_pipeline(config(project), registry, QUIET)
    run_pipeline(config(project), registry, QUIET)  # cached, but the outs are seconds old
    assert not state_path(project, NOOP_FILE).exists()


def test_options_other_than_a_plain_run_take_the_full_path(settled: Path, counter: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    before = len(executions(counter))
    assert run_flow.main(args(settled, force=True), Project(settled)) == 0
    assert len(executions(counter)) == before + 3
    assert [s["status"] for s in json.loads(capsys.readouterr().out)["steps"]] == ["ran"] * 3
