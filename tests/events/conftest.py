"""Real parts for the event tests: projects on the embedded registry (or the mlflow server) with `on:` rules
and versions to deploy, signed webhook requests as MLflow, GitHub and GitLab send them, and `mlops-bot serve`
started as a subprocess on 127.0.0.1. The builders are in tests/helpers (event_projects, registries, webhooks, serve,
receivers); the fixtures here start and stop what a test asks for."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.receivers import RecordingReceiver
from tests.helpers.serve import Served, start_serve


@pytest.fixture
def serve(request: pytest.FixtureRequest) -> Iterator[Callable[..., Served]]:
    """`serve(root, env=..., workers=...)`: starts `mlops-bot serve`; stopped (or killed) at teardown."""
    started: list[Served] = []

    def make(root: Path, **options: Any) -> Served:
        served = start_serve(root, **options)
        started.append(served)
        return served

    yield make
    for served in started:
        if served.process.poll() is None:
            served.kill()
        served.client.close()


@pytest.fixture
def receiver() -> Iterator[RecordingReceiver]:
    found = RecordingReceiver()
    yield found
    found.close()
