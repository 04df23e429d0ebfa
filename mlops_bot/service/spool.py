"""The spool: accepted events in SQLite (`.mlops-bot/events/spool.db`, WAL, synchronous=FULL, so a commit
is on disk when it returns) until they are handled, and their ids for a while after, to refuse replays.

One row per event id (the primary key dedups: at-least-once in). An event may come with replay keys (GitHub's
and GitLab's body digest and event ids, see replay.py): they go to `seen`, and an event repeating one of them
is refused like a repeated id, for as long as ids are kept (KEEP_IDS_S). A row is `pending` until its handler
finished, `handled` after, or `failed` when its attempts ran out. `done` counts the actions completed, so a
retry or a restart resumes after the last one that succeeded. `SpoolWriter` funnels every write of `serve`
through one thread that commits them in batches (group commit): one fsync serves many requests. This file
serves one replica; with MLOPS_BOT_SPOOL_URL the same records live in PostgreSQL for many (spool_pg.py), and
SpoolWriter writes there the same way.
"""

from __future__ import annotations

import fcntl
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..events.event import Event
from ..support.sqlite_guard import open_lock_file, refuse_mlflow

KEEP_IDS_S = 7 * 24 * 3600  # handled ids are kept this long: longer than any sender retries or MAX_AGE_S
BATCH = 256
T = TypeVar("T")
# A change is one SQL statement waiting for a connection: the spool runs it in a transaction of its own,
# SpoolWriter batches many into one commit.
Change = Callable[[sqlite3.Connection], Any]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    received REAL NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    done INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS events_pending ON events (state, seq);
CREATE TABLE IF NOT EXISTS seen (key TEXT PRIMARY KEY, received REAL NOT NULL) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class Spooled:
    seq: int
    event: Event
    done: int
    attempts: int
    next_at: float
    lease: int = 0  # the PostgreSQL spool's fencing token: the claim this copy of the row was handed out by
    audited: bool = False  # the PostgreSQL spool's record that its audit line is written
    taken_over: bool = False  # claimed after another replica's lease on it expired


def connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.executescript(_SCHEMA)
    refuse_mlflow(conn)  # MLflow's tools pointed at this file refuse it (support/sqlite_guard)
    return conn


