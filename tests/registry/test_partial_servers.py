"""Servers that are MLflow in part: what they lack is learned from how they answer, and the bot takes the
fallback it has; what they answer differently is translated. A proxy in front of the real `mlflow server`
answers some routes with a web server's HTML 404 page (a reverse proxy that forwards only part of the API);
the GitLab stand-in answers timestamps in seconds."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Mapping

import pytest

from mlops_bot.registry.base import Registry
from mlops_bot.registry.mlflow.client import MlflowRegistry
from mlops_bot.registry.mlflow.http import RetryPolicy
from tests.servers.forwarding import ForwardingProxy
from tests.servers.mlflow_server import MlflowServer

FAST = RetryPolicy(total_seconds=2.0, initial_wait=0.01, max_wait=0.1, retry_after_cap=0.1, timeout=30.0)
NGINX_404 = (b"<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1>"
             b"</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
NOT_FORWARDED = ("/registered-models/alias", "/model-versions/search")


class PartialProxy:
    """Forwards to the mlflow server, except the routes in NOT_FORWARDED: an HTML 404 page for those."""

    def __init__(self, upstream: str) -> None:
        self.blocked = 0
        self.proxy = ForwardingProxy(upstream, self._intercept)
        self.uri = self.proxy.uri

    def _intercept(self, method: str, path: str, headers: Mapping[str, str]) -> tuple[int, bytes, str] | None:
        if any(path.split("?")[0].endswith(route) for route in NOT_FORWARDED):
            self.blocked += 1
            return 404, NGINX_404, "text/html"
        return None


@pytest.fixture
def partial(mlflow_server: MlflowServer) -> Iterator[PartialProxy]:
    proxy = PartialProxy(mlflow_server.uri)
    yield proxy
    proxy.proxy.stop()


@pytest.mark.mlflow
def test_routes_answered_with_an_html_404_page_are_learned_as_missing(partial: PartialProxy) -> None:
    registry = MlflowRegistry(partial.uri, {}, retry=FAST)
    try:
        name = f"partial-{uuid.uuid4().hex[:8]}"
        experiment = registry.get_or_create_experiment(name)
        run = registry.create_run(experiment.experiment_id)
        registry.update_run(run.run_id, "FINISHED")
        registry.get_or_create_registered_model(name)
        first = registry.create_model_version(name, f"runs:/{run.run_id}/model", run.run_id)
        second = registry.create_model_version(name, f"runs:/{run.run_id}/other", run.run_id)
        registry.set_alias(name, "champion", first.version)
        registry.set_alias(name, "champion", second.version)  # moved: the fallback keeps one holder
        capabilities = registry.capabilities
        assert (capabilities.aliases, capabilities.version_search) == (False, False)
        holder = registry.get_version_by_alias(name, "champion")
        assert holder is not None and holder.version == second.version
        assert sorted(v.version for v in registry.search_model_versions(name)) == [first.version, second.version]
        assert registry.get_registered_model(name).aliases == {"champion": second.version}
    finally:
        registry.close()
    assert partial.blocked >= 2


@pytest.mark.slow
def test_a_server_that_answers_seconds_is_read_in_milliseconds(registry_factory: Callable[..., Registry]) -> None:
    registry = registry_factory("gitlab")  # GitLab's entities answer start_time and end_time in seconds
    experiment = registry.get_or_create_experiment(f"seconds-{uuid.uuid4().hex[:8]}")
    before = time.time_ns() // 1_000_000
    run = registry.create_run(experiment.experiment_id)
    registry.update_run(run.run_id, "FINISHED")
    got = registry.get_run(run.run_id)
    after = time.time_ns() // 1_000_000
    assert before - 2_000 <= got.start_time <= after + 2_000  # ms, to the second GitLab keeps
    assert got.end_time is not None and before - 2_000 <= got.end_time <= after + 2_000
