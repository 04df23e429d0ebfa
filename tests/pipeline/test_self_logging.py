"""Training code that logs to MLflow itself, on the real MLflow server (issue #14): `autolog()` around `fit()`,
`log_metric` without `start_run`, several `with start_run()`, `log_artifact`, across steps. All of it lands in
the pipeline run or in child runs of it, tagged as such; the pipeline run ends as the bot says, no run stays
RUNNING, and `compare`/`promote` without `--run` judge the pipeline run, never a child."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_bot.pipeline.selflog import SelfLogging
from mlops_bot.pipeline.tracking import param_clash
from mlops_bot.registry import open_registry, tags
from mlops_bot.registry.base import Registry, Run
from mlops_bot.support.state import LAST_RUN_FILE, state_path
from tests.helpers.pipeline_project import PY, cli
from tests.servers.mlflow_server import MlflowServer

# autolog() + fit() with no active run: mlflow resumes the pipeline run (MLFLOW_RUN_ID), ends it FINISHED and
# forgets MLFLOW_RUN_ID; the log_metric after it starts a new run.
TRAIN = textwrap.dedent("""\
    import json, pathlib, pickle
    import mlflow, mlflow.sklearn, yaml
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    c = yaml.safe_load(open("params.yaml"))["train"]["C"]
    mlflow.sklearn.autolog()
    X, y = load_digits(return_X_y=True)
    model = LogisticRegression(C=c, max_iter=300).fit(X[:600], y[:600])
    mlflow.log_metric("train_score", model.score(X[:600], y[:600]))
    pathlib.Path("model").mkdir(exist_ok=True)
    pathlib.Path("model/model.pkl").write_bytes(pickle.dumps(model))
    json.dump({"accuracy": model.score(X[600:], y[600:])}, open("metrics.json", "w"))
    """)

# The first start_run resumes the pipeline run and ends it; the second makes a run of its own, where the step
# logs train.C as 1.0 (params.yaml says 1); log_artifact after the blocks makes a third.
TUNE = textwrap.dedent("""\
    import pathlib
    import mlflow

    with mlflow.start_run():
        mlflow.log_param("tuned", "yes")
    with mlflow.start_run():
        mlflow.log_param("train.C", 1.0)
        mlflow.log_param("round", 2)
        mlflow.log_metric("tune_loss", 0.125)
    pathlib.Path("notes.txt").write_text("tuned")
    mlflow.log_artifact("notes.txt")
    """)

# A run of its own, then a death that skips mlflow's atexit handler: the run stays RUNNING.
CRASH = textwrap.dedent("""\
    import os
    import mlflow

    with mlflow.start_run():
        pass
    mlflow.log_metric("half_done", 1.0)
    os._exit(4)
    """)

ML_YAML = """\
version: 1
model: {{name: {model}, artifact: model}}
tracking: {{uri: "{uri}", experiment: "{experiment}"}}
params: params.yaml
pipeline:
  train:
    cmd: [{py}, train.py]
    deps: [train.py]
    params: [train.C, train.solver]
    outs: [model]
    metrics: metrics.json
  {second}:
    cmd: [{py}, {second}.py]
    deps: [{second}.py, model]
compare:
  criteria:
    - {{metric: accuracy, threshold: 0.5}}
