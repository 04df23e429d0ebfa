"""The webhook receiver of `mlops-bot serve`: an ASGI app (Starlette, served by uvicorn).

  POST /webhooks/mlflow   MLflow model registry webhooks   secret: MLOPS_BOT_MLFLOW_WEBHOOK_SECRET
  POST /webhooks/github   GitHub webhooks                  secret: MLOPS_BOT_GITHUB_WEBHOOK_SECRET
  POST /webhooks/gitlab   GitLab webhooks                  token:  MLOPS_BOT_GITLAB_WEBHOOK_TOKEN
  GET  /healthz           {"status": "ok", counters, the spool's pending/handled/failed counts}

An endpoint whose secret is not set answers 404. A delivery is checked (verify.py), then written to
the spool and committed to disk BEFORE the answer: 202 means it will be handled even if the process dies
the next instant. Refusals: 401 missing or bad signature, 400 a bad or stale timestamp, malformed JSON or JSON
nested too deep, 408 a body not complete within the body deadline, 409 a delivery accepted before (a replay,
or a sender's retry of a delivery already held: nothing is lost by refusing it; GitHub and GitLab deliveries
also when their body or their event's own ids repeat one accepted within the replay window, whatever their
header id: see replay.py), 413 a body over the limit, 422 an event type not handled, 503 the spool could not
commit (retry). Each refusal counts in /healthz and logs one line naming the delivery, never a secret or a
signature. The connection-level deadlines and limits (slow clients, too many connections) are in guard.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..console import log
from ..events.audit import EventLog, events_dir
from ..events.bus import Bus
from ..events.rules import RuleHandler
from ..support.state import SPOOL_FILE
from .guard import Guard, Limits
from .pg_workers import lease_seconds
from .spool import Spool, SpoolWriter, prune_change
from .spool_pg import spool_url
from .verify import Delivery, Rejected, github_delivery, gitlab_delivery, mlflow_event
from .workers import EventRunner, WorkerPool

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

    from ..config.model import Config
    from .pg_workers import PgWorkerPool
    from .spool_pg import PgSpool

SECRETS = {"mlflow": "MLOPS_BOT_MLFLOW_WEBHOOK_SECRET", "github": "MLOPS_BOT_GITHUB_WEBHOOK_SECRET",
           "gitlab": "MLOPS_BOT_GITLAB_WEBHOOK_TOKEN"}
DELIVERY_HEADERS = ("x-mlflow-delivery-id", "x-github-delivery", "idempotency-key", "x-gitlab-event-uuid")
_DIGITS = re.compile(r"[0-9]{1,19}")
_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]")


class Service:
    """The receiver's state: secrets, counters, the spool and its writer, the worker pool."""

    def __init__(self, config: Config, env: Mapping[str, str], rules: RuleHandler, workers: int = 2,
                 limits: Limits | None = None, clock: Callable[[], float] = time.time) -> None:
        self.config, self.workers, self.clock = config, workers, clock
        self.limits = limits or Limits()
        self.guard = Guard(self.limits)  # shared with the connections: flows/serve.py hands it to uvicorn
        self.secrets = {source: env.get(name, "") for source, name in SECRETS.items()}
        self.counters: Counter[str] = Counter()
        self.directory = events_dir(config.root)
        self.audit = EventLog(self.directory)
        self.rules = rules  # the `on:` rules with the flows' actions, handed in by flows/serve.py
        self.bus = Bus([self.rules])
        self.spool_url = spool_url(env)  # None: the SQLite spool, one replica
        self.lease = lease_seconds(env) if self.spool_url else 0.0
        self.pool: WorkerPool | PgWorkerPool | None = None
        self.writer: SpoolWriter | None = None
        self.reader: Spool | PgSpool | None = None

    @property
    def sources(self) -> list[str]:
        return [source for source, secret in self.secrets.items() if secret]

    def start(self) -> None:
        """Opens the spool and starts the workers; events left pending by an earlier run are handled first."""
        if self.spool_url is not None:
            self._start_replica(self.spool_url)
            return
        path = self.directory / SPOOL_FILE
        reader = Spool(path)
        self.reader = reader
        pending = {row.event.id for row in _all_pending(reader)}
        logged = pending & self.audit.ids_in_tail() if pending else set()
        pool_box: list[WorkerPool] = []
        self.writer = SpoolWriter(Spool(path), on_commit=lambda: pool_box[0].wake() if pool_box else None).start()
        self.writer.spool.prune()
        writer = self.writer
        pool = WorkerPool(reader, lambda: EventRunner(self.bus, self.rules, self.audit, writer, logged),
                          self.bus, self.workers, housekeeping=lambda: writer.submit(prune_change()))
        self.pool = pool
        pool_box.append(pool)
        pool.start()
        if pending:
            log(f"mlops-bot serve: {len(pending)} event(s) left pending by the last run are handled first")

    def _start_replica(self, url: str) -> None:
        """A replica on the PostgreSQL spool: any number of them share its events (service/spool_pg.py)."""
        from .pg_workers import PgWorkerPool
        from .spool_pg import WRITE, PgSpool

        reader = PgSpool(url)
        reader.create_schema()
        self.reader = reader
        pool = PgWorkerPool(url, lambda recorder: EventRunner(self.bus, self.rules, self.audit, recorder,
                                                              strict=True), self.bus, self.workers, self.lease)
        self.writer = SpoolWriter(PgSpool(url, policy=WRITE), on_commit=pool.wake).start()
        self.pool = pool
        pool.start()

    def stop(self) -> None:
        if self.pool is not None:
            self.pool.stop()
        if self.writer is not None:
            self.writer.stop()
            self.writer.spool.close()
        if self.reader is not None:
            self.reader.close()

    async def receive(self, request: Request, source: str) -> Response:
        from starlette.requests import ClientDisconnect
        from starlette.responses import JSONResponse

        try:
            secret = self.secrets[source]
            if not secret:
                raise Rejected(404, "not_configured", f"{SECRETS[source]} is not set: {source} webhooks are off")
            body = await _read_body(request, self.limits.max_body, self.limits.body_timeout)
            delivery = self._verify(source, request.headers, body, secret)
        except Rejected as rejected:
            return self._refuse(request, source, rejected)
        except ClientDisconnect:  # the sender gave up mid-body: nothing was stored, it will deliver again
            return JSONResponse({"error": "disconnected"}, 400)
        assert self.writer is not None
        event = delivery.event
        try:
            fresh = await asyncio.wrap_future(self.writer.insert(event, delivery.keys))
        except Exception as exc:
            self.counters["spool_errors"] += 1
            log(f"mlops-bot serve: could not store {source} delivery {event.id}: {type(exc).__name__}: {exc}")
            return JSONResponse({"error": "spool_error", "message": "not stored; deliver it again"}, 503)
        if not fresh:
            return self._refuse(request, source, Rejected(409, "replayed", f"{event.id} repeats a delivery accepted "
                                                                           "before (its id, body or event)"))
        self.counters["accepted"] += 1
        return JSONResponse({"id": event.id, "type": event.type, "status": "accepted"}, 202)

    def _verify(self, source: str, headers: Mapping[str, str], body: bytes, secret: str) -> Delivery:
        if source == "mlflow":
            return Delivery(mlflow_event(headers, body, secret, self.clock()))
        if source == "github":
            return github_delivery(headers, body, secret)
        return gitlab_delivery(headers, body, secret)

    def _refuse(self, request: Request, source: str, rejected: Rejected) -> Response:
        from starlette.responses import JSONResponse

        self.counters[f"rejected.{rejected.reason}"] += 1
        client = request.client.host if request.client else "?"
        named = next((request.headers[h] for h in DELIVERY_HEADERS if h in request.headers), "")
        delivery = _UNSAFE.sub("?", named[:64]) or "without an id"  # unsigned: made safe to log
        log(f"mlops-bot serve: refused {source} delivery {delivery} from {client}: {rejected.message} "
            f"(HTTP {rejected.status}, {rejected.reason})")
        # the body may be unread: close rather than read what is left of it
        close = {"connection": "close"} if rejected.status in (408, 413) else None
        return JSONResponse({"error": rejected.reason, "message": rejected.message}, rejected.status, close)

    def health(self) -> dict[str, Any]:
        rejected = {k.removeprefix("rejected."): n for k, n in self.counters.items() if k.startswith("rejected.")}
        return {"status": "ok", "sources": self.sources, "accepted": self.counters["accepted"],
                "rejected": rejected, "rejected_total": sum(rejected.values()),
                "spool": self._counts(), "connections": self.guard.stats()}

    def _counts(self) -> dict[str, Any]:
        if self.reader is None:
            return {}
        try:
            return dict(self.reader.counts())
        except Exception as exc:  # the database is away: say so, /healthz still answers
            return {"error": str(exc)}


