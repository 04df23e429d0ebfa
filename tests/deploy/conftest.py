"""Real parts for the deploy tests: a bare git repository on disk with a seeded KServe manifest, an HTTP
receiver on 127.0.0.1 that checks signatures, and an embedded registry holding three model versions. The
builders behind them are in tests/helpers (deploy, gitops, receivers)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_bot.registry.local.store import LocalRegistry
from tests.helpers.deploy import SECRET, seed_versions
from tests.helpers.gitops import Remote
from tests.helpers.receivers import ScriptedReceiver


@pytest.fixture(autouse=True)
def isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No global or system git configuration (no identity: the bot's own is used)."""
    config = tmp_path / "gitconfig"
    config.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    return Remote.create(tmp_path)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalRegistry]:
    registry = LocalRegistry(tmp_path / "project" / ".mlops-bot")
    seed_versions(registry)
    try:
        yield registry
    finally:
        registry.close()


@pytest.fixture
def receiver() -> Iterator[ScriptedReceiver]:
    state = ScriptedReceiver(SECRET).start()
    try:
        yield state
    finally:
        state.close()
