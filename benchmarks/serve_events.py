"""How many signed webhook deliveries `mlops-bot serve` sustains on 127.0.0.1, how fast it answers, and what a
`kill -9` in the middle of a stream costs.

Budget (issue 8): 1,000 events/s on 2 cores with signatures on; p50/p99 time to acknowledge (the 202 comes
after the event is committed to the spool on disk); 0 lost and 0 duplicated across a kill -9 and restart.

Run: .venv/bin/python benchmarks/serve_events.py [--events 20000] [--connections 32] [--kill-events 6000]
     [--light-connections 4] [--limit 120]

A temporary project gets `serve` (a subprocess, 2 worker threads); an asyncio client in this process keeps
--connections keep-alive connections busy with MLflow-signed deliveries (model_version_tag.set, fresh ids and
timestamps, HMAC computed per request). Phase 1 measures acknowledged events/s, the latency of each
acknowledgement, and the time until every event is handled (audit line written, marked handled); the same
again with --light-connections (latency without queueing). Phase 2
sends --kill-events, SIGKILLs `serve` when a third are acknowledged, restarts it, delivers again what got no
202 (as a sender would), waits until the spool is empty, and counts acknowledged events missing from the
audit log (lost) and events logged twice (duplicated). Only 127.0.0.1; bounded by the event counts and a
time limit per phase (--limit seconds); everything is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx

SECRET = "bench-secret-0123456789"
ML_YAML = """\
version: 1
model: {name: bench, artifact: build/model}
tracking: {uri: local, experiment: bench}
pipeline:
  evaluate: {cmd: [python, -c, "pass"], outs: [build/model], metrics: build/metrics.json}
on:
  - {event: model_version.alias_set, where: {alias: champion}, do: [deploy]}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request(port: int, n: int) -> tuple[str, bytes]:
    """One delivery as MLflow 3 sends it, signed now."""
    delivery = str(uuid.uuid4())
    body = json.dumps({"entity": "model_version_tag", "action": "set", "timestamp": "2025-01-01T00:00:00+00:00",
                       "data": {"name": "bench", "version": "1", "key": "note", "value": str(n)}}).encode()
    stamp = str(int(time.time()))
    signature = base64.b64encode(hmac.new(SECRET.encode(), f"{delivery}.{stamp}.".encode() + body,
                                          hashlib.sha256).digest()).decode()
    head = (f"POST /webhooks/mlflow HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nX-MLflow-Delivery-Id: {delivery}\r\nX-MLflow-Timestamp: {stamp}\r\n"
            f"X-MLflow-Signature: v1,{signature}\r\n\r\n")
    return f"mlflow-{delivery}", head.encode() + body


class Load:
    def __init__(self, port: int, requests: list[tuple[str, bytes]], deadline: float) -> None:
        self.port, self.requests, self.deadline = port, requests, deadline
        self.next = 0
        self.status: dict[str, int] = {}
        self.latency: list[float] = []
        self.stop = False

    async def connection(self) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return
        try:
            while not self.stop and self.next < len(self.requests) and time.monotonic() < self.deadline:
                event_id, raw = self.requests[self.next]
                self.next += 1
                start = time.perf_counter()
                writer.write(raw)
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                await reader.readexactly(length)
                self.latency.append(time.perf_counter() - start)
                self.status[event_id] = int(head.split(b" ", 2)[1])
        except (OSError, asyncio.IncompleteReadError):
            return  # the server went away (phase 2)
        finally:
            writer.close()

    async def run(self, connections: int) -> float:
        start = time.perf_counter()
        await asyncio.gather(*(self.connection() for _ in range(connections)))
        return time.perf_counter() - start


class Serve:
    """`mlops-bot serve` with 2 workers on a free port, up once /healthz answers; `env` and `extra` add to that."""

    def __init__(self, root: Path, env: dict[str, str] | None = None, extra: tuple[str, ...] = (),
                 log_name: str = "serve.log") -> None:
        self.root, self.port = root, free_port()
        log = root / log_name
        self.log = log.open("ab")
        self.process = subprocess.Popen([sys.executable, "-m", "mlops_bot", "-C", str(root), "serve", "--port",
                                         str(self.port), "--workers", "2", *extra], stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True,
                                        env={**os.environ, **(env or {}), "MLOPS_BOT_MLFLOW_WEBHOOK_SECRET": SECRET})
        self.client = httpx.Client(timeout=10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if self.client.get(self.url + "/healthz").status_code == 200:
                    return
            time.sleep(0.1)
        raise SystemExit(f"serve did not start; see {log}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_idle(self, limit: float) -> tuple[dict[str, int], float]:
        start = time.perf_counter()
        while True:
            spool = self.client.get(self.url + "/healthz").json()["spool"]
            if spool["pending"] == 0 or time.perf_counter() - start > limit:
                return spool, time.perf_counter() - start
            time.sleep(0.05)

    def stop(self, kill: bool = False) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL if kill else signal.SIGTERM)
        self.process.wait(60)
        self.client.close()
        self.log.close()


def audit_counts(root: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    for path in sorted((root / ".mlops-bot" / "events").glob("audit.jsonl*")):
        for line in path.read_bytes().splitlines():
            with contextlib.suppress(ValueError):
                counts[json.loads(line)["id"]] += 1
    return counts


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 10) - 1] if len(values) > 1 else values[0]


