"""The stable front of an `mlflow_serve` target: nginx, run by the bot with a configuration it writes.

Everything lives under `.mlops-bot/serving/<target>/front/` (nginx's prefix): nginx.conf, upstream.conf (the
versions' ports and weights), the pid file, the logs and nginx's temp directories. Clients use the front's port
only. A route is one version, or several with weights (a rollout's traffic split: nginx's weighted round robin,
one worker, so 10 of every 100 requests go to a version of weight 10). Changing the route rewrites upstream.conf
atomically, tests the configuration (`nginx -t`) and reloads nginx (SIGHUP): requests in flight finish where
they were, new ones follow the new route. Each answer carries the version that gave it in `X-MLOps-Bot-Version`
(set by the version's tap), so the bot checks through the front that the change took effect.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import BotError
from ..support.files import write_atomic
from .serving import alive, stop_group

VERSION_HEADER = "X-MLOps-Bot-Version"
SWITCH_WAIT_S = 15.0

_CONF = """# Written by mlops-bot: the front of deploy target {target}. Edited by the bot on every switch.
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {prefix}/logs/access.log;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    client_max_body_size 64m;
    include {prefix}/upstream.conf;
    server {{
        listen {host}:{port};
        location = /metrics {{ return 404; }}  # each version's tap counts for Prometheus; not for clients
        location / {{
            proxy_pass http://live;
            proxy_read_timeout 120s;
            proxy_set_header Host $host;
        }}
    }}
}}
"""


@dataclass(frozen=True)
class Front:
    target: str
    prefix: Path  # .mlops-bot/serving/<target>/front
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.prefix / "nginx.pid"

    def pid(self) -> int | None:
        """The master's pid, when it still runs nginx (a pid file outlives a reboot; its pid may be another's)."""
        with contextlib.suppress(OSError, ValueError):
            pid = int(self.pid_file.read_text().strip())
            if b"nginx" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        return None

    def running(self) -> bool:
        pid = self.pid()
        return pid is not None and alive(pid)

    def switch(self, port: int, version: str) -> None:
        """Points the front at 127.0.0.1:`port` alone (starting nginx when it is not running) and waits, bounded,
        until the front answers /health from `version`."""
        self.route([(port, 1, version)])

    def route(self, routes: list[tuple[int, int, str]]) -> None:
        """Sends traffic to 127.0.0.1:port of each (port, weight, version) in proportion to the weights (0: none)
        and waits until the front answers from one of them and the old configuration's workers are gone."""
        routes = [r for r in routes if r[1] > 0]
        if not routes:
            raise BotError(f"the front of {self.target} was asked to route to no version; nothing changed.")
        for _port, _weight, version in routes:
            if not version.replace(".", "").replace("-", "").replace("_", "").isalnum():
                raise BotError(f"model version {version!r} is not a plain version name; refusing to write it into "
                               "nginx's configuration.")
        for sub in ("logs", "tmp"):
            (self.prefix / sub).mkdir(parents=True, exist_ok=True)
        conf = self.prefix / "nginx.conf"
        write_atomic(conf, _CONF.format(target=self.target, prefix=self.prefix, host=self.host, port=self.port))
        servers = "".join(f"    server 127.0.0.1:{port} weight={weight};  # v{version}\n"
                          for port, weight, version in routes)
        write_atomic(self.prefix / "upstream.conf", f"upstream live {{\n{servers}}}\n")
        self._nginx("-t")
        pid, old_workers = self.pid(), set()
        if pid is not None and alive(pid):
            old_workers = _children(pid)
            try:
                os.kill(pid, signal.SIGHUP)
            except ProcessLookupError:
                pid = None
        if pid is None or not alive(pid):
            self._nginx()  # starts the master (daemon: it outlives the CLI)
        self._wait_for({version for _port, _weight, version in routes})
        # The workers of the old configuration accept no new connection once they have seen the reload and
        # exit when their requests are done; until then the old version must keep serving.
        _wait_gone(old_workers, SWITCH_WAIT_S)

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            stop_group(pid) if _leads_group(pid) else _stop_master(pid)
        self.pid_file.unlink(missing_ok=True)

    def _nginx(self, *args: str) -> None:
        binary = nginx_binary()
        argv = [binary, "-p", f"{self.prefix}/", "-e", f"{self.prefix}/logs/error.log",
                "-c", str(self.prefix / "nginx.conf"), *args]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        except subprocess.TimeoutExpired:
            raise BotError(f"`{' '.join(argv)}` did not finish in 30s; see {self.prefix}/logs/error.log.") from None
        if done.returncode != 0:
            why = " | ".join(line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip())
            raise BotError(f"nginx (the front of deploy target {self.target}, port {self.port}) refused to "
                           f"{'check its configuration' if args else 'start'}: {why or 'no output'}")

    def answers(self, version: str) -> bool:
        """The front answers /health with 200 from `version`."""
        return self._health() == f"HTTP 200 from v{version}"

    def _health(self) -> str:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=2) as answer:
                return f"HTTP {answer.status} from v{answer.headers.get(VERSION_HEADER, '') or '?'}"
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code}"
        except OSError as exc:
            return str(getattr(exc, "reason", exc))

    def _wait_for(self, versions: set[str]) -> None:
        deadline, seen = time.monotonic() + SWITCH_WAIT_S, "no answer"
        wanted = {f"HTTP 200 from v{v}" for v in versions}
        while time.monotonic() < deadline:
            seen = self._health()
            if seen in wanted:
                return
            time.sleep(0.2)
        names = " or ".join(f"v{v}" for v in sorted(versions))
        raise BotError(f"the front {self.url} did not answer /health from {names} within {SWITCH_WAIT_S:g}s "
                       f"(last: {seen}); see {self.prefix}/logs/error.log.")


def nginx_binary() -> str:
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/sbin/nginx") if Path(p).exists()), None)
    if not found:
        raise BotError("nginx is not installed; the mlflow_serve deploy target runs its front with it. Install the "
                       "Debian package `nginx` (sudo apt-get install nginx) or run scripts/bootstrap as root.")
    return found


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.add(int(entry.name))
    return found


def _wait_gone(pids: set[int], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def _leads_group(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except ProcessLookupError:
        return False


def _stop_master(pid: int) -> None:
    """nginx's daemonized master leads its own session; when it does not, signal it alone (its workers follow)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
