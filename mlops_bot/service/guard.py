"""Keeping slow and hoarding clients from starving `serve` (slow-loris): deadlines and connection limits.

uvicorn's h11 protocol has no deadline for a request's headers or body (its keep-alive timer is cancelled by
any byte received), and its `limit_concurrency` answers 503 to every request once that many connections are
open, however idle they are. So `serve` runs uvicorn without `limit_concurrency` and with the protocol of
`protocol_class`, which enforces, for each connection (defaults in `Limits`, flags of `mlops-bot serve`):

  header deadline  --header-timeout (10 s): a request's headers must be complete within this of the connection
                   opening (or of the previous response); bytes trickling in do not extend it. Else 408, closed
                   (closed silently, counted `idle`, when not a byte of a request came).
  body deadline    --body-timeout (30 s): the body must be complete within this of the headers: the app
                   answers 408 (app.py); a body nobody reads (404, /healthz) is cut BODY_GRACE_S later.
  per client       --max-per-client (64): open connections from one address (an IPv6 /64 counts as one); the
                   next is answered 429 and closed. Behind a reverse proxy every connection comes from the proxy:
                   raise it, or 0 turns it off.
  capacity         --max-connections (1024, lowered to fit the open-file limit): when that many are open, a new
                   connection closes the one that has waited longest for its request to arrive. A real delivery
                   arrives within milliseconds, so the one closed is a slow client's; the newcomer is refused
                   (503) only when every open connection has its request in hand.

Each drop counts in /healthz (`connections.dropped`) and is logged the 1st, 10th, 100th... time per reason:
a flood does not flood the log.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections import Counter, OrderedDict
from dataclasses import dataclass, replace
from typing import Any

from ..console import log

HEADER_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 30.0
BODY_GRACE_S = 1.0  # the app answers 408 at the body deadline; the connection is cut this much later
PER_CLIENT = 64
MAX_CONNECTIONS = 1024
MAX_BODY = 1024 * 1024
SPARE_FILES = 64  # descriptors kept for the spool, the audit log, the actions' child processes

WHY = {"idle": "no request arrived on it in time",
       "header_timeout": "its request headers did not arrive in time",
       "body_timeout": "its request body did not arrive in time",
       "per_client": "that address holds the most connections allowed",
       "evicted": "it waited longest for its request while all connections were in use",
       "capacity": "every connection has a request in hand"}
_REFUSED = {"header_timeout": b"408 Request Timeout", "per_client": b"429 Too Many Requests",
            "capacity": b"503 Service Unavailable"}


@dataclass(frozen=True)
class Limits:
    """What `serve` allows one request and one client; see the module docstring."""

    max_body: int = MAX_BODY
    header_timeout: float = HEADER_TIMEOUT_S
    body_timeout: float = BODY_TIMEOUT_S
    per_client: int = PER_CLIENT  # 0: no limit
    max_connections: int = MAX_CONNECTIONS


def fit_open_files(limits: Limits) -> Limits:
    """Raises the soft open-file limit toward what max_connections needs, or lowers max_connections to fit:
    running out of descriptors would stall accepting connections altogether."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = limits.max_connections + SPARE_FILES
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < needed:
        fitted = max(soft - SPARE_FILES, 1)
        log(f"mlops-bot serve: --max-connections lowered to {fitted} to fit the open-file limit ({soft})")
        return replace(limits, max_connections=fitted)
    return limits


