"""Fixtures for tests that talk to a forge: the local GitHub and GitLab servers (no contract violation may be left
at teardown) and an environment without the CI variables of the machine running the tests. Used by tests/forges
and tests/flows; the CI environments themselves are built by tests/helpers/ci_env.py."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.helpers.ci_env import APP_TOKEN, CI_PREFIXES, CI_TOKENS, GITLAB_TOKEN, HEAD_SHA, REPO
from tests.servers.github_server import GitHubServer
from tests.servers.gitlab_server import GitLabServer


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CI variable of the machine running the tests leaks into them."""
    for name in list(os.environ):
        if name.startswith(CI_PREFIXES) or name in CI_TOKENS:
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def github() -> Iterator[GitHubServer]:
    server = GitHubServer(REPO).start()
    server.add_account(APP_TOKEN, "github-actions[bot]", kind="installation")
    server.add_pull(2, HEAD_SHA)
    yield server
    server.stop()
    assert server.violations == [], "the bot broke GitHub's contract"


@pytest.fixture
def gitlab() -> Iterator[GitLabServer]:
    server = GitLabServer("group/project", 42).start()
    server.add_account(GITLAB_TOKEN, "project_42_bot_1")
    server.add_merge_request(7)
    yield server
    server.stop()
    assert server.violations == [], "the bot called GitLab in a way its docs do not describe"
