"""Artifact-store setups: an `mlflow server --no-serve-artifacts` in front of a real store emulator (moto for S3,
Azurite for Azure Blob, gcp-storage-emulator for GCS) or a shared directory (file://). Each is started once per
session, only when a test asks for it; `store_setup` is parametrized over all four. A setup that cannot start
FAILS the test with the reason (a missing tool names the command that installs it); it never skips."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.servers.stores import STARTERS, StoreSetup

STORE_KINDS = ("s3", "azure", "gcs", "file")


def _started(kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreSetup]:
    start: Callable[..., StoreSetup] = STARTERS[kind]
    try:
        setup = start(tmp_path_factory.mktemp(f"store-{kind}"))
    except RuntimeError as error:
        pytest.fail(f"the {kind} setup did not start: {error}", pytrace=False)
    try:
        yield setup
    finally:
        setup.stop()


@pytest.fixture(scope="session")
def s3_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreSetup]:
    """moto (S3, server mode) and an mlflow server with --default-artifact-root s3://mlflow-artifacts/."""
    yield from _started("s3", tmp_path_factory)


@pytest.fixture(scope="session")
def azure_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreSetup]:
    """Azurite (Blob) and an mlflow server with --default-artifact-root wasbs://mlflow-artifacts@devstoreaccount1..."""
    yield from _started("azure", tmp_path_factory)


@pytest.fixture(scope="session")
def gcs_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreSetup]:
    """gcp-storage-emulator and an mlflow server with --default-artifact-root gs://mlflow-artifacts/."""
    yield from _started("gcs", tmp_path_factory)


@pytest.fixture(scope="session")
def file_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreSetup]:
    """An mlflow server with --default-artifact-root file:///<tmp>/shared (a directory the bot writes directly)."""
    yield from _started("file", tmp_path_factory)


@pytest.fixture(params=STORE_KINDS)
def store_setup(request: pytest.FixtureRequest) -> StoreSetup:
    """Each setup in turn (test ids: s3, azure, gcs, file)."""
    setup: StoreSetup = request.getfixturevalue(f"{request.param}_setup")
    return setup
