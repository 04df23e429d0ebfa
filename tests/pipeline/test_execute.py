from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_bot.errors import UsageError
from mlops_bot.pipeline.cache import read_lock
from mlops_bot.pipeline.execute import run_pipeline
from mlops_bot.pipeline.result import PipelineResult, RunOptions
from mlops_bot.pipeline.selflog import run_context
from mlops_bot.registry.base import Registry
from mlops_bot.registry.tags import CONFIG_DIGEST, PIPELINE_KEY, step_key
from tests.helpers.pipeline_project import config, executions


def run(project: Path, registry: Registry, **options: object) -> PipelineResult:
    return run_pipeline(config(project), registry, RunOptions(echo=lambda line: None, **options))  # type: ignore[arg-type]


def statuses(result: PipelineResult) -> dict[str, str]:
    return {s.name: s.status for s in result.steps}


def test_first_run_executes_everything_and_logs_one_tracking_run(project: Path, registry: Registry,
                                                                 counter: Path) -> None:
    result = run(project, registry)
    assert statuses(result) == {"prepare": "ran", "train": "ran", "evaluate": "ran"}
    assert executions(counter) == ["prepare", "train", "evaluate"]
    assert result.metrics == {"accuracy": 0.9, "rows": 10.0}
    assert result.run_id and not result.reused
    lock = read_lock(project / "ml.lock")
    assert sorted(lock) == ["evaluate", "prepare", "train"]
    assert set(lock["evaluate"].outs) == {"build/metrics.json", "build/predictions.csv"}
    tracked = registry.get_run(result.run_id)
    assert tracked.status == "FINISHED"
    assert tracked.metrics == {"accuracy": 0.9, "rows": 10.0}
    assert tracked.params == {"seed": "1", "train.C": "0.5"}
    assert tracked.tags[PIPELINE_KEY] == result.pipeline_key
    assert tracked.tags[step_key("train")] == lock["train"].key
    assert tracked.tags[CONFIG_DIGEST] == config(project).digest


def test_steps_see_the_tracking_run_in_their_environment(project: Path, registry: Registry, counter: Path) -> None:
    result = run(project, registry)
    env = json.loads((project / "build" / "env.json").read_text())
    # The embedded store hands steps MLflow's store beside it, where our run id would not exist: what they log
    # there is a child of the run (its context), folded into it (registry/local/steps).
    assert env == {"MLFLOW_TRACKING_URI": registry.tracking_uri, "MLFLOW_EXPERIMENT_NAME": "demo",
                   "MLFLOW_RUN_CONTEXT": run_context(result.run_id or "", "evaluate"), "STEP_FLAVOUR": "vanilla"}
    assert result.run_id


def test_model_and_outs_are_uploaded(project: Path, registry: Registry, counter: Path, tmp_path: Path) -> None:
    result = run(project, registry)
    assert result.run_id
    model = registry.download_artifacts(result.run_id, "model", tmp_path / "dl")
    assert (model / "model.txt").read_text() == "C=0.5 rows=10\n"
    metrics = registry.download_artifacts(result.run_id, "outs/build/metrics.json", tmp_path / "dl2")
    assert json.loads(metrics.read_text())["accuracy"] == 0.9


def test_second_run_is_all_cached_and_names_the_same_run(project: Path, registry: Registry, counter: Path) -> None:
    first = run(project, registry)
    lock_before = (project / "ml.lock").read_bytes()
    second = run(project, registry)
    assert statuses(second) == {"prepare": "cached", "train": "cached", "evaluate": "cached"}
    assert executions(counter) == ["prepare", "train", "evaluate"]
    assert second.run_id == first.run_id and second.metrics == first.metrics
    assert (project / "ml.lock").read_bytes() == lock_before


@pytest.mark.parametrize(("edit", "expected"), [
    (("train.py", "\npathlib.Path('build/model/extra.txt').write_text('v2')\n"), ["train", "evaluate"]),
    (("evaluate.py", "\n# a changed line\n"), ["evaluate"]),
    (("data/raw.csv", "99,1\n"), ["prepare", "train", "evaluate"]),
])
def test_changing_one_dep_reruns_that_step_and_only_its_downstream(
        project: Path, registry: Registry, counter: Path, edit: tuple[str, str], expected: list[str]) -> None:
    run(project, registry)
    counter.unlink()
    with open(project / edit[0], "a") as handle:
        handle.write(edit[1])
    result = run(project, registry)
    assert executions(counter) == expected
    assert [s.name for s in result.steps if s.status == "cached"] == \
        [n for n in ("prepare", "train", "evaluate") if n not in expected]


