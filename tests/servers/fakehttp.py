"""The plumbing shared by the local forge servers and the vendor stand-ins (GitLab's, Azure ML's and Databricks'
MLflow APIs): a threaded stdlib HTTP server on 127.0.0.1, the log of every request, scripted faults, the vendor's
error answer raised from anywhere in a handler (`Refusal`), and the list of contract violations a test asserts
empty."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    from typing_extensions import Self


@dataclass
class Answer:
    status: int
    body: Any = None  # JSON-able; None = no body
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    """One request as the server received it, and what it answered."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: Any
    operation: str = ""
    status: int = 0
    at: float = field(default_factory=time.monotonic)  # when it arrived


class Refusal(Exception):
    """What a handler raises to answer with the vendor's error (its own envelope), however deep it is."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.answer = Answer(status, body)


class FakeServer:
    """Subclasses implement `handle(seen) -> Answer`; faults scripted with `fail()` come first."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.seen: list[Seen] = []
        self.violations: list[str] = []
        self._faults: dict[str, deque[Answer]] = {}
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def origin(self) -> str:
        assert self._httpd is not None, "start() the server first"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> Self:
        app = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, headers, payload = app.dispatch(self.command, self.path, dict(self.headers.items()), raw)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def fail(self, operation: str, status: int, message: str = "", headers: dict[str, str] | None = None,
             times: int = 1, body: Any = None) -> None:
        """The next `times` calls of `operation` ("*" = any) answer `status` instead of doing their work."""
        answer = Answer(status, body if body is not None else {"message": message or f"scripted {status}"},
                        dict(headers or {}))
        with self.lock:
            self._faults.setdefault(operation, deque()).extend(answer for _ in range(times))

    def take_fault(self, operation: str) -> Answer | None:
        with self.lock:
            for key in (operation, "*"):
                queue = self._faults.get(key)
                if queue:
                    return queue.popleft()
        return None

    def violation(self, message: str) -> None:
        with self.lock:
            self.violations.append(message)

    def calls(self, operation: str | None = None) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if operation is None or s.operation == operation]

    crash_message = "fake server error"  # the message of the 500 answered when a handler itself fails
    serialize = False  # True: one request at a time under the lock (stand-ins whose handlers share state)

    def dispatch(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str],
                                                                                                bytes]:
        parts = urlsplit(target)
        lowered = {k.lower(): v for k, v in headers.items()}
        seen = Seen(method, parts.path, parse_qs(parts.query, keep_blank_values=True), lowered,
                    self.decode(method, parts.path, lowered, raw) if raw else None)
        try:
            if self.serialize:
                with self.lock:
                    answer = self.handle(seen)
            else:
                answer = self.handle(seen)
        except Refusal as refusal:
            answer = refusal.answer
        except Exception as exc:  # a bug in the fake must fail the test, not hang the client
            self.violation(f"{method} {parts.path}: the fake server crashed: {type(exc).__name__}: {exc}")
            answer = Answer(500, {"message": self.crash_message})
        seen.status = answer.status
        with self.lock:
            self.seen.append(seen)
        if isinstance(answer.body, bytes):
            return answer.status, {"Content-Type": "application/octet-stream", **answer.headers}, answer.body
        payload = b"" if answer.body is None else json.dumps(answer.body).encode()
        out = {"Content-Type": "application/json; charset=utf-8"} if answer.body is not None else {}
        return answer.status, {**out, **answer.headers}, payload

    def decode(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Any:
        """A request body as the handlers see it: JSON where Content-Type says so (or says nothing), else text."""
        try:
            return json.loads(raw) if "json" in headers.get("content-type", "json") else raw.decode()
        except ValueError:
            if "json" in headers.get("content-type", ""):
                self.violation(f"{method} {path}: the body is not JSON although Content-Type says so")
            return raw.decode(errors="replace")

    def handle(self, seen: Seen) -> Answer:
        raise NotImplementedError


def page_of(items: list[Any], query: dict[str, list[str]], default_per_page: int, max_per_page: int = 100
            ) -> tuple[list[Any], int, int, int]:
    """(items of the page, page, per_page, last page) for page/per_page query parameters."""
    per_page = min(max(int((query.get("per_page") or [str(default_per_page)])[0]), 1), max_per_page)
    page = max(int((query.get("page") or ["1"])[0]), 1)
    last = max(1, -(-len(items) // per_page))
    return items[(page - 1) * per_page: page * per_page], page, per_page, last
