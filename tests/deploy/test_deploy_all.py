"""deploy_all with the embedded registry: results recorded as tags, re-runs idempotent, failures retried."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from mlops_bot.config.model import DeployTarget
from mlops_bot.deploy import DeployFailed, DeployOptions, deploy_all, raise_for_failures
from mlops_bot.deploy.base import first_key
from mlops_bot.errors import UsageError
from mlops_bot.registry import tags as names
from mlops_bot.registry.base import Registry
from mlops_bot.registry.local.store import LocalRegistry
from mlops_bot.registry.tags import deploy_tag as tag
from tests.helpers.deploy import MODEL, SECRET, make_config, seed_versions
from tests.helpers.gitops import Remote
from tests.helpers.receivers import ScriptedReceiver as Receiver


@pytest.fixture(autouse=True)
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", SECRET)


def targets(tmp_path: Path, receiver: Receiver, remote: Remote, cmd: str = "echo $MODEL_VERSION >> runs.txt") \
        -> list[DeployTarget]:
    return [
        DeployTarget("run", "command", cmd=cmd),
        DeployTarget("hook", "webhook", url=receiver.url, secret_env="HOOK_SECRET"),
        DeployTarget("prod", "gitops", file="deploy/inference.yaml", repo=str(remote.bare),
                     set={"spec.predictor.model.storageUri": "{model_uri}"}),
    ]


def quiet(_: str) -> None:
    pass


def deployed_uri(remote: Remote) -> str:
    return str(yaml.safe_load(remote.show("main"))["spec"]["predictor"]["model"]["storageUri"])


def test_results_are_recorded_on_the_version_and_a_rerun_does_nothing(tmp_path: Path, store: LocalRegistry,
                                                                       receiver: Receiver, remote: Remote) -> None:
    config = make_config(tmp_path, *targets(tmp_path, receiver, remote))
    results = deploy_all(config, store, "3", DeployOptions(echo=quiet))
    assert [r.status for r in results] == ["succeeded"] * 3
    tags = store.get_model_version(MODEL, "3").tags
    for result in results:
        assert tags[names.deploy_status(result.target)] == "succeeded"  # the names gate/status read
        assert tags[tag(result.target, "key")] == result.key == first_key(MODEL, "3", result.target)
        assert tags[tag(result.target, "at")].endswith("Z")
        assert tags[names.deploy_detail(result.target)] == result.detail
    assert tags[tag("prod", "commit")] == remote.head()
    commits = remote.count()
    again = deploy_all(config, store, "3", DeployOptions(echo=quiet))
    assert [r.status for r in again] == ["skipped"] * 3
    assert (tmp_path / "runs.txt").read_text() == "3\n"
    assert len(receiver.deliveries) == 1 and remote.count() == commits
    raise_for_failures(again)  # nothing failed: no exception


def test_a_failed_target_does_not_stop_the_others_and_a_rerun_retries_it(tmp_path: Path, store: LocalRegistry,
                                                                          receiver: Receiver, remote: Remote) -> None:
    config = make_config(tmp_path, *targets(tmp_path, receiver, remote, cmd="test -e ready || exit 4"))
    results = deploy_all(config, store, "3", DeployOptions(echo=quiet))
    assert [r.status for r in results] == ["failed", "succeeded", "succeeded"]
    assert store.get_model_version(MODEL, "3").tags[tag("run", "status")] == "failed"
    with pytest.raises(DeployFailed) as caught:
        raise_for_failures(results)
    assert caught.value.exit_code == 3 and "run: deploy command exited with 4" in str(caught.value)
    (tmp_path / "ready").touch()
    retried = deploy_all(config, store, "3", DeployOptions(echo=quiet))
    assert [r.status for r in retried] == ["succeeded", "skipped", "skipped"]
    assert retried[0].key == results[0].key
    assert store.get_model_version(MODEL, "3").tags[tag("run", "status")] == "succeeded"


def test_going_back_to_an_earlier_version_redeploys_it_under_a_new_key(tmp_path: Path, store: LocalRegistry,
                                                                       receiver: Receiver, remote: Remote) -> None:
    config = make_config(tmp_path, *targets(tmp_path, receiver, remote)[1:])
    first = deploy_all(config, store, "3", DeployOptions(echo=quiet))
    deploy_all(config, store, "2", DeployOptions(echo=quiet))
    assert deployed_uri(remote) == f"models:/{MODEL}/2"
    back = deploy_all(config, store, "3", DeployOptions(echo=quiet))  # a rollback to v3
    assert [r.status for r in back] == ["succeeded", "succeeded"]
    assert deployed_uri(remote) == f"models:/{MODEL}/3"
    assert back[0].key != first[0].key and receiver.keys()[-1] == back[0].key
    assert [r.status for r in deploy_all(config, store, "3", DeployOptions(echo=quiet))] == ["skipped", "skipped"]
    forced = deploy_all(config, store, "3", DeployOptions(force=True, echo=quiet))
    assert forced[0].status == "succeeded" and forced[1].detail.startswith("already deployed")
    assert len(set(receiver.keys())) == 4  # 3, 2, 3 again, 3 forced: four deployments


def test_targets_can_be_chosen_by_name(tmp_path: Path, store: LocalRegistry, receiver: Receiver,
                                       remote: Remote) -> None:
    config = make_config(tmp_path, *targets(tmp_path, receiver, remote))
    assert [r.target for r in deploy_all(config, store, 3, DeployOptions(targets=["hook"], echo=quiet))] == ["hook"]
    assert tag("prod", "status") not in store.get_model_version(MODEL, "3").tags
    with pytest.raises(UsageError, match=r"--target nope: no such deploy target in ml\.yaml \(it has: run, hook, "):
        deploy_all(config, store, "3", DeployOptions(targets=["nope"], echo=quiet))


def test_results_serialise_for_json(tmp_path: Path, store: LocalRegistry, receiver: Receiver,
                                    remote: Remote) -> None:
    config = make_config(tmp_path, *targets(tmp_path, receiver, remote)[2:])
    [result] = deploy_all(config, store, "3", DeployOptions(echo=quiet))
    doc = json.loads(json.dumps(result.as_json()))
    assert doc == {"target": "prod", "type": "gitops", "status": "succeeded", "detail": result.detail,
                   "url": None, "commit": remote.head(), "idempotency_key": result.key}


def test_a_deploy_killed_after_its_push_converges_without_a_second_commit(tmp_path: Path, store: LocalRegistry,
                                                                          receiver: Receiver, remote: Remote) -> None:
    config = make_config(tmp_path, *targets(tmp_path, receiver, remote)[2:])
    [first] = deploy_all(config, store, "3", DeployOptions(echo=quiet))
    # What a kill between the push and the final record leaves behind:
    store.set_model_version_tag(MODEL, "3", tag("prod", "status"), "running")
    commits = remote.count()
    [again] = deploy_all(config, store, "3", DeployOptions(echo=quiet))
    assert again.status == "succeeded" and again.detail.startswith("already deployed") and again.key == first.key
    assert remote.count() == commits
    assert store.get_model_version(MODEL, "3").tags[tag("prod", "status")] == "succeeded"


@pytest.mark.parametrize("kind", ["local", pytest.param("mlflow", marks=pytest.mark.mlflow)])
def test_the_record_works_on_each_registry(kind: str, tmp_path: Path, receiver: Receiver, remote: Remote,
                                           registry_factory: Callable[..., Registry],
                                           unique: Callable[[str], str]) -> None:
    registry, model = registry_factory(kind), unique("deploy-model")
    seed_versions(registry, 2, model)
    config = make_config(tmp_path, *targets(tmp_path, receiver, remote)[1:], model=model)
    quietly = DeployOptions(echo=quiet)
    assert [r.status for r in deploy_all(config, registry, "2", quietly)] == ["succeeded", "succeeded"]
    assert [r.status for r in deploy_all(config, registry, "1", quietly)] == ["succeeded", "succeeded"]
    back = deploy_all(config, registry, "2", quietly)  # found newer deploys of v1 through version search
    assert [r.status for r in back] == ["succeeded", "succeeded"]
    assert [r.status for r in deploy_all(config, registry, "2", quietly)] == ["skipped", "skipped"]
    assert registry.get_model_version(model, "2").tags[tag("prod", "commit")] == remote.head()
