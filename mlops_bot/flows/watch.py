"""`mlops-bot watch`: poll the tracking server and registry (MLflow sends no webhooks for runs) and feed what
changed to the same `on:` rules `serve` runs.

Each poll asks `events_since(cursor)` for finished runs of ml.yaml's experiment, new versions and moved
aliases of its model; spools them (.mlops-bot/events/watch.db) with ids derived from the cursor, so a poll
repeated after a crash yields the same ids and nothing twice; saves the new cursor (watch.cursor); then
handles what is pending, as `serve` does. The first poll only sets the cursor: history is not news.
`--once` polls once (tests, cron); otherwise every --interval seconds until SIGTERM or Ctrl-C (exit 0), or
for --cycles rounds. `--drift-every S` also runs `mlops-bot drift`'s check (flows/drift.py) every S seconds
(and once with --once): its drift.detected or drift.checked event is spooled and handled like a polled one, so
`on:` rules fire on it; a check that fails is logged and tried again at the next due time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..config.model import Config
from ..console import emit_json, log
from ..errors import EXIT_OK, BotError, UsageError
from ..events.audit import EventLog, events_dir
from ..events.bus import Bus, activate
from ..events.event import Event, model_subject
from ..registry.base import Registry, RegistryEvent
from ..service.replica import WatchReplica
from ..service.spool import Spool, hold_exclusive
from ..service.spool_pg import PgSpool
from ..service.workers import EventRunner
from ..support.state import WATCH_CURSOR_FILE, WATCH_LOCK_FILE, WATCH_SPOOL_FILE
from .actions import rule_handler
from .project import Project

TYPES = {"run.finished": "run.finished", "model_version.created": "model_version.created",
         "model_version.tag_set": "model_version.tag_set", "alias.set": "model_version.alias_set",
         "alias.deleted": "model_version.alias_deleted"}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--interval", type=float, default=30.0, metavar="S", help="seconds between polls (default 30)")
    parser.add_argument("--once", action="store_true", help="poll once, handle what changed, and exit")
    parser.add_argument("--drift-every", type=float, metavar="S",
                        help="also check the data for drift (`mlops-bot drift`, monitor: in ml.yaml) every S seconds")
    parser.add_argument("--cycles", type=int, metavar="N", help="stop after N rounds (default: until stopped)")


class Watcher:
    """One watcher; on the SQLite spool the only one of its project, on the PostgreSQL spool
    (MLOPS_BOT_SPOOL_URL) one of any number of replicas: they poll one at a time from the shared cursor, so a
    change is spooled once with one id, and each event is claimed and handled by one of them."""

    def __init__(self, config: Config, registry: Registry, env: Mapping[str, str]) -> None:
        self.config, self.registry, self.env = config, registry, env
        self.directory = events_dir(config.root)
        self.audit = EventLog(self.directory)
        rules = rule_handler(config, env)
        self.bus = Bus([rules])
        self.replica = WatchReplica.open(env)
        self._lock = -1
        self.spool: Spool | PgSpool
        if self.replica is None:
            self._lock = hold_exclusive(self.directory / WATCH_LOCK_FILE, "watch")
            self.spool = Spool(self.directory / WATCH_SPOOL_FILE)
            self.runner = EventRunner(self.bus, rules, self.audit, self.spool, set())
        else:
            self.spool = self.replica.spool
            self.runner = EventRunner(self.bus, rules, self.audit, self.replica.recorder, strict=True)
        self._experiment: str | None = None

    def close(self) -> None:
        self.spool.close()
        if self.replica is not None:
            self.replica.close()
        if self._lock >= 0:
            os.close(self._lock)

    def poll(self) -> list[Event]:
        """One poll: the new events (spooled, cursor saved), then every due pending event handled."""
        if isinstance(self.spool, Spool):
            path = self.directory / WATCH_CURSOR_FILE
            cursor = path.read_text(encoding="utf-8").strip() if path.exists() else None
            events, after = self._found(cursor)
            fresh = [e for e, new in zip(events, self.spool.insert(events), strict=True) if new]
            from ..support.files import write_atomic

            write_atomic(path, after)
            where = str(path)
        else:
            spool = self.spool

            def spooled(conn: Any, cursor: str | None) -> tuple[tuple[list[Event], str | None], str]:
                events, after = self._found(cursor)
                return ([e for e in events if spool.insert_in(conn, e)], cursor), after

            fresh, cursor = spool.with_cursor(spooled)
            where = "the PostgreSQL spool"
        if cursor is None:
            log(f"mlops-bot watch: watching {self.config.model.name} from now on (cursor saved in {where})")
        self.handle_pending()
        self.continue_rollouts()
        return fresh

    def _found(self, cursor: str | None) -> tuple[list[Event], str]:
        found, after = self.registry.events_since(cursor or None, [self.config.model.name])
        return [self._event(e, cursor or "") for e in found if self._ours(e)], after

    def continue_rollouts(self) -> None:
        """Advances the rollouts in progress (flows/rollout.py); one that rolled back is logged, not fatal."""
        if not any(t.rollout is not None for t in self.config.deploy):
            return
        from .rollout import continue_rollouts

        with activate(self.bus):
            try:
                for result in continue_rollouts(self.config, self.registry, self.env):
                    log(f"mlops-bot watch: rollout to {result.target}: {result.status}: {result.detail}")
            except BotError as exc:
                log(f"mlops-bot watch: rollout: {exc}")

    def check_drift(self) -> list[Event]:
        """One drift check (flows/drift.py); its event, logged already, is spooled and handled like a polled one."""
        from .drift import check_drift

        caught: list[Event] = []
        with activate(Bus([caught.append])):
            outcome = check_drift(self.config, self.registry, self.env)
        log(f"mlops-bot watch: {outcome.checked.summary()} (finding {outcome.checked.finding_id})")
        self.runner.logged.update(e.id for e in caught)  # in the audit log already: emit wrote it
        if isinstance(self.spool, Spool):
            self.spool.insert(caught)
        else:
            self.spool.insert(caught, audited=True)
        self.handle_pending()
        return caught

    def handle_pending(self) -> None:
        """Handles the pending events that are due; one whose action failed waits (next_at) for a later poll."""
        with activate(self.bus):
            if isinstance(self.spool, Spool):
                self.runner.run([row for row in self.spool.pending(0, 10_000) if row.next_at <= time.time()])
            elif self.replica is not None:
                self.replica.drain(self.runner)

    def _ours(self, found: RegistryEvent) -> bool:
        if found.type != "run.finished":
            return True
        if self._experiment is None:
            self._experiment = self.registry.get_or_create_experiment(self.config.tracking.experiment).experiment_id
        return found.data.get("experiment_id") == self._experiment

    def _event(self, found: RegistryEvent, cursor: str) -> Event:
        data = {"model": found.model or self.config.model.name, "version": found.version or None,
                "alias": found.alias or None, "run_id": found.run_id or None, **found.data}
        data = {k: v for k, v in data.items() if v not in (None, "")}
        subject = f"runs/{found.run_id}" if found.type == "run.finished" else model_subject(found.model, found.version)
        identity = json.dumps([cursor, found.type, subject, data], sort_keys=True)
        stamp = datetime.fromtimestamp(found.timestamp / 1000, timezone.utc).isoformat(timespec="milliseconds")
        return Event(type=TYPES.get(found.type, found.type), subject=subject, data=data, source="watch",
                     id="poll-" + hashlib.sha256(identity.encode()).hexdigest()[:32], time=stamp.replace("+00:00", "Z"))


def main(args: argparse.Namespace, project: Project) -> int:
    if args.interval <= 0 or (args.drift_every is not None and args.drift_every <= 0):
        raise UsageError("--interval and --drift-every must be positive numbers of seconds.")
    if args.cycles is not None and args.cycles < 1:
        raise UsageError("--cycles must be 1 or more.")
    if args.drift_every is not None and project.config.monitor is None:
        raise UsageError(f"--drift-every needs a `monitor:` section in {project.config.path.name} (what to compare); "
                         "add one or leave --drift-every out.")
    watcher = Watcher(project.config, project.registry, dict(project.env))
    try:
        if args.once:
            found = watcher.poll()
            if args.drift_every is not None:
                found += watcher.check_drift()
            if args.json:
                emit_json([e.to_dict() for e in found])
            for event in found:
                log(f"mlops-bot watch: {event.type} {event.subject}")
            return EXIT_OK
        try:
            _loop(watcher, Schedule(args.interval, args.drift_every, args.cycles))
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (cli turns it into one): a watcher's normal end
            log("mlops-bot watch: stopped")
        return EXIT_OK
    finally:
        watcher.close()


@dataclass(frozen=True)
class Schedule:
    """When the loop polls and checks for drift; `clock` and `sleep` are injectable so tests never really wait."""

    interval: float
    drift_every: float | None = None
    cycles: int | None = None  # None: until stopped
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


def _loop(watcher: Watcher, schedule: Schedule) -> None:
    """Polls every interval and, with drift_every, checks for drift on its own interval; a failure of either is
    logged and the loop goes on (the server may come back, the next batch may be readable)."""
    next_poll = next_drift = schedule.clock()
    rounds = 0
    while schedule.cycles is None or rounds < schedule.cycles:
        now = schedule.clock()
        if now >= next_poll:
            next_poll = now + schedule.interval
            _attempt("poll", watcher.poll, schedule.interval)
        if schedule.drift_every is not None and now >= next_drift:
            next_drift = now + schedule.drift_every
            _attempt("drift check", watcher.check_drift, schedule.drift_every)
        rounds += 1
        if schedule.cycles is not None and rounds >= schedule.cycles:
            return
        due = min(next_poll, next_drift if schedule.drift_every is not None else math.inf)
        schedule.sleep(max(0.0, due - schedule.clock()))


def _attempt(what: str, work: Callable[[], list[Event]], interval: float) -> None:
    try:
        for event in work():
            log(f"mlops-bot watch: {event.type} {event.subject}")
    except BotError as exc:
        log(f"mlops-bot watch: {what} failed: {exc}; trying again in {interval:g} s")
