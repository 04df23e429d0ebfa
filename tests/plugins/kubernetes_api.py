"""The stand-in for the Kubernetes API server (tests/servers/kubernetes_api.py) with its kubelet: a fresh one per
test (its state is the cluster under test), started in milliseconds; its containers are stopped at teardown and no
contract violation may be left. `kubeconfig` writes a kubeconfig whose context reaches it with its token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.servers.kubernetes_api import TOKEN, KubernetesApiServer, start


@pytest.fixture
def kubernetes_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubernetesApiServer]:
    server = start(tmp_path_factory.mktemp("kubernetes"))
    try:
        yield server
    finally:
        server.stop()
    assert server.violations == [], "the bot broke the Kubernetes API's contract"


def write_kubeconfig(path: Path, server: str, token: str = TOKEN, namespace: str = "ml") -> Path:
    """A kubeconfig with one context (`standin`) for `server`, authenticating with `token`."""
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "standin",
        "clusters": [{"name": "standin", "cluster": {"server": server}}],
        "users": [{"name": "bot", "user": {"token": token}}],
        "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "bot", "namespace": namespace}}]}))
    return path
