"""The embedded store's SQLite database: schema, connection and transactions.

Writers take `BEGIN IMMEDIATE`, so two processes serialise on the write lock instead of failing
half-way; every read-modify-write (version numbers, param checks) happens inside one such transaction.
WAL mode lets readers continue while one process writes.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ...errors import RemoteError
from ...support.sqlite_guard import refuse_mlflow
from ...support.state import local_state_dir
from ..validation import rejected

SERVICE = "local registry"
SCHEMA_VERSION = 3  # 2: locks; 3: the guard against MLflow's migrations
_BUSY_TIMEOUT_MS = 60_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
    experiment_id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,
    artifact_location TEXT NOT NULL, creation_time INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, experiment_id INTEGER NOT NULL REFERENCES experiments(experiment_id),
    name TEXT NOT NULL, status TEXT NOT NULL, start_time INTEGER NOT NULL, end_time INTEGER,
    artifact_uri TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS runs_by_end ON runs(end_time);
CREATE TABLE IF NOT EXISTS params (
    run_id TEXT NOT NULL REFERENCES runs(run_id), key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (run_id, key));
CREATE TABLE IF NOT EXISTS run_tags (
    run_id TEXT NOT NULL REFERENCES runs(run_id), key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (run_id, key));
-- As in MLflow, an identical point (same key, step, timestamp and value) is stored once.
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL REFERENCES runs(run_id), key TEXT NOT NULL, value REAL NOT NULL,
    is_nan INTEGER NOT NULL, timestamp INTEGER NOT NULL, step INTEGER NOT NULL,
    PRIMARY KEY (run_id, key, timestamp, step, value, is_nan));
CREATE TABLE IF NOT EXISTS registered_models (
    name TEXT PRIMARY KEY, description TEXT NOT NULL, creation_timestamp INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS model_versions (
    name TEXT NOT NULL REFERENCES registered_models(name), version INTEGER NOT NULL, source TEXT NOT NULL,
    run_id TEXT NOT NULL, status TEXT NOT NULL, creation_timestamp INTEGER NOT NULL,
    description TEXT NOT NULL, PRIMARY KEY (name, version));
CREATE INDEX IF NOT EXISTS versions_by_run ON model_versions(name, run_id);
CREATE TABLE IF NOT EXISTS version_tags (
    name TEXT NOT NULL, version INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (name, version, key), FOREIGN KEY (name, version) REFERENCES model_versions(name, version));
CREATE TABLE IF NOT EXISTS locks (
    name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS aliases (
    name TEXT NOT NULL, alias TEXT NOT NULL, version INTEGER NOT NULL,
    PRIMARY KEY (name, alias), FOREIGN KEY (name, version) REFERENCES model_versions(name, version));
"""

# MLflow's tools (`mlflow ui/server/gc/db upgrade --backend-store-uri sqlite:///.mlops-bot/registry.db`) create the
# tables of its first schema that are missing (`tags`, as ours are called otherwise) and then `alembic_version`, one
# autocommitted DDL statement at a time, then fail half-way through their migrations. An index already holding each
# of those two names makes the first of those statements fail: MLflow stops before it writes anything
# (tests/registry/test_embedded_mlflow.py runs the real CLI). A file MLflow already changed loses what it added.
_REPAIR = """
DROP TABLE IF EXISTS alembic_version;
DROP TABLE IF EXISTS tags;
"""


class Database:
    """One connection per process (re-opened after a fork), shared by threads under a lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0

    def error(self, cls: type[RemoteError], message: str) -> RemoteError:
        return rejected(cls, SERVICE, str(self.path), message)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            local_state_dir(self.path.parent)
            conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                   check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = NORMAL")
            self._conn, self._pid = conn, os.getpid()
            self._migrate(conn)
        return self._conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                for statement in (_SCHEMA + _REPAIR).split(";"):
                    if statement.strip():
                        conn.execute(statement)
                refuse_mlflow(conn)  # support/sqlite_guard
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction holding SQLite's write lock from its first statement."""
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for several SELECTs."""
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN DEFERRED")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
