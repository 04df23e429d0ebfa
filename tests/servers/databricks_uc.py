"""A local stand-in for a Databricks workspace whose model registry is Unity Catalog, on 127.0.0.1, in memory.
Sources (each route cites the one it follows):

- [uc] MLflow's own UC client, mlflow 3.17: protos/databricks_uc_registry_service.proto (paths and methods under
  /api/2.0/mlflow/unity-catalog/), databricks_uc_registry_messages.proto (fields; ModelVersionStatus
  PENDING_REGISTRATION | FAILED_REGISTRATION | READY; TemporaryCredentials with storage_mode), and
  store/_unity_catalog/registry/rest_store.py (create -> write files to storage_location with
  generate-temporary-credentials READ_WRITE -> finalize; search takes one condition, `name=` or `run_id=`, no
  order_by; no stages, no get-latest-versions; a model needs a signature with inputs and outputs).
- [ref] docs.databricks.com/api/uc-registered-models (the same objects on /api/2.1/unity-catalog/models: aliases
  per registered model and version; get-by-alias; version numbers are integers) and sql-ref-names (names are
  catalog.schema.model; no '.', ' ' or '/' in a part; stored in lower case).
- [ws] the workspace's MLflow REST API (/api/2.0/mlflow/, MLflow's REST reference): experiments, runs, metrics and
  the workspace registry's registered-models create/get/delete (the bot's lock); a thin subset.
- [errors] Databricks' envelope `{"error_code": ..., "message": ...}`; an unknown route is 404
  `{"error_code": "ENDPOINT_NOT_FOUND", "message": "No API found for 'GET /...'"}` (databricks/databricks-cli#383).

Assumed where nothing is published (say so when a real workspace disagrees): every catalog.schema exists; an unset
alias is 404 RESOURCE_DOES_NOT_EXIST on get and delete; finalize refuses (400 INVALID_PARAMETER_VALUE) files without
an MLmodel signature; unknown query parameters (order_by) are ignored; logged models are not modelled here (Databricks
has them: this stand-in answers ENDPOINT_NOT_FOUND, which exercises the bot's path without them); storage locations
and run artifact URIs are file:// directories (real ones are s3://, abfss://, gs:// and dbfs:/ with temporary
credentials), so the bot writes through MLflow's file repository and this server reads what it wrote.
"""

from __future__ import annotations

import itertools
import re
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from tests.servers.azureml_mlflow import AzureMlflowServer, Refusal, _clause, _kv, _page, _shown
from tests.servers.fakehttp import Answer, Seen

TOKEN = "dapi-standin-0123456789abcdef"
API, UC = "/api/2.0/mlflow/", "/api/2.0/mlflow/unity-catalog/"


def error(status: int, code: str, message: str) -> Refusal:
    return Refusal(status, {"error_code": code, "message": message})


def missing(what: str) -> Refusal:
    return error(404, "RESOURCE_DOES_NOT_EXIST", f"{what} does not exist.")


def invalid(message: str) -> Refusal:
    return error(400, "INVALID_PARAMETER_VALUE", message)


