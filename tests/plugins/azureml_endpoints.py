"""The stand-in for Azure Resource Manager's Machine Learning online endpoints (tests/servers/azureml_endpoints.py):
a fresh one per test (its state is the endpoint under test), started in a few milliseconds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers.azureml_endpoints import AzureEndpointsServer, start


@pytest.fixture
def azureml_endpoints() -> Iterator[AzureEndpointsServer]:
    server = start()
    try:
        yield server
    finally:
        server.stop()
