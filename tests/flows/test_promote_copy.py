"""`mlops-bot promote --to-registry URI` from the command line, between two real `mlflow server`s: which version
is copied, what is printed (the log line, --json), a second call copying nothing, and the refusals a user meets
(no such version, no holder of the alias, `local`, the project's own server, a token the target refuses, a
version without a run), each with its exit code and a message that says what to do."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from mlops_bot import cli
from mlops_bot.config.model import Config
from mlops_bot.registry.mlflow.client import MlflowRegistry
from mlops_bot.registry.mlflow.http import RetryPolicy
from tests.helpers.projects import write_project
from tests.helpers.registries import TEST_RETRY, add_version
from tests.servers.forwarding import ForwardingProxy
from tests.servers.mlflow_server import MlflowServer

pytestmark = pytest.mark.mlflow
SOURCE_TOKEN = "SOURCECANARY"
WRONG_TOKEN = "WRONGCANARY"
RIGHT_TOKEN = "right-token"


@pytest.fixture
def source(mlflow_server: MlflowServer, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Config, MlflowRegistry]]:
    """A project on the first server with two versions of its model, v2 the champion; no MLflow variable set
    but the source's token (which the first server ignores and the target must never see)."""
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME",
                 "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN_COMMAND"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", SOURCE_TOKEN)
    config = write_project(tmp_path / "project", f"copy-{tmp_path.name}"[-60:], mlflow_server.uri, deploy="")
    registry = MlflowRegistry(mlflow_server.uri, {}, retry=RetryPolicy(**TEST_RETRY))
    add_version(registry, config, tmp_path, accuracy=0.91)
    registry.set_alias(config.model.name, "champion", add_version(registry, config, tmp_path, accuracy=0.93))
    yield config, registry
    registry.close()


def bot(config: Config, *args: str) -> int:
    return cli.main(["-C", str(config.root), "promote", *args])


def copied(capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, object], str]:
    out, err = capsys.readouterr()
    document: dict[str, object] = json.loads(out)
    return document, err


def test_the_champion_is_copied_once_and_a_named_version_on_request(
        source: tuple[Config, MlflowRegistry], mlflow_server: MlflowServer, second_mlflow_server: MlflowServer,
        capsys: pytest.CaptureFixture[str]) -> None:
    config, _ = source
    model, target = config.model.name, second_mlflow_server.uri
    assert bot(config, "--to-registry", target, "--json") == 0
    document, err = copied(capsys)
    assert document == {"model": model, "version": "2", "target_uri": target, "target_version": "1", "copied": True}
    assert f"copied {model} v2 from {mlflow_server.uri} to {target} as v1" in err

    assert bot(config, "--to-registry", target + "/", "--json") == 0
    document, err = copied(capsys)
    assert (document["copied"], document["target_version"]) == (False, "1")
    assert f"{model} v2 already copied to {target} as v1" in err

    assert bot(config, "--to-registry", target, "--version", "v1", "--json") == 0
    document, _ = copied(capsys)
    assert (document["version"], document["target_version"], document["copied"]) == ("1", "2", True)
    landed = MlflowRegistry(target, {}, retry=RetryPolicy(**TEST_RETRY))
    try:
        versions = {v.version: v for v in landed.search_model_versions(model)}
    finally:
        landed.close()
    assert sorted(versions) == ["1", "2"]
    assert versions["1"].tags["mlops_bot.copied_from"] == f"{mlflow_server.uri}#{model}/2"
    assert versions["2"].tags["mlops_bot.copied_from"] == f"{mlflow_server.uri}#{model}/1"