def test_a_param_change_reruns_the_steps_that_declare_it(project: Path, registry: Registry, counter: Path) -> None:
    run(project, registry)
    counter.unlink()
    (project / "params.yaml").write_text("seed: 1\ntrain: {C: 2.0}\n")
    result = run(project, registry)
    assert executions(counter) == ["train", "evaluate"]
    assert result.metrics["accuracy"] == 0.8
    train = next(s for s in result.steps if s.name == "train")
    assert train.reasons == ["param 'train.C' changed (0.5 -> 2.0)"]


def test_identical_upstream_outs_stop_the_rerun_early(project: Path, registry: Registry, counter: Path) -> None:
    run(project, registry)
    counter.unlink()
    with open(project / "prepare.py", "a") as handle:
        handle.write("# same outputs\n")
    result = run(project, registry)
    assert executions(counter) == ["prepare"]
    assert statuses(result) == {"prepare": "ran", "train": "cached", "evaluate": "cached"}


def test_an_out_changed_by_hand_reruns_its_step(project: Path, registry: Registry, counter: Path) -> None:
    run(project, registry)
    counter.unlink()
    (project / "build" / "model" / "model.txt").write_text("tampered")
    result = run(project, registry, reuse=False)
    assert result.steps[1].reasons == ["out 'build/model' was modified"]
    assert executions(counter) == ["train"]  # train rewrote the same model, so evaluate's deps are unchanged


def test_an_out_changed_by_hand_is_restored_from_the_identical_run(project: Path, registry: Registry,
                                                                    counter: Path) -> None:
    first = run(project, registry)
    counter.unlink()
    (project / "build" / "model" / "model.txt").write_text("tampered")
    result = run(project, registry)
    assert result.reused and result.run_id == first.run_id and executions(counter) == []
    assert (project / "build" / "model" / "model.txt").read_text() == "C=0.5 rows=10\n"


def test_force_reruns_everything(project: Path, registry: Registry, counter: Path) -> None:
    run(project, registry)
    result = run(project, registry, force=True)
    assert statuses(result) == {"prepare": "ran", "train": "ran", "evaluate": "ran"}
    assert len(executions(counter)) == 6


def test_step_option_runs_that_step_and_its_upstream(project: Path, registry: Registry, counter: Path) -> None:
    result = run(project, registry, step="train")
    assert statuses(result) == {"prepare": "ran", "train": "ran"}
    assert result.pipeline_key is None
    assert result.run_id and registry.get_run(result.run_id).tags["mlops_bot.partial"] == "true"
    assert PIPELINE_KEY not in registry.get_run(result.run_id).tags
    with pytest.raises(UsageError, match=r"--step trian: no such step; the pipeline has prepare, train, evaluate"):
        run(project, registry, step="trian")


def test_dry_run_says_why_and_runs_nothing(project: Path, registry: Registry, counter: Path) -> None:
    run(project, registry)
    counter.unlink()
    with open(project / "train.py", "a") as handle:
        handle.write("# edit\n")
    result = run(project, registry, dry_run=True)
    assert executions(counter) == []
    assert [(s.name, s.status, s.reasons) for s in result.steps] == [
        ("prepare", "cached", []),
        ("train", "would run", ["dep 'train.py' changed"]),
        ("evaluate", "would run", ["upstream 'train' runs first"]),
    ]
    assert result.run_id is None
    assert statuses(run(project, registry)) == {"prepare": "cached", "train": "ran", "evaluate": "cached"}


def test_the_run_records_git_lineage(project: Path, registry: Registry, counter: Path) -> None:
    from tests.helpers.git import git

    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "sources")
    result = run(project, registry)
    assert result.run_id
    tags = registry.get_run(result.run_id).tags
    assert tags["mlflow.source.git.commit"] == git(project, "rev-parse", "HEAD")
    assert tags["mlflow.source.git.branch"] == "main"
    assert tags["mlops_bot.git.dirty"] == "false"  # outs and .mlops-bot/ are untracked