"""


def make(root: Path, uri: str, second: str, script: str) -> tuple[Path, str]:
    """A project whose train step self-logs and whose second step runs `script`; returns it and its experiment."""
    experiment = f"selflog-{uuid.uuid4().hex[:8]}"
    root.mkdir(parents=True)
    (root / "train.py").write_text(TRAIN)
    (root / f"{second}.py").write_text(script)
    (root / "params.yaml").write_text("train: {C: 1, solver: lbfgs}\n")
    (root / "ml.yaml").write_text(ML_YAML.format(model=experiment, uri=uri, experiment=experiment,
                                                 py=json.dumps(PY), second=second))
    return root, experiment


def runs_of(uri: str, project: Path, experiment: str) -> list[Run]:
    registry = open_registry(uri, project)
    try:
        return registry.search_runs([registry.get_or_create_experiment(experiment).experiment_id])
    finally:
        registry.close()


def bot(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlops_bot", "-C", str(project), *args], env=dict(os.environ),
                          capture_output=True, text=True, timeout=120, check=False)


def assert_children_of(run_id: str, runs: list[Run], status: str) -> list[Run]:
    children = [r for r in runs if r.run_id != run_id]
    assert children, "the steps' own runs were expected"
    for child in children:
        assert child.tags.get(tags.PARENT_RUN) == run_id and child.tags.get(tags.ROLE) == tags.ROLE_CHILD, child
        assert child.tags.get(tags.MLFLOW_PARENT_RUN_ID) == run_id
        assert tags.PIPELINE_KEY not in child.tags
        assert child.status == status, (child.run_id, child.status, child.tags)
    return children


@pytest.mark.mlflow
def test_what_training_code_logs_itself_ends_in_the_pipeline_run_or_its_children(
        mlflow_server: MlflowServer, tmp_path: Path) -> None:
    project, experiment = make(tmp_path / "project", mlflow_server.uri, "tune", TUNE)
    done = cli(project, "--json")
    assert done.returncode == 0, done.stderr
    run_id = json.loads(done.stdout)["run_id"]
    runs = runs_of(mlflow_server.uri, project, experiment)
    run = next(r for r in runs if r.run_id == run_id)

    assert run.status == "FINISHED" and tags.PIPELINE_KEY in run.tags
    assert tags.ROLE not in run.tags and tags.PARENT_RUN not in run.tags  # resuming a run adds no context tag
    assert run.params["train.C"] == "1" and run.params["train.solver"] == "lbfgs"  # the bot's, as params.yaml
    assert run.params["tuned"] == "yes" and run.params["round"] == "2"  # in the run / folded from a child
    assert "C" in run.params and "training_score" in run.metrics  # autolog, in the resumed pipeline run
    assert 0.5 < run.metrics["train_score"] <= 1.0  # logged in a child, folded in
    assert run.metrics["tune_loss"] == 0.125 and "accuracy" in run.metrics

    children = assert_children_of(run_id, runs, "FINISHED")
    assert {c.tags[tags.MADE_BY_STEP] for c in children} == {"train", "tune"}
    registry = open_registry(mlflow_server.uri, project)
    try:
        assert any("notes.txt" in registry.list_artifacts(c.run_id) for c in children)
    finally:
        registry.close()

    warnings = [line for line in done.stderr.splitlines() if line.startswith("mlops-bot: warning")]
    assert len(warnings) == 1, done.stderr
    assert "train.C" in warnings[0] and "'1.0'" in warnings[0] and "equal as numbers" in warnings[0]

    # The children are newer FINISHED runs of the experiment: neither the last-run record nor the fallback
    # to the pipeline key picks one.
    for record in (True, False):
        if not record:
            (state_path(project) / LAST_RUN_FILE).unlink()
        compared = bot(project, "compare", "--json")
        assert compared.returncode == 0, compared.stderr
        decision = json.loads(compared.stdout)
        assert decision["challenger"]["run_id"] == run_id
        assert decision["challenger"]["metrics"]["train_score"] == run.metrics["train_score"]  # a child's
        assert decision["verdict"] == "pass"
    promoted = bot(project, "promote", "--json", "--no-deploy")
    assert promoted.returncode == 0, promoted.stderr
    assert json.loads(promoted.stdout)["promoted"] is True
    registry = open_registry(mlflow_server.uri, project)
    try:
        assert [v.run_id for v in registry.search_model_versions(experiment)] == [run_id]
    finally:
        registry.close()


@pytest.mark.mlflow
def test_a_step_failing_after_self_logging_ends_the_run_failed_and_no_child_running(
        mlflow_server: MlflowServer, tmp_path: Path) -> None:
    project, experiment = make(tmp_path / "project", mlflow_server.uri, "crash", CRASH)
    done = cli(project, "--json")
    assert done.returncode == 3, done.stderr
    runs = runs_of(mlflow_server.uri, project, experiment)
    pipeline = [r for r in runs if tags.PARENT_RUN not in r.tags]
    assert len(pipeline) == 1 and pipeline[0].status == "FAILED"
    children = [r for r in runs if r.tags.get(tags.PARENT_RUN) == pipeline[0].run_id]
    assert len(children) == len(runs) - 1
    assert all(r.status != "RUNNING" for r in runs), [(r.run_id, r.status) for r in runs]
    left = [c for c in children if c.tags.get(tags.MADE_BY_STEP) == "crash"]
    assert [c.status for c in left] == ["FAILED"]  # os._exit left it RUNNING; the failed step ended it FAILED
    assert [c.status for c in children if c.tags.get(tags.MADE_BY_STEP) == "train"] == ["FINISHED"]


def child(registry: Registry, experiment_id: str, parent: str, step: str, params: dict[str, str],
          metrics: dict[str, float], status: str = "FINISHED") -> str:
    """A run as a step's mlflow code makes it with MLFLOW_RUN_CONTEXT set."""
    made = registry.create_run(experiment_id, tags={tags.PARENT_RUN: parent, tags.ROLE: tags.ROLE_CHILD,
                                                    tags.MLFLOW_PARENT_RUN_ID: parent, tags.MADE_BY_STEP: step})
    registry.log_batch(made.run_id, params=params, metrics=metrics)
    if status != "RUNNING":
        registry.update_run(made.run_id, "FINISHED")
    return made.run_id