class DatabricksUcServer(AzureMlflowServer):
    """One workspace; the dispatch, request log and faults of the Azure stand-in, Databricks' routes and errors.
    `signatures=False` lets finalize take files without a signature (the contract suite's stub models)."""

    def __init__(self, root: Path, signatures: bool = True) -> None:
        super().__init__(root)
        self.token, self.signatures = TOKEN, signatures
        self.workspace_models: dict[str, dict[str, Any]] = {}
        self.uc_models: dict[str, dict[str, Any]] = {}
        self.uc_versions: dict[tuple[str, int], dict[str, Any]] = {}
        self._ids = itertools.count(1)

    @property
    def tracking_uri(self) -> str:
        return self.origin

    def handle(self, seen: Seen) -> Answer:
        if seen.headers.get("authorization", "") != f"Bearer {self.token}":  # [errors] a PAT, as Bearer
            raise error(401, "UNAUTHENTICATED", "Credential was not sent or was of an unsupported type for this API.")
        route = seen.path[len(UC):] if seen.path.startswith(UC) else (
            "ws:" + seen.path[len(API):] if seen.path.startswith(API) else "")
        handler = _ROUTES.get(route, {}).get(seen.method)
        if handler is None:
            raise error(404, "ENDPOINT_NOT_FOUND", f"No API found for '{seen.method} {seen.path.removeprefix('/api')}'")
        seen.operation = f"{seen.method} {route}"
        fault = self.take_fault(seen.operation)
        if fault is not None:
            return fault
        args = {k: (v if k in ("experiment_ids", "order_by") else v[-1]) for k, v in seen.query.items()}
        if isinstance(seen.body, dict):
            args.update(seen.body)
        return Answer(200, handler(self, args))

    # [ws] tracking: experiments get ids counted up, runs search with attribute filters

    def experiments_create(self, args: dict[str, Any]) -> Any:
        name = str(args.get("name") or "")
        if any(e["name"] == name for e in self.experiments.values()):
            raise error(400, "RESOURCE_ALREADY_EXISTS", f"Node named '{name}' already exists")
        experiment_id = str(next(self._ids))
        self.experiments[experiment_id] = {"experiment_id": experiment_id, "name": name, "lifecycle_stage": "active",
                                           "artifact_location": (self.root / "tracking" / experiment_id).as_uri()}
        return {"experiment_id": experiment_id}

    def _experiment(self, args: dict[str, Any]) -> dict[str, Any]:
        try:
            return super()._experiment(args)
        except Refusal:
            raise missing("Experiment") from None

    def _run(self, args: dict[str, Any]) -> dict[str, Any]:
        found = self.runs.get(str(args.get("run_id") or args.get("run_uuid") or ""))
        if found is None:
            raise missing(f"Run '{args.get('run_id')}'")
        return found

    def runs_create(self, args: dict[str, Any]) -> Any:
        doc = super().runs_create(args)
        run = self.runs.pop(doc["run"]["info"]["run_id"])
        run_id = uuid.uuid4().hex  # Databricks run ids are 32 hex digits
        run["info"].update(run_id=run_id, run_uuid=run_id, artifact_uri=run["info"]["artifact_uri"].replace(
            doc["run"]["info"]["run_id"], run_id))
        self.runs[run_id] = run
        return {"run": self._run_doc(run)}

    def runs_log_batch(self, args: dict[str, Any]) -> Any:
        try:
            return super().runs_log_batch(args)
        except Refusal as refused:
            if "Error" not in refused.answer.body:
                raise
            raise invalid(refused.answer.body["Error"]["Message"]) from None

    def runs_search(self, args: dict[str, Any]) -> Any:
        ids = [str(i) for i in args.get("experiment_ids") or ()]
        clauses = [_clause(part) for part in re.split(r"\s+and\s+", str(args.get("filter") or ""), flags=re.I)
                   if part.strip()]
        runs = [r for r in self.runs.values() if r["info"]["experiment_id"] in ids and all(
            _matches(self, r, c) for c in clauses)]
        order = (args.get("order_by") or ["start_time DESC"])[0].split()
        column = order[0].split(".", 1)[-1].strip("`")
        descending = len(order) < 2 or order[1].upper() == "DESC"
        runs.sort(key=lambda r: (r["info"].get(column) or 0, r["order"]), reverse=descending)
        page, token = _page(runs, args)
        return {"runs": [self._run_doc(r) for r in page], **({"next_page_token": token} if token else {})}

    def metrics_get_history(self, args: dict[str, Any]) -> Any:
        run = self._run(args)
        return {"metrics": [_shown(p) for p in run["metrics"] if p["key"] == args.get("metric_key")]}

    # [ws] the workspace registry, as far as the bot's lock uses it

    def ws_models_create(self, args: dict[str, Any]) -> Any:
        name = str(args.get("name") or "")
        if name in self.workspace_models:
            raise error(400, "RESOURCE_ALREADY_EXISTS", f"Registered Model (name={name}) already exists.")
        self.workspace_models[name] = {"name": name, "tags": list(args.get("tags") or ())}
        return {"registered_model": dict(self.workspace_models[name])}

    def ws_models_get(self, args: dict[str, Any]) -> Any:
        if str(args.get("name")) not in self.workspace_models:
            raise missing(f"Registered Model (name={args.get('name')})")
        return {"registered_model": dict(self.workspace_models[str(args["name"])])}

    def ws_models_delete(self, args: dict[str, Any]) -> Any:
        if self.workspace_models.pop(str(args.get("name")), None) is None:
            raise missing(f"Registered Model (name={args.get('name')})")
        return {}

    # [uc] registered models: catalog.schema.model, lower case

    def _uc_name(self, raw: Any) -> str:
        name = str(raw or "").lower()
        parts = name.split(".")
        if len(parts) != 3 or not all(parts) or any(c in " /" or ord(c) < 32 for c in name):  # [ref] sql-ref-names
            raise invalid(f"Invalid name '{raw}'. The name must be a three-level name: catalog.schema.model, and no "
                          "part may contain ' ', '/' or control characters.")
        return name

    def _uc_model(self, raw: Any) -> dict[str, Any]:
        model = self.uc_models.get(self._uc_name(raw))
        if model is None:
            raise missing(f"Registered model '{str(raw).lower()}'")
        return model

    def _aliases(self, name: str, version: str | None = None) -> list[dict[str, str]]:
        held = sorted(self.uc_models[name]["aliases"].items())
        return [{"alias": a, "version": v} for a, v in held if version is None or v == version]

    def _uc_model_doc(self, model: dict[str, Any]) -> dict[str, Any]:
        return {"name": model["name"], "creation_timestamp": model["created"],
                "last_updated_timestamp": model["created"],
                "user_id": "standin@example.com", "description": model["description"], "tags": _kv(model["tags"]),
                "aliases": self._aliases(model["name"])}

    def uc_models_create(self, args: dict[str, Any]) -> Any:
        name = self._uc_name(args.get("name"))
        if name in self.uc_models:
            raise error(400, "RESOURCE_ALREADY_EXISTS", f"Registered model '{name}' already exists.")
        self.uc_models[name] = {"name": name, "description": str(args.get("description") or ""), "next": 1,
                                "tags": {str(t["key"]): str(t.get("value", "")) for t in args.get("tags") or ()},
                                "aliases": {}, "created": int(time.time() * 1000), "id": uuid.uuid4().hex}
        return {"registered_model": self._uc_model_doc(self.uc_models[name])}

    def uc_models_get(self, args: dict[str, Any]) -> Any:
        return {"registered_model": self._uc_model_doc(self._uc_model(args.get("name")))}

    def uc_models_update(self, args: dict[str, Any]) -> Any:
        model = self._uc_model(args.get("name"))
        model["description"] = str(args.get("description") or model["description"])
        return {"registered_model": self._uc_model_doc(model)}

    def uc_models_delete(self, args: dict[str, Any]) -> Any:
        model = self._uc_model(args.get("name"))
        del self.uc_models[model["name"]]
        self.uc_versions = {k: v for k, v in self.uc_versions.items() if k[0] != model["name"]}
        return {}

    def uc_models_search(self, args: dict[str, Any]) -> Any:
        page, token = _page([self._uc_model_doc(m) for m in self.uc_models.values()], args)
        return {"registered_models": page, **({"next_page_token": token} if token else {})}

    # [uc] model versions: create (PENDING_REGISTRATION, storage_location) -> credentials -> files -> finalize

    def _uc_version(self, name: Any, version: Any) -> dict[str, Any]:
        model = self._uc_model(name)
        found = self.uc_versions.get((model["name"], int(version))) if str(version or "").isdigit() else None
        if found is None:
            raise missing(f"Model version '{model['name']}' version {version}")
        return found

    def _version_doc(self, version: dict[str, Any], aliases: bool = True) -> dict[str, Any]:
        doc = {k: v for k, v in version.items() if k != "tag_map"}
        doc["tags"] = _kv(version["tag_map"])
        doc["aliases"] = self._aliases(version["name"], version["version"]) if aliases else []
        return doc

    def uc_versions_create(self, args: dict[str, Any]) -> Any:
        model = self._uc_model(args.get("name"))
        number = model["next"]
        model["next"] += 1
        now = int(time.time() * 1000)
        location = self.root / "uc" / model["id"] / "versions" / uuid.uuid4().hex
        run = self.runs.get(str(args.get("run_id") or ""))
        self.uc_versions[(model["name"], number)] = {
            "name": model["name"], "version": str(number), "creation_timestamp": now, "last_updated_timestamp": now,
            "user_id": "standin@example.com", "description": str(args.get("description") or ""),
            "source": str(args.get("source") or ""), "run_id": str(args.get("run_id") or ""),
            "run_experiment_id": run["info"]["experiment_id"] if run else "", "status": "PENDING_REGISTRATION",
            "storage_location": location.as_uri(), "model_id": str(args.get("model_id") or ""),
            "tag_map": {str(t["key"]): str(t.get("value", "")) for t in args.get("tags") or ()}}
        return {"model_version": self._version_doc(self.uc_versions[(model["name"], number)])}

    def uc_versions_credentials(self, args: dict[str, Any]) -> Any:
        version = self._uc_version(args.get("name"), args.get("version"))
        writing = args.get("operation") == "MODEL_VERSION_OPERATION_READ_WRITE"
        if writing and version["status"] != "PENDING_REGISTRATION":
            raise invalid(f"Model version {version['version']} is {version['status']}; its files cannot be written.")
        expires = int(time.time() * 1000) + 3600_000
        return {"credentials": {"storage_mode": "CUSTOMER_HOSTED", "expiration_time": expires}}

    def uc_versions_finalize(self, args: dict[str, Any]) -> Any:
        version = self._uc_version(args.get("name"), args.get("version"))
        if version["status"] == "PENDING_REGISTRATION":
            model_file = Path(urlsplit(version["storage_location"]).path) / "MLmodel"
            document = yaml.safe_load(model_file.read_text()) if model_file.is_file() else None
            signature = (document or {}).get("signature") or {}
            signed = signature.get("inputs") and signature.get("outputs")
            if not model_file.is_file() or (self.signatures and not signed):
                raise invalid("Model passed for registration did not contain any signature metadata (assumed text).")
            version.update(status="READY", last_updated_timestamp=int(time.time() * 1000))
        return {"model_version": self._version_doc(version)}

    def uc_versions_get(self, args: dict[str, Any]) -> Any:
        return {"model_version": self._version_doc(self._uc_version(args.get("name"), args.get("version")))}

    def uc_versions_update(self, args: dict[str, Any]) -> Any:
        version = self._uc_version(args.get("name"), args.get("version"))
        version["description"] = str(args.get("description") or "")
        return {"model_version": self._version_doc(version)}

    def uc_versions_delete(self, args: dict[str, Any]) -> Any:
        version = self._uc_version(args.get("name"), args.get("version"))
        del self.uc_versions[(version["name"], int(version["version"]))]
        holders = self.uc_models[version["name"]]["aliases"]
        for alias in [a for a, v in holders.items() if v == version["version"]]:
            del holders[alias]  # [ref] "Any aliases assigned to the model version will also be deleted."
        return {}

    def uc_versions_search(self, args: dict[str, Any]) -> Any:
        text = str(args.get("filter") or "")
        found = re.match(r"""^\s*(name|run_id)\s*=\s*(['"])(.*)\2\s*$""", text)
        if found is None:  # [uc] one condition, name or run_id
            raise invalid(f"Unsupported filter query: `{text}`. Only a single 'name=' or 'run_id=' clause is "
                          "supported.")
        key, value = found.group(1), found.group(3).lower() if found.group(1) == "name" else found.group(3)
        docs = sorted((v for v in self.uc_versions.values() if v[key] == value),
                      key=lambda v: -int(v["version"]))
        page, token = _page([self._version_doc(v, aliases=False) for v in docs], args)
        return {"model_versions": page, **({"next_page_token": token} if token else {})}

    def uc_versions_set_tag(self, args: dict[str, Any]) -> Any:
        version = self._uc_version(args.get("name"), args.get("version"))
        version["tag_map"][str(args.get("key"))] = str(args.get("value"))
        return {}

    def uc_versions_delete_tag(self, args: dict[str, Any]) -> Any:
        self._uc_version(args.get("name"), args.get("version"))["tag_map"].pop(str(args.get("key")), None)
        return {}

    # [uc] aliases: one version each, native

    def uc_alias_set(self, args: dict[str, Any]) -> Any:
        alias = str(args.get("alias") or "")
        if not re.match(r"^[A-Za-z0-9_\-]{1,255}$", alias) or alias.lower() == "latest" or re.match(r"^v\d+$", alias):
            raise invalid(f"Invalid alias name '{alias}'.")
        version = self._uc_version(args.get("name"), args.get("version"))
        self.uc_models[version["name"]]["aliases"][alias] = version["version"]
        return {}

    def uc_alias_get(self, args: dict[str, Any]) -> Any:
        model = self._uc_model(args.get("name"))
        version = model["aliases"].get(str(args.get("alias")))
        if version is None:  # assumed
            raise missing(f"Alias '{args.get('alias')}' of registered model '{model['name']}'")
        return {"model_version": self._version_doc(self.uc_versions[(model["name"], int(version))])}

    def uc_alias_delete(self, args: dict[str, Any]) -> Any:
        model = self._uc_model(args.get("name"))
        if model["aliases"].pop(str(args.get("alias")), None) is None:  # assumed
            raise missing(f"Alias '{args.get('alias')}' of registered model '{model['name']}'")
        return {}


