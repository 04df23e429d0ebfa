"""MlflowRegistry: the Registry protocol over MLflow's REST API (OSS MLflow 3.x and compatible servers).

Every request is retried on connection errors, timeouts, 429 and 5xx within one time budget (http.py);
creates look up before they create so that a retry after a lost answer never duplicates anything:
runs carry a create token tag, model versions are found by (name, run_id, source), and a metric batch is
sent with one timestamp fixed per call, so the server's de-duplication of identical points absorbs replays.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from ...errors import AlreadyExists, InvalidParameter, NotFound, UsageError
from .. import polling
from .. import tags as names
from ..base import Capabilities, Experiment, MetricPoint, RegistryEvent, Run, RunStatus
from ..validation import check_status
from . import capabilities as partial
from . import codec
from . import lock as mlflow_lock
from .artifacts import RunArtifacts
from .http import MlflowHttp, RetryPolicy
from .logged_models import LoggedModels
from .models import MlflowModels

# MLflow's limits for one runs/log-batch request.
_BATCH_METRICS, _BATCH_PARAMS, _BATCH_TAGS, _BATCH_TOTAL = 1000, 100, 100, 1000
_RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # MLflow's run ids (32 hex), Azure ML's job names


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _metric_value(value: float) -> float | str:
    # MLflow's JSON reads the strings "NaN"/"Infinity"; a bare NaN literal is stored as 0.
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


class MlflowRegistry(MlflowModels):
    """`env` supplies the MLFLOW_TRACKING_* variables (os.environ when None); `transport` replaces httpx's
    network layer (tests inject faults there); `capabilities` skips probing."""

    def __init__(self, uri: str, env: Mapping[str, str] | None = None, *,
                 transport: httpx.BaseTransport | None = None, retry: RetryPolicy | None = None,
                 capabilities: Capabilities | None = None, page_size: int = 1000) -> None:
        http = MlflowHttp(uri, os.environ if env is None else env, transport=transport, retry=retry)
        super().__init__(http, capabilities, page_size)
        self._uri = uri.rstrip("/")
        self._files = RunArtifacts(http, lambda run_id: self.get_run(run_id).artifact_uri)
        self._logged = LoggedModels(http, self._files)

    @property
    def tracking_uri(self) -> str:
        return self._uri

    def close(self) -> None:
        self._http.close()

    def try_lock(self, name: str, owner: str, ttl_ms: int) -> str:
        return mlflow_lock.try_lock(self._http, name, owner, ttl_ms)

    def unlock(self, name: str, owner: str) -> None:
        mlflow_lock.unlock(self._http, name, owner)

    # experiments and runs

    def get_or_create_experiment(self, name: str) -> Experiment:
        def attempt() -> Experiment:
            try:
                return self._experiment_by_name(name)
            except NotFound:
                pass
            # AlreadyExists: our own earlier attempt (answer lost) or a peer created it, the same experiment.
            with contextlib.suppress(AlreadyExists):
                self._http.json("POST", "experiments/create", body={"name": name}, retry=False)
            return self._experiment_by_name(name)

        return self._http.retrying(attempt)

    def _experiment_by_name(self, name: str) -> Experiment:
        doc = self._http.json("GET", "experiments/get-by-name", params={"experiment_name": name},
                              retry=False)["experiment"]
        if doc.get("lifecycle_stage") == "deleted":
            raise UsageError(f"MLflow experiment {name!r} is deleted; restore it (`mlflow experiments restore`) "
                             "or choose another tracking.experiment.")
        return codec.experiment(doc)

    def create_run(self, experiment_id: str, name: str = "", tags: Mapping[str, str] | None = None) -> Run:
        token = uuid.uuid4().hex
        body = {"experiment_id": experiment_id, "start_time": _now_ms(), "run_name": name,
                "tags": codec.kv_list({**(tags or {}), names.CREATE_TOKEN: token})}
        attempts = 0

        def attempt() -> Run:
            nonlocal attempts
            attempts += 1
            if attempts > 1:  # the previous attempt may have created the run before its answer got lost
                found = self._search_page([experiment_id], f"tags.`{names.CREATE_TOKEN}` = '{token}'", 1,
                                          retry=False)
                if found:
                    return found[0]
            return codec.run(self._http.json("POST", "runs/create", body=body, retry=False)["run"])

        return self._http.retrying(attempt)

    def update_run(self, run_id: str, status: RunStatus, end_time: int | None = None) -> None:
        check_status(status)
        body: dict[str, Any] = {"run_id": run_id, "status": status}
        if end_time is None and status in polling.TERMINAL:
            end_time = _now_ms()
        if end_time is not None:
            body["end_time"] = end_time
        self._http.json("POST", "runs/update", body=body)

    def log_batch(self, run_id: str, params: Mapping[str, str] | None = None,
                  metrics: Mapping[str, float] | None = None, tags: Mapping[str, str] | None = None,
                  step: int = 0) -> None:
        stamp = _now_ms()  # fixed before any retry: a replayed point is identical, and MLflow keeps it once
        metric_items = [{"key": k, "value": _metric_value(float(v)), "timestamp": stamp, "step": step}
                        for k, v in (metrics or {}).items()]
        # Params and tags first, metrics after: GitLab inserts a batch's parts one by one with no transaction, so a
        # refused param must not leave its batch's metrics behind to be logged twice.
        try:
            for body in _batches(run_id, codec.kv_list(params), [], codec.kv_list(tags)):
                self._http.json("POST", "runs/log-batch", body=body)
        except InvalidParameter as refused:
            self._log_new_only(run_id, params or {}, tags or {}, refused)
        for body in _batches(run_id, [], metric_items, []):
            self._http.json("POST", "runs/log-batch", body=body)

    def _log_new_only(self, run_id: str, params: Mapping[str, str], tags: Mapping[str, str],
                      refused: InvalidParameter) -> None:
        """After a refused batch: what the run holds already with the same value is not sent again (GitLab
        refuses any param or tag written before, even unchanged); a changed param is refused, as MLflow does,
        and so is a changed tag on a server that keeps a tag's first value."""
        run = self.get_run(run_id)
        changed = [k for k, v in params.items() if k in run.params and run.params[k] != v]
        changed += [k for k, v in tags.items() if k in run.tags and run.tags[k] != v]
        if changed:
            raise InvalidParameter(refused.service, refused.status, refused.url,
                                   f"{refused.detail}; the server refused to change {', '.join(sorted(changed))} of "
                                   f"run {run_id} (a param is written once; GitLab keeps a run tag's first value too)")
        new_params = {k: v for k, v in params.items() if k not in run.params}
        new_tags = {k: v for k, v in tags.items() if k not in run.tags}
        for body in _batches(run_id, codec.kv_list(new_params), [], codec.kv_list(new_tags)):
            self._http.json("POST", "runs/log-batch", body=body)

    def get_run(self, run_id: str) -> Run:
        return codec.run(self._http.json("GET", "runs/get", params={"run_id": run_id})["run"])

    def get_runs(self, run_ids: Sequence[str], experiment_ids: Sequence[str]) -> dict[str, Run]:
        """One search (`attributes.run_id IN (...)`) where the server filters runs, then runs/get for any it did
        not return; a run that no longer exists is left out."""
        wanted = list(dict.fromkeys(run_ids))
        safe = [r for r in wanted if _RUN_ID.fullmatch(r)]  # ids come from the server: never quoted blindly
        found: dict[str, Run] = {}
        if len(safe) > 1 and experiment_ids and self._filters_native is not False:
            listed = ", ".join(f"'{r}'" for r in safe)
            try:
                runs = self._search_page(list(experiment_ids), f"attributes.run_id IN ({listed})", len(safe))
            except (InvalidParameter, NotFound):  # a server that cannot read IN
                runs = []
            found = {run.run_id: run for run in runs if run.run_id in safe}
        for run_id in wanted:
            if run_id not in found:
                with contextlib.suppress(NotFound):
                    found[run_id] = self.get_run(run_id)
        return found

    def search_runs(self, experiment_ids: Sequence[str], filter_string: str = "", order_by: Sequence[str] = (),
                    max_results: int | None = None) -> list[Run]:
        if not experiment_ids:
            return []
        try:
            clauses = partial.parse_filter(filter_string)
        except ValueError as exc:
            raise UsageError(f"{exc}; mlops-bot re-checks every run a server finds against its filter.") from None
        wanted = set(experiment_ids)

        def fits(run: Run) -> bool:
            return run.experiment_id in wanted and partial.run_matches(run, clauses)

        if self._run_filters_native(experiment_ids):
            runs = self._search_page(experiment_ids, filter_string, max_results, order_by)
            if all(fits(run) for run in runs):
                return runs
            self._filters_native = False  # it found what the filter excludes: it ignores filters (GitLab)
        # Experiment by experiment (GitLab reads one id), every page, filtered and ordered here.
        found = [run for experiment_id in dict.fromkeys(experiment_ids)
                 for run in self._search_page([experiment_id], filter_string, None, order_by) if fits(run)]
        ordered = partial.order_runs(found, list(order_by))
        return ordered if max_results is None else ordered[:max_results]

    def _run_filters_native(self, experiment_ids: Sequence[str]) -> bool:
        """Learned from answers: a search result the filter excludes says no. Before a search of several
        experiments, one that can match nothing is asked first (a server that reads one experiment id and no
        filter answers it with runs)."""
        if self._filters_native is None and len(experiment_ids) > 1:
            probe = f"attributes.run_id = 'mlops-bot-probe-{uuid.uuid4().hex[:8]}'"
            self._filters_native = not self._search_page(experiment_ids, probe, 1)
        return self._filters_native is not False

    def _search_page(self, experiment_ids: Sequence[str], filter_string: str, limit: int | None,
                     order_by: Sequence[str] = (), retry: bool = True) -> list[Run]:
        body: dict[str, Any] = {"experiment_ids": list(experiment_ids), "filter": filter_string,
                                "order_by": list(order_by)}
        docs = self._paged("POST", "runs/search", "runs", body, limit, retry)
        return [codec.run(doc) for doc in docs]

    def _paged(self, method: str, endpoint: str, key: str, request: Mapping[str, Any], limit: int | None,
               retry: bool = True) -> list[Any]:
        """Follows next_page_token to the end (or to `limit` items)."""
        items: list[Any] = []
        token = ""
        while limit is None or len(items) < limit:
            page = {**request, "max_results": self._page_size if limit is None
                    else min(self._page_size, limit - len(items))}
            if token:
                page["page_token"] = token
            as_query = method == "GET"
            doc = self._http.json(method, endpoint, params=page if as_query else None,
                                  body=None if as_query else page, retry=retry)
            items.extend(doc.get(key) or ())
            token = str(doc.get("next_page_token") or "")
            if not token:
                break
        return items if limit is None else items[:limit]

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        docs = self._paged("GET", "metrics/get-history", "metrics", {"run_id": run_id, "metric_key": key}, None)
        if not docs:
            self.get_run(run_id)  # the endpoint answers an unknown run with an empty history: say NotFound
        return sorted((codec.metric_point(d) for d in docs), key=lambda p: (p.step, p.timestamp))

    # artifacts

    def upload_artifacts(self, run_id: str, local_dir: Path, artifact_path: str = "") -> None:
        self._files.upload(run_id, local_dir, artifact_path)

    def download_artifacts(self, run_id: str, artifact_path: str, dest: Path) -> Path:
        return self._files.download(run_id, artifact_path, dest)

    def list_artifacts(self, run_id: str, artifact_path: str = "") -> list[str]:
        return self._files.list_files(run_id, artifact_path)

    def check_artifact_location(self, location: str) -> None:
        self._files.check_writable(location)

    # MLflow 3 Logged Models (registry/mlflow/logged_models.py)

    def log_model(self, run_id: str, artifact_path: str, name: str) -> str | None:
        return self._logged.log(run_id, artifact_path, name)

    def list_logged_model_artifacts(self, model_id: str) -> list[str]:
        return self._logged.list_files(model_id)

    # polling

    def poll_experiment_ids(self) -> list[str]:
        docs = self._paged("POST", "experiments/search", "experiments", {"view_type": "ACTIVE_ONLY"}, None)
        return [str(doc["experiment_id"]) for doc in docs]

    def events_since(self, cursor: str | None, model_names: Sequence[str]) -> tuple[list[RegistryEvent], str]:
        return polling.events_since(self, cursor, model_names)


def _batches(run_id: str, params: list[dict[str, str]], metrics: list[dict[str, Any]],
             tags: list[dict[str, str]]) -> Iterator[dict[str, Any]]:
    """Splits one logical batch into requests within MLflow's per-request limits."""
    while params or metrics or tags:
        take_params, params = params[:_BATCH_PARAMS], params[_BATCH_PARAMS:]
        take_tags, tags = tags[:_BATCH_TAGS], tags[_BATCH_TAGS:]
        room = _BATCH_TOTAL - len(take_params) - len(take_tags)
        take_metrics, metrics = metrics[:min(room, _BATCH_METRICS)], metrics[min(room, _BATCH_METRICS):]
        yield {"run_id": run_id, "params": take_params, "metrics": take_metrics, "tags": take_tags}
