"""The spool in PostgreSQL, for replicas: with MLOPS_BOT_SPOOL_URL=postgresql://user:pw@host:port/db the events
of `serve` (and `watch`), their progress, the replay window (`seen`) and watch's cursor live in that database, so
N processes on N machines share one queue. Without it, spool.py's SQLite file serves one replica.

Tables (created by whichever replica starts first: CREATE ... IF NOT EXISTS under an advisory lock):
  mlops_bot_events  one row per (spool, id): `serve` and `watch` are two spools of one database. `part` is the
                    event's partition (its model); `owner`, `lease_until` and `lease` (a fencing token, +1 per
                    claim) say which replica handles it until when (spool_claims.py); `audited` that its audit
                    line is written. seq (BIGSERIAL) is the order of acceptance.
  mlops_bot_seen    the replay keys (replay.py) of accepted events, kept KEEP_IDS_S like the ids.
  mlops_bot_cursors where `watch` polled up to (one per spool), read and written under an advisory lock.

A delivery is accepted once: its row and its keys are inserted in one transaction (a savepoint in the writer's
group commit); a second replica inserting the same id or key waits on the unique index and then finds it taken.
Every transaction is retried on a lost connection or a deadlock within a bounded budget (support/retry), then
fails with a message naming the redacted URL. psycopg is imported only here, only in this mode.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ..console import log
from ..events.event import Event
from ..support.retry import Retrier, RetryPolicy
from ..support.urls import redact, redact_text
from .spool import KEEP_IDS_S

if TYPE_CHECKING:
    import psycopg

T = TypeVar("T")
SPOOL_URL = "MLOPS_BOT_SPOOL_URL"
NOW = "extract(epoch FROM clock_timestamp())::float8"  # the database's clock: replicas' clocks may differ
SCHEMA_LOCK = 0x6D6C6F7073  # pg_advisory_xact_lock key of the schema's creation ('mlops')
CONNECT = RetryPolicy(initial_wait=0.2, max_wait=2.0, total_seconds=15.0)
TRANSACTION = RetryPolicy(initial_wait=0.1, max_wait=1.0, total_seconds=15.0)
WRITE = RetryPolicy(initial_wait=0.1, max_wait=1.0, total_seconds=5.0)  # a delivery waits this, then gets 503

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS mlops_bot_events (
        seq BIGSERIAL PRIMARY KEY, spool TEXT NOT NULL, id TEXT NOT NULL, part TEXT NOT NULL,
        received DOUBLE PRECISION NOT NULL, body TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending',
        done INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,
        next_at DOUBLE PRECISION NOT NULL DEFAULT 0, error TEXT NOT NULL DEFAULT '', owner TEXT,
        lease_until DOUBLE PRECISION NOT NULL DEFAULT 0, lease BIGINT NOT NULL DEFAULT 0,
        audited BOOLEAN NOT NULL DEFAULT FALSE, UNIQUE (spool, id))""",
    "CREATE INDEX IF NOT EXISTS mlops_bot_events_pending ON mlops_bot_events (spool, part, seq) "
    "WHERE state = 'pending'",
    "CREATE INDEX IF NOT EXISTS mlops_bot_events_received ON mlops_bot_events (received)",
    """CREATE TABLE IF NOT EXISTS mlops_bot_seen (spool TEXT NOT NULL, key TEXT NOT NULL,
        received DOUBLE PRECISION NOT NULL, PRIMARY KEY (spool, key))""",
    "CREATE TABLE IF NOT EXISTS mlops_bot_cursors (spool TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


def spool_url(env: Mapping[str, str]) -> str | None:
    """MLOPS_BOT_SPOOL_URL when set (a postgresql:// URL), else None: the SQLite spool."""
    from ..errors import UsageError

    url = env.get(SPOOL_URL, "").strip()
    if not url:
        return None
    if not url.startswith(("postgresql://", "postgres://")):
        raise UsageError(f"{SPOOL_URL} must be a postgresql://user:password@host:port/database URL, not "
                         f"{redact(url)!r}; unset it to keep the spool in SQLite (one replica).")
    return url