def test_fold_copies_what_children_agree_on_and_names_what_they_do_not(
        registry_factory: Callable[..., Registry], capsys: pytest.CaptureFixture[str]) -> None:
    """A parameter search logs one child per candidate: which value is the model's cannot be known."""
    registry = registry_factory("local")
    experiment = registry.get_or_create_experiment("fold").experiment_id
    parent = registry.create_run(experiment).run_id
    registry.log_batch(parent, params={"seed": "7"}, metrics={"loss": 0.5})
    other = registry.create_run(experiment).run_id  # another pipeline's child: none of ours
    child(registry, experiment, other, "train", {"alpha": "9"}, {"score": 0.1})
    child(registry, experiment, parent, "train", {"C": "0.1", "seed": "7", "train.C": "1.0", "solver": "lbfgs"},
          {"score": 0.8, "nan": float("nan"), "loss": 0.9})
    left = child(registry, experiment, parent, "tune", {"C": "1.0", "solver": "lbfgs"},
                 {"score": 0.9, "nan": float("nan"), "tune_loss": 0.25}, status="RUNNING")
    SelfLogging(registry, experiment, parent).fold({"train.C": "1"}, {"accuracy": 0.7}, param_clash)
    run = registry.get_run(parent)
    assert run.params == {"seed": "7", "solver": "lbfgs"}  # train.C is the bot's to log; C and alpha are not ours
    assert run.metrics == {"loss": 0.5, "tune_loss": 0.25, "nan": pytest.approx(float("nan"), nan_ok=True)}
    assert registry.get_run(left).status == "FINISHED"
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2, lines
    assert "param 'train.C' kept as the run has it, '1'" in lines[0] and "(step 'train') says '1.0'" in lines[0]
    assert "logged C, score with different values" in lines[1]


def test_after_step_reopens_the_pipeline_run_and_ends_only_that_steps_children(
        registry_factory: Callable[..., Registry]) -> None:
    registry = registry_factory("local")
    experiment = registry.get_or_create_experiment("after").experiment_id
    parent = registry.create_run(experiment).run_id
    registry.update_run(parent, "FINISHED")  # as autolog or `with mlflow.start_run()` leave it
    mine = child(registry, experiment, parent, "train", {}, {}, status="RUNNING")
    later = child(registry, experiment, parent, "evaluate", {}, {}, status="RUNNING")
    children = SelfLogging(registry, experiment, parent)
    children.after_step("train", ok=False)
    assert [registry.get_run(r).status for r in (parent, mine, later)] == ["RUNNING", "FAILED", "RUNNING"]
    children.end_children("KILLED")
    assert [registry.get_run(r).status for r in (parent, mine, later)] == ["RUNNING", "FAILED", "KILLED"]


@pytest.mark.mlflow
def test_a_criterion_may_name_a_metric_only_the_training_code_logs(mlflow_server: MlflowServer,
                                                                   tmp_path: Path) -> None:
    project, _ = make(tmp_path / "project", mlflow_server.uri, "tune", TUNE)
    assert cli(project).returncode == 0  # metrics.json holds accuracy only; train.py logs train_score itself
    config = project / "ml.yaml"
    text = config.read_text()
    config.write_text(text.replace("    - {metric: accuracy, threshold: 0.5}\n", "    - {metric: accuracy, threshold: "
                                   "0.5}\n    - {metric: train_score, threshold: 0.5}\n    - {metric: training_score, "
                                   "threshold: 0.5}\n"))
    checked = bot(project, "validate")
    assert checked.returncode == 0, checked.stderr
    config.write_text(config.read_text().replace("metric: train_score", "metric: trian_score"))
    typo = bot(project, "validate")
    assert typo.returncode == 2 and "'trian_score' is not produced by any step" in typo.stderr, typo.stderr
    assert "train_score" in typo.stderr.split("trian_score", 2)[-1]  # the hint names the logged one