def client_key(host: str | None) -> str:
    """The address a per-client limit counts: the IP, an IPv6 /64 as one (one host's usual allocation)."""
    if not host:
        return "local"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class Guard:
    """The limits of one server, shared by all its connections (one event loop: no locks needed)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.open = 0
        self.per_client: Counter[str] = Counter()
        self.waiting: OrderedDict[Connection, None] = OrderedDict()  # oldest wait first
        self.dropped: Counter[str] = Counter()

    def admit(self, connection: Connection) -> bool:
        limit = self.limits.per_client
        if limit and self.per_client[connection.client] >= limit:
            connection.drop("per_client")
            return False
        if self.open >= self.limits.max_connections and not self._evict():
            connection.drop("capacity")
            return False
        self.open += 1
        self.per_client[connection.client] += 1
        connection.admitted = True
        return True

    def _evict(self) -> bool:
        if not self.waiting:
            return False
        victim, _ = self.waiting.popitem(last=False)
        victim.drop("evicted")
        return True

    def release(self, connection: Connection) -> None:
        self.waiting.pop(connection, None)
        if not connection.admitted:
            return
        connection.admitted = False
        self.open -= 1
        self.per_client[connection.client] -= 1
        if self.per_client[connection.client] <= 0:
            del self.per_client[connection.client]

    def note(self, reason: str, client: str) -> None:
        self.dropped[reason] += 1
        count = self.dropped[reason]
        if str(count).strip("0") == "1":  # 1, 10, 100...: a flood does not flood the log
            log(f"mlops-bot serve: dropped a connection from {client}: {WHY[reason]} "
                f"({reason}; {count} so far, counted in /healthz)")

    def stats(self) -> dict[str, Any]:
        return {"open": self.open, "waiting": len(self.waiting), "dropped": dict(self.dropped)}


class Connection:
    """One connection as the guard follows it: `enter` the phase of its current request ("headers", "body",
    or None once the request is in hand); each phase has its deadline, not extended by bytes arriving."""

    def __init__(self, guard: Guard, transport: asyncio.Transport, client: str) -> None:
        self.guard, self.transport, self.client = guard, transport, client
        self.admitted = False
        self.heard = False  # a byte of the current request arrived; else it is dropped as idle, silently
        self.phase: str | None = None
        self.timer: asyncio.TimerHandle | None = None

    def enter(self, phase: str | None) -> None:
        if phase == self.phase or not self.admitted:
            return
        was, self.phase = self.phase, phase
        self._cancel()
        limits, loop = self.guard.limits, asyncio.get_running_loop()
        if phase == "headers":
            self.heard = False
            self.timer = loop.call_later(limits.header_timeout, self._headers_late)
        elif phase == "body":
            self.timer = loop.call_later(limits.body_timeout + BODY_GRACE_S, self.drop, "body_timeout")
        if phase is None:
            self.guard.waiting.pop(self, None)
        elif was is None:
            self.guard.waiting[self] = None

    def _headers_late(self) -> None:
        self.timer = None
        self.drop("header_timeout" if self.heard else "idle")

    def drop(self, reason: str) -> None:
        self._cancel()
        self.guard.release(self)
        self.guard.note(reason, self.client)
        if not self.transport.is_closing():
            status = _REFUSED.get(reason)
            if status is not None:
                self.transport.write(b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            self.transport.close()

    def closed(self) -> None:
        self._cancel()
        self.guard.release(self)

    def _cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


def protocol_class(guard: Guard) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol with the guard's deadlines and limits (pass it as `http=` to uvicorn.Config)."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    phases: dict[Any, str] = {h11.IDLE: "headers", h11.SEND_BODY: "body"}

    class GuardedH11Protocol(H11Protocol):
        guarded: Connection

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.guarded = Connection(guard, transport, client_key(self.client[0] if self.client else None))
            if guard.admit(self.guarded):
                self._follow()

        def data_received(self, data: bytes) -> None:
            if not self.guarded.admitted:  # refused or dropped: what it still sends is not read
                return
            self.guarded.heard = True
            super().data_received(data)
            self._follow()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._follow()

        def connection_lost(self, exc: Exception | None) -> None:
            self.guarded.closed()
            super().connection_lost(exc)

        def _follow(self) -> None:
            closing = self.transport.is_closing()
            self.guarded.enter(None if closing else phases.get(self.conn.their_state))

    return GuardedH11Protocol
