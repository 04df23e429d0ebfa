"""A FakeServer whose handler may answer with a stream (the Kubernetes stand-in's `follow=true` pod log): the
chunks go out with HTTP/1.1 chunked transfer encoding as they come, as kube-apiserver streams a log."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from tests.servers.fakehttp import Answer

if TYPE_CHECKING:
    from tests.servers.kubernetes_kubelet import Kubelet


class StreamingMixin:
    """Mixed in before FakeServer: `stream(chunks, headers)` is an Answer whose body is sent as it is produced."""

    _local = threading.local()
    _httpd: ThreadingHTTPServer | None
    _connections: set[socket.socket]

    def close_connections(self) -> None:
        """Cuts every open connection, as a server that went away does (a stopped listener alone would leave the
        client's kept-alive connections answered)."""
        for connection in list(self._connections):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def stream(self, chunks: Iterator[bytes], headers: dict[str, str]) -> Answer:
        self._local.stream = chunks  # the request's own thread picks it up after dispatch
        return Answer(200, b"", headers)

    def start(self) -> Any:
        app: Any = self
        self._connections = set()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                app._connections.add(self.connection)

            def finish(self) -> None:
                app._connections.discard(self.connection)
                with contextlib.suppress(OSError):
                    super().finish()

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                app._local.stream = None
                status, headers, payload = app.dispatch(self.command, self.path, dict(self.headers.items()), raw)
                chunks = app._local.stream
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if chunks is None:
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for chunk in chunks:
                        if chunk:
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                            self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:  # the client went away
                    self.close_connection = True

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
        return self


def tail_lines(data: bytes, lines: str | None) -> bytes:
    if lines is None:
        return data
    kept = data.splitlines(keepends=True)
    return b"".join(kept[-int(lines):]) if int(lines) > 0 else b""


def follow_log(kubelet: Kubelet, tail: str | None) -> Iterator[bytes]:
    """The log as it grows, until the container has ended and all of it was sent."""
    with kubelet.log.open("rb") as handle:
        if tail is not None:
            yield tail_lines(handle.read(), tail)
        while True:
            done = kubelet.finished.is_set() or kubelet.deleted.is_set()
            chunk = handle.read(64 * 1024)
            if chunk:
                yield chunk
            elif done:
                return
            else:
                time.sleep(0.05)
