"""Capability detection and the tag fallbacks, against the real server with parts of its API hidden the
way a partial MLflow implementation (GitLab's model registry) lacks them."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from mlops_bot.registry.base import Capabilities, Registry
from mlops_bot.registry.tags import alias_tag

pytestmark = pytest.mark.mlflow

Names = Callable[[str], str]


class Hiding(httpx.BaseTransport):
    """Answers the hidden endpoints like a server that never heard of them (an HTML 404 page)."""

    def __init__(self, *hidden: str) -> None:
        self.inner = httpx.HTTPTransport()
        self.hidden = hidden
        self.refused: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if any(request.url.path.endswith(endpoint) for endpoint in self.hidden):
            self.refused.append(request.url.path)
            return httpx.Response(404, headers={"content-type": "text/html"},
                                  text="<!doctype html><title>404 Not Found</title><h1>Not Found</h1>")
        return self.inner.handle_request(request)


def versions(registry: Registry, name: str, count: int) -> None:
    exp = registry.get_or_create_experiment(name)
    run = registry.create_run(exp.experiment_id)
    registry.get_or_create_registered_model(name)
    for index in range(count):
        registry.create_model_version(name, f"runs:/{run.run_id}/m{index}", run.run_id)


def test_capabilities_of_the_real_server_are_all_there(registry_factory: Callable[..., Registry]) -> None:
    assert registry_factory("mlflow").capabilities == Capabilities(True, True, True)


def test_missing_endpoints_are_detected_and_emulated(registry_factory: Callable[..., Registry],
                                                     unique: Names) -> None:
    transport = Hiding("registered-models/alias", "model-versions/search")
    partial = registry_factory("mlflow", transport=transport)
    native = registry_factory("mlflow")
    name = unique("gitlab-like")
    versions(partial, name, 3)
    assert partial.capabilities == Capabilities(aliases=False, version_search=False, artifacts=True)
    assert [v.version for v in partial.search_model_versions(name)] == ["3", "2", "1"]
    again = partial.create_model_version(name, native.get_model_version(name, "2").source,
                                         native.get_model_version(name, "2").run_id)
    assert again.version == "2"  # idempotent without version search too
    partial.set_alias(name, "champion", "1")
    partial.set_alias(name, "champion", "3")
    champion = partial.get_version_by_alias(name, "champion")
    assert champion is not None and champion.version == "3" and champion.aliases == ("champion",)
    assert alias_tag("champion") not in champion.tags  # the emulation does not show
    # What the server really holds: a tag on version 3 only, no native alias.
    assert native.get_registered_model(name).aliases == {}
    assert alias_tag("champion") in native.get_model_version(name, "3").tags
    assert alias_tag("champion") not in native.get_model_version(name, "1").tags
    partial.delete_alias(name, "champion")
    assert partial.get_version_by_alias(name, "champion") is None
    assert len(transport.refused) == 2  # probed once each, then never asked again


def test_a_crash_between_set_and_clear_resolves_to_the_newest(registry_factory: Callable[..., Registry],
                                                              unique: Names) -> None:
    fallback = registry_factory("mlflow-tag-aliases")
    native = registry_factory("mlflow")
    name = unique("crashy")
    versions(native, name, 2)
    native.set_model_version_tag(name, "1", alias_tag("champion"), "1000")
    native.set_model_version_tag(name, "2", alias_tag("champion"), "2000")
    champion = fallback.get_version_by_alias(name, "champion")
    assert champion is not None and champion.version == "2"
    assert fallback.get_registered_model(name).aliases == {"champion": "2"}
    fallback.set_alias(name, "champion", "1")  # a move also clears the stale holder
    assert alias_tag("champion") not in native.get_model_version(name, "2").tags


def test_without_delete_tag_an_empty_value_unsets(registry_factory: Callable[..., Registry],
                                                  unique: Names) -> None:
    partial = registry_factory("mlflow", transport=Hiding("registered-models/alias", "model-versions/delete-tag"))
    native = registry_factory("mlflow")
    name = unique("no-delete-tag")
    versions(native, name, 2)
    partial.set_alias(name, "champion", "1")
    partial.set_alias(name, "champion", "2")
    assert native.get_model_version(name, "1").tags[alias_tag("champion")] == ""
    champion = partial.get_version_by_alias(name, "champion")
    assert champion is not None and champion.version == "2"
    assert partial.get_model_version(name, "1").aliases == ()
