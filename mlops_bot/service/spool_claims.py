"""Who handles which event of the PostgreSQL spool: claims, leases and fenced records.

Claim: in one transaction, the oldest due pending events that begin their partition (no earlier pending event of
the same model: the partition's `min(seq)` among pending rows) and that nobody holds (no owner, or a lease
expired), `FOR UPDATE SKIP LOCKED` so replicas claiming at once take different ones; then the events that follow
each in its partition, up to `more`
(nobody else can claim those while the first is pending). Each claimed row gets this replica's `owner`, a lease
until now + `ttl` (the database's clock) and `lease` + 1: the fencing token.

Fenced records: every write about a claimed event (audited, an action done, handled, a retry) names the owner and
the token it was claimed with; when the row no longer matches (the lease expired and another replica took the
event over), nothing is written and LeaseLost stops this replica's handling of it. `LeaseKeeper` renews the
leases of what is in hand every ttl/3, and releases what was not finished.

Audit line once: it is written, then `audited` is committed (fenced). A replica killed between the two leaves
`audited` false; whoever takes the event over checks the audit log's tail for its id first (the same checkout's
log; replicas with logs of their own may then each hold the line once).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..console import log
from ..events.event import Event
from .recording import LeaseLost, Recorder
from .spool import Spooled
from .spool_pg import NOW, PgSpool

if TYPE_CHECKING:
    import psycopg

    from ..events.audit import EventLog

TAIL_BYTES = 8 * 1024 * 1024  # the audit log's tail searched for an event taken over
_RETURNING = ("RETURNING t.seq, t.body, t.done, t.attempts, t.next_at, t.lease, t.audited, c.taken")
_TAKE = (f"UPDATE mlops_bot_events t SET owner = %(owner)s, lease_until = {NOW} + %(ttl)s, lease = t.lease + 1 "
         "FROM c WHERE t.seq = c.seq ")
# Each partition's first pending event (one pass over the pending rows, whatever the table's statistics say),
# then those of them nobody holds, locked; a row changed since the snapshot is checked again when locked.
HEADS = f"""WITH firsts AS (
    SELECT min(seq) AS seq FROM mlops_bot_events WHERE spool = %(spool)s AND state = 'pending' GROUP BY part),