def unreachable(url: str, exc: BaseException) -> Exception:
    """The error after the retries: what failed, at the redacted URL, and what to do."""
    from ..errors import RemoteError

    why = redact_text(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    return RemoteError("PostgreSQL spool", None, redact(url), f"{why}; still failing after retries. Start the "
                       f"server (or wait for its failover) and check {SPOOL_URL}")


class PgSpool:
    """One connection to the spool's database; each `transaction` is committed whole or retried whole."""

    def __init__(self, url: str, spool: str = "serve", policy: RetryPolicy = TRANSACTION) -> None:
        self.url, self.spool, self.policy = url, spool, policy
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def _connection(self) -> psycopg.Connection[Any]:
        import psycopg

        if self._conn is None or self._conn.closed or self._conn.broken:
            self._drop()
            self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5, keepalives=1,
                                         keepalives_idle=5, keepalives_interval=2, keepalives_count=3,
                                         application_name=f"mlops-bot {self.spool}")
        return self._conn

    def transaction(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """`work` in one transaction; a lost connection, a failover or a deadlock rolls it back and runs it again
        (every caller's work is safe to repeat) until the policy's budget is spent."""
        import psycopg

        def attempt() -> T:
            conn = self._connection()
            try:
                with conn.transaction():
                    return work(conn)
            except (psycopg.OperationalError, psycopg.InterfaceError):
                if conn.closed or conn.broken:
                    self._drop()
                raise

        def announce(failure: BaseException, number: int, wait: float) -> None:
            text = str(failure).strip().splitlines()[0] if str(failure).strip() else type(failure).__name__
            log(f"mlops-bot: PostgreSQL spool at {redact(self.url)}: {redact_text(text[:200])}; "
                f"retry {number} in {wait:.1f} s")

        with self._lock:
            try:
                return Retrier(self.policy).call(attempt, (psycopg.OperationalError, psycopg.InterfaceError),
                                                 announce)
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                raise unreachable(self.url, exc) from None

    def create_schema(self) -> None:
        def create(conn: psycopg.Connection[Any]) -> None:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            for statement in SCHEMA:
                conn.execute(statement)

        self.transaction(create)

    def insert_in(self, conn: psycopg.Connection[Any], event: Event, keys: Sequence[str] = (),
                  audited: bool = False) -> bool:
        """Adds the event unless its id or one of its replay keys is taken; False then (nothing of it stays)."""
        if not keys:  # one statement, refused whole on a taken id: no savepoint's round trips
            return self._insert_row(conn, event, audited)
        try:
            with conn.transaction():  # a savepoint: a refused event leaves the rest of a group commit alone
                if not self._insert_row(conn, event, audited):
                    return False
                for key in sorted(set(keys)):  # one order for every replica: two inserting both cannot deadlock
                    cursor = conn.execute("INSERT INTO mlops_bot_seen (spool, key, received) VALUES "
                                          f"(%s, %s, {NOW}) ON CONFLICT DO NOTHING", (self.spool, key))
                    if cursor.rowcount != 1:
                        raise _Refused
        except _Refused:
            return False
        return True

    def insert_many(self, conn: psycopg.Connection[Any], items: Sequence[tuple[Event, Sequence[str]]]) -> list[bool]:
        """The writer's batch: the events without replay keys in one statement (in the batch's order), the others
        one by one; an id twice in the batch is accepted once."""
        results, plain, first = [False] * len(items), [], set()
        for n, (event, keys) in enumerate(items):
            if event.id in first:
                continue
            first.add(event.id)
            if keys:
                results[n] = self.insert_in(conn, event, keys)
            else:
                plain.append(n)
        if plain:
            events = [items[n][0] for n in plain]
            rows = conn.execute(
                "INSERT INTO mlops_bot_events (spool, id, part, received, body) "
                f"SELECT %s, u.id, u.part, {NOW}, u.body FROM unnest(%s::text[], %s::text[], %s::text[]) "
                "WITH ORDINALITY AS u(id, part, body, n) ORDER BY u.n ON CONFLICT (spool, id) DO NOTHING RETURNING id",
                (self.spool, [e.id for e in events], [e.partition for e in events], [e.to_json() for e in events]))
            taken = {str(row[0]) for row in rows.fetchall()}
            for n in plain:
                results[n] = items[n][0].id in taken
        return results

    def _insert_row(self, conn: psycopg.Connection[Any], event: Event, audited: bool) -> bool:
        row = conn.execute("INSERT INTO mlops_bot_events (spool, id, part, received, body, audited) VALUES "
                           f"(%s, %s, %s, {NOW}, %s, %s) ON CONFLICT (spool, id) DO NOTHING RETURNING seq",
                           (self.spool, event.id, event.partition, event.to_json(), audited)).fetchone()
        return row is not None

    def insert(self, events: Sequence[Event], audited: bool = False) -> list[bool]:
        return self.transaction(lambda conn: [self.insert_in(conn, e, (), audited) for e in events])

    def counts(self) -> dict[str, int]:
        rows = self.transaction(lambda conn: conn.execute(
            "SELECT state, count(*) FROM mlops_bot_events WHERE spool = %s GROUP BY state", (self.spool,)).fetchall())
        return {"pending": 0, "handled": 0, "failed": 0, **{str(state): int(n) for state, n in rows}}

    def prune(self, now: float | None = None) -> int:
        cutoff = (now or time.time()) - KEEP_IDS_S

        def prune(conn: psycopg.Connection[Any]) -> int:
            conn.execute("DELETE FROM mlops_bot_seen WHERE spool = %s AND received < %s", (self.spool, cutoff))
            return conn.execute("DELETE FROM mlops_bot_events WHERE spool = %s AND state <> 'pending' "
                                "AND received < %s", (self.spool, cutoff)).rowcount

        return self.transaction(prune)

    def with_cursor(self, work: Callable[[psycopg.Connection[Any], str | None], tuple[T, str]]) -> T:
        """`work(conn, cursor)` -> (result, new cursor) with the spool's cursor held: replicas poll one at a time, each
        from where the last one stopped, so a change is found once and gets one id."""
        def locked(conn: psycopg.Connection[Any]) -> T:
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (SCHEMA_LOCK % 2**31, self.spool))
            row = conn.execute("SELECT value FROM mlops_bot_cursors WHERE spool = %s", (self.spool,)).fetchone()
            result, after = work(conn, None if row is None else str(row[0]))
            conn.execute("INSERT INTO mlops_bot_cursors (spool, value) VALUES (%s, %s) ON CONFLICT (spool) "
                         "DO UPDATE SET value = EXCLUDED.value", (self.spool, after))
            return result

        return self.transaction(locked)


class _Refused(Exception):
    """A replay key was taken: the savepoint rolls the event back."""
