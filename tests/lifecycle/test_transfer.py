"""Copying a version between two real `mlflow server`s (issue #19, `promote --to-registry`): the copy is a
FINISHED run with the same params, metrics, lineage and bytes, a version with the source's decision and where it
came from, and an MLflow Model the real mlflow client loads from the second server alone. A second copy makes
nothing; a copy cut off mid-upload is completed by the next; the source's own server is refused, by any URL."""

from __future__ import annotations

import filecmp
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlops_bot.config.model import Config, Tracking
from mlops_bot.errors import RemoteError, UsageError
from mlops_bot.events.audit import EventLog, events_dir
from mlops_bot.lifecycle import promotion
from mlops_bot.lifecycle.transfer import Copied, Transfer, copy_version
from mlops_bot.lifecycle.transfer_target import open_target
from mlops_bot.registry import tags
from mlops_bot.registry.base import ModelVersion, Registry
from mlops_bot.registry.mlflow.client import MlflowRegistry
from mlops_bot.registry.mlflow.http import RetryPolicy
from tests.helpers.decisions import ACCURACY, compare_of, make_config, make_decision
from tests.helpers.registries import TEST_RETRY, add_version
from tests.servers.forwarding import ForwardingProxy
from tests.servers.mlflow_server import MlflowServer, free_port

FEATURES = np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]])
APPROVAL = json.dumps({"by": "alice", "at": "2026-12-01T10:00:00Z", "via": "review"})


def registry(uri: str) -> MlflowRegistry:
    return MlflowRegistry(uri, {}, retry=RetryPolicy(**TEST_RETRY))


@dataclass(frozen=True)
class Copy:
    config: Config
    source: MlflowRegistry
    target: MlflowRegistry
    version: ModelVersion  # on the source
    result: Copied
    saved: Path  # the model as trained, on disk

    def again(self, version: ModelVersion | None = None, target: Registry | None = None) -> Copied:
        transfer = Transfer(self.config, self.source, target or self.target, self.config.tracking.uri)
        return copy_version(transfer, version or self.version)


@pytest.fixture(scope="module")
def copied(mlflow_server: MlflowServer, second_mlflow_server: MlflowServer,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Copy]:
    """A tiny MLflow Model trained, registered by `promote`'s register on the first server, decorated as a
    champion in production would be, and copied to the second once."""
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("transfer")
    name = f"transfer-{root.name}"
    config = make_config(compare_of(ACCURACY), root=root, model=name)
    config = replace(config, tracking=Tracking(mlflow_server.uri, name))
    mlflow.sklearn.save_model(LogisticRegression().fit(FEATURES, [0, 1, 0, 1]), str(root / "saved"))
    (root / "extra" / "plots").mkdir(parents=True)
    (root / "extra" / "plots" / "roc.bin").write_bytes(bytes(range(256)) * 40)
    source, target = registry(mlflow_server.uri), registry(second_mlflow_server.uri)
    run_id = _trained_run(source, name, root)
    decision = make_decision(model=name)
    decision = replace(decision, challenger=replace(decision.challenger, run_id=run_id), champion=None)
    version = promotion.register(config, source, decision, {tags.DECISION_URL: "https://ci.example/runs/7"})
    for key, value in {tags.approval_tag("production"): APPROVAL, tags.deploy_status("prod"): "succeeded",
                       tags.stage_reached("staging"): "2026-12-01T09:00:00Z", tags.PROMOTED_AT: "2026-12-01"}.items():
        source.set_model_version_tag(name, version.version, key, value)
    version = source.get_model_version(name, version.version)
    result = copy_version(Transfer(config, source, target, mlflow_server.uri), version)
    yield Copy(config, source, target, version, result, root / "saved")
    source.close()
    target.close()


