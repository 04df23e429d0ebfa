"""The GitLab MLflow API stand-in (tests/servers/gitlab_mlflow.py), started once per session when a test asks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers.gitlab_mlflow import GitLabMlflowServer, start


@pytest.fixture(scope="session")
def gitlab_mlflow() -> Iterator[GitLabMlflowServer]:
    server = start()
    try:
        yield server
    finally:
        server.stop()
