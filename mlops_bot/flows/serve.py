"""`mlops-bot serve`: receive signed MLflow, GitHub and GitLab webhooks and run the `on:` rules of ml.yaml.

Set the secret of each source you use (MLOPS_BOT_MLFLOW_WEBHOOK_SECRET, MLOPS_BOT_GITHUB_WEBHOOK_SECRET,
MLOPS_BOT_GITLAB_WEBHOOK_TOKEN) and point the webhooks at http://HOST:PORT/webhooks/<source>. Accepted
events are spooled under .mlops-bot/events/ before the answer and handled by --workers threads; after a
crash or a stop, `serve` started again handles what was left. SIGTERM or Ctrl-C stops it cleanly (exit 0).
One `serve` per project on that SQLite spool; with MLOPS_BOT_SPOOL_URL=postgresql://... the spool is in
PostgreSQL and any number of `serve` replicas (behind any load balancer) share it (service/spool_pg.py): each
delivery accepted once, each event handled once, a killed replica's events taken over when their lease
(MLOPS_BOT_SPOOL_LEASE_S, 30 s) expires.

Slow or hoarding clients cannot starve it (service/guard.py): a request's headers must arrive within
--header-timeout (10 s) and its body within --body-timeout (30 s), trickling bytes does not extend either; one
address holds at most --max-per-client (64) connections; at --max-connections (1024) a new connection closes
the one that has waited longest for its request. uvicorn's own `limit_concurrency` is not used: it answers 503
to everyone once enough idle connections are open.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ..console import log
from ..errors import EXIT_OK, UsageError
from ..service.guard import BODY_TIMEOUT_S, HEADER_TIMEOUT_S, MAX_BODY, MAX_CONNECTIONS, PER_CLIENT
from ..support.state import SERVE_LOCK_FILE
from .project import Project

if TYPE_CHECKING:
    from ..service.guard import Limits

DEFAULT_PORT = 8765


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT})")
    parser.add_argument("--workers", type=int, default=2, metavar="N",
                        help="threads handling events (default: 2); one model's events are handled in order")
    parser.add_argument("--max-body", type=int, default=MAX_BODY, metavar="BYTES",
                        help="largest request body accepted (default: 1 MiB)")
    parser.add_argument("--header-timeout", type=float, default=HEADER_TIMEOUT_S, metavar="SECONDS",
                        help="a request's headers must arrive within this, however slowly they trickle; else 408 and "
                             f"the connection is closed (default: {HEADER_TIMEOUT_S:g})")
    parser.add_argument("--body-timeout", type=float, default=BODY_TIMEOUT_S, metavar="SECONDS",
                        help="a request's body must arrive within this of its headers, however slowly it trickles; "
                             f"else 408 (default: {BODY_TIMEOUT_S:g})")
    parser.add_argument("--max-per-client", type=int, default=PER_CLIENT, metavar="N",
                        help="open connections one address may hold (an IPv6 /64 counts as one address); the next "
                             "is answered 429. Behind a reverse proxy raise it, or 0: no limit "
                             f"(default: {PER_CLIENT})")
    parser.add_argument("--max-connections", type=int, default=MAX_CONNECTIONS, metavar="N",
                        help="open connections in all; beyond, the one waiting longest for its request is closed "
                             f"(default: {MAX_CONNECTIONS}, lowered to fit the open-file limit)")
    parser.epilog = ("Secrets: MLOPS_BOT_MLFLOW_WEBHOOK_SECRET, MLOPS_BOT_GITHUB_WEBHOOK_SECRET, "
                     "MLOPS_BOT_GITLAB_WEBHOOK_TOKEN; endpoints POST /webhooks/{mlflow,github,gitlab}, GET /healthz. "
                     "Replicas: MLOPS_BOT_SPOOL_URL=postgresql://user:password@host:port/db puts the spool in "
                     "PostgreSQL, shared by any number of `serve` processes (MLOPS_BOT_SPOOL_LEASE_S: how long a "
                     "killed one's events wait, default 30).")


def main(args: argparse.Namespace, project: Project) -> int:
    import uvicorn

    from ..service.app import SECRETS, Service, create_app
    from ..service.guard import protocol_class
    from ..service.spool import hold_exclusive
    from .actions import rule_handler
    from .rollout import Ticker

    config, env = project.config, dict(project.env)
    service = Service(config, env, rule_handler(config, env), workers=args.workers, limits=_limits(args))
    if not service.sources:
        raise UsageError(f"no webhook secret is set; set at least one of {', '.join(SECRETS.values())}.")
    if service.spool_url is None:  # one replica per SQLite spool
        hold_exclusive(service.directory / SERVE_LOCK_FILE, "serve")
        where = str(service.directory)
    else:  # replicas share the PostgreSQL spool: reachable (and its tables there) before we listen
        from ..service.spool_pg import PgSpool
        from ..support.urls import redact

        check = PgSpool(service.spool_url)
        try:
            check.create_schema()
        finally:
            check.close()
        where = f"{redact(service.spool_url)} (a replica; audit log in {service.directory})"
    listening = (f"mlops-bot serve: listening on http://{args.host}:{args.port}/webhooks/"
                 f"{{{','.join(service.sources)}}} with {args.workers} worker(s); events in {where}")

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[Any] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                log(listening)

    # No limit_concurrency (it answers 503 to all once idle connections pile up: the guard limits instead);
    # ws="none": no WebSocket route, and an upgrade would take the connection out of the guard's hands.
    server = Server(uvicorn.Config(create_app(service), host=args.host, port=args.port, log_level="warning",
                                   access_log=False, lifespan="on", http=protocol_class(service.guard), ws="none",
                                   timeout_graceful_shutdown=30, server_header=False))
    ticker = Ticker.of(config, env)  # rollouts with long holds continue while serve runs
    try:
        if ticker is not None:
            ticker.start()
        server.run()
    except SystemExit:  # uvicorn exits when it cannot bind; say it our way, with our exit code
        server.started = False
    except KeyboardInterrupt:  # uvicorn re-raises the SIGTERM/SIGINT it shut down on: a clean stop
        log("mlops-bot serve: stopped")
        return EXIT_OK
    finally:
        if ticker is not None:
            ticker.stop()
    if not server.started:
        raise UsageError(f"could not listen on {args.host}:{args.port} (in use, or not an address of this machine).")
    return EXIT_OK


def _limits(args: argparse.Namespace) -> Limits:
    from ..service.guard import Limits, fit_open_files

    if not 0 < args.port < 65536 or min(args.workers, args.max_body, args.max_connections) < 1:
        raise UsageError("--port must be 1-65535, --workers, --max-body and --max-connections at least 1.")
    if not (0 < args.header_timeout <= 3600 and 0 < args.body_timeout <= 3600) or args.max_per_client < 0:
        raise UsageError("--header-timeout and --body-timeout must be over 0 and at most 3600 seconds, "
                         "--max-per-client 0 (no limit) or more.")
    return fit_open_files(Limits(max_body=args.max_body, header_timeout=args.header_timeout,
                                 body_timeout=args.body_timeout, per_client=args.max_per_client,
                                 max_connections=args.max_connections))