def _trained_run(registry: Registry, experiment: str, root: Path) -> str:
    experiment_id = registry.get_or_create_experiment(experiment).experiment_id
    run = registry.create_run(experiment_id, "tiny", {tags.MLFLOW_GIT_COMMIT: "c0ffee" * 6 + "abcd",
                                                      tags.CONFIG_DIGEST: "d" * 64, tags.DATA_HASH: "e" * 64})
    registry.log_batch(run.run_id, params={"C": "1.0", "solver": "lbfgs"}, metrics={"accuracy": 0.95, "f1": 0.9})
    registry.log_batch(run.run_id, metrics={"accuracy": 0.96}, step=1)  # the latest value is the one copied
    registry.upload_artifacts(run.run_id, root / "saved", "model")
    registry.upload_artifacts(run.run_id, root / "extra", "")
    registry.update_run(run.run_id, "FINISHED")
    return run.run_id


def _runs(registry: Registry, experiment: str) -> list[str]:
    experiment_id = registry.get_or_create_experiment(experiment).experiment_id
    return sorted(r.run_id for r in registry.search_runs([experiment_id]))


@pytest.mark.mlflow
def test_the_copy_is_a_finished_run_with_the_same_params_metrics_lineage_and_bytes(copied: Copy,
                                                                                   tmp_path: Path) -> None:
    from mlflow import MlflowClient

    source_run = copied.source.get_run(copied.version.run_id)
    run = copied.target.get_run(copied.result.target_run_id)
    assert copied.result.copied is True and run.run_id != source_run.run_id
    assert run.status == "FINISHED" and run.name == "tiny"
    assert dict(run.params) == dict(source_run.params) == {"C": "1.0", "solver": "lbfgs"}
    assert dict(run.metrics) == dict(source_run.metrics) == {"accuracy": 0.96, "f1": 0.9}
    for key in (tags.MLFLOW_GIT_COMMIT, tags.CONFIG_DIGEST, tags.DATA_HASH, tags.MLFLOW_RUN_NAME):
        assert run.tags[key] == source_run.tags[key], key
    pairs = ((copied.source.tracking_uri, source_run.run_id), (copied.target.tracking_uri, run.run_id))
    raw = {uri: MlflowClient(uri).get_run(run_id).data.tags[tags.CREATE_TOKEN] for uri, run_id in pairs}
    assert len(set(raw.values())) == 2  # the target's own token, not the source's copied
    assert run.tags[tags.COPIED_RUN] == f"{copied.config.tracking.uri}#{source_run.run_id}"
    files = copied.source.list_artifacts(source_run.run_id)
    assert "plots/roc.bin" in files and "model/MLmodel" in files
    assert copied.target.list_artifacts(run.run_id) == files
    mine = copied.source.download_artifacts(source_run.run_id, "", tmp_path / "source")
    theirs = copied.target.download_artifacts(run.run_id, "", tmp_path / "target")
    match, mismatch, errors = filecmp.cmpfiles(mine, theirs, files, shallow=False)
    assert (sorted(match), mismatch, errors) == (files, [], [])


@pytest.mark.mlflow
def test_the_copied_version_carries_the_decision_and_where_it_came_from(copied: Copy) -> None:
    made = copied.target.get_model_version(copied.version.name, copied.result.target_version)
    assert made.run_id == copied.result.target_run_id and made.description == copied.version.description
    assert made.tags[tags.COPIED_FROM] == f"{copied.config.tracking.uri}#{copied.version.name}/{copied.version.version}"
    for key in (tags.VERDICT, tags.DECISION_SUMMARY, tags.COMPARED_WITH, tags.DECISION_URL, tags.COMMIT,
                tags.CONFIG_DIGEST, tags.approval_tag("production")):
        assert made.tags[key] == copied.version.tags[key], key
    assert made.tags[tags.VERDICT] == "pass" and made.tags[tags.RUN_ID] == made.run_id
    assert not [k for k in made.tags if k.startswith((tags.DEPLOY_PREFIX, tags.STAGE_PREFIX))
                or k == tags.PROMOTED_AT]
    assert made.source.startswith("models:/m-"), made.source  # linked to a Logged Model, as promote registers
    assert made.aliases == ()  # aliases are the target's business: nothing is promoted there
    [event] = [e for e in EventLog(events_dir(copied.config.root)).read() if e.type == "model_version.copied"]
    assert event.data["target_version"] == made.version and event.data["source_uri"] == copied.config.tracking.uri
    assert event.data["target_uri"] == copied.target.tracking_uri