def throughput(root: Path, events: int, connections: int, limit: float) -> dict[str, float]:
    serve = Serve(root)
    try:
        load = Load(serve.port, [request(serve.port, n) for n in range(events)], time.monotonic() + limit)
        elapsed = asyncio.run(load.run(connections))
        spool, drain = serve.wait_idle(limit)
    finally:
        serve.stop()
    acked = sum(1 for s in load.status.values() if s == 202)
    handled_in = elapsed + drain
    return {"sent": len(load.status), "acked": acked, "acked_per_s": acked / elapsed,
            "p50_ms": 1000 * percentile(load.latency, 50), "p99_ms": 1000 * percentile(load.latency, 99),
            "handled": spool["handled"], "handled_per_s": spool["handled"] / handled_in,
            "other": len(load.status) - acked}


def kill_and_restart(root: Path, events: int, connections: int, limit: float) -> dict[str, float]:
    serve = Serve(root)
    requests = [request(serve.port, n) for n in range(events)]
    load = Load(serve.port, requests, time.monotonic() + limit)

    async def stream() -> None:
        async def killer() -> None:
            while sum(1 for s in load.status.values() if s == 202) < events // 3 and load.next < events:
                await asyncio.sleep(0.002)
            serve.stop(kill=True)
            load.stop = True

        await asyncio.gather(load.run(connections), killer())

    asyncio.run(stream())
    acked_before = {i for i, s in load.status.items() if s == 202}
    again = Serve(root)
    try:
        retry = [(i, raw.replace(f"Host: 127.0.0.1:{serve.port}".encode(), f"Host: 127.0.0.1:{again.port}".encode()))
                 for i, raw in requests if i not in acked_before]
        second = Load(again.port, retry, time.monotonic() + limit)
        asyncio.run(second.run(connections))
        spool, _ = again.wait_idle(limit)
    finally:
        again.stop()
    answered = {**load.status, **second.status}
    acked = {i for i, s in answered.items() if s in (202, 409)}  # 409 after the restart: held since before the kill
    logged = audit_counts(root)
    return {"acked_before_kill": len(acked_before), "stored_unanswered": sum(1 for s in second.status.values()
                                                                              if s == 409),
            "acked": len(acked), "lost": sum(1 for i in acked if logged[i] == 0),
            "duplicated": sum(1 for i, n in logged.items() if n > 1), "handled": spool["handled"],
            "pending": spool["pending"]}


def project(base: Path, name: str) -> Path:
    root = base / name
    root.mkdir()
    (root / "ml.yaml").write_text(ML_YAML)
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--kill-events", type=int, default=6_000)
    parser.add_argument("--light-connections", type=int, default=4, help="connections of the light-load phase")
    parser.add_argument("--limit", type=float, default=120.0, help="seconds allowed per phase")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="mlops-bot-serve-bench-"))
    try:
        speed = throughput(project(base, "speed"), args.events, args.connections, args.limit)
        light = throughput(project(base, "light"), min(args.events, 3000), args.light_connections, args.limit)
        crash = kill_and_restart(project(base, "crash"), args.kill_events, args.connections, args.limit)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"{'measure':44} {'value':>12}")
    rows = [("deliveries sent (phase 1)", f"{speed['sent']:.0f}"),
            ("acknowledged 202", f"{speed['acked']:.0f}"),
            ("not 202", f"{speed['other']:.0f}"),
            ("acknowledged events/s (goal >= 1000)", f"{speed['acked_per_s']:.0f}"),
            ("time to acknowledge p50 (ms)", f"{speed['p50_ms']:.1f}"),
            ("time to acknowledge p99 (ms)", f"{speed['p99_ms']:.1f}"),
            ("handled events/s, send to last handled", f"{speed['handled_per_s']:.0f}"),
            (f"light load ({args.light_connections} connections): events/s", f"{light['acked_per_s']:.0f}"),
            ("light load: time to acknowledge p50 (ms)", f"{light['p50_ms']:.1f}"),
            ("light load: time to acknowledge p99 (ms)", f"{light['p99_ms']:.1f}"),
            ("kill -9: acknowledged before the kill", f"{crash['acked_before_kill']:.0f}"),
            ("kill -9: stored but unanswered (409 on retry)", f"{crash['stored_unanswered']:.0f}"),
            ("kill -9: held in all (202, or 409 on retry)", f"{crash['acked']:.0f}"),
            ("kill -9: lost (goal 0)", f"{crash['lost']:.0f}"),
            ("kill -9: duplicated (goal 0)", f"{crash['duplicated']:.0f}"),
            ("kill -9: still pending after the restart", f"{crash['pending']:.0f}")]
    for name, value in rows:
        print(f"{name:44} {value:>12}")
    return 0 if crash["lost"] == 0 and crash["duplicated"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
