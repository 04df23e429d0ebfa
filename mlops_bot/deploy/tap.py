"""The tap of one served version of an `mlflow_serve` target: the process that leads the version's process group,
starts `mlflow models serve` on an internal port as its child and answers in front of it.

  python -m mlops_bot.deploy.tap --port P --target T --version V --model-dir D --workers W --log-file L
         [--host 127.0.0.1] [--shadow-file F]

Every request but GET /metrics goes to the model server unchanged (hop-by-hop headers aside) and comes back with
`X-MLOps-Bot-Version: V`; an unreachable model server answers 502 (so /health fails until it is up). GET /metrics
is this version's Prometheus exposition (tap_metrics). The shadow file, written by the bot, names another
version and a share of the successful POST /invocations requests that it gets too, after the user's answer and
never in its place; the rows are compared and counted. The tap exits non-zero when the model server exits, and on
SIGTERM stops the rest of its group and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BotError
from .serving import alive, free_port, mlflow_command, server_environment
from .tap_metrics import INVOCATIONS, Shadow, ShadowFile, TapMetrics, compare, predictions

if TYPE_CHECKING:
    import httpx
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

VERSION_HEADER = "X-MLOps-Bot-Version"
SHADOW_HEADER = "X-MLOps-Bot-Shadow"  # a shadow's request is never shadowed again
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "trailers", "transfer-encoding", "upgrade", "host", "content-length"})
NOT_RELAYED = HOP_BY_HOP | {"content-encoding", "date", "server", VERSION_HEADER.lower()}
HEALTH_PROBES = frozenset({"/health", "/ping"})  # the bot's and the front's probes are not traffic
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
UPSTREAM_TIMEOUT_S = 120.0
SHADOW_TIMEOUT_S = 30.0
SHADOW_IN_FLIGHT = 8
STOP_GRACE_S = 10.0
INSTALL_HINT = "pip install 'mlops-bot[serve]' (mlflow, prometheus-client): the tap serves and counts with them"


def log(path: Path, line: str) -> None:
    """One line of the tap's own in the version's log, next to mlflow's output."""
    with contextlib.suppress(OSError), open(path, "a", encoding="utf-8") as handle:
        handle.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} mlops-bot tap: {line}\n")


class Tap:
    """The forwarding, the metrics and the shadow calls of one version."""

    def __init__(self, args: argparse.Namespace, upstream: str) -> None:
        self.version, self.upstream = args.version, upstream
        self.metrics = TapMetrics(args.target, args.version)
        self.shadow_file = ShadowFile(args.shadow_file, lambda line: log(args.log_file, line))
        self.tasks: set[asyncio.Task[None]] = set()
        self.client: httpx.AsyncClient | None = None

    async def forward(self, request: Request) -> Response:
        from starlette.responses import Response

        assert self.client is not None
        body, path = await request.body(), request.url.path
        query = request.scope.get("query_string", b"").decode("latin-1")
        url = self.upstream + request.scope.get("raw_path", path.encode()).decode("latin-1")
        started = time.perf_counter()
        try:
            answer = await self.client.request(request.method, url + (f"?{query}" if query else ""), content=body,
                                               headers=_relayed(request.headers.raw, HOP_BY_HOP))
        except Exception as exc:  # any failure to reach the model server is the gateway's error
            return self._count(request, self._error(f"the model server of v{self.version} did not answer: "
                                                    f"{type(exc).__name__}: {exc}"))
        seconds = time.perf_counter() - started
        headers = {name.decode("latin-1"): value.decode("latin-1")
                   for name, value in _relayed(answer.headers.raw, NOT_RELAYED)}
        headers[VERSION_HEADER] = self.version
        response = Response(answer.content, answer.status_code, headers)
        if request.method == "POST" and path == INVOCATIONS:
            self.metrics.timed(seconds)
            if answer.status_code == 200:
                self._predicted(request, body, answer.content)
        return self._count(request, response)

    def _count(self, request: Request, response: Response) -> Response:
        if not (request.method in ("GET", "HEAD") and request.url.path in HEALTH_PROBES):
            self.metrics.request(request.url.path, response.status_code)
        return response

    def _error(self, message: str) -> Response:
        from starlette.responses import JSONResponse

        return JSONResponse({"error": message}, 502, {VERSION_HEADER: self.version})

    def _predicted(self, request: Request, body: bytes, answer: bytes) -> None:
        rows = predictions(answer)
        if rows is None:
            return
        self.metrics.answered(rows)
        current = None if SHADOW_HEADER.lower() in request.headers else self.shadow_file.current()
        if current is None or not rows or not current[1].take():
            return
        shadow = current[0]
        if len(self.tasks) >= SHADOW_IN_FLIGHT:
            self.metrics.shadowed(shadow.version, "skipped", len(rows))
            return
        task = asyncio.create_task(self._shadow(shadow, body, request.headers.get("content-type", ""), rows))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _shadow(self, shadow: Shadow, body: bytes, content_type: str, rows: Sequence[Any]) -> None:
        """The same request to the shadow version; its rows compared with the user's, its answer dropped."""
        assert self.client is not None
        found = None
        with contextlib.suppress(Exception):
            answer = await self.client.post(shadow.url + INVOCATIONS, content=body, timeout=SHADOW_TIMEOUT_S,
                                            headers={"content-type": content_type, SHADOW_HEADER: self.version})
            found = compare(rows, predictions(answer.content)) if answer.status_code == 200 else None
        if found is None:
            self.metrics.shadowed(shadow.version, "error", len(rows))
            return
        self.metrics.shadowed(shadow.version, "agree", found[0])
        self.metrics.shadowed(shadow.version, "disagree", found[1])

    async def exposition(self, request: Request) -> Response:
        from starlette.responses import Response

        content, content_type = self.metrics.exposition()
        return Response(content, 200, {"content-type": content_type, VERSION_HEADER: self.version})


