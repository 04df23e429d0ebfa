"""Which run `compare` and `promote` judge without --run: the one this workspace's last `run` produced, else
only a finished run the bot made of this workspace's pipeline; never one made by a notebook or other code."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from mlops_bot import cli
from mlops_bot.errors import DataError
from mlops_bot.lifecycle.champion import latest_run_id
from mlops_bot.pipeline.execute import run_pipeline
from mlops_bot.pipeline.lastrun import LastRun, read_last_run, workspace_key, write_last_run
from mlops_bot.pipeline.result import RunOptions
from mlops_bot.registry import open_registry, tags
from mlops_bot.registry.base import Registry
from mlops_bot.support.state import LAST_RUN_FILE, state_path
from tests.helpers.pipeline_project import config, make_project

QUIET = RunOptions(echo=lambda line: None)
COMPARE = "compare:\n  criteria:\n    - {metric: accuracy, threshold: 0.5}\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = make_project(tmp_path / "project")
    with (root / "ml.yaml").open("a", encoding="utf-8") as handle:
        handle.write(COMPARE)
    return root


def notebook_run(registry: Registry, experiment: str, accuracy: float, **run_tags: str) -> str:
    """A FINISHED run made directly through the registry, as a notebook or training code would."""
    time.sleep(0.01)  # a later start time (ms) than any run before it
    exp = registry.get_or_create_experiment(experiment)
    run = registry.create_run(exp.experiment_id, "notebook", run_tags)
    registry.log_batch(run.run_id, metrics={"accuracy": accuracy})
    registry.update_run(run.run_id, "FINISHED")
    return run.run_id


def test_the_record_round_trips(tmp_path: Path) -> None:
    cfg = config(make_project(tmp_path / "p", uri="http://user:secret@mlflow.example:5000/"))
    record = LastRun.of(cfg, "k" * 64, "abc123")
    assert record.tracking_uri == "http://mlflow.example:5000/" and record.experiment == "demo"
    write_last_run(tmp_path / "state", record)
    assert "secret" not in (tmp_path / "state" / LAST_RUN_FILE).read_text(encoding="utf-8")
    assert read_last_run(tmp_path / "state") == record
    assert record.belongs_to(cfg)
    other = dataclasses.replace(cfg, tracking=dataclasses.replace(cfg.tracking, experiment="other"))
    assert not record.belongs_to(other)
    (tmp_path / "state" / LAST_RUN_FILE).write_text('{"run_id": "x", "tracking": ["local", "demo"]}')
    assert read_last_run(tmp_path / "state") is None  # the old format: no record
    assert read_last_run(tmp_path / "nowhere") is None


def test_compare_judges_the_run_of_the_last_run_not_a_newer_notebook_run(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = config(project)
    registry = open_registry("local", project)
    produced = run_pipeline(cfg, registry, QUIET).run_id
    assert produced is not None
    stray = notebook_run(registry, cfg.tracking.experiment, 0.99)
    assert registry.search_runs([registry.get_run(stray).experiment_id])[0].run_id == stray  # the newest
    assert latest_run_id(cfg, registry) == produced
    assert cli.main(["-C", str(project), "compare", "--json"]) == 0
    out = capsys.readouterr().out
    assert produced in out and stray not in out


def test_without_a_record_only_the_bots_runs_of_this_pipeline_count(project: Path) -> None:
    cfg = config(project)
    registry = open_registry("local", project)
    produced = run_pipeline(cfg, registry, QUIET).run_id
    (state_path(project) / LAST_RUN_FILE).unlink()  # a fresh runner: the workspace, not the record
    key = workspace_key(cfg, state_path(project))
    assert key is not None and registry.get_run(str(produced)).tags[tags.PIPELINE_KEY] == key
    notebook_run(registry, cfg.tracking.experiment, 0.99)  # no bot tags
    notebook_run(registry, cfg.tracking.experiment, 0.98, **{tags.PIPELINE_KEY: "another pipeline"})
    assert latest_run_id(cfg, registry) == produced

    (project / "params.yaml").write_text("seed: 1\ntrain: {C: 0.7}\n")  # another pipeline now: none of its runs
    with pytest.raises(DataError, match="no finished run of mlops-bot with this workspace's pipeline key") as caught:
        latest_run_id(cfg, registry)
    assert caught.value.exit_code == 3


def test_a_record_of_another_store_is_not_ours(project: Path) -> None:
    cfg = config(project)
    registry = open_registry("local", project)
    write_last_run(state_path(project), LastRun("elsewhere", "k", "http://other.example", cfg.tracking.experiment))
    notebook_run(registry, cfg.tracking.experiment, 0.99)
    with pytest.raises(DataError, match="no finished run of mlops-bot"):
        latest_run_id(cfg, registry)
