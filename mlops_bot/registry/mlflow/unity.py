"""UnityRegistry: runs and experiments on a Databricks workspace's MLflow API, the model registry in Unity Catalog.

What UC's registry API is, as MLflow's own UC client speaks it (mlflow 3.17: store/_unity_catalog/registry/
rest_store.py, protos/databricks_uc_registry_service.proto and _messages.proto, utils/_unity_catalog_utils.py):

- the same workspace host and token, paths `/api/2.0/mlflow/unity-catalog/` + the workspace registry's own
  (registered-models/create|get|update|delete|search, .../alias POST|GET|DELETE, model-versions/create|get|update|
  delete|search|set-tag|delete-tag, plus model-versions/generate-temporary-credentials and finalize);
- a version is made in three steps: create (answers `storage_location` and status PENDING_REGISTRATION), the model's
  files written to that location with the temporary credentials UC hands out for it (READ_WRITE), then finalize
  (status READY). `source` and `run_id` are kept as lineage only; UC serves the copy at the storage location;
- MLflow's client downloads the source first and refuses a model whose MLmodel has no signature with both inputs
  and outputs; search takes ONE condition, `name = '...'` or `run_id = '...'`, and no order_by; stages and
  get-latest-versions do not exist; aliases are native; names are catalog.schema.model (Databricks' REST reference,
  docs.databricks.com/api/uc-registered-models, and sql-ref-names: no '.', ' ' or '/' in a part, lower case).

Runs, experiments and run artifacts stay on the workspace API (`/api/2.0/mlflow/`), as does the bot's lock, a
registered model of the workspace registry (registry/mlflow/lock.py), since a UC name cannot carry its prefix.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import yaml

from ...config.semantics import unity_catalog_name_problem
from ...errors import InvalidParameter, NotFound, UsageError
from .. import tags as names
from ..base import Capabilities, ModelVersion, RegisteredModel
from ..validation import rejected
from . import codec, sources
from . import lock as mlflow_lock
from .artifacts import Store
from .client import MlflowRegistry
from .errors import SERVICE, EndpointMissing
from .http import API, MlflowHttp, RetryPolicy
from .stores import RepositoryStore, scheme_of

UC = "unity-catalog/"
_REGISTRY_ROUTES = ("registered-models/", "model-versions/")
PENDING, READY, FAILED = "PENDING_REGISTRATION", "READY", "FAILED_REGISTRATION"
# UC has what the bot needs natively: aliases, version search (one condition), version tags; nothing is probed.
CAPABILITIES = Capabilities(aliases=True, version_search=True, artifacts=True, version_tags=True, run_filters=True)


class UnityRoutes(MlflowHttp):
    """The workspace's connection (same client, token and retries), with the registry's endpoints under
    unity-catalog/; every other endpoint (runs, experiments, logged models) is the workspace's own."""

    def __init__(self, workspace: MlflowHttp) -> None:
        super().__init__(workspace.base, {}, client=workspace.client, retry=workspace.policy)

    def json(self, method: str, endpoint: str, *, params: Mapping[str, Any] | None = None,
             body: Mapping[str, Any] | None = None, retry: bool = True) -> dict[str, Any]:
        if not endpoint.startswith(_REGISTRY_ROUTES):
            return super().json(method, endpoint, params=params, body=body, retry=retry)
        doc = super().json(method, UC + endpoint, params=params, body=body, retry=retry)
        for version in [doc.get("model_version"), *(doc.get("model_versions") or ())]:
            if isinstance(version, dict):  # UC: a version's aliases are {alias, version} objects, MLflow's names
                held = version.get("aliases") or ()
                version["aliases"] = [a.get("alias") if isinstance(a, dict) else a for a in held]
        return doc


