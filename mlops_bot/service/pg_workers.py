"""Handling the PostgreSQL spool's events with N threads per replica, any number of replicas.

Each worker claims (spool_claims.claim: the next event of a partition nobody holds, and its followers), keeps the
lease renewed while it handles them (LeaseKeeper), records through the fenced PgRecorder, and hands back what it
did not finish. A replica killed with -9 stops renewing: when its leases expire another replica claims the events
and resumes each at the action that was running (`done`). A worker that cannot reach the database waits and tries
again (the transaction's own retries are bounded; this loop is the service staying up through an outage).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping

from ..console import log
from ..events.bus import Bus, activate
from .recording import LeaseLost
from .spool_claims import LeaseKeeper, PgRecorder, claim
from .spool_pg import PgSpool
from .workers import HOUSEKEEPING_S, EventRunner, Threads

LEASE_ENV = "MLOPS_BOT_SPOOL_LEASE_S"
LEASE_S = 30.0
IDLE_S = 0.25  # how often an idle worker looks for events another replica accepted
OUTAGE_S = 2.0  # how long a worker waits after the database could not be reached


def lease_seconds(env: Mapping[str, str]) -> float:
    """The lease a claim gets (MLOPS_BOT_SPOOL_LEASE_S, default 30 s): how long a killed replica's events wait."""
    from ..errors import UsageError

    text = env.get(LEASE_ENV, "").strip()
    try:
        seconds = float(text) if text else LEASE_S
    except ValueError:
        seconds = -1.0
    if not 1.0 <= seconds <= 3600.0:
        raise UsageError(f"{LEASE_ENV} must be a number of seconds from 1 to 3600, not {text!r}.")
    return seconds


def owner_name() -> str:
    """This process, unique across machines and restarts (a restarted replica must not inherit leases)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class PgWorkerPool(Threads):
    def __init__(self, url: str, runner: Callable[[PgRecorder], EventRunner], bus: Bus, workers: int,
                 ttl: float = LEASE_S) -> None:
        super().__init__()
        self.url, self.make_runner, self.bus, self.ttl = url, runner, bus, ttl
        self.owner = owner_name()
        self.keeper = LeaseKeeper(PgSpool(url), self.owner, ttl)
        self._housekept = time.monotonic()
        self._threads = [threading.Thread(target=self._work, name=f"mlops-bot-worker-{n}", daemon=True)
                         for n in range(max(workers, 1))]

    def start(self) -> PgWorkerPool:
        self.keeper.start()
        super().start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Lets each worker finish the events in hand; what is left is released for the other replicas."""
        super().stop(timeout)
        self.keeper.stop()
        self.keeper.spool.close()

    def _work(self) -> None:
        spool = PgSpool(self.url)
        runner = self.make_runner(PgRecorder(spool, self.owner))
        with activate(self.bus):
            while not self._stopping.is_set():
                try:
                    found = self._round(spool, runner)
                except Exception as exc:  # the database is away: what is in hand stays leased, then expires
                    log(f"mlops-bot serve: {type(exc).__name__}: {exc}; trying again in {OUTAGE_S:g} s")
                    self._stopping.wait(OUTAGE_S)
                    continue
                if not found:
                    self._wake.wait(IDLE_S)
                    self._wake.clear()
        spool.close()

    def _round(self, spool: PgSpool, runner: EventRunner) -> bool:
        if time.monotonic() - self._housekept > HOUSEKEEPING_S:
            self._housekept = time.monotonic()
            spool.prune()
        return handle_claimed(spool, runner, self.keeper)


def handle_claimed(spool: PgSpool, runner: EventRunner, keeper: LeaseKeeper) -> bool:
    """Claims the next events (a partition's run), handles them under a renewed lease, hands back the rest;
    False when nothing was due."""
    batch = claim(spool, keeper.owner, keeper.ttl)
    if not batch:
        return False
    keeper.hold(batch)
    try:
        runner.run(batch)
    except LeaseLost as lost:
        log(f"mlops-bot {spool.spool}: {lost}")
    finally:
        keeper.release(batch)
    return True
