"""The model-registry half of MlflowRegistry: registered models, versions, aliases, capability probing."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ...errors import AlreadyExists, InvalidParameter, NotFound, UsageError
from .. import aliases as tag_aliases
from ..base import Capabilities, ModelVersion, RegisteredModel
from . import codec
from .errors import SERVICE, EndpointMissing
from .http import API, MlflowHttp


class MlflowModels:
    """Registry operations; capabilities the server lacks are found once (lazily) and emulated."""

    def __init__(self, http: MlflowHttp, capabilities: Capabilities | None, page_size: int) -> None:
        self._http = http
        self._page_size = page_size
        self._aliases_native: bool | None = None if capabilities is None else capabilities.aliases
        self._search_native: bool | None = None if capabilities is None else capabilities.version_search
        self._artifacts = True if capabilities is None else capabilities.artifacts
        where = http.display + API + "registered-models/alias"
        self._tags = tag_aliases.TagAliases(self._raw_versions, self.set_model_version_tag, self._clear_tag,
                                            lambda: (SERVICE, where))

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(self._native_aliases(), self._native_search(), self._artifacts)

    def _native_aliases(self) -> bool:
        if self._aliases_native is None:
            probe = {"name": f"mlops-bot-probe-{uuid.uuid4().hex[:8]}", "alias": "probe"}
            self._aliases_native = self._endpoint_exists("registered-models/alias", probe)
        return self._aliases_native

    def _native_search(self) -> bool:
        if self._search_native is None:
            probe = {"filter": f"name='mlops-bot-probe-{uuid.uuid4().hex[:8]}'", "max_results": 1}
            self._search_native = self._endpoint_exists("model-versions/search", probe)
        return self._search_native

    def _endpoint_exists(self, endpoint: str, params: dict[str, Any]) -> bool:
        """One probe: a missing endpoint answers 404/405/501 without an MLflow error code."""
        try:
            self._http.json("GET", endpoint, params=params)
        except EndpointMissing:
            return False
        except (NotFound, InvalidParameter):
            pass  # the endpoint answered in MLflow's own terms
        return True

    # registered models

    def get_registered_model(self, name: str) -> RegisteredModel:
        doc = self._http.json("GET", "registered-models/get", params={"name": name})["registered_model"]
        return self._with_tag_aliases(codec.registered_model(doc))

    def _with_tag_aliases(self, model: RegisteredModel) -> RegisteredModel:
        return model if self._native_aliases() else replace(model, aliases=self._tags.aliases(model.name))

    def get_or_create_registered_model(self, name: str, description: str = "") -> RegisteredModel:
        def attempt() -> RegisteredModel:
            try:
                return self._get_model_once(name)
            except EndpointMissing:
                raise
            except NotFound:
                pass
            # AlreadyExists: our own earlier attempt (answer lost) or a peer created it, the same model.
            with contextlib.suppress(AlreadyExists):
                self._http.json("POST", "registered-models/create",
                                body={"name": name, "description": description}, retry=False)
            return self._get_model_once(name)

        return self._with_tag_aliases(self._http.retrying(attempt))

    def _get_model_once(self, name: str) -> RegisteredModel:
        doc = self._http.json("GET", "registered-models/get", params={"name": name}, retry=False)
        return codec.registered_model(doc["registered_model"])

    # model versions

    def create_model_version(self, name: str, source: str, run_id: str, tags: Mapping[str, str] | None = None,
                             description: str = "") -> ModelVersion:
        body = {"name": name, "source": source, "run_id": run_id, "tags": codec.kv_list(tags),
                "description": description}

        def attempt() -> str:
            existing = [v for v in self._versions_of_run(name, run_id) if v.source == source]
            if existing:
                return min(existing, key=lambda v: int(v.version)).version
            doc = self._http.json("POST", "model-versions/create", body=body, retry=False)
            return str(doc["model_version"]["version"])

        return self.get_model_version(name, self._http.retrying(attempt))

    def _versions_of_run(self, name: str, run_id: str) -> list[ModelVersion]:
        if self._native_search():
            return self._search(f"name={_literal(name)} and run_id={_literal(run_id)}", None, retry=False)
        return [v for v in self._listed_versions(name, retry=False) if v.run_id == run_id]

    def get_model_version(self, name: str, version: str) -> ModelVersion:
        doc = self._http.json("GET", "model-versions/get", params={"name": name, "version": version})
        found = codec.model_version(doc["model_version"])
        return found if self._native_aliases() else tag_aliases.present(found, self._tags.aliases(name))

    def search_model_versions(self, name: str, max_results: int | None = None) -> list[ModelVersion]:
        versions = self._raw_versions(name, max_results)
        if not versions:
            return []
        if not self._native_aliases():
            alias_map = tag_aliases.holders(versions if max_results is None else self._raw_versions(name))
            return [tag_aliases.present(v, alias_map) for v in versions]
        # Search results carry no aliases: one registered-models/get fills them all.
        by_version = codec.aliases_by_version(self.get_registered_model(name))
        return [replace(v, aliases=by_version.get(v.version, ())) for v in versions]

    def _raw_versions(self, name: str, max_results: int | None = None) -> list[ModelVersion]:
        """Newest first, tags as stored (alias tags included)."""
        if self._native_search():
            return self._search(f"name={_literal(name)}", max_results)
        return self._listed_versions(name, max_results)

    def _search(self, filter_string: str, limit: int | None, retry: bool = True) -> list[ModelVersion]:
        items: list[ModelVersion] = []
        token = ""
        while limit is None or len(items) < limit:
            size = self._page_size if limit is None else min(self._page_size, limit - len(items))
            params: dict[str, Any] = {"filter": filter_string, "max_results": size,
                                      "order_by": ["version_number DESC"]}
            if token:
                params["page_token"] = token
            doc = self._http.json("GET", "model-versions/search", params=params, retry=retry)
            items.extend(codec.model_version(v) for v in doc.get("model_versions") or ())
            token = str(doc.get("next_page_token") or "")
            if not token:
                break
        return sorted(items, key=lambda v: -int(v.version))[:limit]

    def _listed_versions(self, name: str, limit: int | None = None, retry: bool = True) -> list[ModelVersion]:
        """Without version search: the newest number from latest_versions, then each version by number."""
        try:
            doc = self._http.json("GET", "registered-models/get", params={"name": name}, retry=retry)
        except EndpointMissing:
            raise
        except NotFound:
            return []
        latest = doc["registered_model"].get("latest_versions") or ()
        newest = max((int(v["version"]) for v in latest), default=0)
        found: list[ModelVersion] = []
        for number in range(newest, 0, -1):
            if limit is not None and len(found) >= limit:
                break
            try:
                got = self._http.json("GET", "model-versions/get", params={"name": name, "version": str(number)},
                                      retry=retry)
            except EndpointMissing:
                raise
            except NotFound:
                continue  # a deleted version leaves a gap
            found.append(codec.model_version(got["model_version"]))
        return found

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        self._http.json("POST", "model-versions/set-tag",
                        body={"name": name, "version": version, "key": key, "value": value})

    def _clear_tag(self, name: str, version: str, key: str) -> None:
        try:
            self._http.json("DELETE", "model-versions/delete-tag", body={"name": name, "version": version, "key": key})
        except EndpointMissing:
            self.set_model_version_tag(name, version, key, "")  # an empty value counts as unset

    # aliases

    def set_alias(self, name: str, alias: str, version: str) -> None:
        if not self._native_aliases():
            return self._tags.set(name, alias, version)
        self._http.json("POST", "registered-models/alias", body={"name": name, "alias": alias, "version": version})

    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion | None:
        if not self._native_aliases():
            version = self._tags.get(name, alias)
            return None if version is None else self.get_model_version(name, version)
        try:
            doc = self._http.json("GET", "registered-models/alias", params={"name": name, "alias": alias})
        except InvalidParameter as exc:
            # MLflow answers 400 INVALID_PARAMETER_VALUE "alias X not found" for an unset alias.
            if "not found" in exc.detail.lower():
                return None
            raise
        return codec.model_version(doc["model_version"])

    def delete_alias(self, name: str, alias: str) -> None:
        if not self._native_aliases():
            return self._tags.delete(name, alias)
        self._http.json("DELETE", "registered-models/alias", body={"name": name, "alias": alias})


def _literal(value: str) -> str:
    try:
        return codec.filter_literal(value)
    except ValueError as exc:
        raise UsageError(f"{SERVICE}: {exc}; rename it.") from None
