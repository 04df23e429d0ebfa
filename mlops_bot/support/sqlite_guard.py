"""Files under `.mlops-bot/` that MLflow's own tools refuse instead of changing, if someone points them there
(`mlflow ui --backend-store-uri sqlite:///.mlops-bot/<any file>`).

MLflow's SQL store creates the tables of its first schema that are missing, then `alembic_version`, one
autocommitted statement at a time, and fails half-way through its migrations: a file of ours would be left
changed. So every SQLite database of ours holds an index under each of those names (an index and a table
cannot share a name, and MLflow's first CREATE TABLE fails before anything is written), and no lock file is
ever empty (SQLite takes an empty file for an empty database; a line of text makes it "not a database").
tests/registry/test_embedded_mlflow.py points the real CLI at every file.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

MLFLOW_FIRST_NAMES = ("experiments", "runs", "tags", "metrics", "params", "alembic_version")
LOCK_TEXT = b"mlops-bot lock file (not a database)\n"


def refuse_mlflow(conn: sqlite3.Connection) -> None:
    """Holds each name MLflow would create first with an index (names our own tables use are held already)."""
    conn.execute("CREATE TABLE IF NOT EXISTS mlflow_guard (refused INTEGER)")
    taken = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    for name in MLFLOW_FIRST_NAMES:
        if name not in taken:
            conn.execute(f'CREATE INDEX "{name}" ON mlflow_guard(refused)')


def open_lock_file(path: Path) -> int:
    """An fd of the lock file `path` (created with a line of text, so it is never an empty file)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    if os.fstat(fd).st_size == 0:
        os.write(fd, LOCK_TEXT)
    return fd
