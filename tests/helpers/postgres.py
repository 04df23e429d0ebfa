"""A real PostgreSQL server (Debian's postgresql 15 binaries) on 127.0.0.1 and a free port, run as the
`postgres` user (postgres refuses root), its data under a temporary directory removed at stop. Password
authentication over TCP, so URLs carry credentials as a user's would (and tests check they are never printed).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from tests.servers.mlflow_server import free_port

BIN = Path("/usr/lib/postgresql/15/bin")
USER = "postgres"
PASSWORD = "pg-secret-7f3a9c"


def available() -> str | None:
    """Why a server cannot be started here, or None when it can."""
    if not (BIN / "pg_ctl").exists():
        return f"PostgreSQL binaries not found in {BIN} (install Debian's `postgresql` package)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root and runuser is missing (postgres refuses to run as root)"
    with contextlib.suppress(KeyError):
        import pwd

        pwd.getpwnam(USER)
        return None
    return f"no `{USER}` user to run the server as (Debian's `postgresql` package creates it)"


def _as_postgres(*argv: str) -> list[str]:
    return ["runuser", "-u", USER, "--", *argv] if os.geteuid() == 0 else list(argv)


@dataclass
class PostgresServer:
    base: Path
    port: int

    @property
    def data(self) -> Path:
        return self.base / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> list[tuple[object, ...]]:
        """Runs one statement in autocommit (CREATE DATABASE, pg_terminate_backend, checks); its rows."""
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True, connect_timeout=10) as conn:
            cursor = conn.execute(statement)
            return list(cursor.fetchall()) if cursor.description else []

    def fresh_database(self) -> str:
        """A new empty database's URL (one per test: tests never see each other's spools)."""
        name = "t_" + uuid.uuid4().hex[:16]
        self.sql(f"CREATE DATABASE {name}")
        return self.url(name)

    def terminate(self, database: str) -> int:
        """Kills every other connection to `database` (pg_terminate_backend): a failover as a client sees it."""
        rows = self.sql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        f"WHERE datname = '{database}' AND pid <> pg_backend_pid()")
        return int(str(rows[0][0]))

    def pg_ctl(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(_as_postgres(str(BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "30", *args),
                       check=True, timeout=timeout, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self) -> None:
        self.pg_ctl("-l", str(self.base / "server.log"), "start")

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("-m", mode, "stop")

    def restart_immediate(self) -> None:
        """`pg_ctl restart -m immediate`: every connection dies mid-transaction, the server recovers from WAL."""
        self.pg_ctl("-m", "immediate", "-l", str(self.base / "server.log"), "restart")

    def close(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)


def start() -> PostgresServer:
    """initdb, configure (127.0.0.1 only, a free port, scram passwords, the socket in the data dir), start."""
    base = Path(tempfile.mkdtemp(prefix="mlops-bot-pg-"))
    server = PostgresServer(base, free_port())
    try:
        if os.geteuid() == 0:
            shutil.chown(base, USER)
        pwfile = base / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if os.geteuid() == 0:
            shutil.chown(pwfile, USER)
        subprocess.run(_as_postgres(str(BIN / "initdb"), "-D", str(server.data), "-U", USER, "--pwfile", str(pwfile),
                                    "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8",
                                    "--locale=C.UTF-8"),
                       check=True, timeout=120, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        with (server.data / "postgresql.conf").open("a") as conf:
            conf.write(f"\nlisten_addresses = '127.0.0.1'\nport = {server.port}\n"
                       f"unix_socket_directories = '{server.data}'\nmax_connections = 200\n"
                       "shared_buffers = 64MB\nlog_min_messages = warning\n")
        server.start()
        deadline = time.monotonic() + 30
        while True:
            try:
                server.sql("SELECT 1")
                return server
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    except BaseException:
        server.close()
        raise


class CountingReceiver:
    """MLOPS_BOT_NOTIFY_URL for replica tests: records each `notify` POST as (event id, model, its `value`) in arrival
    order; `hold(k)` makes the k-th POST (1-based) wait until `release()`, as a slow receiver mid-action would."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.posts: list[tuple[str, str, int]] = []
        self.lock = threading.Lock()
        self.held_at, self.holding, self.released = 0, threading.Event(), threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                import json

                doc = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                data = doc["event"]["data"]
                with outer.lock:
                    outer.posts.append((doc["delivery_id"], str(data.get("model", "")), int(data.get("value", -1))))
                    number = len(outer.posts)
                if number == outer.held_at:
                    outer.holding.set()
                    outer.released.wait(60)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"

    def hold(self, number: int) -> None:
        self.held_at = number

    def release(self) -> None:
        self.released.set()

    def ids(self) -> list[str]:
        with self.lock:
            return [post[0] for post in self.posts]

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()
