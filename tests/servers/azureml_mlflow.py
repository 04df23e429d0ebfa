"""A local stand-in for Azure Machine Learning's MLflow-compatible API, built route by route from what Microsoft
publishes, on 127.0.0.1, threaded, in memory. Sources (each route cites the one it follows):

- [track] learn.microsoft.com how-to-track-experiments-mlflow (MicrosoftDocs/azure-docs
  articles/machine-learning/how-to-track-experiments-mlflow.md), "Support matrix for querying runs and experiments":
  run filters on params, tags (`=`; `!=` not for tags) and metrics, joined by AND only; no filtering by attributes or
  run fields (`attributes.status` "not supported at the moment"); ordering by run fields only.
- [models] learn.microsoft.com how-to-manage-models-mlflow (azure-docs how-to-manage-models-mlflow.md), "Support
  matrix for managing models with MLflow": only models in MLflow format can be registered; from run outputs "use
  URIs with format `runs:/<run-id>/<path>`"; version description and tags can be edited, versions deleted; a
  registered model (container) cannot be deleted or renamed ("registered models are immutable objects"); no aliases
  anywhere in the matrix (MLflow's alias API is missing).
- [plugin] the azureml-mlflow plugin (azureml/mlflow/_store/azureml_reststore.py, model_registry.py): the REST base is
  `<region>.api.azureml.ms/mlflow/v1.0/subscriptions/<sub>/resourceGroups/<rg>/providers/
  Microsoft.MachineLearningServices/workspaces/<ws>` + `/api/2.0/mlflow/...`, authenticated by `Bearer <Entra token>`.
- [errors] Azure's error envelope, as quoted in Azure/azure-sdk-for-python#42155, mlflow/mlflow#15329 and #8008:
  `{"Error": {"Code": "UserError"|"ValidationError", "Message": ...}, "Correlation": ..., "statusCode": 400,
  "error_code": "INVALID_PARAMETER_VALUE"}` - no top-level `message`; a non-runs source is refused with "Model
  source from file must be in the following format: azureml://artifacts/<origin>/<container>/<artifact_prefix>.
  Provided model source: ..." (#15329).

Assumed where nothing is published (say so when a real workspace disagrees):
- a route Azure lacks (aliases, MLflow 3 logged models, registered-models/delete) answers 404 in Azure's envelope
  with no `error_code`; a missing object is 404 RESOURCE_DOES_NOT_EXIST in the same envelope;
- unsupported `attributes.*` clauses other than run_id are ignored (the rest of the filter applies);
- a runs:/ source whose directory holds no MLmodel is refused 400 ValidationError INVALID_PARAMETER_VALUE;
- a deleted version's number is not reused (the listing has gaps); version search takes `name=` and `run_id=`;
- artifacts: a real workspace gives runs `azureml://<region>.api.azureml.ms/mlflow/v2.0/.../runs/<id>/artifacts`
  (mlflow/mlflow#11103), read with azureml-mlflow's repository; here the artifact root is a `file://` directory, so
  the bot writes through MLflow's file repository and this server reads what it wrote (MLmodel checks).
"""

from __future__ import annotations

import itertools
import json
import math
import re
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.servers.fakehttp import Answer, FakeServer, Refusal, Seen

WORKSPACE = ("/mlflow/v1.0/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/standin-rg/providers/"
             "Microsoft.MachineLearningServices/workspaces/standin-ws")
_CLAUSE = re.compile(r"""^\s*(?:(?P<kind>tags|tag|params|param|metrics|metric|attributes|attribute|attr)\.)?
    (?P<key>`[^`]+`|"[^"]+"|[\w.\-]+)\s*(?P<op>!=|>=|<=|=|>|<|IN)\s*(?P<value>.+?)\s*$""", re.VERBOSE | re.I)
_KINDS = {"tags": "tag", "tag": "tag", "params": "param", "param": "param", "metrics": "metric", "metric": "metric",
          "attributes": "attributes", "attribute": "attributes", "attr": "attributes"}
_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")


