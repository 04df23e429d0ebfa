"""A run's model directory recorded as an MLflow 3 Logged Model, the way `mlflow.<flavor>.log_model` does it.

MLflow 3 links a registered version to a Logged Model (`model_id`): `mlflow.models.get_model_info`, the UI's
model pages and `models:/<name>@<alias>` read the version through it. What `Model.log` does, over REST:

1. `POST logged-models` {experiment_id, name, source_run_id, params (the run's, 100 at most per request; the
   rest `POST logged-models/<id>/params`), tags}: a PENDING model whose `artifact_uri` the server chooses
   (`mlflow-artifacts:/<exp>/models/<id>/artifacts` behind the proxy, `<experiment location>/models/...`
   otherwise);
2. `POST runs/outputs` {run_id, models: [{model_id, step}]}: the run page lists it (each call adds a row);
3. the model's files uploaded to that `artifact_uri` (here through RunArtifacts.store_for, the one guard);
4. `PATCH logged-models/<id>` {model_id, status: LOGGED_MODEL_READY}.

A version is then created with `model_id` and `source: models:/<id>` (the server refuses a `runs:/` source, or
an artifact URI outside the model's, with a model_id) and tags the model with `mlflow.modelVersions` itself.

Idempotent: the model carries a tag naming the run's artifact it was made from, so a retry, a re-run or a
peer promoting the same run at once finds it instead of creating another (the oldest one wins; a younger
duplicate made by a race is deleted). A model left PENDING by a kill is uploaded again and finalized.
A server without these endpoints (MLflow 2.x, GitLab) answers 404/405 or ENDPOINT_NOT_FOUND: None.
"""

from __future__ import annotations

import contextlib
import json
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...errors import RemoteError
from .. import tags as names
from .artifacts import RunArtifacts
from .codec import filter_literal, key_values, kv_list
from .errors import SERVICE, EndpointMissing
from .http import API, MlflowHttp

MADE_FROM = names.LOGGED_MODEL_FROM
READY = "LOGGED_MODEL_READY"
MLMODEL = "MLmodel"
_MAX_MLMODEL_BYTES = 2**20  # a real one is a few KB; a larger one is uploaded as it is
_PARAMS_PER_REQUEST = 100  # MLflow's batch size for a logged model's params
_COPIED_TAGS = (names.MLFLOW_USER, names.MLFLOW_SOURCE_NAME, names.MLFLOW_SOURCE_TYPE, names.MLFLOW_GIT_COMMIT,
                names.MLFLOW_GIT_BRANCH, names.MLFLOW_GIT_REPO_URL)
_MODEL_ID = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


