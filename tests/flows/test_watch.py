"""`mlops-bot watch --once` against the real mlflow server: the first poll sets the cursor; the next sees the
finished run, the new version and the champion alias moved since, and feeds them to the `on:` rules; a
poll repeated from the same cursor (a crash before it was saved) handles nothing twice."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_bot import cli
from mlops_bot.registry.base import Registry
from tests.helpers.event_projects import write_project
from tests.helpers.projects import deployed
from tests.helpers.registries import add_version
from tests.servers.mlflow_server import MlflowServer

pytestmark = pytest.mark.mlflow


def watch_once(root: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    capsys.readouterr()
    assert cli.main(["-C", str(root), "watch", "--once", "--json"]) == 0
    found: list[dict[str, object]] = json.loads(capsys.readouterr().out)
    return found


def test_watch_sees_a_new_version_and_an_alias_move_since_its_cursor(
        tmp_path: Path, mlflow_server: MlflowServer, registry_factory: Callable[..., Registry],
        unique: Callable[[str], str], capsys: pytest.CaptureFixture[str]) -> None:
    config = write_project(tmp_path / "p", model=unique("watched"), uri=mlflow_server.uri)
    registry = registry_factory("mlflow")
    assert watch_once(config.root, capsys) == []  # the first poll only sets the cursor
    cursor = config.root / ".mlops-bot" / "events" / "watch.cursor"
    shutil.copy(cursor, tmp_path / "cursor-before")
    version = add_version(registry, config, tmp_path)
    registry.set_alias(config.model.name, "champion", version)

    found = watch_once(config.root, capsys)
    kinds = {(e["type"], e["subject"]) for e in found}
    assert ("model_version.created", f"models/{config.model.name}/versions/{version}") in kinds
    assert ("model_version.alias_set", f"models/{config.model.name}/versions/{version}") in kinds
    assert "run.finished" in {e["type"] for e in found}
    assert all(e["source"] == "watch" for e in found)
    assert deployed(config.root) == [version]  # the champion rule ran on the polled alias move

    assert watch_once(config.root, capsys) == []  # nothing new since
    shutil.copy(tmp_path / "cursor-before", cursor)  # as if the process died before saving the cursor
    assert watch_once(config.root, capsys) == []  # the same changes again: the same ids, already spooled
    assert deployed(config.root) == [version]
