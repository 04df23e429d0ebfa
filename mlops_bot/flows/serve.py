"""`mlops-bot serve`: receive signed MLflow, GitHub and GitLab webhooks and run the `on:` rules of ml.yaml.

Set the secret of each source you use (MLOPS_BOT_MLFLOW_WEBHOOK_SECRET, MLOPS_BOT_GITHUB_WEBHOOK_SECRET,
MLOPS_BOT_GITLAB_WEBHOOK_TOKEN) and point the webhooks at http://HOST:PORT/webhooks/<source>. Accepted
events are spooled under .mlops-bot/events/ before the answer and handled by --workers threads; after a
crash or a stop, `serve` started again handles what was left. SIGTERM or Ctrl-C stops it cleanly (exit 0).
"""

from __future__ import annotations

import argparse
from typing import Any

from ..console import log
from ..errors import EXIT_OK, UsageError
from ..support.state import SERVE_LOCK_FILE
from .project import Project

DEFAULT_PORT = 8765


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT})")
    parser.add_argument("--workers", type=int, default=2, metavar="N",
                        help="threads handling events (default: 2); one model's events are handled in order")
    parser.add_argument("--max-body", type=int, default=1024 * 1024, metavar="BYTES",
                        help="largest request body accepted (default: 1 MiB)")
    parser.epilog = ("Secrets: MLOPS_BOT_MLFLOW_WEBHOOK_SECRET, MLOPS_BOT_GITHUB_WEBHOOK_SECRET, "
                     "MLOPS_BOT_GITLAB_WEBHOOK_TOKEN; endpoints POST /webhooks/{mlflow,github,gitlab}, GET /healthz.")


def main(args: argparse.Namespace, project: Project) -> int:
    import uvicorn

    from ..service.app import SECRETS, Service, create_app
    from ..service.spool import hold_exclusive
    from .actions import rule_handler

    if not 0 < args.port < 65536 or args.workers < 1 or args.max_body < 1:
        raise UsageError("--port must be 1-65535, --workers and --max-body at least 1.")
    config, env = project.config, dict(project.env)
    service = Service(config, env, rule_handler(config, env), workers=args.workers, max_body=args.max_body)
    if not service.sources:
        raise UsageError(f"no webhook secret is set; set at least one of {', '.join(SECRETS.values())}.")
    hold_exclusive(service.directory / SERVE_LOCK_FILE, "serve")
    listening = (f"mlops-bot serve: listening on http://{args.host}:{args.port}/webhooks/"
                 f"{{{','.join(service.sources)}}} with {args.workers} worker(s); events in {service.directory}")

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[Any] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                log(listening)

    server = Server(uvicorn.Config(create_app(service), host=args.host, port=args.port, log_level="warning",
                                           access_log=False, lifespan="on", limit_concurrency=2048,
                                           timeout_graceful_shutdown=30, server_header=False))
    try:
        server.run()
    except SystemExit:  # uvicorn exits when it cannot bind; say it our way, with our exit code
        server.started = False
    except KeyboardInterrupt:  # uvicorn re-raises the SIGTERM/SIGINT it shut down on: a clean stop
        log("mlops-bot serve: stopped")
        return EXIT_OK
    if not server.started:
        raise UsageError(f"could not listen on {args.host}:{args.port} (in use, or not an address of this machine).")
    return EXIT_OK
