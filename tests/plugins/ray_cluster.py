"""Session fixtures for `backend: ray` (issue 21): one real Ray head on 127.0.0.1 per test session
(tests/helpers/ray_cluster.py), started on first use and stopped at the end, every one of its processes with it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import ray_cluster as ray_helper


@pytest.fixture(scope="session")
def ray_cluster_session() -> Iterator[ray_helper.RayCluster]:
    _installed()
    cluster = ray_helper.start("ray-tests")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def ray_cluster(ray_cluster_session: ray_helper.RayCluster) -> ray_helper.RayCluster:
    """The session's cluster (`.address` is the Jobs API a step's backend.address names)."""
    assert not ray_cluster_session.stopped
    return ray_cluster_session


@pytest.fixture
def throwaway_ray_cluster() -> Iterator[ray_helper.RayCluster]:
    """A cluster of this test's own, for the faults that take a cluster down."""
    _installed()
    cluster = ray_helper.start("ray-gone")
    try:
        yield cluster
    finally:
        cluster.stop()


def _installed() -> None:
    if not (ray_helper.BIN / "ray").exists():
        pytest.skip("ray[default] is not installed here: pip install 'mlops-bot[ray]'")
