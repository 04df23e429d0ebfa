"""MLflow 3 Logged Models (issue #15): a model directory holding an `MLmodel` file is recorded as a Logged Model of
its run and the version is linked to it, so MLflow's own client and `mlflow models serve` work on what the bot
registered. Checked with the real quickstart and the real CLI on the real mlflow server, read back with the real
mlflow client; a directory without MLmodel registers as before; a server without Logged Models is no error."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from mlops_bot.flows.gate import source_problem
from mlops_bot.lifecycle import promotion
from mlops_bot.registry.base import Registry
from mlops_bot.registry.mlflow.client import MlflowRegistry
from mlops_bot.registry.mlflow.http import RetryPolicy
from tests.helpers.decisions import ACCURACY, compare_of, make_config, make_decision
from tests.helpers.git import git
from tests.helpers.registries import TEST_RETRY, make_run
from tests.servers.mlflow_server import MlflowServer, free_port, mlflow_executable

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "examples" / "quickstart"
BOT_TIMEOUT = 240  # one command, on a busy 2-core runner
SERVE_TIMEOUT = 120  # `mlflow models serve` imports mlflow and sklearn, then starts uvicorn
_DROP = ("GITHUB_", "GITLAB_", "CI_", "RUNNER_", "MLOPS_BOT_", "MLFLOW_")


@dataclass(frozen=True)
class Promoted:
    """The quickstart, run and promoted by the CLI on the real server under a model name of its own."""

    path: Path
    model: str
    run_id: str
    env: dict[str, str]

    def bot(self, *args: str, expect: int = 0) -> dict[str, Any]:
        done = subprocess.run([sys.executable, "-m", "mlops_bot", "-C", str(self.path), *args, "--json"],
                              env=self.env, capture_output=True, text=True, timeout=BOT_TIMEOUT)
        assert done.returncode == expect, f"`mlops-bot {' '.join(args)}`: exit {done.returncode}\n{done.stderr[-4000:]}"
        document: dict[str, Any] = json.loads(done.stdout)
        return document


def client(uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@pytest.fixture(scope="module")
def promoted(mlflow_server: MlflowServer, tmp_path_factory: pytest.TempPathFactory) -> Promoted:
    path = tmp_path_factory.mktemp("logged") / "quickstart"
    model = f"logged-{uuid.uuid4().hex[:8]}"
    shutil.copytree(QUICKSTART, path, ignore=shutil.ignore_patterns("build", ".mlops-bot", "deployed", "__pycache__"))
    config = path / "ml.yaml"
    text, renamed = re.subn(r"^model: \{name: [\w.-]+,", f"model: {{name: {model},", config.read_text(), flags=re.M)
    text, moved = re.subn(r"experiment: digits\}", f"experiment: {model}}}", text)
    assert renamed == moved == 1, "the quickstart's ml.yaml changed shape"
    config.write_text(text)
    git(path, "init", "--quiet", "--initial-branch", "main")
    git(path, "add", "--all")
    git(path, "commit", "--quiet", "--message", "quickstart")
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROP) and k != "CI"}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["MLFLOW_TRACKING_URI"] = mlflow_server.uri
    journey = Promoted(path, model, "", env)
    run_id = journey.bot("run")["run_id"]
    assert journey.bot("promote")["promoted"] is True
    return replace(journey, run_id=run_id)


@pytest.mark.mlflow
def test_quickstart_saves_an_mlflow_model_with_a_signature(promoted: Promoted) -> None:
    from mlflow.models import Model

    saved = Model.load(str(promoted.path / "build" / "model"))
    assert saved.signature is not None and saved.signature.inputs.inputs[0].shape == (-1, 64)
    assert saved.saved_input_example_info is not None


@pytest.mark.mlflow
def test_the_champion_is_a_logged_model_of_its_run(promoted: Promoted, mlflow_server: MlflowServer) -> None:
    import mlflow.models

    tracking = client(mlflow_server.uri)
    version = tracking.get_model_version_by_alias(promoted.model, "champion")
    model_id = _linked(version)
    assert version.run_id == promoted.run_id
    logged = tracking.get_logged_model(model_id)
    assert (logged.status.to_int(), logged.source_run_id, logged.name) == (2, promoted.run_id, promoted.model)
    assert logged.params.get("train.C") == "0.01", logged.params
    outputs = tracking.get_run(promoted.run_id).outputs.model_outputs
    assert [o.model_id for o in outputs] == [model_id]

    with _tracking(mlflow_server.uri):
        info = mlflow.models.get_model_info(f"models:/{promoted.model}@champion")
    assert (info.model_id, info.run_id) == (model_id, promoted.run_id)
    assert info.signature is not None and info.signature.inputs.inputs[0].shape == (-1, 64)


@pytest.mark.mlflow
def test_pyfunc_loads_the_champion_and_predicts_as_the_local_model(promoted: Promoted,
                                                                  mlflow_server: MlflowServer) -> None:
    import mlflow.pyfunc

    rows = _test_rows(promoted.path)
    local = mlflow.pyfunc.load_model(str(promoted.path / "build" / "model")).predict(rows)
    with _tracking(mlflow_server.uri):
        remote = mlflow.pyfunc.load_model(f"models:/{promoted.model}@champion").predict(rows)
    assert np.array_equal(np.asarray(remote), np.asarray(local))


@pytest.mark.mlflow
def test_promoting_again_creates_no_second_logged_model_or_version(promoted: Promoted,
                                                                   mlflow_server: MlflowServer) -> None:
    """(The CLI sees the run is the champion already and registers nothing; register itself is repeated in
    test_register_links_a_tiny_mlflow_model_once.)"""
    again = promoted.bot("promote")
    assert again["already_champion"] is True and again["version"] == "1", again
    tracking = client(mlflow_server.uri)
    experiment = tracking.get_experiment_by_name(promoted.model).experiment_id
    logged = tracking.search_logged_models([experiment])
    assert len(logged) == 1, [m.model_id for m in logged]
    assert [v.version for v in tracking.search_model_versions(f"name='{promoted.model}'")] == ["1"]
    assert len(tracking.get_run(promoted.run_id).outputs.model_outputs) == 1
    assert json.loads(logged[0].tags["mlflow.modelVersions"]) == [{"name": promoted.model, "version": 1}]


@pytest.mark.mlflow
def test_the_gate_lists_a_logged_model_source_and_refuses_one_it_cannot(
        promoted: Promoted, mlflow_server: MlflowServer, registry_factory: Callable[..., Registry]) -> None:
    assert promoted.bot("gate")["open"] is True
    registry = registry_factory("mlflow")
    version = registry.get_version_by_alias(promoted.model, "champion")
    assert version is not None and source_problem(registry, version) is None
    gone = replace(version, source="models:/m-0123456789abcdef0123456789abcdef")
    assert "cannot be listed" in (source_problem(registry, gone) or "")
    experiment = registry.get_or_create_experiment(promoted.model).experiment_id
    empty = client(mlflow_server.uri).create_logged_model(experiment, source_run_id=promoted.run_id).model_id
    assert "missing or empty" in (source_problem(registry, replace(version, source=f"models:/{empty}")) or "")


@pytest.mark.mlflow
def test_mlflow_models_serve_answers_with_the_champions_predictions(promoted: Promoted, mlflow_server: MlflowServer,
                                                                   tmp_path: Path) -> None:
    import mlflow.pyfunc

    rows = _test_rows(promoted.path)[:5]
    local = mlflow.pyfunc.load_model(str(promoted.path / "build" / "model")).predict(rows)
    port = free_port()
    env = {**promoted.env, "MLFLOW_TRACKING_URI": mlflow_server.uri}
    with _served(f"models:/{promoted.model}@champion", port, env, tmp_path / "serve.log") as base:
        answer = httpx.post(f"{base}/invocations", json={"inputs": rows.tolist()}, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == np.asarray(local).tolist()


# the bot's own calls, with small fixtures instead of the quickstart


@pytest.mark.mlflow
def test_a_model_directory_without_mlmodel_registers_as_before(
        registry_factory: Callable[..., Registry], unique: Callable[[str], str], tmp_path: Path) -> None:
    registry = registry_factory("mlflow")
    name = unique("no-mlmodel")
    config = make_config(compare_of(ACCURACY), root=tmp_path, model=name)
    config = replace(config, tracking=replace(config.tracking, experiment=name))
    run_id = make_run(registry, config, 0.95, tmp_path)
    version = promotion.register(config, registry, _decided(name, run_id), {})
    assert version.source == f"{registry.get_run(run_id).artifact_uri}/model"
    assert client(registry.tracking_uri).get_model_version(name, version.version).model_id is None
    experiment = registry.get_or_create_experiment(name).experiment_id
    assert client(registry.tracking_uri).search_logged_models([experiment]) == []


@pytest.mark.mlflow
def test_register_links_a_tiny_mlflow_model_once(registry_factory: Callable[..., Registry],
                                                 unique: Callable[[str], str], tmp_path: Path) -> None:
    import mlflow.pyfunc
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    registry = registry_factory("mlflow")
    name = unique("tiny")
    config = make_config(compare_of(ACCURACY), root=tmp_path, model=name)
    config = replace(config, tracking=replace(config.tracking, experiment=name))
    features = np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]])
    mlflow.sklearn.save_model(LogisticRegression().fit(features, [0, 1, 0, 1]), str(tmp_path / "saved"))
    run_id = _run_with_model(registry, name, tmp_path / "saved")

    first = promotion.register(config, registry, _decided(name, run_id), {})
    tracking = client(registry.tracking_uri)
    experiment = registry.get_or_create_experiment(name).experiment_id
    [logged] = tracking.search_logged_models([experiment])
    second = promotion.register(config, registry, _decided(name, run_id), {})
    model_id = _linked(tracking.get_model_version(name, first.version))
    assert second.version == first.version and first.source == f"models:/{model_id}"
    [again] = tracking.search_logged_models([experiment])
    assert again.model_id == logged.model_id == model_id
    # found READY the second time: neither uploaded nor finalized again
    assert again.last_updated_timestamp == logged.last_updated_timestamp
    assert [o.model_id for o in tracking.get_run(run_id).outputs.model_outputs] == [model_id]
    with _tracking(registry.tracking_uri):
        predicted = mlflow.pyfunc.load_model(f"models:/{name}/{first.version}").predict(features)
    assert np.asarray(predicted).tolist() == [0, 1, 0, 1]


def test_a_server_without_logged_models_falls_back_to_the_run_artifact(tmp_path: Path) -> None:
    """MLflow 2.x answers 404 ENDPOINT_NOT_FOUND for logged-models/*, GitLab a bare 404: log_model is None."""
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        if request.url.path.endswith("/runs/get"):
            return httpx.Response(200, json={"run": {"info": {"run_id": "r1", "experiment_id": "1",
                                                              "artifact_uri": "mlflow-artifacts:/1/r1/artifacts"}}})
        if "/logged-models" in request.url.path:
            return httpx.Response(404, json={"error_code": "ENDPOINT_NOT_FOUND", "message": "no such endpoint"})
        return httpx.Response(404, text="Not Found")

    registry = MlflowRegistry("http://mlflow.invalid", {}, transport=httpx.MockTransport(answer),
                              retry=RetryPolicy(**TEST_RETRY))
    try:
        assert registry.log_model("r1", "model", "m") is None
    finally:
        registry.close()
    assert seen == ["GET /api/2.0/mlflow/runs/get", "POST /api/2.0/mlflow/logged-models/search"]


def test_the_embedded_store_has_no_logged_models(registry_factory: Callable[..., Registry], tmp_path: Path) -> None:
    registry = registry_factory("local")
    config = make_config(compare_of(ACCURACY), root=tmp_path, model="local-model")
    run_id = make_run(registry, config, 0.95, tmp_path)
    assert registry.log_model(run_id, "model", "local-model") is None
    version = promotion.register(config, registry, _decided("local-model", run_id), {})
    assert version.source == f"{registry.get_run(run_id).artifact_uri}/model"


# helpers


def _linked(version: Any) -> str:
    """The Logged Model a version was registered from, as `mlflow.register_model("models:/<model_id>")` leaves it:
    source `models:/<model_id>`. (OSS MLflow 3.17's SQL store keeps no model_id column: its client reads
    ModelVersion.model_id as None for MLflow's own registrations too.)"""
    assert version.source.startswith("models:/m-"), f"not linked to a Logged Model: source {version.source}"
    model_id: str = version.source[len("models:/"):]
    assert version.model_id in (None, model_id)
    return model_id


def _decided(model: str, run_id: str) -> Any:
    decision = make_decision(model=model)
    return replace(decision, challenger=replace(decision.challenger, run_id=run_id), champion=None)


def _run_with_model(registry: Registry, experiment: str, model_dir: Path) -> str:
    experiment_id = registry.get_or_create_experiment(experiment).experiment_id
    run = registry.create_run(experiment_id, "tiny", {})
    registry.log_batch(run.run_id, params={"C": "1.0"}, metrics={"accuracy": 0.95})
    registry.upload_artifacts(run.run_id, model_dir, "model")
    registry.update_run(run.run_id, "FINISHED")
    return run.run_id


def _test_rows(project: Path) -> Any:
    data = np.loadtxt(project / "build" / "test.csv", delimiter=",", skiprows=1)
    return data[:, 1:-1]


@contextlib.contextmanager
def _tracking(uri: str) -> Iterator[None]:
    """mlflow's fluent API (models:/ URIs) reads the tracking URI from the environment."""
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    os.environ["MLFLOW_TRACKING_URI"] = os.environ["MLFLOW_REGISTRY_URI"] = uri
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _served(model_uri: str, port: int, env: dict[str, str], log: Path) -> Iterator[str]:
    """A real `mlflow models serve` on 127.0.0.1, up (its /health answers) within SERVE_TIMEOUT; killed after."""
    base = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen([mlflow_executable(), "models", "serve", "-m", model_uri, "--env-manager", "local",
                                    "-p", str(port), "-h", "127.0.0.1", "-w", "1"],
                                   env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + SERVE_TIMEOUT
        while True:
            assert process.poll() is None, f"mlflow models serve exited {process.returncode}\n{log.read_text()[-4000:]}"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, f"not up in {SERVE_TIMEOUT} s:\n{log.read_text()[-4000:]}"
            time.sleep(0.5)
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 15)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, 9)
            process.wait(timeout=10)
