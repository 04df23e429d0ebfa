"""A forwarding proxy on 127.0.0.1 in front of a real server, whose `intercept` may answer a request itself: what a
partial API (an nginx 404 page for the routes it lacks) or a token gateway (401 for a stale bearer token) does in
front of MLflow."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

# (method, path with query, request headers) -> (status, body, content type), or None to forward the request
Intercept = Callable[[str, str, Mapping[str, str]], "tuple[int, bytes, str] | None"]


class ForwardingProxy:
    def __init__(self, upstream: str, intercept: Intercept, drop_headers: tuple[str, ...] = ("host",)) -> None:
        dropped = {name.lower() for name in drop_headers}

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answer = intercept(self.command, self.path, dict(self.headers.items()))
                if answer is None:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in dropped}
                    forwarded = httpx.request(self.command, upstream + self.path, content=body, headers=headers,
                                              timeout=30)
                    answer = (forwarded.status_code, forwarded.content, forwarded.headers.get("content-type", ""))
                status, payload, kind = answer
                self.send_response(status)
                self.send_header("Content-Type", kind or "application/octet-stream")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
