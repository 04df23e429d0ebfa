from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest

from mlops_bot.config import load_config
from mlops_bot.config.model import Step
from mlops_bot.errors import StepFailed, UsageError
from mlops_bot.pipeline.cache import read_lock
from mlops_bot.pipeline.execute import run_pipeline
from mlops_bot.pipeline.result import PipelineResult, PipelineStepFailed, RunOptions
from mlops_bot.registry.base import Registry
from tests.helpers.pipeline_project import PY, config, executions

QUIET = RunOptions(echo=lambda line: None)


def run(project: Path, registry: Registry) -> PipelineResult:
    return run_pipeline(config(project), registry, QUIET)


def replace_evaluate(project: Path, body: str) -> None:
    (project / "evaluate.py").write_text("import json, pathlib, sys\n" + textwrap.dedent(body))


def test_failed_step_keeps_the_cache_of_those_before_it(project: Path, registry: Registry, counter: Path) -> None:
    replace_evaluate(project, """\
        for i in range(30):
            print("evaluating", i)
        sys.exit(5)
        """)
    with pytest.raises(PipelineStepFailed) as info:
        run(project, registry)
    failure = info.value
    assert (failure.step, failure.returncode, failure.exit_code) == ("evaluate", 5, 3)
    assert failure.tail.splitlines()[-1] == "evaluating 29" and len(failure.tail.splitlines()) == 20
    assert [(s.name, s.status) for s in failure.result.steps] == [
        ("prepare", "ran"), ("train", "ran"), ("evaluate", "failed")]
    assert sorted(read_lock(project / "ml.lock")) == ["prepare", "train"]
    assert failure.result.run_id and registry.get_run(failure.result.run_id).status == "FAILED"
    replace_evaluate(project, """\
        pathlib.Path("build/metrics.json").write_text('{"accuracy": 1}')
        pathlib.Path("build/predictions.csv").write_text("y_true,y_pred\\n1,1\\n")
        """)
    result = run(project, registry)
    assert [s.status for s in result.steps] == ["cached", "cached", "ran"]
    assert executions(counter) == ["prepare", "train"]


BRANCHES = """\
version: 1
model: {{name: m, artifact: out/b}}
pipeline:
  a: {{cmd: "exit 4", outs: [out/a]}}
  b: {{cmd: "mkdir -p out/b", deps: [out/a], outs: [out/b]}}
  c: {{cmd: [{py}, -c, "import os; os.makedirs('out', exist_ok=True); open('out/c', 'w').write('c')"], outs: [out/c]}}
"""


def test_a_failure_stops_dependants_but_not_independent_steps(tmp_path: Path, registry: Registry) -> None:
    (tmp_path / "ml.yaml").write_text(BRANCHES.format(py=PY))
    with pytest.raises(PipelineStepFailed) as info:
        run_pipeline(load_config(tmp_path / "ml.yaml"), registry, QUIET)
    assert [(s.name, s.status) for s in info.value.result.steps] == [
        ("a", "failed"), ("b", "skipped"), ("c", "ran")]
    assert info.value.result.steps[1].reasons == ["upstream 'a' failed"]
    assert sorted(read_lock(tmp_path / "ml.lock")) == ["c"]


@pytest.mark.parametrize(("content", "message"), [
    ("", r"metrics file is empty"),
    ("[0.9, 0.8]", r"holds a list, not a mapping"),
    ('{"accuracy": NaN}', r"metric 'accuracy': (?i:nan) is not a finite number"),
    ('{"accuracy": Infinity}', r"metric 'accuracy': (?i:inf)\w* is not a finite number"),
    ('{"accuracy": "high"}', r"metric 'accuracy': 'high' is a string"),
])
def test_unusable_metrics_fail_the_step_and_are_not_recorded(
        project: Path, registry: Registry, counter: Path, content: str, message: str) -> None:
    replace_evaluate(project, f"""\
        pathlib.Path("build/metrics.json").write_text({content!r})
        pathlib.Path("build/predictions.csv").write_text("y_true,y_pred\\n1,1\\n")
        """)
    with pytest.raises(StepFailed, match=r"step 'evaluate': .*metrics.json(:\d+)?: " + message) as info:
        run(project, registry)
    assert info.value.exit_code == 3
    assert "evaluate" not in read_lock(project / "ml.lock")


def test_a_missing_metrics_file_is_an_out_the_step_did_not_write(project: Path, registry: Registry) -> None:
    replace_evaluate(project, 'pathlib.Path("build/predictions.csv").write_text("y_true,y_pred\\n")\n')
    with pytest.raises(StepFailed, match=r"step 'evaluate' exited 0 but did not write build/metrics\.json"):
        run(project, registry)


def test_stale_outs_are_removed_before_a_step_runs(project: Path, registry: Registry) -> None:
    run(project, registry)
    (project / "train.py").write_text("print('forgot to save the model')\n")
    with pytest.raises(StepFailed, match=r"step 'train' exited 0 but did not write build/model;"):
        run(project, registry)
    assert not (project / "build" / "model").exists()


def test_a_dep_that_does_not_exist(project: Path, registry: Registry) -> None:
    cfg = config(project)
    (project / "data" / "raw.csv").unlink()
    with pytest.raises(UsageError, match=r"pipeline\.prepare\.deps: 'data/raw\.csv' does not exist"):
        run_pipeline(cfg, registry, QUIET)


def test_two_steps_writing_the_same_out_are_refused_by_the_runner(project: Path, registry: Registry) -> None:
    cfg = config(project)
    steps = dict(cfg.pipeline)
    steps["evaluate"] = dataclasses.replace(steps["evaluate"], outs=("build/model",))
    with pytest.raises(UsageError, match=r"steps 'train' and 'evaluate' both write 'build/model'"):
        run_pipeline(dataclasses.replace(cfg, pipeline=steps), registry, QUIET)


def test_a_command_that_is_not_found(project: Path, registry: Registry) -> None:
    cfg = config(project)
    steps = {"prepare": Step("prepare", ("no-such-trainer", "--fast"), outs=("x",))}
    with pytest.raises(StepFailed, match=r"step 'prepare': command 'no-such-trainer' not found"):
        run_pipeline(dataclasses.replace(cfg, pipeline=steps), registry, QUIET)


def test_a_missing_param_is_named_with_its_file(project: Path, registry: Registry) -> None:
    cfg = config(project)
    (project / "params.yaml").write_text("seed: 1\n")
    with pytest.raises(UsageError, match=r"params\.yaml: has no param 'train\.C' \(declared by step 'train'\)"):
        run_pipeline(cfg, registry, QUIET)


def test_a_second_run_in_the_same_project_is_refused(project: Path, registry: Registry) -> None:
    import fcntl

    (project / ".mlops-bot").mkdir(exist_ok=True)
    with open(project / ".mlops-bot" / "run.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(UsageError, match=r"another `mlops-bot run` is running in .*project; wait for it"):
            run(project, registry)
    assert run(project, registry).steps[0].status == "ran"
