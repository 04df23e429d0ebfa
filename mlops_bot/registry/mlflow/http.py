"""The HTTP transport under MlflowRegistry: auth from the MLflow variables, retries, error translation.

httpx and tenacity exceptions stop here; callers only see BotErrors. Imported lazily (only when an
http(s) tracking URI is opened) so that `mlops-bot --version` never pays for httpx.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from ... import __version__
from ...errors import RemoteError, UsageError
from ...support import retry as retries
from ...support.urls import redact
from .errors import SERVICE, TransientError, error_from_response, error_from_transport

T = TypeVar("T")

API = "/api/2.0/mlflow/"
ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"


@dataclass(frozen=True)
class RetryPolicy(retries.RetryPolicy):
    """How long to keep trying a request that failed in a way worth retrying (support/retry.py), plus the
    timeout of one request."""

    total_seconds: float | None = 60.0  # the whole budget of one operation, sleeps included
    timeout: float = 30.0  # one request


def client_from_env(env: Mapping[str, str], timeout: float, transport: httpx.BaseTransport | None) -> httpx.Client:
    """An httpx client configured like the MLflow client would be from the same variables."""
    headers = {"User-Agent": f"mlops-bot/{__version__}"}
    token = env.get("MLFLOW_TRACKING_TOKEN", "")
    user = env.get("MLFLOW_TRACKING_USERNAME", "")
    password = env.get("MLFLOW_TRACKING_PASSWORD", "")
    auth: httpx.Auth | None = None
    if token:
        headers["Authorization"] = f"Bearer {token}"
    elif user or password:
        if not (user and password):
            missing = "MLFLOW_TRACKING_PASSWORD" if user else "MLFLOW_TRACKING_USERNAME"
            raise UsageError(f"MLflow basic auth needs both MLFLOW_TRACKING_USERNAME and "
                             f"MLFLOW_TRACKING_PASSWORD; set {missing} too.")
        auth = httpx.BasicAuth(user, password)
    return httpx.Client(headers=headers, auth=auth, timeout=timeout, verify=_tls_verify(env),
                        transport=transport, follow_redirects=False)


def _tls_verify(env: Mapping[str, str]) -> ssl.SSLContext | bool:
    insecure = env.get("MLFLOW_TRACKING_INSECURE_TLS", "").strip().lower() in ("1", "true", "yes")
    cert_path = env.get("MLFLOW_TRACKING_SERVER_CERT_PATH", "")
    if insecure and cert_path:
        raise UsageError("MLFLOW_TRACKING_INSECURE_TLS and MLFLOW_TRACKING_SERVER_CERT_PATH cannot both be set; "
                         "unset one of them.")
    if insecure:
        return False
    if cert_path:
        if not Path(cert_path).is_file():
            raise UsageError(f"MLFLOW_TRACKING_SERVER_CERT_PATH={cert_path} is not a file; "
                             "point it at the server's CA bundle (PEM).")
        return ssl.create_default_context(cafile=cert_path)
    return True


class MlflowHttp:
    """Requests against one tracking server; `retry=False` hands retrying to an outer `retrying()` call
    (used by creates, which must look up before they try again)."""

    def __init__(self, uri: str, env: Mapping[str, str], *, transport: httpx.BaseTransport | None = None,
                 client: httpx.Client | None = None, retry: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.base = uri.rstrip("/")
        self.display = redact(self.base).rstrip("/")  # the tracking URI fit for messages
        self.policy = retry or RetryPolicy()
        self._owns_client = client is None
        self.client = client or client_from_env(env, self.policy.timeout, transport)
        self._retrier = retries.Retrier(self.policy, sleep=sleep)

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def json(self, method: str, endpoint: str, *, params: Mapping[str, Any] | None = None,
             body: Mapping[str, Any] | None = None, retry: bool = True) -> dict[str, Any]:
        response = self.send(method, API + endpoint, params=params, body=body, retry=retry)
        return self._decode(response)

    def json_at(self, path: str, *, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """GET a JSON document outside /api/2.0/mlflow/ (the artifact proxy's listing)."""
        return self._decode(self.send("GET", path, params=params))

    def send(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
             body: Mapping[str, Any] | None = None, retry: bool = True) -> httpx.Response:
        """One request (retried unless `retry=False`); returns the successful, fully read response."""

        def once() -> httpx.Response:
            return self._once(method, path, params, body)

        return self.retrying(once) if retry else once()

    def upload_file(self, path: str, file: Path) -> None:
        """PUT a file, streamed from disk and reopened for each attempt."""

        def once() -> None:
            with file.open("rb") as handle:
                headers = {"Content-Length": str(file.stat().st_size)}
                self._checked(lambda: self.client.request("PUT", self.base + path, content=handle,
                                                          headers=headers), path)

        self.retrying(once)

    def download_file(self, path: str, target: Path) -> None:
        """GET into `target`, streamed through a `.part` file so no half-written file keeps the real name."""
        partial = target.with_name(target.name + ".part")

        def once() -> None:
            try:
                with self.client.stream("GET", self.base + path) as response:
                    if not response.is_success:
                        response.read()
                        raise error_from_response(response, self.display + path)
                    with partial.open("wb") as handle:
                        for chunk in response.iter_bytes():
                            handle.write(chunk)
            except httpx.TransportError as exc:
                raise error_from_transport(exc, self.display + path) from None

        target.parent.mkdir(parents=True, exist_ok=True)
        self.retrying(once)
        partial.replace(target)

    def retrying(self, operation: Callable[[], T]) -> T:
        """Runs `operation` until it succeeds, fails for good, or the time budget is spent."""
        started = time.monotonic()
        try:
            return self._retrier.call(operation, TransientError)
        except TransientError as exc:
            spent = time.monotonic() - started
            raise RemoteError(exc.service, exc.status, exc.url,
                              f"{exc.detail} (gave up after {spent:.1f} s of retries; check that the server "
                              "is up and reachable, or try again later)") from None

    def _once(self, method: str, path: str, params: Mapping[str, Any] | None,
              body: Mapping[str, Any] | None) -> httpx.Response:
        return self._checked(lambda: self.client.request(method, self.base + path, params=params, json=body), path)

    def _wrapped(self, call: Callable[[], T], path: str) -> T:
        """`call()` with httpx's exceptions translated."""
        shown = self.display + path
        try:
            return call()
        except httpx.TransportError as exc:
            raise error_from_transport(exc, shown) from None
        except httpx.InvalidURL as exc:
            raise UsageError(f"{SERVICE}: invalid URL {shown}: {exc}; check the tracking URI.") from None

    def _checked(self, call: Callable[[], httpx.Response], path: str) -> httpx.Response:
        response = self._wrapped(call, path)
        if response.is_success:
            return response
        query = f"?{response.request.url.query.decode()}" if response.request.url.query else ""
        raise error_from_response(response, self.display + path + query)

    def _decode(self, response: httpx.Response) -> dict[str, Any]:
        shown = self.display + response.request.url.path
        if not response.content:
            return {}
        try:
            document = response.json()
        except ValueError:
            raise RemoteError(SERVICE, response.status_code, shown,
                              "answered with a body that is not JSON; is the tracking URI an MLflow "
                              "server (a login page or proxy in the way?)") from None
        if not isinstance(document, dict):
            raise RemoteError(SERVICE, response.status_code, shown, "answered with JSON that is not an object")
        return document
