"""HTTP endpoints on 127.0.0.1 that record what the bot POSTs to them: one that checks webhook signatures and
answers from a script (deploy targets), one that records and answers a fixed status (event rules)."""

from __future__ import annotations

import collections
import hashlib
import hmac
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    signature_ok: bool


@dataclass
class ScriptedReceiver:
    """Answers each POST from `script` (status, headers), then 200; records every delivery and whether its
    X-MLOps-Bot-Signature matches `secret`. `start()` serves on 127.0.0.1 at `url`; `close()` stops."""

    secret: str
    deliveries: list[Delivery] = field(default_factory=list)
    script: collections.deque[tuple[int, dict[str, str]]] = field(default_factory=collections.deque)
    url: str = ""
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)

    def answer(self, *steps: tuple[int, dict[str, str]]) -> None:
        self.script.extend(steps)

    def keys(self) -> Sequence[str]:
        return [d.headers["Idempotency-Key"] for d in self.deliveries]

    def start(self) -> ScriptedReceiver:
        state = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                expected = "sha256=" + hmac.new(state.secret.encode(), body, hashlib.sha256).hexdigest()
                signature = self.headers.get("X-MLOps-Bot-Signature", "")
                state.deliveries.append(Delivery(dict(self.headers), body, hmac.compare_digest(signature, expected)))
                status, headers = state.script.popleft() if state.script else (200, {})
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/deploy"
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


class RecordingReceiver:
    """An HTTP endpoint on 127.0.0.1 that records every POST (headers, body) and answers `status`."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.seen: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer.lock:
                    outer.seen.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
