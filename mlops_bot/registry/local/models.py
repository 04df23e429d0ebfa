"""The model-registry half of LocalRegistry, with MLflow's semantics and errors."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping

from ...errors import InvalidParameter, NotFound
from ..base import ModelVersion, RegisteredModel
from ..validation import check_alias, model_name_problem
from .db import SERVICE, Database

_VERSION_COLUMNS = "name, version, source, run_id, status, creation_timestamp, description"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class LocalModels:
    def __init__(self, db: Database) -> None:
        self._db = db

    def _check_name(self, name: str) -> None:
        problem = model_name_problem(name)
        if problem:
            raise self._db.error(InvalidParameter, problem)

    def _require_model(self, conn: sqlite3.Connection, name: str) -> None:
        self._check_name(name)
        if conn.execute("SELECT 1 FROM registered_models WHERE name = ?", (name,)).fetchone() is None:
            raise self._db.error(NotFound, f"registered model {name!r} not found")

    def _require_version(self, conn: sqlite3.Connection, name: str, version: str) -> int:
        self._require_model(conn, name)
        number = int(version) if version.isdigit() else -1
        if conn.execute("SELECT 1 FROM model_versions WHERE name = ? AND version = ?",
                        (name, number)).fetchone() is None:
            raise self._db.error(NotFound, f"model version {name!r} version {version!r} not found")
        return number

    def _model(self, conn: sqlite3.Connection, name: str) -> RegisteredModel:
        self._require_model(conn, name)
        description = conn.execute("SELECT description FROM registered_models WHERE name = ?", (name,)).fetchone()[0]
        aliases = {alias: str(version) for alias, version in
                   conn.execute("SELECT alias, version FROM aliases WHERE name = ? ORDER BY alias", (name,))}
        return RegisteredModel(name, description, aliases, {})

    def registered_model_names(self) -> list[str]:
        """Every registered model, by name (for the export into MLflow's own store, export.py)."""
        with self._db.read() as conn:
            return [name for (name,) in conn.execute("SELECT name FROM registered_models ORDER BY name")]

    def get_registered_model(self, name: str) -> RegisteredModel:
        with self._db.read() as conn:
            return self._model(conn, name)

    def get_or_create_registered_model(self, name: str, description: str = "") -> RegisteredModel:
        self._check_name(name)
        with self._db.write() as conn:
            conn.execute("INSERT OR IGNORE INTO registered_models VALUES (?, ?, ?)", (name, description, _now_ms()))
            return self._model(conn, name)

    def _versions(self, conn: sqlite3.Connection, where: str, args: tuple[object, ...]) -> list[ModelVersion]:
        rows = conn.execute(f"SELECT {_VERSION_COLUMNS} FROM model_versions WHERE {where} ORDER BY version DESC",
                            args).fetchall()
        result = []
        for name, version, source, run_id, status, created, description in rows:
            tags = dict(conn.execute("SELECT key, value FROM version_tags WHERE name = ? AND version = ? "
                                     "ORDER BY key", (name, version)).fetchall())
            aliases = tuple(a for (a,) in conn.execute(
                "SELECT alias FROM aliases WHERE name = ? AND version = ? ORDER BY alias", (name, version)))
            result.append(ModelVersion(name, str(version), source, run_id, status, created, description, tags,
                                       aliases))
        return result

    def create_model_version(self, name: str, source: str, run_id: str, tags: Mapping[str, str] | None = None,
                             description: str = "", model_id: str = "") -> ModelVersion:
        """`model_id` is ignored: the embedded store has no Logged Models (log_model answers None)."""
        if source.startswith("runs:/") and source[len("runs:/"):].split("/", 1)[0] != run_id:
            # MLflow's rule too: a runs:/ source must name the run the version is registered from.
            raise self._db.error(InvalidParameter, f"model version source {source!r} does not belong to run {run_id}")
        with self._db.write() as conn:
            self._require_model(conn, name)
            same = self._versions(conn, "name = ? AND run_id = ? AND source = ?", (name, run_id, source))
            if same:
                return same[-1]  # the first one registered from this run and source
            # Allocated inside the write transaction: two processes never get the same number.
            number = conn.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE name = ?",
                                  (name,)).fetchone()[0]
            conn.execute(f"INSERT INTO model_versions ({_VERSION_COLUMNS}) VALUES (?, ?, ?, ?, 'READY', ?, ?)",
                         (name, number, source, run_id, _now_ms(), description))
            conn.executemany("INSERT INTO version_tags VALUES (?, ?, ?, ?)",
                             [(name, number, k, v) for k, v in (tags or {}).items()])
            return self._versions(conn, "name = ? AND version = ?", (name, number))[0]

    def get_model_version(self, name: str, version: str) -> ModelVersion:
        with self._db.read() as conn:
            number = self._require_version(conn, name, version)
            return self._versions(conn, "name = ? AND version = ?", (name, number))[0]

    def search_model_versions(self, name: str, max_results: int | None = None) -> list[ModelVersion]:
        with self._db.read() as conn:
            found = self._versions(conn, "name = ?", (name,))
        return found if max_results is None else found[:max_results]

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        with self._db.write() as conn:
            number = self._require_version(conn, name, version)
            conn.execute("INSERT OR REPLACE INTO version_tags VALUES (?, ?, ?, ?)", (name, number, key, value))

    def set_alias(self, name: str, alias: str, version: str) -> None:
        check_alias(alias, SERVICE, str(self._db.path))
        with self._db.write() as conn:
            number = self._require_version(conn, name, version)
            conn.execute("INSERT OR REPLACE INTO aliases VALUES (?, ?, ?)", (name, alias, number))

    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion | None:
        check_alias(alias, SERVICE, str(self._db.path))
        with self._db.read() as conn:
            self._require_model(conn, name)
            row = conn.execute("SELECT version FROM aliases WHERE name = ? AND alias = ?", (name, alias)).fetchone()
            return None if row is None else self._versions(conn, "name = ? AND version = ?", (name, row[0]))[0]

    def delete_alias(self, name: str, alias: str) -> None:
        check_alias(alias, SERVICE, str(self._db.path))
        with self._db.write() as conn:
            self._require_model(conn, name)
            conn.execute("DELETE FROM aliases WHERE name = ? AND alias = ?", (name, alias))
