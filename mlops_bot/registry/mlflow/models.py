"""The model-registry half of MlflowRegistry: registered models, versions, aliases."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ...errors import AlreadyExists, InvalidParameter, NotFound, UsageError
from .. import aliases as tag_aliases
from ..base import Capabilities, ModelVersion, RegisteredModel
from ..validation import model_name_problem, rejected
from . import capabilities as partial
from . import codec, sources
from .errors import SERVICE, EndpointMissing
from .http import API, MlflowHttp
from .probes import Probes


class MlflowModels(Probes):
    """Registry operations; capabilities the server lacks are found once (lazily, probes.py) and emulated."""

    def __init__(self, http: MlflowHttp, capabilities: Capabilities | None, page_size: int) -> None:
        self._http = http
        self._page_size = page_size
        self._aliases_native: bool | None = None if capabilities is None else capabilities.aliases
        self._search_native: bool | None = None if capabilities is None else capabilities.version_search
        self._artifacts = True if capabilities is None else capabilities.artifacts
        self._tags_native: bool | None = None if capabilities is None else capabilities.version_tags
        self._filters_native: bool | None = None if capabilities is None else capabilities.run_filters
        self._by_semver: bool | None = None  # GitLab: versions are addressed by semantic version (codec)
        where = http.display + API + "registered-models/alias"
        self._tags = tag_aliases.TagAliases(self._raw_versions, self.set_model_version_tag, self._clear_tag,
                                            lambda: (SERVICE, where))

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
            try:
                return self._get_model_once(name)
            except EndpointMissing:
                raise
            except NotFound:
                problem = model_name_problem(name)
                if problem:  # GitLab answers an invalid name as RESOURCE_ALREADY_EXISTS, and has no such model
                    raise rejected(InvalidParameter, SERVICE, self._http.display + API + "registered-models/create",
                                   problem) from None
                raise

        return self._with_tag_aliases(self._http.retrying(attempt))

    def _get_model_once(self, name: str) -> RegisteredModel:
        doc = self._http.json("GET", "registered-models/get", params={"name": name}, retry=False)
        return codec.registered_model(doc["registered_model"])

    # model versions

    def create_model_version(self, name: str, source: str, run_id: str, tags: Mapping[str, str] | None = None,
                             description: str = "", model_id: str = "") -> ModelVersion:
        body = {"name": name, "source": source, "run_id": run_id, "tags": codec.kv_list(tags),
                "description": description, **({"model_id": model_id} if model_id else {})}

        if not self._native_tags():
            # GitLab keeps neither source nor (another experiment's) run_id, and has no version tags: the run,
            # the source and the tags are the version's records, in its description.
            records = partial.Records(description, run_id, source, {k: v for k, v in (tags or {}).items() if v})
            body = {"name": name, "description": self._records_text(records)}

        wanted = sources.VersionSource(source, run_id, self._artifact_uri)

        def attempt() -> str:
            existing = [v for v in self._versions_of_run(name, run_id) if wanted.matches(v.source)]
            if existing:
                return min(existing, key=lambda v: codec.version_order(v.version)).version
            return self._learn_key(name, self._post_version(name, body, wanted))

        return self.get_model_version(name, self._http.retrying(attempt))

    _runs_sources = False  # learned: the server takes a run's files only as runs:/<run_id>/<path> (Azure ML)

    def _post_version(self, name: str, body: dict[str, Any], wanted: sources.VersionSource) -> dict[str, Any]:
        """POST model-versions/create; a refused source is sent once more as its runs:/ form (sources.py)."""
        if self._runs_sources and "source" in body and wanted.runs_form():
            body["source"] = wanted.runs_form()
        try:
            return dict(self._http.json("POST", "model-versions/create", body=body, retry=False)["model_version"])
        except InvalidParameter as refused:
            if body.get("source") != wanted.given or not wanted.runs_form():
                raise sources.explained(refused, name, str(body.get("source", ""))) from None
        self._runs_sources, body["source"] = True, wanted.runs_form()
        try:
            return dict(self._http.json("POST", "model-versions/create", body=body, retry=False)["model_version"])
        except InvalidParameter as refused:
            raise sources.explained(refused, name, str(body["source"])) from None

    def _artifact_uri(self, run_id: str) -> str:
        return str(self._http.json("GET", "runs/get", params={"run_id": run_id})["run"]["info"].get("artifact_uri", ""))

    def _versions_of_run(self, name: str, run_id: str) -> list[ModelVersion]:
        if self._native_search():
            return self._search(f"name={_literal(name)} and run_id={_literal(run_id)}", None, retry=False)
        return [v for v in self._listed_versions(name, retry=False) if v.run_id == run_id]

    def get_model_version(self, name: str, version: str) -> ModelVersion:
        found = self._version(name, version)
        return found if self._native_aliases() else tag_aliases.present(found, self._tags.aliases(name))

    def _version(self, name: str, version: str, retry: bool = True) -> ModelVersion:
        """One version as stored (records applied, alias tags kept). GitLab answers a version with its database id
        in `version` and the semantic version it is fetched by in `aliases`: that is learned here."""
        wire = codec.wire_version(version) if self._by_semver else version
        try:
            doc = self._http.json("GET", "model-versions/get", params={"name": name, "version": wire},
                                  retry=retry)["model_version"]
        except EndpointMissing:
            raise
        except NotFound as missing:
            if self._by_semver is not None or not version.isdigit():
                raise
            try:  # GitLab's form; MLflow refuses it (400: not an integer), which means the version is missing
                doc = self._http.json("GET", "model-versions/get", params={"name": name,
                                                                           "version": codec.wire_version(version)},
                                      retry=retry)["model_version"]
            except (NotFound, InvalidParameter):
                raise missing from None
            wire = codec.wire_version(version)
        if self._by_semver is None:
            self._by_semver = str(doc.get("version")) != wire and codec.semver_of(doc) == wire
        return self._presented(doc)

    def _learn_key(self, name: str, doc: dict[str, Any]) -> str:
        """The version name of a document a create answered."""
        if self._by_semver is None and codec.semver_of(doc) is not None:
            try:
                self._http.json("GET", "model-versions/get", params={"name": name, "version": str(doc["version"])},
                                retry=False)
                self._by_semver = False
            except EndpointMissing:
                raise
            except NotFound:
                self._by_semver = True
        return self._presented(doc).version

    def _presented(self, doc: dict[str, Any]) -> ModelVersion:
        found = codec.model_version(doc, by_semver=bool(self._by_semver))
        if self._native_tags():
            return found
        records = partial.read_records(found.description)
        return replace(found, description=records.text, run_id=records.run_id or found.run_id,
                       source=records.source or found.source, tags=partial.tags_with(found.tags, records))

    def _records_text(self, records: partial.Records) -> str:
        try:
            return partial.write_records(records)
        except ValueError as exc:
            raise UsageError(f"{SERVICE} at {self._http.display}: {exc}; the bot keeps a version's tags in its "
                             "description there (the server has no model-versions/set-tag). Use fewer deploy "
                             "targets or shorter details.") from None

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
        return sorted(items, key=lambda v: codec.version_order(v.version), reverse=True)[:limit]

    def _listed_versions(self, name: str, limit: int | None = None, retry: bool = True) -> list[ModelVersion]:
        """Without version search: the newest number from latest_versions, then each version by number."""
        try:
            doc = self._http.json("GET", "registered-models/get", params={"name": name}, retry=retry)
        except EndpointMissing:
            raise
        except NotFound:
            return []
        # MLflow names the latest version per stage, GitLab every version (by semantic version): each named one,
        # and every number below the newest (deleted versions leave gaps), newest first.
        named = {codec.short_version(str(v["version"])) for v in doc["registered_model"].get("latest_versions") or ()
                 if isinstance(v, dict) and v.get("version") is not None}
        newest = max((int(v) for v in named if v.isdigit()), default=0)
        candidates = sorted(named | {str(n) for n in range(1, newest + 1)}, key=codec.version_order, reverse=True)
        found: list[ModelVersion] = []
        for version in candidates:
            if limit is not None and len(found) >= limit:
                break
            try:
                found.append(self._version(name, version, retry=retry))
            except EndpointMissing:
                raise
            except NotFound:
                continue  # a deleted version leaves a gap
        return found

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        if not self._native_tags():
            return self._set_record(name, version, key, value)
        self._http.json("POST", "model-versions/set-tag",
                        body={"name": name, "version": version, "key": key, "value": value})

    def _set_record(self, name: str, version: str, key: str, value: str) -> None:
        """A version tag where the server has none: rewritten into the version's description
        (PATCH model-versions/update, the one writable field of a GitLab model version)."""
        current = self._version(name, version)
        wire = codec.wire_version(version) if self._by_semver else version
        doc = self._http.json("GET", "model-versions/get", params={"name": name, "version": wire})["model_version"]
        records = partial.read_records(str(doc.get("description") or ""))
        if not records.run_id:
            records.run_id, records.source = current.run_id, current.source
        if value:
            records.tags[key] = value
        else:
            records.tags.pop(key, None)
        self._http.json("PATCH", "model-versions/update",
                        body={"name": name, "version": wire, "description": self._records_text(records)})

    def _clear_tag(self, name: str, version: str, key: str) -> None:
        if not self._native_tags():
            return self._set_record(name, version, key, "")
        try:
            self._http.json("DELETE", "model-versions/delete-tag", body={"name": name, "version": version, "key": key})
        except EndpointMissing:
            self.set_model_version_tag(name, version, key, "")  # an empty value counts as unset

    # aliases

    def set_alias(self, name: str, alias: str, version: str) -> None:
        if not self._native_aliases():
            self._version(name, version)  # NotFound for a version that does not exist, as MLflow says
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
