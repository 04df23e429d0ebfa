"""Handling spooled events: a dispatcher thread reads pending rows in order and hands each to one of N
worker threads, chosen by the event's partition (its model), so one model's events run one at a time, in
the order they were accepted, while other models' run beside them. Queues are bounded: when the workers lag,
the dispatcher waits and the backlog stays on disk.

Exactly-once effects: an event is written to the audit log, its actions run one by one, each recorded as
done in the spool before the next starts, and the event is marked handled last. After a crash the event is
taken up at the action that was running (actions are idempotent: deploy_all skips what is deployed; a
notification carries the event id to dedup on), and its audit line is not written twice (a restart reads
the ids at the log's end). A failing action is retried with backoff from that action on, MAX_ATTEMPTS times.
What is recorded where is the Recorder's (recording.py): this SQLite spool's, or the PostgreSQL spool's fenced
records when replicas share it (pg_workers.py runs EventRunner there, in place of WorkerPool).
"""

from __future__ import annotations

import heapq
import queue
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import replace

from ..console import log
from ..events.audit import EventLog
from ..events.bus import Bus, activate
from ..events.rules import PlannedAction, RuleHandler, perform
from .recording import LeaseLost, Recorder, SpoolChanges, SqliteRecorder
from .spool import Spool, Spooled

MAX_ATTEMPTS = 5
BACKOFF_S = 2.0
MAX_BACKOFF_S = 300.0
QUEUE_SIZE = 512
HOUSEKEEPING_S = 3600.0
TAKE = 64  # events a worker takes at once; the ones without actions are logged and marked as one batch


class EventRunner:
    """Runs spooled events through the `on:` rules, recording each finished action before the next starts.
    `strict`: after an event fails, the batch's later events of its partition wait too (the PostgreSQL spool's
    replicas keep each model's order; the SQLite dispatcher routes a retry on its own)."""

    def __init__(self, bus: Bus, rules: RuleHandler, audit: EventLog, changes: SpoolChanges | Recorder,
                 logged: set[str] | None = None, strict: bool = False) -> None:
        self.bus, self.rules, self.audit, self.strict = bus, rules, audit, strict
        self.logged = logged if logged is not None else set()
        self.recorder = changes if isinstance(changes, Recorder) else SqliteRecorder(changes, self.logged)

    def run(self, batch: list[Spooled]) -> list[Spooled]:
        """Handles the batch in order; returns the events to try again later."""
        unmatched: list[Spooled] = []  # no rule acts on them: logged and marked handled as one batch
        retry: list[Spooled] = []
        blocked: set[str] = set()
        for item in batch:
            if item.event.partition in blocked:
                continue
            planned = self.rules.plan(item.event)
            if not planned:
                unmatched.append(item)
                continue
            self._finish_unmatched(unmatched)
            unmatched = []
            again = self._handle(item, planned)
            if again is not None:
                retry.append(again)
                if self.strict:  # still pending: nothing after it in its partition may run before it
                    blocked.add(item.event.partition)
        self._finish_unmatched(unmatched)
        return retry

    def _finish_unmatched(self, items: list[Spooled]) -> None:
        if items:
            self.recorder.audit(self.audit, items, True)
            self.recorder.handled(items)

    def _handle(self, item: Spooled, planned: list[PlannedAction]) -> Spooled | None:
        event = item.event
        self.recorder.audit(self.audit, [item], False)
        runner = self.rules.runner()
        index = item.done
        try:
            while index < len(planned):
                with self.bus.handling():  # what the action emits is handled after it, in this thread
                    index = perform(planned, index, event, runner)
                if index < len(planned):
                    self.recorder.progress(item, index)
        except LeaseLost:
            raise
        except Exception as exc:  # a bug too: retried, then given up and shown by `mlops-bot events`
            return self._failed(item, index, exc)
        finally:
            runner.close()
        self.recorder.handled([item])
        return None

    def _failed(self, item: Spooled, index: int, exc: Exception) -> Spooled | None:
        attempts = item.attempts + 1
        final = attempts >= MAX_ATTEMPTS
        wait = min(BACKOFF_S * 2 ** (attempts - 1), MAX_BACKOFF_S)
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        self.recorder.retry(item, index, attempts, -1.0 if final else wait, why)
        then = "given up; see `mlops-bot events`" if final else f"retry {attempts}/{MAX_ATTEMPTS - 1} in {wait:.0f} s"
        log(f"mlops-bot serve: {item.event.type} ({item.event.id}) failed: {why}; {then}")
        return None if final else replace(item, done=index, attempts=attempts, next_at=time.time() + wait)


class Threads:
    """Threads that run until `stop`, each waking early on `wake`; stop lets them finish what is in hand."""

    def __init__(self) -> None:
        self._wake, self._stopping = threading.Event(), threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> Threads:
        for thread in self._threads:
            thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.1))


class WorkerPool(Threads):
    """SQLite's: what a stop leaves stays pending in the spool."""

    def __init__(self, reader: Spool, runner: Callable[[], EventRunner], bus: Bus, workers: int,
                 housekeeping: Callable[[], object] = lambda: None) -> None:
        super().__init__()
        self.reader, self.make_runner, self.bus, self.housekeeping = reader, runner, bus, housekeeping
        self._housekept = time.monotonic()
        self.queues: list[queue.Queue[Spooled]] = [queue.Queue(QUEUE_SIZE) for _ in range(max(workers, 1))]
        self._retries: list[tuple[float, int, Spooled]] = []
        self._retry_lock = threading.Lock()
        self._last_seq = 0
        self._threads = [threading.Thread(target=self._dispatch, name="mlops-bot-dispatch", daemon=True)]
        self._threads += [threading.Thread(target=self._work, args=(q,), name=f"mlops-bot-worker-{n}", daemon=True)
                          for n, q in enumerate(self.queues)]

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