def _matches(server: DatabricksUcServer, run: dict[str, Any], clause: tuple[str, str, str, Any]) -> bool:
    kind, key, op, value = clause
    if kind != "attributes":
        from tests.servers.azureml_mlflow import _matches as by_data

        return by_data(run, clause)
    actual = run["info"].get({"run_id": "run_id", "status": "status", "start_time": "start_time"}.get(key, key))
    if op == "IN":
        return actual in value
    outcomes = {"=": actual == value, "!=": actual != value}
    if op in outcomes:
        return outcomes[op]
    actual = float(actual or 0)
    return {">": actual > value, ">=": actual >= value, "<": actual < value, "<=": actual <= value}[op]


_D, _A = DatabricksUcServer, AzureMlflowServer
# path below /api/2.0/mlflow/unity-catalog/ (or "ws:" + below /api/2.0/mlflow/) -> method -> handler
_ROUTES: dict[str, dict[str, Any]] = {
    "ws:experiments/get": {"GET": _A.experiments_get},
    "ws:experiments/get-by-name": {"GET": _A.experiments_get_by_name},
    "ws:experiments/create": {"POST": _D.experiments_create},
    "ws:experiments/search": {"POST": _A.experiments_search, "GET": _A.experiments_search},
    "ws:runs/create": {"POST": _D.runs_create},
    "ws:runs/get": {"GET": _A.runs_get},
    "ws:runs/update": {"POST": _A.runs_update},
    "ws:runs/log-batch": {"POST": _D.runs_log_batch},
    "ws:runs/search": {"POST": _D.runs_search},
    "ws:metrics/get-history": {"GET": _D.metrics_get_history},
    "ws:registered-models/create": {"POST": _D.ws_models_create},
    "ws:registered-models/get": {"GET": _D.ws_models_get},
    "ws:registered-models/delete": {"DELETE": _D.ws_models_delete},
    "registered-models/create": {"POST": _D.uc_models_create},
    "registered-models/get": {"GET": _D.uc_models_get},
    "registered-models/update": {"PATCH": _D.uc_models_update},
    "registered-models/delete": {"DELETE": _D.uc_models_delete},
    "registered-models/search": {"GET": _D.uc_models_search},
    "registered-models/alias": {"POST": _D.uc_alias_set, "GET": _D.uc_alias_get, "DELETE": _D.uc_alias_delete},
    "model-versions/create": {"POST": _D.uc_versions_create},
    "model-versions/get": {"GET": _D.uc_versions_get},
    "model-versions/update": {"PATCH": _D.uc_versions_update},
    "model-versions/delete": {"DELETE": _D.uc_versions_delete},
    "model-versions/search": {"GET": _D.uc_versions_search},
    "model-versions/set-tag": {"POST": _D.uc_versions_set_tag},
    "model-versions/delete-tag": {"DELETE": _D.uc_versions_delete_tag},
    "model-versions/generate-temporary-credentials": {"POST": _D.uc_versions_credentials},
    "model-versions/finalize": {"POST": _D.uc_versions_finalize},
}


def start(root: Path, signatures: bool = True) -> DatabricksUcServer:
    root.mkdir(parents=True, exist_ok=True)
    return DatabricksUcServer(root, signatures).start()
