"""`mlops-bot serve` as 1 replica on the SQLite spool beside 1, 2 and 4 replicas on one PostgreSQL spool (issue 21):
the same load against each setup, in one run.

Run: .venv/bin/python benchmarks/serve_replicas.py [--events 6000] [--connections 32] [--models 16] [--limit 120]

Each setup gets a fresh project (and a fresh database of one local PostgreSQL server, tests/helpers/postgres.py,
started for the run on 127.0.0.1 and removed at the end) and its replicas as `serve` subprocesses (2 worker
threads each). An asyncio client in this process keeps --connections keep-alive connections busy with
MLflow-signed deliveries (model_version_tag.set for --models models, fresh ids, HMAC per request), the
connections spread round-robin over the replicas (a load balancer's simplest policy). Measured: acknowledged
events/s (202s over the send time), p50/p99 time to the 202 (after the commit: SQLite fsync or PostgreSQL
commit), and the time from the first send until every event is handled (audit line written, marked handled).
Bounded by --events and --limit seconds per setup.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from serve_events import ML_YAML, SECRET, Load, Serve, percentile  # noqa: E402

from tests.helpers import postgres  # noqa: E402


class Replica(Serve):
    """One replica: serve_events' server with the spool's env, one log per port, no per-client cap (all load is
local)."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        super().__init__(root, env, ("--max-per-client", "0"), f"serve-{uuid.uuid4().hex[:8]}.log")

    def pending(self) -> int:
        return int(self.client.get(self.url + "/healthz").json()["spool"].get("pending", 1))


class RoundRobin(Load):
    """serve_events' load, each connection to the next replica's port."""

    def __init__(self, ports: list[int], requests: list[tuple[str, bytes]], deadline: float) -> None:
        super().__init__(ports[0], requests, deadline)
        self.ports, self.turn = ports, 0

    async def connection(self) -> None:
        self.port = self.ports[self.turn % len(self.ports)]
        self.turn += 1
        await super().connection()


def models_request(port: int, n: int, models: int) -> tuple[str, bytes]:
    """serve_events' delivery, for model bench-<n % models> (signed after the name is set)."""
    delivery = str(uuid.uuid4())
    data = {"name": f"bench-{n % models}", "version": "1", "key": "note", "value": str(n)}
    body = json.dumps({"entity": "model_version_tag", "action": "set", "timestamp": "2025-01-01T00:00:00+00:00",
                       "data": data}).encode()
    stamp = str(int(time.time()))
    signature = base64.b64encode(hmac.new(SECRET.encode(), f"{delivery}.{stamp}.".encode() + body,
                                          hashlib.sha256).digest()).decode()
    head = (f"POST /webhooks/mlflow HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nX-MLflow-Delivery-Id: {delivery}\r\nX-MLflow-Timestamp: {stamp}\r\n"
            f"X-MLflow-Signature: v1,{signature}\r\n\r\n")
    return f"mlflow-{delivery}", head.encode() + body


def setup(base: Path, name: str, replicas: int, url: str | None, args: argparse.Namespace) -> dict[str, float]:
    root = base / name
    root.mkdir()
    (root / "ml.yaml").write_text(ML_YAML)
    env = {"MLOPS_BOT_SPOOL_URL": url} if url else {}
    fleet = [Replica(root, env) for _ in range(replicas)]
    try:
        requests = [models_request(fleet[0].port, n, args.models) for n in range(args.events)]
        start = time.perf_counter()
        load = RoundRobin([r.port for r in fleet], requests, time.monotonic() + args.limit)
        elapsed = asyncio.run(load.run(args.connections))
        limit = time.perf_counter() + args.limit
        while fleet[0].pending() and time.perf_counter() < limit:
            time.sleep(0.05)
        handled = time.perf_counter() - start
    finally:
        for replica in fleet:
            replica.stop()
    acked = sum(1 for s in load.status.values() if s == 202)
    return {"acked": acked, "per_s": acked / elapsed, "p50": 1000 * percentile(load.latency, 50),
            "p99": 1000 * percentile(load.latency, 99), "handled_s": handled}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=6000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--models", type=int, default=16, help="models the events are spread over (partitions)")
    parser.add_argument("--limit", type=float, default=120.0, help="seconds allowed per setup")
    parser.add_argument("--keep", action="store_true", help="keep the projects and the replicas' logs")
    args = parser.parse_args()
    missing = postgres.available()
    if missing:
        raise SystemExit(missing)
    base = Path(tempfile.mkdtemp(prefix="mlops-bot-replicas-bench-"))
    server = postgres.start()
    results = []
    try:
        results.append(("1 replica, SQLite", setup(base, "sqlite", 1, None, args)))
        for n in (1, 2, 4):
            results.append((f"{n} replica(s), PostgreSQL", setup(base, f"pg{n}", n, server.fresh_database(), args)))
    finally:
        server.close()
        if args.keep:
            print(f"projects and logs kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    print(f"{args.events} deliveries, {args.connections} connections, {args.models} models")
    print(f"{'setup':26} {'202s':>6} {'acked/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'all handled s':>14}")
    for name, r in results:
        print(f"{name:26} {r['acked']:6.0f} {r['per_s']:8.0f} {r['p50']:7.1f} {r['p99']:7.1f} {r['handled_s']:14.1f}")
    return 0 if all(r["acked"] == args.events for _, r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
