"""The real Prometheus for the scrape tests: started once per session (only when a test asks for it), each test's
watched file_sd files dropped from its configuration again at the test's teardown."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.prometheus import Prometheus


@pytest.fixture(scope="session")
def prometheus_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    server = Prometheus.start(tmp_path_factory.mktemp("prometheus"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def prometheus(prometheus_session: Prometheus) -> Iterator[Prometheus]:
    """The session's Prometheus; what this test watches is unwatched when it ends."""
    before = list(prometheus_session.watched)
    yield prometheus_session
    prometheus_session.unwatch(*(path for path in prometheus_session.watched if path not in before))