def _all_pending(spool: Spool) -> list[Any]:
    rows, last = [], 0
    while batch := spool.pending(last, 10_000):
        rows.extend(batch)
        last = batch[-1].seq
    return rows


async def _read_body(request: Request, limit: int, seconds: float) -> bytes:
    """The body, whole within `seconds` of the headers (a slow sender would hold its connection), at most
    `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and not _DIGITS.fullmatch(declared):
        raise Rejected(400, "bad_header", "Content-Length is not a number")
    if declared is not None and int(declared) > limit:
        raise Rejected(413, "body_too_large", f"the body ({declared} bytes) is over the {limit} byte limit")
    try:
        return await asyncio.wait_for(_collect(request, limit), seconds)
    except asyncio.TimeoutError:
        raise Rejected(408, "body_timeout", f"the body was not complete within {seconds:g} s") from None


async def _collect(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Rejected(413, "body_too_large", f"the body is over the {limit} byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(service: Service) -> Starlette:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    def endpoint(source: str) -> Callable[[Request], Any]:
        async def receive(request: Request) -> Response:
            return await service.receive(request, source)

        return receive

    async def healthz(request: Request) -> Response:
        return JSONResponse(service.health())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            service.stop()

    routes = [Route(f"/webhooks/{source}", endpoint(source), methods=["POST"]) for source in SECRETS]
    return Starlette(routes=[*routes, Route("/healthz", healthz, methods=["GET"])], lifespan=lifespan)