@pytest.mark.mlflow
def test_mlflow_loads_the_copy_from_the_second_server_alone(copied: Copy,
                                                           second_mlflow_server: MlflowServer) -> None:
    """In a fresh interpreter that knows only the second server: `models:/<name>/<version>` loads and predicts as
    the model trained."""
    import mlflow.pyfunc

    code = ("import json, sys, mlflow.pyfunc\n"
            f"model = mlflow.pyfunc.load_model('models:/{copied.version.name}/{copied.result.target_version}')\n"
            f"print(json.dumps({{'run_id': model.metadata.run_id, "
            f"'predicted': [int(p) for p in model.predict({FEATURES.tolist()!r})]}}))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_TRACKING_URI"] = second_mlflow_server.uri
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    local = mlflow.pyfunc.load_model(str(copied.saved)).predict(FEATURES)
    assert loaded == {"run_id": copied.result.target_run_id, "predicted": np.asarray(local).tolist()}


@pytest.mark.mlflow
def test_a_second_copy_makes_nothing(copied: Copy) -> None:
    name = copied.version.name
    runs_before = _runs(copied.target, name)
    versions_before = [v.version for v in copied.target.search_model_versions(name)]
    again = copied.again()
    assert (again.copied, again.target_version, again.target_run_id) == (
        False, copied.result.target_version, copied.result.target_run_id)
    assert "already copied" in again.message
    assert _runs(copied.target, name) == runs_before and len(runs_before) == 1
    assert [v.version for v in copied.target.search_model_versions(name)] == versions_before == ["1"]
    events = [e for e in EventLog(events_dir(copied.config.root)).read() if e.type == "model_version.copied"]
    assert len(events) == 1


class UploadCutOff(MlflowRegistry):
    """The target as a killed copy leaves it: the first upload sends one file of the run, then the job dies."""

    cut = False

    def upload_artifacts(self, run_id: str, local_dir: Path, artifact_path: str = "") -> None:
        if not self.cut:
            self.cut = True
            first = min(p for p in local_dir.rglob("*") if p.is_file())
            super().upload_artifacts(run_id, first, first.parent.relative_to(local_dir).as_posix())
            raise RemoteError("MLflow", None, self.tracking_uri, "connection lost (simulated)")
        super().upload_artifacts(run_id, local_dir, artifact_path)


@pytest.mark.mlflow
def test_a_copy_cut_off_mid_upload_is_completed_by_the_next(copied: Copy, second_mlflow_server: MlflowServer,
                                                            tmp_path: Path) -> None:
    name = copied.version.name
    number = add_version(copied.source, copied.config, tmp_path, accuracy=0.97)  # no MLmodel: a plain directory
    version = copied.source.get_model_version(name, number)
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "b.txt").write_text("second file\n")
    copied.source.upload_artifacts(version.run_id, tmp_path / "more", "more")
    cut = UploadCutOff(second_mlflow_server.uri, {}, retry=RetryPolicy(**TEST_RETRY))
    try:
        with pytest.raises(RemoteError, match="simulated"):
            copied.again(version, cut)
        experiment = copied.target.get_or_create_experiment(name).experiment_id
        [partial] = [r for r in copied.target.search_runs([experiment])
                     if r.tags[tags.COPIED_RUN].endswith(version.run_id)]
        assert partial.status == "RUNNING" and dict(partial.params) == {"C": "0.97"}
        assert len(copied.target.list_artifacts(partial.run_id)) == 1
        assert [v.version for v in copied.target.search_model_versions(name)] == ["1"]  # no version yet

        done = copied.again(version, cut)
    finally:
        cut.close()
    assert done.copied is True and done.target_run_id == partial.run_id and done.target_version == "2"
    run = copied.target.get_run(partial.run_id)
    assert run.status == "FINISHED"
    assert copied.target.list_artifacts(run.run_id) == copied.source.list_artifacts(version.run_id) == [
        "model/model.txt", "more/b.txt"]
    made = copied.target.get_model_version(name, "2")
    assert made.source == f"{run.artifact_uri}/model"  # no MLmodel: the run's directory, as promote registers it
    assert made.tags[tags.COPIED_FROM].endswith(f"#{name}/{number}")
    assert len(_runs(copied.target, name)) == 2