class Spool:
    """The spool's operations on one connection; each public method is one committed transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = connect(path)
        self._lock = threading.Lock()

    def close(self) -> None:
        self.conn.close()

    def transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(self.conn)
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
            return result

    @staticmethod
    def insert_many(conn: sqlite3.Connection, items: Sequence[tuple[Event, Sequence[str]]]) -> list[bool]:
        return [insert(conn, event, keys) for event, keys in items]

    def insert(self, events: Sequence[Event]) -> list[bool]:
        """Adds the events; False for each id the spool holds already (a duplicate or a replay)."""
        return self.transaction(lambda conn: [insert(conn, e) for e in events])

    def apply(self, changes: Iterable[Change]) -> None:
        self.transaction(lambda conn: [change(conn) for change in changes])

    def pending(self, after_seq: int = 0, limit: int = BATCH) -> list[Spooled]:
        with self._lock:
            rows = self.conn.execute("SELECT seq, body, done, attempts, next_at FROM events WHERE state = 'pending' "
                                     "AND seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)).fetchall()
        return [Spooled(seq, Event.from_dict(_load(body)), done, attempts, next_at)
                for seq, body, done, attempts, next_at in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self.conn.execute("SELECT state, COUNT(*) FROM events GROUP BY state").fetchall()
        return {"pending": 0, "handled": 0, "failed": 0, **{state: n for state, n in rows}}

    def prune(self, now: float | None = None) -> int:
        return self.transaction(prune_change(now))


def hold_exclusive(path: Path, what: str) -> int:
    """Takes `path`'s lock for the life of this process (the fd is returned, and released when it closes):
    two receivers handling one spool would handle its events twice."""
    from ..errors import UsageError

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = open_lock_file(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise UsageError(f"another `mlops-bot {what}` is running for {path.parent.parent.parent}; stop it first "
                         "(one per project: they would handle the same events).") from None
    return fd


def insert(conn: sqlite3.Connection, event: Event, keys: Sequence[str] = ()) -> bool:
    """Adds the event unless its id or one of its replay keys was seen; False then."""
    if keys and conn.execute(f"SELECT 1 FROM seen WHERE key IN ({','.join('?' * len(keys))}) LIMIT 1",
                             tuple(keys)).fetchone():
        return False
    now = time.time()
    cursor = conn.execute("INSERT OR IGNORE INTO events (id, received, body) VALUES (?, ?, ?)",
                          (event.id, now, event.to_json()))
    if cursor.rowcount != 1:
        return False
    conn.executemany("INSERT OR IGNORE INTO seen (key, received) VALUES (?, ?)", [(key, now) for key in keys])
    return True


def prune_change(now: float | None = None) -> Callable[[sqlite3.Connection], int]:
    """Forgets handled and failed events, and replay keys, older than KEEP_IDS_S; returns how many events."""
    cutoff = (now or time.time()) - KEEP_IDS_S

    def prune(conn: sqlite3.Connection) -> int:
        conn.execute("DELETE FROM seen WHERE received < ?", (cutoff,))
        return int(conn.execute("DELETE FROM events WHERE state != 'pending' AND received < ?", (cutoff,)).rowcount)

    return prune


def handled_change(event_id: str) -> Change:
    return lambda conn: conn.execute("UPDATE events SET state = 'handled', error = '' WHERE id = ?", (event_id,))


def progress_change(event_id: str, done: int) -> Change:
    return lambda conn: conn.execute("UPDATE events SET done = ? WHERE id = ?", (done, event_id))


def retry_change(event_id: str, attempts: int, next_at: float, error: str, final: bool) -> Change:
    state = "failed" if final else "pending"
    return lambda conn: conn.execute("UPDATE events SET state = ?, attempts = ?, next_at = ?, error = ? WHERE id = ?",
                                     (state, attempts, next_at, error[:2000], event_id))


def _load(body: str) -> dict[str, Any]:
    import json

    doc: dict[str, Any] = json.loads(body)
    return doc


@dataclass(frozen=True)
class _Insert:
    """A delivery to add: the writer adds a batch's deliveries together (spool.insert_many)."""

    event: Event
    keys: tuple[str, ...]


Work = Callable[[Any], Any] | _Insert


def _run(conn: Any, spool: Any, works: list[Work]) -> list[Any]:
    """The batch's results in its order: its deliveries added as one (fewer statements), then its changes."""
    inserts = [w for w in works if isinstance(w, _Insert)]
    fresh = iter(spool.insert_many(conn, [(w.event, w.keys) for w in inserts]) if inserts else [])
    return [next(fresh) if isinstance(w, _Insert) else w(conn) for w in works]


class SpoolWriter:
    """One thread does every write of the spool, committing what queued up meanwhile as one transaction."""

    def __init__(self, spool: Any, on_commit: Callable[[], None] = lambda: None) -> None:
        # spool: a Spool, or spool_pg.PgSpool (the same transaction() and insert_many())
        self.spool, self.on_commit = spool, on_commit
        self._queue: queue.Queue[tuple[Work, Future[Any]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="mlops-bot-spool", daemon=True)

    def start(self) -> SpoolWriter:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def submit(self, work: Callable[[sqlite3.Connection], T]) -> Future[T]:
        future: Future[T] = Future()
        self._queue.put((work, future))
        return future

    def insert(self, event: Event, keys: Sequence[str] = ()) -> Future[bool]:
        future: Future[bool] = Future()
        self._queue.put((_Insert(event, tuple(keys)), future))
        return future

    def apply(self, changes: Iterable[Change]) -> None:
        """Commits the changes; returns when they are on disk (raises what the commit raised)."""
        batch = list(changes)
        self.submit(lambda conn: [change(conn) for change in batch]).result()

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(item)
            self._commit(batch)

    def _commit(self, batch: list[tuple[Work, Future[Any]]]) -> None:
        results: list[Any] = []
        try:
            results = self.spool.transaction(lambda conn: _run(conn, self.spool, [work for work, _ in batch]))
        except Exception as exc:  # nothing of the batch is on disk: every caller learns it
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            future.set_result(result)
        self.on_commit()