class UnityRegistry(MlflowRegistry):
    """`uri` is the workspace (https://<workspace>.cloud.databricks.com); MLFLOW_TRACKING_TOKEN its token."""

    def __init__(self, uri: str, env: Mapping[str, str] | None = None, *,
                 transport: httpx.BaseTransport | None = None, retry: RetryPolicy | None = None,
                 page_size: int = 1000) -> None:
        super().__init__(uri, env, transport=transport, retry=retry, capabilities=CAPABILITIES, page_size=page_size)
        self._workspace = self._http
        self._http = UnityRoutes(self._workspace)

    def try_lock(self, name: str, owner: str, ttl_ms: int) -> str:
        return mlflow_lock.try_lock(self._workspace, name, owner, ttl_ms)

    def unlock(self, name: str, owner: str) -> None:
        mlflow_lock.unlock(self._workspace, name, owner)

    # names: refused before any request, with what to write instead

    def _checked_name(self, name: str) -> None:
        problem = unity_catalog_name_problem(name)
        if problem:
            raise rejected(InvalidParameter, SERVICE, self._http.display + API + UC + "registered-models/create",
                           problem)

    def get_or_create_registered_model(self, name: str, description: str = "") -> RegisteredModel:
        self._checked_name(name)
        return super().get_or_create_registered_model(name, description)

    # aliases: native; an unset alias may be answered NotFound (not MLflow's 400), which means None here

    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion | None:
        try:
            return super().get_version_by_alias(name, alias)
        except EndpointMissing:
            raise
        except NotFound as exc:
            if "alias" in exc.detail.lower():
                return None
            raise

    def delete_alias(self, name: str, alias: str) -> None:
        try:
            super().delete_alias(name, alias)
        except EndpointMissing:
            raise
        except NotFound as exc:
            if "alias" not in exc.detail.lower():
                raise

    # model versions: create, upload to the storage location, finalize

    def create_model_version(self, name: str, source: str, run_id: str, tags: Mapping[str, str] | None = None,
                             description: str = "", model_id: str = "") -> ModelVersion:
        """Idempotent: a READY version of the same run and source is returned; a PENDING one (a run that stopped
        between create and finalize) gets its files and is finalized; a FAILED one is left and a new one made."""
        self._checked_name(name)
        wanted = sources.VersionSource(source, run_id, self._artifact_uri)
        with tempfile.TemporaryDirectory(prefix="mlops-bot-uc-") as tmp:
            local = self._model_files(name, source, run_id, Path(tmp))

            def attempt() -> dict[str, Any]:
                mine = [v for v in self._version_docs(run_id) if v.get("name") == name and
                        wanted.matches(str(v.get("source", ""))) and v.get("status") != FAILED]
                if mine:
                    return min(mine, key=lambda v: codec.version_order(str(v["version"])))
                body = {"name": name, "source": source, "run_id": run_id, "description": description,
                        "tags": codec.kv_list(tags), **({"model_id": model_id} if model_id else {})}
                return dict(self._http.json("POST", "model-versions/create", body=body, retry=False)["model_version"])

            doc = self._http.retrying(attempt)
            if doc.get("status") != READY:
                self._upload(name, doc, local)
                self._http.json("POST", "model-versions/finalize", body={"name": name, "version": str(doc["version"])})
        return self.get_model_version(name, str(doc["version"]))

    def _version_docs(self, run_id: str) -> list[dict[str, Any]]:
        """Every version made from `run_id`, in any model (UC's search takes one condition: run_id here)."""
        docs: list[dict[str, Any]] = []
        token, wanted = "", f"run_id={codec.filter_literal(run_id)}"
        while True:
            params: dict[str, Any] = {"filter": wanted, "max_results": self._page_size}
            if token:
                params["page_token"] = token
            page = self._http.json("GET", "model-versions/search", params=params, retry=False)
            docs.extend(page.get("model_versions") or ())
            token = str(page.get("next_page_token") or "")
            if not token:
                return docs

    def _versions_of_run(self, name: str, run_id: str) -> list[ModelVersion]:
        return [codec.model_version(d) for d in self._version_docs(run_id) if d.get("name") == name]

    def _model_files(self, name: str, source: str, run_id: str, tmp: Path) -> Path:
        """The model's files, downloaded from the run, checked as MLflow's UC client checks them: an MLflow Model
        whose signature names inputs and outputs. Nothing is registered when they fail."""
        path = self._run_path(source, run_id)
        if path is None:
            raise UsageError(f"{SERVICE}: cannot register {source} in Unity Catalog as {name}: mlops-bot copies a "
                             "version's files from its run, and this source is not among the run's artifacts.")
        local = self._files.download(run_id, path, tmp / "source")
        model_file = local / "MLmodel"
        signature = _signature(model_file) if model_file.is_file() else None
        if not signature or not signature.get("inputs") or not signature.get("outputs"):
            what = "has no MLmodel file" if not model_file.is_file() else "has no signature with inputs and outputs"
            raise UsageError(
                f"{SERVICE}: Unity Catalog registers MLflow Models with a signature only, and '{path}' of run {run_id} "
                f"{what}. Save the model with mlflow.<flavor>.save_model(..., signature=infer_signature(X, "
                "model.predict(X))) into model.artifact, run again, then promote. Nothing was registered.")
        return local

    def _run_path(self, source: str, run_id: str) -> str | None:
        """The run artifact path behind `source` (`runs:/`, a path under the run's artifact URI, or a Logged
        Model the bot recorded from the run)."""
        if source.startswith("models:/"):
            doc = self._workspace.json("GET", f"logged-models/{source.removeprefix('models:/')}")
            found = codec.key_values(doc["model"].get("info", {}).get("tags")).get(names.LOGGED_MODEL_FROM, "")
            return found.partition("/")[2] if found.startswith(run_id + "/") else None
        runs_form = source if source.startswith(sources.RUNS) else sources.runs_source(
            source, run_id, self._artifact_uri(run_id))
        prefix = f"{sources.RUNS}{run_id}/"
        return runs_form[len(prefix):] if runs_form and runs_form.startswith(prefix) else None

    def _upload(self, name: str, doc: Mapping[str, Any], local: Path) -> None:
        location = str(doc.get("storage_location") or "")
        if not location:
            raise NotFound(SERVICE, None, self._http.display + API + UC + "model-versions/create",
                           f"version {doc.get('version')} of {name} has no storage_location to write its files to")
        credentials = self._http.json("POST", "model-versions/generate-temporary-credentials", body={
            "name": name, "version": str(doc["version"]), "operation": "MODEL_VERSION_OPERATION_READ_WRITE"})
        store = _store(location, credentials.get("credentials") or {}, self._files.store_for)
        for item in sorted(local.iterdir()):
            store.put(item, () if item.is_file() else (item.name,))