def test_which_version_when_none_is_named_or_held(source: tuple[Config, MlflowRegistry],
                                                  second_mlflow_server: MlflowServer,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    config, registry = source
    target = second_mlflow_server.uri
    assert bot(config, "--to-registry", target, "--version", "9") == 2
    assert f"--version 9: {config.model.name} has no version 9" in capsys.readouterr().err
    assert bot(config, "--to-registry", target, "--stage", "production") == 2
    assert "no version of" in (err := capsys.readouterr().err) and "'production' (--stage)" in err
    registry.delete_alias(config.model.name, "champion")
    assert bot(config, "--to-registry", target) == 2
    assert "'champion' (promote.alias)" in (err := capsys.readouterr().err) and "give --version N" in err


def test_local_and_the_projects_own_server_are_refused(source: tuple[Config, MlflowRegistry],
                                                       mlflow_server: MlflowServer,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    config, _ = source
    assert bot(config, "--to-registry", "local") == 2
    assert "'local' is this machine's embedded store" in capsys.readouterr().err
    assert bot(config, "--to-registry", mlflow_server.uri.replace("127.0.0.1", "localhost") + "/") == 2
    assert "is this project's own tracking server" in capsys.readouterr().err
    assert bot(config, "--to-registry", "sqlite:///elsewhere.db") == 2
    assert "--to-registry: tracking URI 'sqlite:///elsewhere.db' is not supported" in capsys.readouterr().err
    assert bot(config, "--to-registry", "http://prod.invalid", "--run", "abc") == 2
    assert "--run does not apply" in capsys.readouterr().err


class Gateway:
    """The second server behind a front end that takes only `Bearer right-token`, recording what it was sent."""

    def __init__(self, upstream: str) -> None:
        self.seen: set[str] = set()
        self.proxy = ForwardingProxy(upstream, self._intercept, drop_headers=("host", "authorization"))
        self.uri = self.proxy.uri

    def _intercept(self, method: str, path: str, headers: Mapping[str, str]) -> tuple[int, bytes, str] | None:
        self.seen.add(headers.get("Authorization", ""))
        if headers.get("Authorization") != f"Bearer {RIGHT_TOKEN}":
            return 401, b'{"error_code": "UNAUTHENTICATED", "message": "invalid token"}', "application/json"
        return None


@pytest.fixture
def gateway(second_mlflow_server: MlflowServer) -> Iterator[Gateway]:
    started = Gateway(second_mlflow_server.uri)
    yield started
    started.proxy.stop()


def test_the_target_gets_its_own_token_and_a_refusal_says_which_variable(
        source: tuple[Config, MlflowRegistry], gateway: Gateway, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    config, _ = source
    monkeypatch.setenv("MLOPS_BOT_TARGET_TRACKING_TOKEN", WRONG_TOKEN)
    assert bot(config, "--to-registry", gateway.uri) == 3
    err = capsys.readouterr().err
    assert f"MLflow: HTTP 401 from {gateway.uri}/api/2.0/mlflow/" in err and "invalid token" in err
    assert "check MLOPS_BOT_TARGET_TRACKING_TOKEN or MLOPS_BOT_TARGET_TRACKING_USERNAME" in err
    assert WRONG_TOKEN not in err and SOURCE_TOKEN not in err, err
    assert gateway.seen == {f"Bearer {WRONG_TOKEN}"}  # the source's token never went to the target

    monkeypatch.setenv("MLOPS_BOT_TARGET_TRACKING_TOKEN", RIGHT_TOKEN)
    assert bot(config, "--to-registry", gateway.uri, "--json") == 0
    document, _ = copied(capsys)
    assert (document["copied"], document["target_uri"]) == (True, gateway.uri)
    assert SOURCE_TOKEN not in " ".join(gateway.seen)


def test_credentials_in_the_target_url_are_never_shown(source: tuple[Config, MlflowRegistry], gateway: Gateway,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    config, _ = source
    address = gateway.uri.removeprefix("http://")
    assert bot(config, "--to-registry", f"http://copier:URLCANARY@{address}") == 3
    err = capsys.readouterr().err
    assert f"HTTP 401 from {gateway.uri}/api/2.0/mlflow/" in err and "URLCANARY" not in err


def test_a_version_without_a_run_is_a_data_error(source: tuple[Config, MlflowRegistry],
                                                 second_mlflow_server: MlflowServer,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    config, registry = source
    bare = registry.create_model_version(config.model.name, "s3://models/bucket/model", "")
    assert bot(config, "--to-registry", second_mlflow_server.uri, "--version", bare.version) == 3
    err = capsys.readouterr().err
    assert f"{config.model.name} v{bare.version} was registered without a run (source s3://models/bucket/model)" in err
