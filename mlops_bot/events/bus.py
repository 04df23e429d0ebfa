"""Events: every action of the bot and every change it observes, as one CloudEvents-like record
(`schemas/event.schema.json`), written to the audit log (eventlog.py) and handed to handlers on a Bus.

The bot's own events: run.started, run.finished, step.cached, decision.made, model_version.registered,
alias.moved, deployment.started/succeeded/failed, report.posted. From outside (`serve`, `watch`):
model_version.created, model_version.alias_set, model_version.alias_deleted, model_version.tag_set,
model_version.tag_deleted, registered_model.created, run.finished, github.<event>, gitlab.<event>.
An alias moved by the bot (`alias.moved`) and one seen in the registry (`model_version.alias_set`) are the
same fact: a rule naming either matches both (rules.SYNONYMS); so do model_version.registered/created.

`emit()` is what flows call. It never fails the calling flow: a failure is logged (in tests, where
MLOPS_BOT_EVENTS_STRICT=1, as in the test suite, a bug is raised instead). Inside `serve` and `watch` the active
Bus handles events at once; in CI mode (a plain command) they are logged at once and handled by the `on:`
rules of ml.yaml when the command has done its own work (at exit, or `drain_all()`), so `promote`'s own
deploy comes first and a rule deploying the same version finds it done (deploy_all is idempotent).
Rules react to what happened, whatever the command's flags (`promote --no-deploy` still moves the alias, and
MLflow's webhook would tell `serve` as much); MLOPS_BOT_RULES=off leaves them to `serve`/`watch` alone.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import json
import os
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..console import log
from ..errors import BotError
from .audit import EventLog

if TYPE_CHECKING:
    from ..config.model import Config

SPEC_VERSION = "1.0"
SOURCE = "mlops-bot"
EVENTS_DIR = Path(".mlops-bot") / "events"
Handler = Callable[["Event"], None]


def new_id() -> str:
    return uuid.uuid4().hex


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Event:
    type: str
    subject: str
    data: Mapping[str, Any] = field(default_factory=dict)
    source: str = SOURCE
    id: str = field(default_factory=new_id)
    time: str = field(default_factory=now_iso)

    def to_dict(self) -> dict[str, Any]:
        return {"specversion": SPEC_VERSION, "id": self.id, "type": self.type, "source": self.source,
                "subject": self.subject, "time": self.time, "data": dict(self.data)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), default=str)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Event:
        data = doc.get("data") or {}
        if not isinstance(data, Mapping) or not all(isinstance(doc[k], str) for k in ("id", "type", "time")):
            raise ValueError("not an event document")
        return cls(type=doc["type"], subject=str(doc.get("subject", "")), data=dict(data),
                   source=str(doc.get("source", "")), id=doc["id"], time=doc["time"])

    def get(self, name: str) -> Any:
        """A field for `where:` filters: id, type, source, subject, time, or a key of data."""
        if name in ("id", "type", "source", "subject", "time"):
            return getattr(self, name)
        return self.data.get(name)

    @property
    def partition(self) -> str:
        """Events with the same partition are handled one after the other, in order (one model's life)."""
        return str(self.data.get("model") or self.data.get("repository") or self.data.get("project") or self.subject)


def model_subject(model: str, version: str | int | None = None) -> str:
    return f"models/{model}" + (f"/versions/{version}" if version not in (None, "") else "")


def strict() -> bool:
    """The test suite sets MLOPS_BOT_EVENTS_STRICT=1 (tests/conftest.py): there a bug in an emit is raised."""
    return os.environ.get("MLOPS_BOT_EVENTS_STRICT", "") == "1"


class Bus:
    """Writes each published event to the audit log, then hands it to the handlers in order.

    An event published while a handler runs is handled after that handler returns (never inside it), up
    to `max_depth` levels of events caused by events. A handler's BotError is logged; another exception
    (a bug) is logged too, or raised under strict(). `deferred`: published events wait for `drain()`.
    """

    def __init__(self, log: EventLog | None, handlers: Sequence[Handler] = (), *, max_depth: int = 4,
                 deferred: bool = False) -> None:
        self.log, self.handlers, self.max_depth, self.deferred = log, list(handlers), max_depth, deferred
        self._local = threading.local()
        self._waiting: deque[Event] = deque()
        self._lock = threading.Lock()

    def subscribe(self, handler: Handler) -> None:
        self.handlers.append(handler)

    def publish(self, event: Event) -> None:
        if self.log is not None:
            self.log.append(event)
        if not self.handlers:
            return
        if self.deferred and getattr(self._local, "queue", None) is None:
            with self._lock:
                self._waiting.append(event)
            return
        self.dispatch(event)

    def dispatch(self, event: Event) -> None:
        """Hands `event` to the handlers (later, when called from inside a handler)."""
        queue = getattr(self._local, "queue", None)
        if queue is not None:
            queue.append((event, self._local.depth + 1))
            return
        self._run(deque([(event, 0)]))

    @contextlib.contextmanager
    def handling(self) -> Iterator[None]:
        """The body runs as a handler would: what it publishes is handled after it ends, failed or not
        (a deploy that failed still tells its deployment.failed)."""
        if getattr(self._local, "queue", None) is not None:
            yield
            return
        self._local.queue, self._local.depth = [], 0
        try:
            yield
        finally:
            caused, self._local.queue = self._local.queue, None
            self._run(deque(caused))

    def drain(self) -> None:
        while True:
            with self._lock:
                if not self._waiting:
                    return
                event = self._waiting.popleft()
            self._run(deque([(event, 0)]))

    def _run(self, pending: deque[tuple[Event, int]]) -> None:
        while pending:
            event, depth = pending.popleft()
            if depth > self.max_depth:
                log(f"mlops-bot: event {event.type} ({event.id}) not handled: events caused by events went "
                    f"{self.max_depth} levels deep; check the `on:` rules of ml.yaml for a loop.")
                continue
            self._local.queue, self._local.depth = [], depth
            try:
                for handler in self.handlers:
                    call_handler(handler, event)
            finally:
                pending.extend(self._local.queue)
                self._local.queue = None


def call_handler(handler: Handler, event: Event) -> None:
    try:
        handler(event)
    except BotError as exc:
        log(f"mlops-bot: handling {event.type} ({event.id}) failed: {exc}")
    except Exception as exc:
        if strict():
            raise
        log(f"mlops-bot: handling {event.type} ({event.id}) failed: internal error ({type(exc).__name__}: {exc})")


_ACTIVE: contextvars.ContextVar[Bus | None] = contextvars.ContextVar("mlops_bot_bus", default=None)
_DEFAULT: dict[Path, Bus] = {}
_DEFAULT_LOCK = threading.Lock()


@contextlib.contextmanager
def activate(bus: Bus) -> Iterator[Bus]:
    """Routes emit() in this thread (context) to `bus` (serve, watch, tests)."""
    token = _ACTIVE.set(bus)
    try:
        yield bus
    finally:
        _ACTIVE.reset(token)


def emit(where: Config | Path, event_type: str, subject: str, data: Mapping[str, Any] | None = None,
         source: str = SOURCE) -> Event | None:
    """Records one event of the bot's own; returns it, or None when it could not be recorded."""
    try:
        event = Event(type=event_type, subject=subject, data={k: v for k, v in (data or {}).items() if v is not None},
                      source=source)
        bus = _ACTIVE.get() or default_bus(where)
        bus.publish(event)
        return event
    except Exception as exc:
        if strict():
            raise
        log(f"mlops-bot: warning: event {event_type} not recorded ({type(exc).__name__}: {exc})")
        return None


def default_bus(where: Config | Path) -> Bus:
    """CI mode: the project's audit log, and its `on:` rules run when the command is done."""
    root = where if isinstance(where, Path) else where.root
    with _DEFAULT_LOCK:
        bus = _DEFAULT.get(root.resolve())
        if bus is None:
            config = where if not isinstance(where, Path) else _config_at(root)
            bus = Bus(EventLog(root / EVENTS_DIR), deferred=True)
            if config is not None and config.rules and os.environ.get("MLOPS_BOT_RULES", "on") != "off":
                from .rules import RuleHandler

                bus.subscribe(RuleHandler(config))
                atexit.register(bus.drain)
            _DEFAULT[root.resolve()] = bus
        return bus


def drain_all() -> None:
    """Handles every event that CI mode held back (the exit hook does the same)."""
    with _DEFAULT_LOCK:
        buses = list(_DEFAULT.values())
    for bus in buses:
        bus.drain()


def forget_defaults() -> None:
    """Drops CI mode's buses and what they hold unhandled (tests start each case afresh)."""
    with _DEFAULT_LOCK:
        for bus in _DEFAULT.values():
            atexit.unregister(bus.drain)
        _DEFAULT.clear()


def _config_at(root: Path) -> Config | None:
    """ml.yaml of a root that emitted only by path (report.posted): its rules, if it loads."""
    from ..config import DEFAULT_CONFIG, load_config

    path = root / DEFAULT_CONFIG
    if not path.is_file():
        return None
    try:
        return load_config(path)
    except BotError:
        return None
