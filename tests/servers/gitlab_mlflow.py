"""A local stand-in for GitLab's MLflow-compatible API (`/api/v4/projects/:id/ml/mlflow/api/2.0/mlflow/`) and the
ml_model package files a run's artifact URI points to, built route by route from GitLab's source (gitlabhq/gitlabhq:
lib/api/ml/mlflow/*.rb, lib/api/entities/ml/mlflow/*.rb, lib/api/ml_model_packages.rb, app/services/ml/*,
app/models/ml/*) and doc/user/project/ml/experiment_tracking/mlflow_client.md. Threaded, in memory, on 127.0.0.1.

What GitLab answers, it answers here, and what GitLab lacks is missing here in the way GitLab lacks it:
- a route Grape does not have is `404 {"error": "404 Not Found"}`; a path it has under another method is
  `405 {"error": "405 Not Allowed"}` (no MLflow error_code either way): no model-versions/search, set-tag,
  delete-tag, no POST/DELETE registered-models/alias, no mlflow-artifacts listing of a run;
- MLflow errors are `{"error_code": ...}` with 404 (RESOURCE_DOES_NOT_EXIST) or 400 (the others), as
  lib/api/ml/mlflow/api_helpers.rb renders them; a missing required parameter is Grape's `400 {"error": "x is
  missing"}`;
- `runs/search` reads one experiment id, no filter, and orders by its own columns only (runs.rb);
- a run tag and a run param are written once (app/models/ml/candidate_metadata.rb validates uniqueness; the
  unique indexes refuse a second insert_all row); a tag value may not be empty through set-tag;
- a model version's `version` is its database id, its semantic version is in `aliases`, and it is fetched by the
  semantic version (entities/ml/mlflow/model_version.rb, app/models/ml/model_version.rb); `source` and `run_id`
  are not kept from the create (a version makes its own run); timestamps of models and versions are seconds;
- a run's artifact_uri is `<origin>/api/v4/projects/:id/packages/ml_models/candidate:<iid>/files/`
  (entities/ml/mlflow/run_info.rb); files are PUT one at a time with a name matching
  `[A-Za-z0-9._\\-+ ]+` (Gitlab::Regex.ml_model_file_name_regex), and a file stored under a directory cannot be
  fetched again (ml_model_packages.rb looks it up URL-encoded).
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from tests.servers.fakehttp import Answer, FakeServer, Refusal, Seen

TOKEN = "glpat-standin-token"
_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
_FILE_NAME = re.compile(r"^[A-Za-z0-9._\-+ ]+$")  # Gitlab::Regex.ml_model_file_name_regex
_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")  # Ml::Candidate.statuses, upcased


def mlflow_error(code: str, message: str | None = None) -> Refusal:
    # api_helpers.rb: resource_not_found! 404, the others 400; the message key only where GitLab sets one.
    body: dict[str, Any] = {"error_code": code}
    if message is not None:
        body["message"] = message
    return Refusal(404 if code == "RESOURCE_DOES_NOT_EXIST" else 400, body)


def missing(name: str) -> Refusal:
    return Refusal(400, {"error": f"{name} is missing"})  # Grape's `requires`


@dataclass
class Candidate:
    eid: str
    iid: int
    experiment: int  # iid
    start_time: int
    name: str
    created: int  # order of creation
    status: str = "running"
    end_time: int | None = None
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    model_version_id: int | None = None


@dataclass
class Version:
    id: int
    model: str
    version: str  # semver
    description: str
    candidate: str  # eid
    created_at: int  # seconds
    metadata: dict[str, str] = field(default_factory=dict)


class GitLabMlflowServer(FakeServer):
    """GitLab's MLflow API for one project (`project_id`); `MLFLOW_TRACKING_TOKEN=TOKEN`."""

    def __init__(self, project_id: int = 7, project_path: str = "group/project") -> None:
        super().__init__()
        self.project_id, self.project_path = project_id, project_path
        self.experiments: dict[int, dict[str, Any]] = {}
        self.candidates: dict[str, Candidate] = {}
        self.models: dict[str, dict[str, Any]] = {}
        self.versions: dict[int, Version] = {}
        self.packages: dict[str, dict[str, list[bytes]]] = {}  # "candidate:<iid>" or "<version id>" -> files
        self._experiment_iids = itertools.count(1)
        self._candidate_iids = itertools.count(1)
        self._db_ids = itertools.count(4001, 13)  # database ids: shared by the whole instance, never 1, 2, 3
        self._order = itertools.count()

    @property
    def tracking_uri(self) -> str:
        return f"{self.origin}/api/v4/projects/{self.project_id}/ml/mlflow"

    # plumbing: raw bodies for package files, JSON for the rest

    serialize = True
    crash_message = "500 Internal Server Error"

    def decode(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Any:
        if "/packages/" in path:
            return raw  # package files are bytes
        try:
            return json.loads(raw)
        except ValueError:
            return None

    def handle(self, seen: Seen) -> Answer:
        if (seen.headers.get("authorization", "") != f"Bearer {TOKEN}"
                and seen.headers.get("private-token", "") != TOKEN):
            return Answer(401, {"message": "401 Unauthorized"})  # APIGuard
        fault = self.take_fault(seen.path)
        if fault is not None:
            return fault
        project = f"/api/v4/projects/{self.project_id}"
        if seen.path.startswith(project + "/packages/ml_models/"):
            return self._package(seen, seen.path[len(project + "/packages/ml_models/"):])
        prefix = project + "/ml/mlflow/api/2.0/mlflow/"
        if not seen.path.startswith(prefix):
            return Answer(404, {"error": "404 Not Found"})
        route = seen.path[len(prefix):]
        handlers = _ROUTES.get(route)
        if handlers is None:
            return Answer(404, {"error": "404 Not Found"})  # Grape: no such route
        handler = handlers.get(seen.method)
        if handler is None:
            return Answer(405, {"error": "405 Not Allowed"}, {"Allow": ", ".join(sorted(handlers))})
        seen.operation = f"{seen.method} {route}"
        args = {k: v[-1] for k, v in seen.query.items()}
        if isinstance(seen.body, dict):
            args.update(seen.body)
        return Answer(200, handler(self, args))  # entrypoint.rb: `status 200` for every answer

    # experiments.rb

    def _experiment(self, args: dict[str, Any]) -> dict[str, Any]:
        iid, name = str(args.get("experiment_id") or ""), str(args.get("experiment_name") or "")
        for experiment in self.experiments.values():
            if (iid and str(experiment["iid"]) == iid) or (not iid and name and experiment["name"] == name):
                return experiment
        raise mlflow_error("RESOURCE_DOES_NOT_EXIST")

    @staticmethod
    def _experiment_doc(experiment: dict[str, Any]) -> dict[str, Any]:
        # entities/ml/mlflow/experiment.rb: artifact_location is the string 'not_implemented'
        return {"experiment_id": str(experiment["iid"]), "name": experiment["name"], "lifecycle_stage": "active",
                "artifact_location": "not_implemented", "tags": _kv(experiment["tags"])}

    def experiments_get(self, args: dict[str, Any]) -> Any:
        return {"experiment": self._experiment_doc(self._experiment({"experiment_id": args.get("experiment_id")}))}

    def experiments_get_by_name(self, args: dict[str, Any]) -> Any:
        return {"experiment": self._experiment_doc(self._experiment({"experiment_name": args.get("experiment_name")}))}

    def experiments_create(self, args: dict[str, Any]) -> Any:
        name = _required(args, "name")
        if any(e["name"] == name for e in self.experiments.values()):
            raise mlflow_error("RESOURCE_ALREADY_EXISTS")
        return {"experiment_id": str(self._new_experiment(name)["iid"])}

    def _new_experiment(self, name: str) -> dict[str, Any]:
        iid = next(self._experiment_iids)
        self.experiments[iid] = {"iid": iid, "name": name, "tags": {}}
        return self.experiments[iid]

    def experiments_search(self, args: dict[str, Any]) -> Any:
        # `filter` is accepted and ignored; ordered by created_at DESC
        docs = [self._experiment_doc(e) for e in sorted(self.experiments.values(), key=lambda e: -e["iid"])]
        page, token = _page(docs, args, 200)
        return {"experiments": page, "next_page_token": token}

    def experiments_list(self, args: dict[str, Any]) -> Any:
        return {"experiments": [self._experiment_doc(e) for e in self.experiments.values()]}

    # runs.rb

    def _candidate(self, args: dict[str, Any]) -> Candidate:
        found = self.candidates.get(str(_required(args, "run_id")))
        if found is None:
            raise mlflow_error("RESOURCE_DOES_NOT_EXIST")
        return found

    def _run_doc(self, candidate: Candidate) -> dict[str, Any]:
        # entities/ml/mlflow/run.rb and run_info.rb
        info: dict[str, Any] = {
            "run_id": candidate.eid, "run_uuid": candidate.eid, "experiment_id": str(candidate.experiment),
            "start_time": candidate.start_time or 0, "status": candidate.status.upper(),
            "artifact_uri": self._artifact_uri(candidate), "lifecycle_stage": "active", "user_id": "1"}
        if candidate.end_time is not None:
            info["end_time"] = candidate.end_time
        if candidate.name:
            info["run_name"] = candidate.name
        return {"info": info, "data": {"metrics": [dict(m) for m in candidate.metrics], "params": _kv(candidate.params),
                                       "tags": _kv(candidate.tags)}}

    def _artifact_uri(self, candidate: Candidate) -> str:
        package = str(candidate.model_version_id) if candidate.model_version_id else f"candidate:{candidate.iid}"
        return f"{self.origin}/api/v4/projects/{self.project_id}/packages/ml_models/{package}/files/"

    def runs_create(self, args: dict[str, Any]) -> Any:
        experiment = self._experiment({"experiment_id": _required(args, "experiment_id")})
        tags = _pairs(args.get("tags"))
        name = str(args.get("run_name") or "") or next((v for k, v in tags if k == "mlflow.runName"), "")
        candidate = self._new_candidate(experiment["iid"], int(args.get("start_time") or 0),
                                        name or f"run-{uuid.uuid4().hex[:6]}")
        self._insert_tags(candidate, tags)
        return {"run": self._run_doc(candidate)}

    def _new_candidate(self, experiment: int, start_time: int, name: str) -> Candidate:
        candidate = Candidate(uuid.uuid4().hex, next(self._candidate_iids), experiment, start_time, name,
                              next(self._order))
        self.candidates[candidate.eid] = candidate
        return candidate

    def runs_get(self, args: dict[str, Any]) -> Any:
        return {"run": self._run_doc(self._candidate(args))}

    def runs_search(self, args: dict[str, Any]) -> Any:
        ids = args.get("experiment_ids")
        if not ids:
            raise missing("experiment_ids")
        experiment = self._experiment({"experiment_id": ids[0]})  # only the first experiment id is read
        runs = [c for c in self.candidates.values() if c.experiment == experiment["iid"]]
        order = str(args.get("order_by") or "created_at DESC").split()
        column, descending = order[0], len(order) > 1 and order[1].upper() == "DESC"
        if column.startswith("metrics."):
            key = column.split(".", 1)[1]
            runs.sort(key=lambda c: max((m["value"] for m in c.metrics if m["key"] == key), default=float("-inf")),
                      reverse=descending)
        elif column == "name":
            runs.sort(key=lambda c: c.name, reverse=descending)
        else:  # created_at, and anything it does not know (candidates_order_params: order_by nil)
            runs.sort(key=lambda c: c.created, reverse=descending or "." in column)
        page, token = _page([self._run_doc(c) for c in runs], args, 200)
        return {"runs": page, "next_page_token": token}

    def runs_update(self, args: dict[str, Any]) -> Any:
        candidate = self._candidate(args)
        status = args.get("status")
        if status is not None and status not in _STATUSES:
            raise Refusal(400, {"error": "status does not have a valid value"})
        if status:
            candidate.status = str(status).lower()
        if args.get("end_time"):
            candidate.end_time = int(args["end_time"])
        return {"run_info": self._run_doc(candidate)["info"]}

    def runs_log_batch(self, args: dict[str, Any]) -> Any:
        # add_metrics, then add_params, then add_tags: three inserts, no transaction around them
        candidate = self._candidate(args)
        for metric in args.get("metrics") or ():
            for key in ("key", "value", "timestamp"):
                if key not in metric:
                    raise missing(f"metrics[{key}]")
            candidate.metrics.append({"key": metric["key"], "value": _float(metric["value"]),
                                      "timestamp": int(metric["timestamp"]), "step": int(metric.get("step") or 0)})
        self._insert(candidate.params, _pairs(args.get("params")), "index_ml_candidate_params_on_candidate_id_on_name")
        self._insert_tags(candidate, _pairs(args.get("tags")))
        return {}

    def _insert_tags(self, candidate: Candidate, tags: list[tuple[str, str]]) -> None:
        self._insert(candidate.tags, tags, "index_ml_candidate_metadata_on_candidate_id_and_name")

    @staticmethod
    def _insert(into: dict[str, str], pairs: list[tuple[str, str]], index: str) -> None:
        names = [k for k, _ in pairs]
        if any(k in into for k in names) or len(set(names)) != len(names):
            # rescue_from ActiveRecord::ActiveRecordError -> invalid_parameter!(e.message)
            raise mlflow_error("INVALID_PARAMETER_VALUE", "PG::UniqueViolation: ERROR:  duplicate key value "
                                                          f'violates unique constraint "{index}"')
        into.update(pairs)

    def runs_set_tag(self, args: dict[str, Any]) -> Any:
        candidate = self._candidate(args)
        key, value = _required(args, "key"), _required(args, "value")
        if key in candidate.tags:
            raise mlflow_error("INVALID_PARAMETER_VALUE", f"Validation failed: Name '{key}' already taken")
        if not value:
            raise mlflow_error("INVALID_PARAMETER_VALUE", "Validation failed: Value can't be blank")
        candidate.tags[str(key)] = str(value)
        return {}

    def runs_log_parameter(self, args: dict[str, Any]) -> Any:
        candidate = self._candidate(args)
        self._insert(candidate.params, [(str(_required(args, "key")), str(_required(args, "value")))],
                     "index_ml_candidate_params_on_candidate_id_on_name")
        return {}

    def runs_log_metric(self, args: dict[str, Any]) -> Any:
        self.runs_log_batch({"run_id": args.get("run_id"), "metrics": [args]})
        return {}

    def runs_delete(self, args: dict[str, Any]) -> Any:
        del self.candidates[self._candidate(args).eid]
        return {}

    # metrics.rb

    def metrics_get_history(self, args: dict[str, Any]) -> Any:
        candidate = self._candidate(args)
        key = _required(args, "metric_key")
        points = [dict(m) for m in candidate.metrics if m["key"] == key]
        page, token = _page(points, args, 1000)
        return {"metrics": page, "next_page_token": token}

    # registered_models.rb

    def _model(self, name: Any) -> dict[str, Any]:
        model = self.models.get(str(name or ""))
        if model is None:
            raise mlflow_error("RESOURCE_DOES_NOT_EXIST")  # find_model
        return model

    def _model_doc(self, model: dict[str, Any]) -> dict[str, Any]:
        # entities/ml/mlflow/registered_model.rb: `expose :versions, as: :latest_versions` with no entity, so each
        # version is its record's JSON (version = the semantic version here); timestamps in seconds
        records = [{"id": v.id, "model_id": model["id"], "project_id": self.project_id, "version": v.version,
                    "description": v.description, "created_at": _iso(v.created_at), "updated_at": _iso(v.created_at)}
                   for v in self.versions.values() if v.model == model["name"]]
        return {"name": model["name"], "creation_timestamp": model["created_at"],
                "last_updated_timestamp": model["created_at"], "description": model["description"], "user_id": "1",
                "tags": _kv(model["metadata"]), "latest_versions": records}

    def models_create(self, args: dict[str, Any]) -> Any:
        name = _required(args, "name")
        # an invalid name (Gitlab::Regex.ml_model_name_regex) is a RecordInvalid, which the route answers as
        # RESOURCE_ALREADY_EXISTS, like a taken name
        if (name in self.models or any(e["name"] == name for e in self.experiments.values())
                or "/" in name or ":" in name):
            raise mlflow_error("RESOURCE_ALREADY_EXISTS")
        experiment = self._new_experiment(f"[model]{name}")  # every model has an experiment of its own
        self.models[name] = {"id": next(self._db_ids), "name": name, "description": str(args.get("description") or ""),
                             "metadata": dict(_pairs(args.get("tags"))), "created_at": int(time.time()),
                             "experiment": experiment["iid"]}
        return {"registered_model": self._model_doc(self.models[name])}

    def models_get(self, args: dict[str, Any]) -> Any:
        return {"registered_model": self._model_doc(self._model(args.get("name")))}

    def models_update(self, args: dict[str, Any]) -> Any:
        model = self._model(args.get("name"))
        if args.get("description") is not None:
            model["description"] = str(args["description"])
        return {"registered_model": self._model_doc(model)}

    def models_delete(self, args: dict[str, Any]) -> Any:
        model = self._model(args.get("name"))
        del self.models[model["name"]]
        for version in [v for v in self.versions.values() if v.model == model["name"]]:
            del self.versions[version.id]
        return {}

    def models_latest(self, args: dict[str, Any]) -> Any:
        model = self._model(args.get("name"))
        latest = self._latest(model["name"])
        return {"model_versions": [self._version_doc(latest)] if latest else [None]}

    def models_search(self, args: dict[str, Any]) -> Any:
        wanted = str(args.get("filter") or "")
        if wanted and not wanted.startswith("name="):
            raise mlflow_error("INVALID_PARAMETER_VALUE", "Invalid attribute key specified. Valid keys are '{'name'}'")
        name = wanted.split("=", 1)[1].strip("'\"") if wanted else None
        docs = [self._model_doc(m) for n, m in sorted(self.models.items()) if name is None or n == name]
        page, token = _page(docs, args, 200)
        return {"registered_models": page, "next_page_token": token}

    def models_alias(self, args: dict[str, Any]) -> Any:
        # GET only: find_model_version(project, name, alias), which looks the alias up as a semantic version
        return {"model_version": self._version_doc(self._find_version(args.get("name"), args.get("alias")))}

    # model_versions.rb

    def _find_version(self, name: Any, version: Any) -> Version:
        for found in self.versions.values():
            if found.model == str(name or "") and found.version == str(version or ""):
                return found
        raise mlflow_error("RESOURCE_DOES_NOT_EXIST")

    def _latest(self, name: str) -> Version | None:
        mine = [v for v in self.versions.values() if v.model == name]
        return max(mine, key=lambda v: tuple(int(p) for p in v.version.split("."))) if mine else None

    def _version_doc(self, version: Version) -> dict[str, Any]:
        model = self.models[version.model]
        return {"name": version.model, "version": str(version.id), "creation_timestamp": version.created_at,
                "last_updated_timestamp": version.created_at, "user_id": None, "current_stage": "development",
                "description": version.description,
                "source": f"{self.origin}/{self.project_path}/-/ml/models/{model['id']}/versions/{version.id}",
                "run_id": version.candidate, "status": "READY", "status_message": "",
                "tags": _kv(version.metadata), "run_link": "", "aliases": [version.version]}

    def versions_create(self, args: dict[str, Any]) -> Any:
        model = self._model(args.get("name"))
        metadata = _pairs(args.get("tags"))
        custom = next((v for k, v in metadata if k == "gitlab.version"), None)
        latest = self._latest(model["name"])
        semver = custom or (f"{int(latest.version.split('.')[0]) + 1}.0.0" if latest else "1.0.0")
        if not _SEMVER.match(semver):
            raise mlflow_error("INVALID_PARAMETER_VALUE", "Version must be semantic version")
        if any(v.model == model["name"] and v.version == semver for v in self.versions.values()):
            raise mlflow_error("INVALID_PARAMETER_VALUE", "Validation failed: Version has already been taken")
        if any(not value for _, value in metadata):
            raise mlflow_error("INVALID_PARAMETER_VALUE", "Validation failed: Value can't be blank")
        run_id = args.get("run_id")
        if run_id:  # create_model_version_service.rb: only a run of the model's own experiment, not yet versioned
            candidate = self.candidates.get(str(run_id))
            if candidate is None:
                raise mlflow_error("INVALID_PARAMETER_VALUE", "Run not found")
            if candidate.model_version_id:
                raise mlflow_error("INVALID_PARAMETER_VALUE", "Run has already a model version")
            if candidate.experiment != model["experiment"]:
                raise mlflow_error("INVALID_PARAMETER_VALUE", "Run's experiment does not belong to this model")
        else:
            candidate = self._new_candidate(model["experiment"], 0, f"{model['name']}/{semver}")
        version = Version(next(self._db_ids), model["name"], semver, str(args.get("description") or ""),
                          candidate.eid, int(time.time()), dict(metadata))
        candidate.model_version_id = version.id
        self.packages[str(version.id)] = self.packages.pop(f"candidate:{candidate.iid}", {})
        self.versions[version.id] = version
        return {"model_version": self._version_doc(version)}

    def versions_get(self, args: dict[str, Any]) -> Any:
        name, version = _required(args, "name"), _required(args, "version")
        return {"model_version": self._version_doc(self._find_version(name, version))}

    def versions_update(self, args: dict[str, Any]) -> Any:
        if not (args.get("name") and args.get("version") and args.get("description")):
            raise mlflow_error("INVALID_PARAMETER_VALUE")
        try:
            version = self._find_version(args["name"], args["version"])
        except Refusal:
            raise mlflow_error("UPDATE_FAILED") from None
        if len(str(args["description"])) > 10_000:  # app/models/ml/model_version.rb
            raise mlflow_error("UPDATE_FAILED")
        version.description = str(args["description"])
        return {"model_version": self._version_doc(version)}

    def versions_download_uri(self, args: dict[str, Any]) -> Any:
        _required(args, "name")
        return {"artifact_uri": f"mlflow-artifacts:/{_required(args, 'version')}"}

    # ml_model_packages.rb: PUT/GET :id/packages/ml_models/:model_version_id/files/(*path/):file_name

    def _package(self, seen: Seen, rest: str) -> Answer:
        package, _, files = rest.partition("/files/")
        segments = [unquote(s) for s in files.split("/")] if files else []
        if not segments or not segments[-1]:
            return Answer(404, {"error": "404 Not Found"})
        file_name = segments[-1]
        if not _FILE_NAME.match(file_name) or file_name in (".", ".."):
            return Answer(400, {"error": "file_name is invalid"})
        package = unquote(package)
        if package.startswith("candidate:"):
            known = any(str(c.iid) == package[len("candidate:"):] for c in self.candidates.values())
        else:
            known = package.isdigit() and int(package) in self.versions
        if not known:
            return Answer(404, {"message": "404 Not found"})
        seen.operation = f"{seen.method} package file"
        stored = self.packages.setdefault(package, {})
        if seen.method == "PUT":
            content = seen.body if isinstance(seen.body, bytes) else b""
            stored.setdefault("/".join(segments), []).append(content)  # a second upload of a name is a new file
            return Answer(201, {"message": "201 Created"})
        if seen.method == "GET":
            # the file is looked up by the URL-encoded path: a file uploaded under a directory is never found
            versions = stored.get(file_name if len(segments) == 1 else quote("/".join(segments), safe=""))
            if not versions:
                return Answer(404, {"message": "404 Not found"})
            return Answer(200, versions[-1])
        return Answer(405, {"error": "405 Not Allowed"}, {"Allow": "GET, PUT"})


def _required(args: dict[str, Any], name: str) -> Any:
    if args.get(name) in (None, ""):
        raise missing(name)
    return args[name]


def _pairs(items: Any) -> list[tuple[str, str]]:
    return [(str(i["key"]), str(i.get("value", ""))) for i in items or () if isinstance(i, dict) and "key" in i]


def _kv(mapping: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in mapping.items()]


def _float(value: Any) -> float:
    return float(value)


def _iso(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(seconds))


def _page(items: list[Any], args: dict[str, Any], default: int) -> tuple[list[Any], str | None]:
    """keyset_paginate: an opaque cursor, none after the last page."""
    size = min(int(args.get("max_results") or default), 1000)
    token = str(args.get("page_token") or "")
    start = int(base64.urlsafe_b64decode(token.encode()).decode()) if token else 0
    after = start + size
    return items[start:after], base64.urlsafe_b64encode(str(after).encode()).decode() if after < len(items) else None


_S = GitLabMlflowServer
# path below .../api/2.0/mlflow/ -> method -> handler; what is not here answers as Grape does (404, or 405)
_ROUTES: dict[str, dict[str, Any]] = {
    # lib/api/ml/mlflow/experiments.rb
    "experiments/get": {"GET": _S.experiments_get},
    "experiments/get-by-name": {"GET": _S.experiments_get_by_name},
    "experiments/list": {"GET": _S.experiments_list},
    "experiments/search": {"POST": _S.experiments_search},
    "experiments/create": {"POST": _S.experiments_create},
    # lib/api/ml/mlflow/runs.rb
    "runs/create": {"POST": _S.runs_create},
    "runs/get": {"GET": _S.runs_get},
    "runs/search": {"POST": _S.runs_search},
    "runs/update": {"POST": _S.runs_update},
    "runs/log-metric": {"POST": _S.runs_log_metric},
    "runs/log-parameter": {"POST": _S.runs_log_parameter},
    "runs/set-tag": {"POST": _S.runs_set_tag},
    "runs/log-batch": {"POST": _S.runs_log_batch},
    "runs/delete": {"POST": _S.runs_delete},
    # lib/api/ml/mlflow/metrics.rb
    "metrics/get-history": {"GET": _S.metrics_get_history},
    # lib/api/ml/mlflow/registered_models.rb
    "registered-models/create": {"POST": _S.models_create},
    "registered-models/get": {"GET": _S.models_get},
    "registered-models/update": {"PATCH": _S.models_update},
    "registered-models/get-latest-versions": {"POST": _S.models_latest},
    "registered-models/delete": {"DELETE": _S.models_delete},
    "registered-models/search": {"GET": _S.models_search},
    "registered-models/alias": {"GET": _S.models_alias},
    # lib/api/ml/mlflow/model_versions.rb
    "model-versions/create": {"POST": _S.versions_create},
    "model-versions/get-download-uri": {"GET": _S.versions_download_uri},
    "model-versions/get": {"GET": _S.versions_get},
    "model-versions/update": {"PATCH": _S.versions_update},
}


def start() -> GitLabMlflowServer:
    return GitLabMlflowServer().start()