class LoggedModels:
    """`files` reads the run's artifacts; `model_files` the logged models' (keyed by model_id)."""

    def __init__(self, http: MlflowHttp, files: RunArtifacts) -> None:
        self._http = http
        self._files = files
        self._locations: dict[str, str] = {}
        self.model_files = RunArtifacts(http, self.artifact_uri)

    def log(self, run_id: str, artifact_path: str, name: str) -> str | None:
        """The model_id of the run's `artifact_path` as a READY Logged Model named `name`; None when the
        server has no Logged Models."""
        run = self._http.json("GET", "runs/get", params={"run_id": run_id})["run"]
        model = self._find_or_create(run, artifact_path, name)
        if model is None:
            return None
        model_id = _model_id(model, self._where("logged-models"))
        self._link_output(run, model_id)
        if (model.get("info") or {}).get("status") != READY:
            self._upload(run_id, artifact_path, model_id)
            self._http.json("PATCH", f"logged-models/{model_id}", body={"model_id": model_id, "status": READY})
        return model_id

    def artifact_uri(self, model_id: str) -> str:
        """Where the model's files are (the server's answer, asked once)."""
        if model_id not in self._locations:
            doc = self._http.json("GET", f"logged-models/{_checked(model_id, self._where('logged-models'))}")
            self._locations[model_id] = str(doc["model"]["info"].get("artifact_uri", ""))
        return self._locations[model_id]

    def list_files(self, model_id: str) -> list[str]:
        """Every file of the logged model (relative to its root); NotFound when there is none or the server has
        no Logged Models."""
        return self.model_files.list_files(model_id)

    def _find_or_create(self, run: Mapping[str, Any], artifact_path: str, name: str) -> dict[str, Any] | None:
        info = run.get("info", {})
        run_id, experiment_id = str(info.get("run_id") or info.get("run_uuid")), str(info.get("experiment_id"))
        made_from = f"{run_id}/{artifact_path}"
        data = run.get("data", {})
        run_tags = key_values(data.get("tags"))
        tags = {MADE_FROM: made_from, **{k: run_tags[k] for k in _COPIED_TAGS if run_tags.get(k)}}
        params = [{"key": k, "value": v} for k, v in sorted(key_values(data.get("params")).items())]
        body = {"experiment_id": experiment_id, "name": name, "source_run_id": run_id,
                "params": params[:_PARAMS_PER_REQUEST], "tags": kv_list(tags)}

        def attempt() -> dict[str, Any] | None:
            try:
                found = self._search(experiment_id, run_id, made_from)
            except EndpointMissing:  # the first Logged Model request: the server has none (MLflow 2.x, GitLab)
                return None
            if found:
                return found[0]
            created = self._http.json("POST", "logged-models", body=body, retry=False)["model"]
            model_id = _model_id(created, self._where("logged-models"))
            for start in range(_PARAMS_PER_REQUEST, len(params), _PARAMS_PER_REQUEST):
                self._http.json("POST", f"logged-models/{model_id}/params",
                                body={"model_id": model_id, "params": params[start:start + _PARAMS_PER_REQUEST]})
            found = self._search(experiment_id, run_id, made_from)  # a peer may have created one too
            oldest = found[0] if found else created
            if _model_id(oldest, self._where("logged-models/search")) != model_id:
                with contextlib.suppress(RemoteError):
                    self._http.json("DELETE", f"logged-models/{model_id}")
            return oldest

        return self._http.retrying(attempt)

    def _search(self, experiment_id: str, run_id: str, made_from: str) -> list[dict[str, Any]]:
        """This run's logged models made from `made_from`, oldest first (not deleted ones)."""
        body: dict[str, Any] = {
            "experiment_ids": [experiment_id], "max_results": 50,
            "filter": f"source_run_id = {filter_literal(run_id)} AND tags.`{MADE_FROM}` = {filter_literal(made_from)}",
            "order_by": [{"field_name": "creation_timestamp", "ascending": True}]}
        models = self._http.json("POST", "logged-models/search", body=body, retry=False).get("models") or []
        ours = [m for m in models if isinstance(m, dict)
                and key_values(m.get("info", {}).get("tags")).get(MADE_FROM) == made_from]
        return sorted(ours, key=lambda m: (int(m["info"].get("creation_timestamp_ms") or 0),
                                           str(m["info"].get("model_id"))))

    def _link_output(self, run: Mapping[str, Any], model_id: str) -> None:
        """Lists the model among the run's outputs, once (the server adds a row for every call)."""
        outputs = (run.get("outputs") or {}).get("model_outputs") or []
        if any(isinstance(o, dict) and o.get("model_id") == model_id for o in outputs):
            return
        run_id = str(run.get("info", {}).get("run_id"))
        self._http.json("POST", "runs/outputs", body={"run_id": run_id, "models": [{"model_id": model_id,
                                                                                     "step": 0}]})

    def _upload(self, run_id: str, artifact_path: str, model_id: str) -> None:
        """The run's model files copied to the logged model's location: downloaded once (through the guard),
        then uploaded; MLflow has no server-side copy, and the version must read the model's own files."""
        with tempfile.TemporaryDirectory(prefix="mlops-bot-logged-model-") as tmp:
            local = self._files.download(run_id, artifact_path, Path(tmp))
            mlmodel = local / MLMODEL
            if mlmodel.is_file() and mlmodel.stat().st_size <= _MAX_MLMODEL_BYTES:
                ids = {"artifact_path": self.artifact_uri(model_id), "model_uuid": model_id, "run_id": run_id,
                       "model_id": model_id}
                mlmodel.write_text(with_ids(mlmodel.read_text(encoding="utf-8", errors="replace"), ids),
                                   encoding="utf-8")
            self.model_files.upload(model_id, local, "")

    def _where(self, endpoint: str) -> str:
        return self._http.display + API + endpoint


def with_ids(mlmodel: str, ids: Mapping[str, str]) -> str:
    """The MLmodel file's text with its top-level `ids` set, as `Model.log` writes them (get_model_info reads
    model_id and run_id there). Edited line by line, not parsed: the file comes from training code, and only
    these keys change; each value is a JSON string, which YAML reads as the same string."""
    kept: list[str] = []
    skipping = False
    for line in mlmodel.splitlines():
        top = bool(line) and not line[0].isspace()
        if top:
            skipping = line.split(":", 1)[0] in ids
        if not skipping:
            kept.append(line)
    return "\n".join([*kept, *(f"{key}: {json.dumps(value)}" for key, value in ids.items())]) + "\n"


def _model_id(model: Mapping[str, Any], where: str) -> str:
    return _checked(str((model.get("info") or {}).get("model_id", "")), where)


def _checked(model_id: str, where: str) -> str:
    """A model_id goes into URL paths: anything but MLflow's `m-<hex>` shape is refused."""
    if not _MODEL_ID.match(model_id):
        raise RemoteError(SERVICE, 200, where, f"refusing the logged model id {model_id[:80]!r}: not an id")
    return model_id