class VersionCutOff(MlflowRegistry):
    """The target as a copy killed after its run was FINISHED leaves it: the version create never arrives."""

    cut = False
    uploads = 0

    def upload_artifacts(self, run_id: str, local_dir: Path, artifact_path: str = "") -> None:
        self.uploads += 1
        super().upload_artifacts(run_id, local_dir, artifact_path)

    def create_model_version(self, *args: Any, **kwargs: Any) -> ModelVersion:
        if not self.cut:
            self.cut = True
            raise RemoteError("MLflow", None, self.tracking_uri, "connection lost (simulated)")
        return super().create_model_version(*args, **kwargs)


@pytest.mark.mlflow
def test_a_copy_cut_off_before_its_version_registers_the_finished_run_without_uploading_again(
        copied: Copy, second_mlflow_server: MlflowServer, tmp_path: Path) -> None:
    name = copied.version.name
    version = copied.source.get_model_version(name, add_version(copied.source, copied.config, tmp_path, 0.98))
    cut = VersionCutOff(second_mlflow_server.uri, {}, retry=RetryPolicy(**TEST_RETRY))
    try:
        with pytest.raises(RemoteError, match="simulated"):
            copied.again(version, cut)
        versions = {v.version for v in copied.target.search_model_versions(name)}
        done = copied.again(version, cut)
    finally:
        cut.close()
    assert cut.uploads == 1 and done.copied is True
    assert copied.target.get_run(done.target_run_id).status == "FINISHED"
    assert {v.version for v in copied.target.search_model_versions(name)} == versions | {done.target_version}


@pytest.mark.mlflow
def test_the_sources_own_server_is_refused_by_any_url(copied: Copy, mlflow_server: MlflowServer) -> None:
    before = _runs(copied.source, copied.version.name)
    for same in (mlflow_server.uri + "/", mlflow_server.uri.replace("127.0.0.1", "localhost"), "local", " LOCAL "):
        with pytest.raises(UsageError, match="--to-registry"):
            open_target(same, copied.config.root, {}, mlflow_server.uri)
    proxy = ForwardingProxy(mlflow_server.uri, lambda method, path, headers: None)  # another URL, the same store
    try:
        other = open_target(proxy.uri, copied.config.root, {}, mlflow_server.uri)
        try:
            with pytest.raises(UsageError, match="serves this project's own tracking store"):
                copied.again(target=other)
        finally:
            other.close()
    finally:
        proxy.stop()
    assert _runs(copied.source, copied.version.name) == before  # nothing was copied onto the source


@pytest.mark.mlflow
def test_an_unreachable_target_is_named_without_its_credentials(copied: Copy) -> None:
    port = free_port()
    fast = RetryPolicy(total_seconds=0.5, initial_wait=0.01, max_wait=0.05, retry_after_cap=0.1, timeout=2.0)
    target = MlflowRegistry(f"http://copier:PASSCANARY@127.0.0.1:{port}", {}, retry=fast)
    try:
        with pytest.raises(RemoteError) as caught:
            copied.again(target=target)
    finally:
        target.close()
    message = str(caught.value)
    assert f"MLflow: no answer from http://127.0.0.1:{port}/api/2.0/mlflow/" in message, message
    assert "could not connect" in message and "PASSCANARY" not in message
