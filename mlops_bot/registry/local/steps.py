"""A step's own mlflow logging on the embedded store, brought into the pipeline run (issue #15).

The embedded store is not an MLflow store, so a step's mlflow code logs to one beside it: `steps_env` gives it
MLFLOW_TRACKING_URI `sqlite:///<state>/mlflow-steps.db` (MLflow's own file, made by the step's mlflow) and makes
that store keep its artifacts in `<state>/mlflow-steps-artifacts/` (MLflow's default is `./mlruns` in the working
tree, where autolog's files would land untracked). Every run the step's code creates there carries the tags of
MLFLOW_RUN_CONTEXT (pipeline/selflog): a child of the pipeline run.

`StepRuns` is the embedded store seen with those children in it: pipeline/selflog finds, ends and folds them
as it does on a tracking server, and `fold_artifacts` copies their artifacts into the pipeline run. It reads
MLflow's table layout (runs, tags, params, latest_metrics) with sqlite3: the bot imports no mlflow for it.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from ...console import log
from ...errors import NotFound
from ...support.state import STEPS_MLFLOW_DB
from .. import tags as names
from ..base import Run, RunStatus
from .search import order_runs, parse_filter
from .store import LocalRegistry, _copy_file

STEPS_ARTIFACTS_DIR = "mlflow-steps-artifacts"
# Read by MLflow's sqlite store for the artifact root of the experiments it creates (tracking/_tracking_service/
# utils.py, `_get_sqlalchemy_store`): without it they would default to ./mlruns under the step's directory.
ARTIFACT_ROOT_ENV = "_MLFLOW_SERVER_ARTIFACT_ROOT"
_RESERVED = ("model", "outs")  # the bot's own artifacts in the pipeline run


def steps_env(state_dir: Path) -> dict[str, str]:
    """What a step's mlflow code needs on the embedded store (beside MLFLOW_EXPERIMENT_NAME and the context)."""
    return {"MLFLOW_TRACKING_URI": f"sqlite:///{state_dir.resolve() / STEPS_MLFLOW_DB}",
            ARTIFACT_ROOT_ENV: str(state_dir.resolve() / STEPS_ARTIFACTS_DIR)}


class StepRuns(LocalRegistry):
    """The embedded store (the same database) whose runs include those the steps' own mlflow code made."""

    def __init__(self, registry: LocalRegistry) -> None:  # shares registry's open database: no second connection
        self.__dict__.update(registry.__dict__)
        self.steps_db = self.root / STEPS_MLFLOW_DB

    def _connect(self) -> sqlite3.Connection | None:
        if not self.steps_db.is_file():
            return None
        return sqlite3.connect(self.steps_db, timeout=60)

    def _step_runs(self, where: str = "1", args: tuple[object, ...] = ()) -> list[Run]:
        conn = self._connect()
        if conn is None:
            return []
        with closing(conn):
            try:
                rows = conn.execute(
                    "SELECT run_uuid, experiment_id, status, start_time, end_time, artifact_uri, name FROM runs "
                    f"WHERE lifecycle_stage = 'active' AND run_uuid IN (SELECT run_uuid FROM tags WHERE key = ?) "
                    f"AND {where}", (names.PARENT_RUN, *args)).fetchall()
            except sqlite3.OperationalError:  # not (yet) an MLflow store: nothing logged
                return []
            return [self._step_run(conn, row) for row in rows]

    def _step_run(self, conn: sqlite3.Connection, row: tuple[Any, ...]) -> Run:
        run_id, experiment_id, status, start, end, uri, name = row

        def pairs(sql: str) -> dict[str, str]:
            return {str(k): str(v) for k, v in conn.execute(sql, (run_id,))}

        metrics = {str(k): math.nan if is_nan else float(v) for k, v, is_nan in conn.execute(
            "SELECT key, value, is_nan FROM latest_metrics WHERE run_uuid = ?", (run_id,))}
        return Run(run_id, str(experiment_id), status, start or 0, end, uri or "", name or "",
                   pairs("SELECT key, value FROM params WHERE run_uuid = ?"), metrics,
                   pairs("SELECT key, value FROM tags WHERE run_uuid = ?"))

    def search_runs(self, experiment_ids: Sequence[str], filter_string: str = "", order_by: Sequence[str] = (),
                    max_results: int | None = None) -> list[Run]:
        """The embedded store's runs, and the steps' runs wherever the filter names them (by the parent tag)."""
        own = super().search_runs(experiment_ids, filter_string, order_by)
        predicates = parse_filter(filter_string)
        theirs = [r for r in self._step_runs() if all(p(r) for p in predicates)] if predicates else []
        selected = order_runs(own + theirs, order_by)
        return selected if max_results is None else selected[:max_results]

    def get_run(self, run_id: str) -> Run:
        try:
            return super().get_run(run_id)
        except NotFound:
            found = self._step_runs("run_uuid = ?", (run_id,))
            if not found:
                raise
            return found[0]

    def update_run(self, run_id: str, status: RunStatus, end_time: int | None = None) -> None:
        if not self._step_runs("run_uuid = ?", (run_id,)):
            super().update_run(run_id, status, end_time)
            return
        conn = self._connect()
        assert conn is not None
        with closing(conn), conn:
            conn.execute("UPDATE runs SET status = ?, end_time = COALESCE(?, end_time, ?) WHERE run_uuid = ?",
                         (status, end_time, time.time_ns() // 1_000_000, run_id))

    def fold_artifacts(self, run_id: str) -> None:
        """The children's artifacts copied into the pipeline run at their own paths, except under the bot's
        `model/` and `outs/`; a file the run has already is kept."""
        target = self.artifact_root / run_id
        for child in self._step_runs():
            uri = child.artifact_uri
            if child.tags.get(names.PARENT_RUN) != run_id or not (uri.startswith("file:") or uri.startswith("/")):
                continue
            source = Path(url2pathname(urlsplit(uri).path))
            for path in sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else []:
                rel = path.relative_to(source)
                if rel.parts[0] in _RESERVED:
                    log(f"mlops-bot: warning: artifact {rel.as_posix()} of child run {child.run_id} not copied into "
                        f"run {run_id}: {rel.parts[0]}/ holds the pipeline's own artifacts.")
                elif not (target / rel).exists():
                    _copy_file(path, target / rel)