def azure_error(status: int, message: str, error_code: str | None, code: str = "UserError") -> Refusal:
    """[errors] Azure's envelope; `error_code` is what the MLflow client reads."""
    body: dict[str, Any] = {
        "Error": {"Code": code, "Severity": None, "Message": message, "MessageFormat": None,
                  "MessageParameters": None, "ReferenceCode": None, "DetailsUri": None, "Target": None,
                  "Details": [], "InnerError": None, "DebugInfo": None, "AdditionalInfo": None},
        "Correlation": {"operation": uuid.uuid4().hex, "request": uuid.uuid4().hex[:16]},
        "Environment": "standin", "Location": "standin", "Time": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ComponentName": "mlflow", "statusCode": status}
    if error_code:
        body["error_code"] = error_code
    return Refusal(status, body)


def not_found(what: str) -> Refusal:
    return azure_error(404, f"{what} not found", "RESOURCE_DOES_NOT_EXIST")


def invalid(message: str, code: str = "UserError") -> Refusal:
    return azure_error(400, message, "INVALID_PARAMETER_VALUE", code)


class AzureMlflowServer(FakeServer):
    """One workspace. `token` is the Entra token it accepts now (`rotate()` expires it and issues another);
    `models_only=False` lets a version be registered from a run directory without an MLmodel (the contract suite's
    runs hold no files), everything else unchanged."""

    def __init__(self, artifact_root: Path, models_only: bool = True) -> None:
        super().__init__()
        self.root, self.models_only = artifact_root, models_only
        self.token = f"eyJ0eXAi.standin.{uuid.uuid4().hex}"
        self.expired: list[str] = []
        self.rotate_after: int | None = None  # rotate once after this many accepted requests
        self.token_file: Path | None = None  # where a rotated token is written (the token command prints it)
        self.experiments: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, dict[str, Any]] = {}
        self.models: dict[str, dict[str, Any]] = {}
        self.versions: dict[tuple[str, int], dict[str, Any]] = {}
        self._accepted = 0
        self._order = itertools.count()

    @property
    def tracking_uri(self) -> str:
        return self.origin + WORKSPACE

    def rotate(self) -> str:
        """The current token expires (401 from now on), as an Entra token does after about an hour."""
        with self.lock:
            self.expired.append(self.token)
            self.token = f"eyJ0eXAi.standin.{uuid.uuid4().hex}"
            if self.token_file is not None:
                self.token_file.write_text(self.token + "\n")
            return self.token

    serialize = True
    crash_message = "stand-in error"

    def decode(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Any:
        try:
            return json.loads(raw)
        except ValueError:
            return None  # the handler answers as Azure does for a body it cannot read

    def handle(self, seen: Seen) -> Answer:
        # [plugin] every call carries the workspace's Entra token; an expired one is refused with 401
        if seen.headers.get("authorization", "") != f"Bearer {self.token}":
            raise azure_error(401, "Authentication failed: the access token is expired or invalid.", None,
                              "AuthenticationFailed")
        self._accepted += 1
        if self.rotate_after is not None and self._accepted >= self.rotate_after:
            self.rotate_after = None
            self.rotate()  # this request still passes; the next one with the old token does not
        prefix = WORKSPACE + "/api/2.0/mlflow/"
        route = seen.path[len(prefix):] if seen.path.startswith(prefix) else ""
        handler = _ROUTES.get(route, {}).get(seen.method)
        if handler is None:
            raise azure_error(404, f"No route for {seen.method} {seen.path}", None, "NotFound")  # assumed
        seen.operation = f"{seen.method} {route}"
        fault = self.take_fault(seen.operation)
        if fault is not None:
            return fault
        args = {k: (v if k in ("experiment_ids", "order_by") else v[-1]) for k, v in seen.query.items()}
        if isinstance(seen.body, dict):
            args.update(seen.body)
        return Answer(200, handler(self, args))

    # experiments [track]: ids are GUIDs

    def _experiment(self, args: dict[str, Any]) -> dict[str, Any]:
        wanted, name = str(args.get("experiment_id") or ""), args.get("experiment_name")
        for experiment in self.experiments.values():
            if experiment["experiment_id"] == wanted or (name is not None and experiment["name"] == name):
                return experiment
        raise not_found("Experiment")

    def experiments_get(self, args: dict[str, Any]) -> Any:
        return {"experiment": self._experiment({"experiment_id": args.get("experiment_id")})}

    def experiments_get_by_name(self, args: dict[str, Any]) -> Any:
        return {"experiment": self._experiment({"experiment_name": args.get("experiment_name")})}

    def experiments_create(self, args: dict[str, Any]) -> Any:
        name = str(args.get("name") or "")
        if any(e["name"] == name for e in self.experiments.values()):
            raise azure_error(400, f"Experiment '{name}' already exists.", "RESOURCE_ALREADY_EXISTS")
        experiment_id = str(uuid.uuid4())
        location = (self.root / experiment_id).as_uri()
        self.experiments[experiment_id] = {"experiment_id": experiment_id, "name": name, "artifact_location": location,
                                           "lifecycle_stage": "active", "tags": []}
        return {"experiment_id": experiment_id}

    def experiments_search(self, args: dict[str, Any]) -> Any:
        return {"experiments": list(self.experiments.values())}

    # runs [track]

    def _run(self, args: dict[str, Any]) -> dict[str, Any]:
        found = self.runs.get(str(args.get("run_id") or args.get("run_uuid") or ""))
        if found is None:
            raise not_found("Run")
        return found

    @staticmethod
    def _run_doc(run: dict[str, Any]) -> dict[str, Any]:
        latest: dict[str, dict[str, Any]] = {}
        for point in run["metrics"]:
            if point["key"] not in latest or (point["step"], point["timestamp"]) >= (
                    latest[point["key"]]["step"], latest[point["key"]]["timestamp"]):
                latest[point["key"]] = point
        return {"info": dict(run["info"]), "data": {"metrics": [_shown(p) for p in latest.values()],
                                                     "params": _kv(run["params"]), "tags": _kv(run["tags"])}}

    def runs_create(self, args: dict[str, Any]) -> Any:
        experiment = self._experiment({"experiment_id": args.get("experiment_id")})
        run_id = str(uuid.uuid4())
        tags = {str(t["key"]): str(t.get("value", "")) for t in args.get("tags") or ()}
        name = str(args.get("run_name") or tags.get("mlflow.runName") or f"run-{run_id[:8]}")
        tags.setdefault("mlflow.runName", name)
        info = {"run_id": run_id, "run_uuid": run_id, "experiment_id": experiment["experiment_id"], "run_name": name,
                "status": "RUNNING", "start_time": int(args.get("start_time") or time.time() * 1000),
                "artifact_uri": f"{experiment['artifact_location']}/{run_id}/artifacts", "lifecycle_stage": "active"}
        self.runs[run_id] = {"info": info, "params": {}, "tags": tags, "metrics": [], "order": next(self._order)}
        return {"run": self._run_doc(self.runs[run_id])}

    def runs_get(self, args: dict[str, Any]) -> Any:
        return {"run": self._run_doc(self._run(args))}

    def runs_update(self, args: dict[str, Any]) -> Any:
        run = self._run(args)
        if args.get("status") in _STATUSES:
            run["info"]["status"] = args["status"]
        if args.get("end_time") is not None:
            run["info"]["end_time"] = int(args["end_time"])
        return {"run_info": dict(run["info"])}

    def runs_log_batch(self, args: dict[str, Any]) -> Any:
        run = self._run(args)
        params = {str(p["key"]): str(p.get("value", "")) for p in args.get("params") or ()}
        changed = [k for k, v in params.items() if k in run["params"] and run["params"][k] != v]
        if changed:  # as MLflow: a param is written once, and the whole batch is refused
            raise invalid(f"Changing param values is not allowed. Params with key='{changed[0]}' was already logged.")
        run["params"].update(params)
        run["tags"].update({str(t["key"]): str(t.get("value", "")) for t in args.get("tags") or ()})
        for metric in args.get("metrics") or ():
            point = {"key": str(metric["key"]), "value": float(metric["value"]), "timestamp": int(metric["timestamp"]),
                     "step": int(metric.get("step") or 0)}
            if point not in run["metrics"]:
                run["metrics"].append(point)
        return {}

    def runs_search(self, args: dict[str, Any]) -> Any:
        ids = [str(i) for i in args.get("experiment_ids") or ()]
        clauses = [_clause(part) for part in re.split(r"\s+and\s+", str(args.get("filter") or ""), flags=re.I)
                   if part.strip()]
        runs = [r for r in self.runs.values() if r["info"]["experiment_id"] in ids and all(
            _matches(r, c) for c in clauses)]
        order = (args.get("order_by") or ["start_time DESC"])[0].split()
        column = order[0].split(".", 1)[-1].strip("`")
        if column not in ("start_time", "end_time"):  # ordering by run fields only
            column = "start_time"
        descending = len(order) < 2 or order[1].upper() == "DESC"
        runs.sort(key=lambda r: (r["info"].get(column) or 0, r["order"]), reverse=descending)
        page, token = _page(runs, args)
        return {"runs": [self._run_doc(r) for r in page], **({"next_page_token": token} if token else {})}

    def metrics_get_history(self, args: dict[str, Any]) -> Any:
        run = self._run(args)
        points = [_shown(p) for p in run["metrics"] if p["key"] == args.get("metric_key")]
        return {"metrics": points}

    # registered models [models]: created and read, never deleted or renamed

    def _model(self, name: Any) -> dict[str, Any]:
        model = self.models.get(str(name or ""))
        if model is None:
            raise not_found(f"Model {name}")
        return model

    def _model_doc(self, model: dict[str, Any]) -> dict[str, Any]:
        mine = [v for (n, _), v in self.versions.items() if n == model["name"]]
        latest = max(mine, key=lambda v: int(v["version"])) if mine else None
        return {"name": model["name"], "creation_timestamp": model["created"], "description": model["description"],
                "last_updated_timestamp": model["created"], "tags": _kv(model["tags"]),
                "latest_versions": [dict(latest)] if latest else []}

    def models_create(self, args: dict[str, Any]) -> Any:
        name = str(args.get("name") or "")
        if not name or "/" in name or ":" in name:
            raise invalid(f"Invalid model name '{name}': names cannot contain '/' or ':'.", "ValidationError")
        if name in self.models:
            raise azure_error(400, f"Model {name} already exists.", "RESOURCE_ALREADY_EXISTS")
        self.models[name] = {"name": name, "description": str(args.get("description") or ""), "next": 1,
                             "tags": {str(t["key"]): str(t.get("value", "")) for t in args.get("tags") or ()},
                             "created": int(time.time() * 1000)}
        return {"registered_model": self._model_doc(self.models[name])}

    def models_get(self, args: dict[str, Any]) -> Any:
        return {"registered_model": self._model_doc(self._model(args.get("name")))}

    # model versions [models]

    def _version(self, name: Any, version: Any) -> dict[str, Any]:
        found = self.versions.get((str(name or ""), int(version)) if str(version or "").isdigit() else ("", 0))
        if found is None:
            raise not_found(f"Model version {name}:{version}")
        return found

    def versions_create(self, args: dict[str, Any]) -> Any:
        model = self._model(args.get("name"))
        source = str(args.get("source") or "")
        match = re.match(r"^runs:/([^/]+)/(.+)$", source)
        if match is None:  # [models] footnote 1, and the answer quoted in mlflow/mlflow#15329
            raise invalid("Model source from file must be in the following format: azureml://artifacts/<origin>/"
                          f"<container>/<artifact_prefix>. Provided model source: {source}", "ValidationError")
        run = self._run({"run_id": match.group(1)})
        directory = Path(urlsplit(run["info"]["artifact_uri"]).path) / match.group(2)
        if self.models_only and not (directory / "MLmodel").is_file():  # [models] "not in MLflow format": assumed text
            raise invalid(f"The model source {source} is not an MLflow model: no MLmodel file was found in it. Only "
                          "models in MLflow format can be registered with MLflow.", "ValidationError")
        number = model["next"]
        model["next"] += 1
        now = int(time.time() * 1000)
        doc = {"name": model["name"], "version": str(number), "creation_timestamp": now, "last_updated_timestamp": now,
               "current_stage": "None", "description": str(args.get("description") or ""), "source": source,
               "run_id": str(args.get("run_id") or match.group(1)), "status": "READY", "run_link": "",
               "tags": [{"key": str(t["key"]), "value": str(t.get("value", ""))} for t in args.get("tags") or ()]}
        self.versions[(model["name"], number)] = doc
        return {"model_version": dict(doc)}

    def versions_get(self, args: dict[str, Any]) -> Any:
        return {"model_version": dict(self._version(args.get("name"), args.get("version")))}

    def versions_update(self, args: dict[str, Any]) -> Any:
        version = self._version(args.get("name"), args.get("version"))
        if args.get("description") is not None:
            version["description"] = str(args["description"])
        return {"model_version": dict(version)}

    def versions_delete(self, args: dict[str, Any]) -> Any:
        version = self._version(args.get("name"), args.get("version"))
        del self.versions[(version["name"], int(version["version"]))]
        return {}

    def versions_set_tag(self, args: dict[str, Any]) -> Any:
        version = self._version(args.get("name"), args.get("version"))
        tags = [t for t in version["tags"] if t["key"] != args.get("key")]
        version["tags"] = [*tags, {"key": str(args.get("key")), "value": str(args.get("value", ""))}]
        return {}

    def versions_delete_tag(self, args: dict[str, Any]) -> Any:
        version = self._version(args.get("name"), args.get("version"))
        version["tags"] = [t for t in version["tags"] if t["key"] != args.get("key")]
        return {}

    def versions_search(self, args: dict[str, Any]) -> Any:
        wanted: dict[str, str] = {}
        for part in re.split(r"\s+and\s+", str(args.get("filter") or ""), flags=re.I):
            found = re.match(r"""^\s*(name|run_id)\s*=\s*(['"])(.*)\2\s*$""", part)
            if part.strip() and found is None:  # assumed: what its matrix does not name is refused
                raise invalid(f"Currently unsupported filter string format. Provided filter string: {part.strip()}")
            if found:
                wanted[found.group(1)] = found.group(3)
        docs = [v for v in self.versions.values() if all(v[k] == value for k, value in wanted.items())]
        docs.sort(key=lambda v: int(v["version"]), reverse=True)
        page, token = _page(docs, args)
        return {"model_versions": [dict(v) for v in page], **({"next_page_token": token} if token else {})}


def _kv(mapping: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in mapping.items()]


def _shown(point: dict[str, Any]) -> dict[str, Any]:
    value = point["value"]
    return {**point, "value": "NaN" if math.isnan(value) else value}


def _clause(text: str) -> tuple[str, str, str, Any]:
    match = _CLAUSE.match(text)
    if match is None or " or " in text.lower():
        raise invalid(f"Currently unsupported filter string format (we currently do not support OR). Provided "
                      f"filter string: {text.strip()}")
    kind = _KINDS[(match["kind"] or "attributes").lower()]
    key, op, raw = match["key"].strip('`"'), match["op"].upper(), match["value"]
    if kind == "tag" and op == "!=":
        raise invalid(f"Currently unsupported filter string format. Provided filter string: {text.strip()}")
    if op == "IN":
        return kind, key, op, re.findall(r"'([^']*)'", raw)
    return kind, key, op, raw[1:-1] if raw[:1] in "'\"" else float(raw)


def _matches(run: dict[str, Any], clause: tuple[str, str, str, Any]) -> bool:
    kind, key, op, value = clause
    if kind == "attributes":
        if key != "run_id":
            return True  # [track] filtering by attributes is not supported: assumed ignored, not refused
        return run["info"]["run_id"] in value if op == "IN" else (run["info"]["run_id"] == value) == (op == "=")
    if kind == "metric":
        points = [p for p in run["metrics"] if p["key"] == key]
        if not points:
            return False
        actual: Any = max(points, key=lambda p: (p["step"], p["timestamp"]))["value"]
        value = float(value)
    else:
        actual = (run["params"] if kind == "param" else run["tags"]).get(key)
        if actual is None:
            return False
    outcomes = {"=": actual == value, "!=": actual != value}
    if op in outcomes:
        return outcomes[op]
    if not isinstance(actual, float):
        return False
    return {">": actual > value, ">=": actual >= value, "<": actual < value, "<=": actual <= value}[op]


def _page(items: list[Any], args: dict[str, Any]) -> tuple[list[Any], str | None]:
    size = int(args.get("max_results") or 1000)
    start = int(args.get("page_token") or 0)
    return items[start:start + size], str(start + size) if start + size < len(items) else None


_S = AzureMlflowServer
# path below .../workspaces/<ws>/api/2.0/mlflow/ -> method -> handler; anything else is 404 (assumed shape)
_ROUTES: dict[str, dict[str, Any]] = {
    "experiments/get": {"GET": _S.experiments_get},
    "experiments/get-by-name": {"GET": _S.experiments_get_by_name},
    "experiments/create": {"POST": _S.experiments_create},
    "experiments/search": {"POST": _S.experiments_search, "GET": _S.experiments_search},
    "runs/create": {"POST": _S.runs_create},
    "runs/get": {"GET": _S.runs_get},
    "runs/update": {"POST": _S.runs_update},
    "runs/log-batch": {"POST": _S.runs_log_batch},
    "runs/search": {"POST": _S.runs_search},
    "metrics/get-history": {"GET": _S.metrics_get_history},
    # [models]: no registered-models/delete or rename, no registered-models/alias (aliases are not in the matrix)
    "registered-models/create": {"POST": _S.models_create},
    "registered-models/get": {"GET": _S.models_get},
    "model-versions/create": {"POST": _S.versions_create},
    "model-versions/get": {"GET": _S.versions_get},
    "model-versions/update": {"PATCH": _S.versions_update},
    "model-versions/delete": {"DELETE": _S.versions_delete},
    "model-versions/set-tag": {"POST": _S.versions_set_tag},
    "model-versions/delete-tag": {"DELETE": _S.versions_delete_tag},
    "model-versions/search": {"GET": _S.versions_search},
}


def start(artifact_root: Path, models_only: bool = True) -> AzureMlflowServer:
    artifact_root.mkdir(parents=True, exist_ok=True)
    return AzureMlflowServer(artifact_root, models_only).start()
