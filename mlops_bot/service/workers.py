"""Handling spooled events: a dispatcher thread reads pending rows in order and hands each to one of N
worker threads, chosen by the event's partition (its model), so one model's events run one at a time, in
the order they were accepted, while other models' run beside them. Queues are bounded: when the workers lag,
the dispatcher waits and the backlog stays on disk.

Exactly-once effects: an event is written to the audit log, its actions run one by one, each recorded as
done in the spool before the next starts, and the event is marked handled last. After a crash the event is
taken up at the action that was running (actions are idempotent: deploy_all skips what is deployed; a
notification carries the event id to dedup on), and its audit line is not written twice (a restart reads
the ids at the log's end). A failing action is retried with backoff from that action on, MAX_ATTEMPTS times.
"""

from __future__ import annotations

import heapq
import queue
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Protocol

from ..console import log
from ..events.audit import EventLog
from ..events.bus import Bus, activate
from ..events.rules import PlannedAction, RuleHandler, perform
from .spool import Change, Spool, Spooled, handled_change, progress_change, retry_change

MAX_ATTEMPTS = 5
BACKOFF_S = 2.0
MAX_BACKOFF_S = 300.0
QUEUE_SIZE = 512
HOUSEKEEPING_S = 3600.0
TAKE = 64  # events a worker takes at once; the ones without actions are logged and marked as one batch


class SpoolChanges(Protocol):
    """Where progress is recorded: the Spool itself (`watch`), or serve's group-committing SpoolWriter."""

    def apply(self, changes: Iterable[Change]) -> None: ...


class EventRunner:
    """Runs spooled events through the `on:` rules, recording each finished action before the next starts."""

    def __init__(self, bus: Bus, rules: RuleHandler, audit: EventLog, changes: SpoolChanges,
                 logged: set[str]) -> None:
        self.bus, self.rules, self.audit, self.changes, self.logged = bus, rules, audit, changes, logged

    def run(self, batch: list[Spooled]) -> list[Spooled]:
        """Handles the batch in order; returns the events to try again later."""
        unmatched: list[Spooled] = []  # no rule acts on them: logged and marked handled as one batch
        retry: list[Spooled] = []
        for item in batch:
            planned = self.rules.plan(item.event)
            if not planned:
                unmatched.append(item)
                continue
            self._finish_unmatched(unmatched)
            unmatched = []
            again = self._handle(item, planned)
            if again is not None:
                retry.append(again)
        self._finish_unmatched(unmatched)
        return retry

    def _unlogged(self, items: list[Spooled]) -> list[Spooled]:
        fresh = [i for i in items if i.event.id not in self.logged]
        self.logged.difference_update(i.event.id for i in items)
        return fresh

    def _finish_unmatched(self, items: list[Spooled]) -> None:
        if items:
            self.audit.append_many(i.event for i in self._unlogged(items))
            self.changes.apply([handled_change(i.event.id) for i in items])

    def _handle(self, item: Spooled, planned: list[PlannedAction]) -> Spooled | None:
        event = item.event
        if item.attempts == 0 and item.done == 0:
            self.audit.append_many(i.event for i in self._unlogged([item]))
        runner = self.rules.runner()
        index = item.done
        try:
            while index < len(planned):
                with self.bus.handling():  # what the action emits is handled after it, in this thread
                    index = perform(planned, index, event, runner)
                if index < len(planned):
                    self.changes.apply([progress_change(event.id, index)])
        except Exception as exc:  # a bug too: retried, then given up and shown by `mlops-bot events`
            return self._failed(item, index, exc)
        finally:
            runner.close()
        self.changes.apply([handled_change(event.id)])
        return None

    def _failed(self, item: Spooled, index: int, exc: Exception) -> Spooled | None:
        attempts = item.attempts + 1
        final = attempts >= MAX_ATTEMPTS
        wait = min(BACKOFF_S * 2 ** (attempts - 1), MAX_BACKOFF_S)
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        self.changes.apply([progress_change(item.event.id, index),
                            retry_change(item.event.id, attempts, time.time() + wait, why, final)])
        then = "given up; see `mlops-bot events`" if final else f"retry {attempts}/{MAX_ATTEMPTS - 1} in {wait:.0f} s"
        log(f"mlops-bot serve: {item.event.type} ({item.event.id}) failed: {why}; {then}")
        return None if final else replace(item, done=index, attempts=attempts, next_at=time.time() + wait)


class WorkerPool:
    def __init__(self, reader: Spool, runner: Callable[[], EventRunner], bus: Bus, workers: int,
                 housekeeping: Callable[[], object] = lambda: None) -> None:
        self.reader, self.make_runner, self.bus, self.housekeeping = reader, runner, bus, housekeeping
        self._housekept = time.monotonic()
        self.queues: list[queue.Queue[Spooled]] = [queue.Queue(QUEUE_SIZE) for _ in range(max(workers, 1))]
        self._wake, self._stopping = threading.Event(), threading.Event()
        self._retries: list[tuple[float, int, Spooled]] = []
        self._retry_lock = threading.Lock()
        self._last_seq = 0
        self._threads = [threading.Thread(target=self._dispatch, name="mlops-bot-dispatch", daemon=True)]
        self._threads += [threading.Thread(target=self._work, args=(q,), name=f"mlops-bot-worker-{n}", daemon=True)
                          for n, q in enumerate(self.queues)]

    def start(self) -> WorkerPool:
        for thread in self._threads:
            thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Lets each worker finish the batch in hand; what is left stays pending in the spool."""
        self._stopping.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.1))

    def _dispatch(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            self._route_due()
            if time.monotonic() - self._housekept > HOUSEKEEPING_S:
                self._housekept = time.monotonic()
                self.housekeeping()
            while not self._stopping.is_set():
                rows = self.reader.pending(self._last_seq)
                if not rows:
                    break
                for row in rows:
                    self._last_seq = row.seq
                    if row.next_at > time.time():
                        self._later(row)
                    else:
                        self._route(row)

    def _route(self, row: Spooled) -> None:
        target = self.queues[zlib.crc32(row.event.partition.encode()) % len(self.queues)]
        while not self._stopping.is_set():
            try:
                target.put(row, timeout=0.2)
                return
            except queue.Full:
                continue

    def _later(self, row: Spooled) -> None:
        with self._retry_lock:
            heapq.heappush(self._retries, (row.next_at, row.seq, row))

    def _route_due(self) -> None:
        while True:
            with self._retry_lock:
                if not self._retries or self._retries[0][0] > time.time():
                    return
                _, _, row = heapq.heappop(self._retries)
            self._route(row)

    def _work(self, inbox: queue.Queue[Spooled]) -> None:
        runner = self.make_runner()
        with activate(self.bus):
            while not self._stopping.is_set():
                try:
                    batch = [inbox.get(timeout=0.2)]
                except queue.Empty:
                    continue
                while len(batch) < TAKE:
                    try:
                        batch.append(inbox.get_nowait())
                    except queue.Empty:
                        break
                try:
                    for row in runner.run(batch):
                        self._later(row)
                except Exception as exc:  # the spool or the log failed: the rows stay pending for a restart
                    log(f"mlops-bot serve: {len(batch)} event(s) left pending until a restart: "
                        f"{type(exc).__name__}: {exc}")
