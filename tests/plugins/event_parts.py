"""Fixtures of the event and service tests, a plugin of tests/conftest.py: `mlops-bot serve` started as a
subprocess on 127.0.0.1 (`serve`) and an HTTP endpoint recording what it is sent (`receiver`). The builders
(projects with `on:` rules, signed webhook requests) are in tests/helpers."""

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