def _relayed(raw: Sequence[tuple[bytes, bytes]], dropped: frozenset[str]) -> list[tuple[bytes, bytes]]:
    """End-to-end headers: hop-by-hop ones and those the Connection header names are dropped."""
    named = dropped | {token.strip().lower() for name, value in raw if name.lower() == b"connection"
                       for token in value.decode("latin-1").split(",")}
    return [(name, value) for name, value in raw if name.decode("latin-1").lower() not in named]


def create_app(tap: Tap) -> Starlette:
    import httpx
    from starlette.applications import Starlette
    from starlette.routing import Route

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=UPSTREAM_TIMEOUT_S) as client:
            tap.client = client
            yield
            for task in list(tap.tasks):
                task.cancel()

    return Starlette(routes=[Route("/metrics", tap.exposition, methods=["GET"]),
                             Route("/{path:path}", tap.forward, methods=METHODS)], lifespan=lifespan)


def start_model_server(args: argparse.Namespace, port: int) -> subprocess.Popen[bytes]:
    """`mlflow models serve` as the tap's child, in the tap's process group (stop_group(tap) stops both)."""
    mlflow = mlflow_command()
    argv = [mlflow, "models", "serve", "-m", str(args.model_dir), "--env-manager", "local",
            "-h", "127.0.0.1", "-p", str(port), "-w", str(args.workers)]
    with open(args.log_file, "ab") as output:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                cwd=Path(args.model_dir).parent, env=server_environment(mlflow))


def _members() -> set[int]:
    """The processes to stop with the tap: its whole group when it leads one (workers orphaned by a dead mlflow
    too), else its descendants."""
    me, found, parents = os.getpid(), set(), {}
    leader = os.getpgrp() == me
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != me:
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(fields[1])
                if leader and int(fields[2]) == me:
                    found.add(int(entry.name))
    level = {me}
    while level:
        level = {pid for pid, parent in parents.items() if parent in level} - found
        found |= level
    return {pid for pid in found if alive(pid)}


def stop_members(child: subprocess.Popen[bytes], grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM once to each of the model server's processes (those that appear meanwhile too), a bounded wait,
    then SIGKILL; a process once found is waited for even when its parent's death took it out of the tree."""
    deadline, signalled = time.monotonic() + grace_s, set[int]()
    while True:
        child.poll()
        live = {pid for pid in signalled | _members() if alive(pid)}
        late = time.monotonic() > deadline
        for pid in live if late else live - signalled:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL if late else signal.SIGTERM)
        signalled |= live
        if not live or late:
            child.poll()
            return
        time.sleep(0.1)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    class TapServer(uvicorn.Server):
        stopping = False

        def handle_exit(self, sig: int, frame: Any) -> None:  # a clean stop: no signal raised again afterwards
            self.stopping = self.should_exit = True

    port = free_port()
    try:
        tap = Tap(args, f"http://127.0.0.1:{port}")
        child = start_model_server(args, port)
    except ImportError as exc:
        log(args.log_file, f"{exc.name} is not installed; {INSTALL_HINT}")
        return 2
    except (BotError, OSError) as exc:
        log(args.log_file, f"cannot start mlflow models serve: {exc}")
        return 2
    config = uvicorn.Config(create_app(tap), host=args.host, port=args.port,
                            log_level="warning", access_log=False, lifespan="on", ws="none", server_header=False,
                            timeout_graceful_shutdown=5)
    server = TapServer(config)

    async def serve() -> None:
        async def watch() -> None:
            while child.poll() is None:
                await asyncio.sleep(0.2)
            server.should_exit = True

        watcher = asyncio.create_task(watch())
        with contextlib.suppress(SystemExit):  # uvicorn exits when it cannot bind
            await server.serve()
        watcher.cancel()

    log(args.log_file, f"v{args.version} of {args.target} on {args.host}:{args.port}, mlflow models serve pid "
                       f"{child.pid} on 127.0.0.1:{port}")
    asyncio.run(serve())
    died = child.poll()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the clean-up short
    stop_members(child)
    if server.stopping:
        log(args.log_file, "stopped (SIGTERM)")
        return 0
    if died is not None:
        log(args.log_file, f"mlflow models serve exited with {died}; the tap exits too")
        return 1
    log(args.log_file, f"could not listen on {args.host}:{args.port} (in use, or not an address of this machine)")
    return 2


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mlops_bot.deploy.tap", description=__doc__.split("\n\n")[0])
    for name in ("--target", "--version"):
        parser.add_argument(name, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--log-file", type=Path, required=True)
    parser.add_argument("--shadow-file", type=Path)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return run(parse(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
