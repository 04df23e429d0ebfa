"""Recording and dispatching events: `emit` writes an event to the project's audit log and hands it to the
Bus active in this context, if any. A plain mechanism: it runs no rule and loads no ml.yaml of its own.

Who owns a command builds its Bus and activates it (cli in CI mode, `serve`, `watch`); with no Bus active an
emit only appends to the audit log. A deferred Bus holds what is published until `drain()`: in CI mode the
`on:` rules run once the command has done its own work, so `promote`'s own deploy comes first and a rule
deploying the same version finds it done. Emitting never fails the calling flow: an audit log that cannot be
written is a warning, and the event still reaches the Bus.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..console import log
from ..errors import BotError

if TYPE_CHECKING:
    from ..config.model import Config
    from .event import Event

Handler = Callable[["Event"], None]


class Bus:
    """Hands each published event to the handlers in order.

    An event published while a handler runs is handled after that handler returns (never inside it), up to
    `max_depth` levels of events caused by events. A handler's BotError is logged and the next handler runs;
    any other exception is a bug and propagates to whoever dispatched. `deferred`: events wait for `drain()`.
    """

    def __init__(self, handlers: Sequence[Handler] = (), *, max_depth: int = 4, deferred: bool = False) -> None:
        self.handlers, self.max_depth, self.deferred = list(handlers), max_depth, deferred
        self._local = threading.local()
        self._waiting: deque[Event] = deque()
        self._lock = threading.Lock()

    def subscribe(self, handler: Handler) -> None:
        self.handlers.append(handler)

    @property
    def held(self) -> int:
        """How many published events wait for `drain()`."""
        with self._lock:
            return len(self._waiting)

    def publish(self, event: Event) -> None:
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
                    try:
                        handler(event)
                    except BotError as exc:
                        log(f"mlops-bot: handling {event.type} ({event.id}) failed: {exc}")
            finally:
                pending.extend(self._local.queue)
                self._local.queue = None


_ACTIVE: contextvars.ContextVar[Bus | None] = contextvars.ContextVar("mlops_bot_bus", default=None)


@contextlib.contextmanager
def activate(bus: Bus) -> Iterator[Bus]:
    """Routes emit() in this context (thread) to `bus`."""
    token = _ACTIVE.set(bus)
    try:
        yield bus
    finally:
        _ACTIVE.reset(token)


def emit(where: Config | Path, event_type: str, subject: str, data: Mapping[str, Any] | None = None) -> Event:
    """Records one event of the bot's own in the audit log under `where` (a Config or the project root) and
    hands it to the active Bus."""
    # Imported here: cli activates a Bus for every command, and a no-op `run` emits nothing (start-up time).
    from .audit import EventLog, events_dir
    from .event import Event

    event = Event(type=event_type, subject=subject, data={k: v for k, v in (data or {}).items() if v is not None})
    root = where if isinstance(where, Path) else where.root
    try:
        EventLog(events_dir(root)).append(event)
    except OSError as exc:
        log(f"mlops-bot: warning: event {event_type} not recorded in the audit log under {events_dir(root)} "
            f"({exc.strerror or exc}); check that the directory is writable.")
    bus = _ACTIVE.get()
    if bus is not None:
        bus.publish(event)
    return event
