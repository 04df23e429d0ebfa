"""Session fixtures for `serve`/`watch` replicas on PostgreSQL (issue 21): one real PostgreSQL server per
test session (tests/helpers/postgres.py), started on first use, stopped at the end; a fresh database per test.
Tests needing it are marked `postgres` (registered here) and skip with the reason when the binaries are absent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import postgres


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgres: needs the real PostgreSQL server (started once per session)")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[postgres.PostgresServer]:
    missing = postgres.available()
    if missing:
        pytest.skip(missing)
    server = postgres.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def spool_url(postgres_server: postgres.PostgresServer) -> str:
    """A fresh database of the session's server, as MLOPS_BOT_SPOOL_URL names it."""
    return postgres_server.fresh_database()