c AS (
    SELECT e.seq, e.owner IS NOT NULL AS taken FROM mlops_bot_events e JOIN firsts f ON e.seq = f.seq
    WHERE e.state = 'pending' AND e.next_at <= {NOW} AND (e.owner IS NULL OR e.lease_until < {NOW})
    ORDER BY e.seq LIMIT %(heads)s FOR UPDATE OF e SKIP LOCKED)
{_TAKE}{_RETURNING}"""
FOLLOWERS = f"""WITH c AS (
    SELECT e.seq, e.owner IS NOT NULL AS taken FROM mlops_bot_events e
    WHERE e.spool = %(spool)s AND e.part = %(part)s AND e.state = 'pending' AND e.seq > %(after)s
      AND e.next_at <= {NOW}
    ORDER BY e.seq LIMIT %(more)s FOR UPDATE OF e)
{_TAKE}{_RETURNING}"""
_FENCE = "spool = %s AND owner = %s AND (seq, lease) IN (SELECT * FROM unnest(%s::bigint[], %s::bigint[]))"


def claim(spool: PgSpool, owner: str, ttl: float, heads: int = 1, more: int = 63) -> list[Spooled]:
    """Up to `heads` partitions' next events, each with up to `more` of its followers, leased to `owner`;
    in order within each partition."""
    def take(conn: psycopg.Connection[Any]) -> list[Spooled]:
        params = {"spool": spool.spool, "owner": owner, "ttl": ttl, "heads": heads, "more": more}
        claimed = [_spooled(row) for row in conn.execute(HEADS, params).fetchall()]
        for head in list(claimed):
            if more > 0:
                rows = conn.execute(FOLLOWERS, {**params, "part": head.event.partition, "after": head.seq})
                claimed += [_spooled(row) for row in rows.fetchall()]
        return claimed

    found = spool.transaction(take)
    return sorted(found, key=lambda s: s.seq)


def _spooled(row: Sequence[Any]) -> Spooled:
    import json

    seq, body, done, attempts, next_at, lease, audited, taken = row
    return Spooled(int(seq), Event.from_dict(json.loads(body)), int(done), int(attempts), float(next_at),
                   lease=int(lease), audited=bool(audited), taken_over=bool(taken))


def fenced(spool: PgSpool, owner: str, items: Sequence[Spooled], assignments: str, values: Sequence[Any] = ()) -> int:
    """`UPDATE ... SET <assignments>` on the items this owner still holds by their tokens; how many it held."""
    def write(conn: psycopg.Connection[Any]) -> int:
        return conn.execute(f"UPDATE mlops_bot_events SET {assignments} WHERE {_FENCE}",
                            (*values, spool.spool, owner, [i.seq for i in items], [i.lease for i in items])).rowcount

    return spool.transaction(write)


class PgRecorder(Recorder):
    """EventRunner's records in PostgreSQL, each refused (LeaseLost) once the event is another replica's."""

    def __init__(self, spool: PgSpool, owner: str) -> None:
        self.spool, self.owner = spool, owner

    def _write(self, items: Sequence[Spooled], assignments: str, values: Sequence[Any] = ()) -> None:
        if items and fenced(self.spool, self.owner, items, assignments, values) != len(items):
            lost = ", ".join(i.event.id for i in items[:3])
            raise LeaseLost(f"the lease on {lost} expired and another replica took it over; this one stops it")

    def audit(self, log: EventLog, items: Sequence[Spooled], first: bool) -> None:
        fresh = [i for i in items if not i.audited]
        if any(i.taken_over for i in fresh):  # its first holder may have written the line and died before the flag
            tail = log.ids_in_tail(TAIL_BYTES)
            fresh = [i for i in fresh if not (i.taken_over and i.event.id in tail)]
        log.append_many(i.event for i in fresh)
        self._write([i for i in items if not i.audited], "audited = TRUE")

    def progress(self, item: Spooled, done: int) -> None:
        self._write([item], "done = %s", (done,))

    def handled(self, items: Sequence[Spooled]) -> None:
        self._write(items, "state = 'handled', error = '', owner = NULL")

    def retry(self, item: Spooled, done: int, attempts: int, wait: float, error: str) -> None:
        state = "failed" if wait < 0 else "pending"
        self._write([item], f"done = %s, attempts = %s, state = %s, next_at = {NOW} + %s, error = %s, owner = NULL",
                    (done, attempts, state, max(wait, 0.0), error[:2000]))


class LeaseKeeper:
    """Renews the leases of the events this replica holds, every ttl/3, on a connection of its own."""

    def __init__(self, spool: PgSpool, owner: str, ttl: float) -> None:
        self.spool, self.owner, self.ttl = spool, owner, ttl
        self._held: dict[int, Spooled] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="mlops-bot-leases", daemon=True)

    def start(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def hold(self, items: Sequence[Spooled]) -> None:
        with self._lock:
            self._held.update((i.seq, i) for i in items)

    def release(self, items: Sequence[Spooled]) -> None:
        """Hands back what is still pending of `items` (not finished, not to be retried by this replica)."""
        with self._lock:
            for item in items:
                self._held.pop(item.seq, None)
        try:
            fenced(self.spool, self.owner, items, "owner = NULL")
        except Exception as exc:  # the lease expires anyway: another replica takes them up then
            log(f"mlops-bot: could not release {len(items)} event(s): {exc}")

    def _loop(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            with self._lock:
                held = list(self._held.values())
            if not held:
                continue
            try:
                fenced(self.spool, self.owner, held, f"lease_until = {NOW} + %s", (self.ttl,))
            except Exception as exc:  # the leases may lapse: the fenced records then stop the handling
                log(f"mlops-bot: could not renew the leases of {len(held)} event(s): {exc}")