def _signature(model_file: Path) -> dict[str, Any] | None:
    try:
        document = yaml.safe_load(model_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    signature = document.get("signature") if isinstance(document, dict) else None
    return signature if isinstance(signature, dict) else None


def _store(location: str, credentials: Mapping[str, Any], store_for: Any) -> Store:
    """The store of a version's storage location, written with the temporary credentials UC issued for it.

    S3 (UC's `aws_temp_credentials`): MLflow's S3 repository with that key, secret and session token. A
    `DEFAULT_STORAGE` answer (Databricks-managed storage, written through presigned URLs) and Azure SAS or GCP OAuth
    credentials are not spoken yet: the store's SDK then uses the job's own credentials (registry/mlflow/stores.py),
    which must be allowed to write there. A file:// location (a shared disk, and the tests) needs none."""
    if credentials.get("storage_mode") == "DEFAULT_STORAGE":
        raise UsageError(f"{SERVICE}: this Unity Catalog metastore keeps model files in Databricks default storage, "
                         "written through presigned URLs, which mlops-bot does not write yet; give the schema a "
                         "managed location in your own cloud storage (CREATE SCHEMA ... MANAGED LOCATION).")
    aws = credentials.get("aws_temp_credentials")
    if scheme_of(location) in ("s3", "s3a") and isinstance(aws, dict):
        store = RepositoryStore(location)
        with store.translated(()):
            from mlflow.store.artifact.s3_artifact_repo import S3ArtifactRepository

            store._repository = S3ArtifactRepository(
                location, access_key_id=aws.get("access_key_id"), secret_access_key=aws.get("secret_access_key"),
                session_token=aws.get("session_token"))
        return store
    result: Store = store_for(location)
    return result
