"""Where EventRunner records what it did with an event: its audit line written, an action done, the event handled
or to be retried. Two homes: the SQLite spool (one replica; `SqliteRecorder`) and the PostgreSQL spool of
replicas (`spool_claims.PgRecorder`, every write fenced by the event's lease).

`LeaseLost` is the fenced writer's refusal: another replica took the event over (this one's lease expired), so
this one must record nothing more for it and stop handling it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

from .spool import Change, handled_change, progress_change, retry_change

if TYPE_CHECKING:
    from ..events.audit import EventLog
    from .spool import Spooled


class LeaseLost(Exception):
    """Another replica holds the event now: nothing of it may be recorded by this one."""


class SpoolChanges(Protocol):
    """Where progress is recorded: the Spool itself (`watch`), or serve's group-committing SpoolWriter."""

    def apply(self, changes: Iterable[Change]) -> None: ...


class Recorder:
    """The records of handling; the base is the interface (every method is overridden)."""

    def audit(self, log: EventLog, items: Sequence[Spooled], first: bool) -> None:
        """Writes the audit line of each item not logged yet; `first`: no action of theirs has run yet."""
        raise NotImplementedError

    def progress(self, item: Spooled, done: int) -> None:
        raise NotImplementedError

    def handled(self, items: Sequence[Spooled]) -> None:
        raise NotImplementedError

    def retry(self, item: Spooled, done: int, attempts: int, wait: float, error: str) -> None:
        """The action at `done` failed: try again in `wait` s, or give up when `wait` is negative."""
        raise NotImplementedError


class SqliteRecorder(Recorder):
    """One replica: the audit log's tail (ids read at start, `logged`) says what a restart must not log again."""

    def __init__(self, changes: SpoolChanges, logged: set[str]) -> None:
        self.changes, self.logged = changes, logged

    def audit(self, log: EventLog, items: Sequence[Spooled], first: bool) -> None:
        fresh = [i for i in items if i.event.id not in self.logged and (first or (i.attempts == 0 and i.done == 0))]
        self.logged.difference_update(i.event.id for i in items)
        log.append_many(i.event for i in fresh)

    def progress(self, item: Spooled, done: int) -> None:
        self.changes.apply([progress_change(item.event.id, done)])

    def handled(self, items: Sequence[Spooled]) -> None:
        self.changes.apply([handled_change(i.event.id) for i in items])

    def retry(self, item: Spooled, done: int, attempts: int, wait: float, error: str) -> None:
        import time

        self.changes.apply([progress_change(item.event.id, done),
                            retry_change(item.event.id, attempts, time.time() + max(wait, 0), error, wait < 0)])
