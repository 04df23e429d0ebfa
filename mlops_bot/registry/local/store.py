"""LocalRegistry: the embedded default (`tracking.uri: local`), SQLite plus files under `.mlops-bot/`.

Same protocol, semantics and errors as MlflowRegistry, and safe for two processes at once (see localdb).
Layout (names in support/state.py): `<root>/registry.db`, run artifacts under `<root>/artifacts/<run_id>/`.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from ...errors import InvalidParameter, NotFound, UsageError
from ...support.state import STEPS_MLFLOW_DB, STORE_ARTIFACTS_DIR, STORE_DB
from .. import polling
from .. import tags as names
from ..base import Capabilities, Experiment, MetricPoint, RegistryEvent, Run, RunStatus
from ..validation import artifact_parts, check_status
from .db import Database
from .models import LocalModels
from .search import order_runs, parse_filter

_RUN_COLUMNS = "run_id, experiment_id, status, start_time, end_time, artifact_uri, name"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class LocalRegistry(LocalModels):
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        super().__init__(Database(self.root / STORE_DB))
        self.artifact_root = self.root / STORE_ARTIFACTS_DIR

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities()

    @property
    def tracking_uri(self) -> str:
        """MLflow's own store beside this one for steps that log with mlflow: `sqlite:///<root>/mlflow-steps.db`.

        The bot's run ids do not exist there, so callers must not export MLFLOW_RUN_ID along with it: the runs a
        step creates there are children of the pipeline run, folded into it after the steps (see steps.py).
        """
        return f"sqlite:///{self.root / STEPS_MLFLOW_DB}"

    def close(self) -> None:
        self._db.close()

    # experiments and runs

    def get_or_create_experiment(self, name: str) -> Experiment:
        if not name:
            raise self._db.error(InvalidParameter, "the experiment name is empty")
        with self._db.write() as conn:
            conn.execute("INSERT OR IGNORE INTO experiments (name, artifact_location, creation_time) "
                         "VALUES (?, ?, ?)", (name, self.artifact_root.as_uri(), _now_ms()))
            row = conn.execute("SELECT experiment_id, name, artifact_location FROM experiments WHERE name = ?",
                               (name,)).fetchone()
        return Experiment(str(row[0]), row[1], row[2])

    def create_run(self, experiment_id: str, name: str = "", tags: Mapping[str, str] | None = None) -> Run:
        run_id = uuid.uuid4().hex
        all_tags = {**(tags or {}), **({names.MLFLOW_RUN_NAME: name} if name else {})}
        with self._db.write() as conn:
            if conn.execute("SELECT 1 FROM experiments WHERE experiment_id = ?", (experiment_id,)).fetchone() is None:
                raise self._db.error(NotFound, f"experiment {experiment_id!r} not found")
            conn.execute(f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES (?, ?, 'RUNNING', ?, NULL, ?, ?)",
                         (run_id, int(experiment_id), _now_ms(), (self.artifact_root / run_id).as_uri(), name))
            conn.executemany("INSERT INTO run_tags VALUES (?, ?, ?)", [(run_id, k, v) for k, v in all_tags.items()])
        return self.get_run(run_id)

    def _require_run(self, conn: sqlite3.Connection, run_id: str) -> None:
        if conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is None:
            raise self._db.error(NotFound, f"run {run_id!r} not found")

    def update_run(self, run_id: str, status: RunStatus, end_time: int | None = None) -> None:
        check_status(status)
        if end_time is None and status in polling.TERMINAL:
            end_time = _now_ms()
        with self._db.write() as conn:
            self._require_run(conn, run_id)
            conn.execute("UPDATE runs SET status = ?, end_time = COALESCE(?, end_time) WHERE run_id = ?",
                         (status, end_time, run_id))

    def log_batch(self, run_id: str, params: Mapping[str, str] | None = None,
                  metrics: Mapping[str, float] | None = None, tags: Mapping[str, str] | None = None,
                  step: int = 0) -> None:
        stamp = _now_ms()
        with self._db.write() as conn:
            self._require_run(conn, run_id)
            for key, value in (params or {}).items():
                old = conn.execute("SELECT value FROM params WHERE run_id = ? AND key = ?", (run_id, key)).fetchone()
                if old is not None and old[0] != value:
                    raise self._db.error(InvalidParameter, f"changing param values is not allowed: {key!r} of run "
                                                           f"{run_id} is {old[0]!r}, not {value!r}")
                conn.execute("INSERT OR IGNORE INTO params VALUES (?, ?, ?)", (run_id, key, value))
            conn.executemany("INSERT OR IGNORE INTO metrics VALUES (?, ?, ?, ?, ?, ?)",
                             [(run_id, k, 0.0 if math.isnan(v) else float(v), int(math.isnan(v)), stamp, step)
                              for k, v in (metrics or {}).items()])
            conn.executemany("INSERT OR REPLACE INTO run_tags VALUES (?, ?, ?)",
                             [(run_id, k, v) for k, v in (tags or {}).items()])

    def get_run(self, run_id: str) -> Run:
        runs = self._load_runs("run_id = ?", (run_id,))
        if not runs:
            raise self._db.error(NotFound, f"run {run_id!r} not found")
        return runs[0]

    def get_runs(self, run_ids: Sequence[str], experiment_ids: Sequence[str]) -> dict[str, Run]:
        del experiment_ids  # one local database: each read is cheap
        found = {}
        for run_id in dict.fromkeys(run_ids):
            with contextlib.suppress(NotFound):
                found[run_id] = self.get_run(run_id)
        return found

    def _load_runs(self, where: str, args: tuple[object, ...]) -> list[Run]:
        with self._db.read() as conn:
            rows = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE {where}", args).fetchall()
            runs = []
            for run_id, experiment_id, status, start, end, uri, name in rows:
                params = dict(conn.execute("SELECT key, value FROM params WHERE run_id = ?", (run_id,)).fetchall())
                tags = dict(conn.execute("SELECT key, value FROM run_tags WHERE run_id = ?", (run_id,)).fetchall())
                runs.append(Run(run_id, str(experiment_id), status, start, end, uri, name, params,
                                self._latest_metrics(conn, run_id), tags))
        return runs

    def _latest_metrics(self, conn: sqlite3.Connection, run_id: str) -> dict[str, float]:
        latest: dict[str, float] = {}
        # Ordered so that the last row per key wins: highest step, then timestamp, then value (MLflow's rule).
        for key, value, is_nan in conn.execute("SELECT key, value, is_nan FROM metrics WHERE run_id = ? "
                                               "ORDER BY key, step, timestamp, is_nan, value", (run_id,)):
            latest[key] = math.nan if is_nan else value
        return latest

    def search_runs(self, experiment_ids: Sequence[str], filter_string: str = "", order_by: Sequence[str] = (),
                    max_results: int | None = None) -> list[Run]:
        predicates = parse_filter(filter_string)
        ids = [int(e) for e in experiment_ids if e.isdigit()]
        if not ids:
            return []
        runs = self._load_runs(f"experiment_id IN ({', '.join('?' * len(ids))})", tuple(ids))
        selected = order_runs([r for r in runs if all(p(r) for p in predicates)], order_by)
        return selected if max_results is None else selected[:max_results]

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        with self._db.read() as conn:
            self._require_run(conn, run_id)
            rows = conn.execute("SELECT value, is_nan, timestamp, step FROM metrics WHERE run_id = ? AND key = ? "
                                "ORDER BY step, timestamp", (run_id, key)).fetchall()
        return [MetricPoint(key, math.nan if is_nan else value, stamp, step) for value, is_nan, stamp, step in rows]

    # artifacts

    def upload_artifacts(self, run_id: str, local_dir: Path, artifact_path: str = "") -> None:
        self.get_run(run_id)
        target = self.artifact_root.joinpath(run_id, *artifact_parts(artifact_path))
        if local_dir.is_file():
            _copy_file(local_dir, target / local_dir.name)
        elif local_dir.is_dir():
            for folder, _dirs, files in os.walk(local_dir):
                for file_name in files:
                    source = Path(folder) / file_name
                    _copy_file(source, target / source.relative_to(local_dir))
        else:
            raise UsageError(f"cannot upload {local_dir}: no such file or directory.")

    def download_artifacts(self, run_id: str, artifact_path: str, dest: Path) -> Path:
        self.get_run(run_id)
        parts = artifact_parts(artifact_path)
        source = self.artifact_root.joinpath(run_id, *parts)
        target = dest.joinpath(*parts)
        if source.is_file():
            _copy_file(source, target)
        elif source.is_dir() and (parts or any(source.iterdir())):
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            raise self._db.error(NotFound, f"run {run_id} has no artifact {artifact_path or '(root)'}")
        return target

    def list_artifacts(self, run_id: str, artifact_path: str = "") -> list[str]:
        self.get_run(run_id)
        source = self.artifact_root.joinpath(run_id, *artifact_parts(artifact_path))
        if not source.is_dir():
            return []
        return sorted(p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file())

    def check_artifact_location(self, location: str) -> None:
        """The embedded store writes its own files under .mlops-bot/: nothing to check."""

    def log_model(self, run_id: str, artifact_path: str, name: str) -> str | None:
        """No Logged Models here: versions keep the run's artifact as their source."""
        return None

    def list_logged_model_artifacts(self, model_id: str) -> list[str]:
        raise self._db.error(NotFound, f"no logged model {model_id}: the embedded store has no Logged Models")

    # locks

    def try_lock(self, name: str, owner: str, ttl_ms: int) -> str:
        now = _now_ms()
        with self._db.write() as conn:  # BEGIN IMMEDIATE: read and take the lock in one step
            row = conn.execute("SELECT owner, expires FROM locks WHERE name = ?", (name,)).fetchone()
            if row is not None and row[0] != owner and row[1] > now:
                return str(row[0])
            conn.execute("INSERT OR REPLACE INTO locks VALUES (?, ?, ?)", (name, owner, now + ttl_ms))
            return owner

    def unlock(self, name: str, owner: str) -> None:
        with self._db.write() as conn:
            conn.execute("DELETE FROM locks WHERE name = ? AND owner = ?", (name, owner))

    # polling

    def poll_experiment_ids(self) -> list[str]:
        with self._db.read() as conn:
            return [str(e) for (e,) in conn.execute("SELECT experiment_id FROM experiments ORDER BY experiment_id")]

    def events_since(self, cursor: str | None, model_names: Sequence[str]) -> tuple[list[RegistryEvent], str]:
        return polling.events_since(self, cursor, model_names)


def _copy_file(source: Path, target: Path) -> None:
    """Copied under a temporary name, then renamed: a reader never sees half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    shutil.copyfile(source, partial)
    partial.replace(target)
