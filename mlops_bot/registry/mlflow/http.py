"""The HTTP transport under MlflowRegistry: auth from the MLflow variables, retries, error translation.

httpx and tenacity exceptions stop here; callers only see BotErrors. Imported lazily (only when an
http(s) tracking URI is opened) so that `mlops-bot --version` never pays for httpx.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx

from ... import __version__
from ...errors import AuthError, RemoteError, UsageError
from ...support import retry as retries
from ...support.files import download_into
from ...support.urls import redact
from .errors import SERVICE, TransientError, error_from_response, error_from_transport
from .tokens import TOKEN_COMMAND, TokenSource

T = TypeVar("T")

API = "/api/2.0/mlflow/"
ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"
MAX_JSON_BYTES = 64 * 2**20  # one JSON answer read by json_at (an artifact listing of 10,000 entries is ~1 MB)
_MAX_ERROR_BYTES = 2**20  # of an error page: only its first line is shown
_ENCODED = ("content-encoding", "content-length", "transfer-encoding")


class TooLarge(RemoteError):
    """An answer longer than the bound its reader set; `limit` is that bound, in bytes."""

    def __init__(self, status: int | None, url: str, limit: int) -> None:
        super().__init__(SERVICE, status, url, f"answered with more than {limit:,} bytes, more than mlops-bot "
                                               "accepts here; check that the tracking URI is the server you expect")
        self.limit = limit


@dataclass(frozen=True)
class RetryPolicy(retries.RetryPolicy):
    """How long to keep trying a request that failed in a way worth retrying (support/retry.py), plus the
    timeout of one request."""

    total_seconds: float | None = 60.0  # the whole budget of one operation, sleeps included
    timeout: float = 30.0  # one request


class BearerToken(httpx.Auth):
    """Sends the token source's current token with every request (it may be renewed between two)."""

    def __init__(self, source: TokenSource) -> None:
        self.source = source

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.source.current()}"
        yield request


def client_from_env(env: Mapping[str, str], timeout: float, transport: httpx.BaseTransport | None) -> httpx.Client:
    """An httpx client configured like the MLflow client would be from the same variables."""
    headers = {"User-Agent": f"mlops-bot/{__version__}"}
    tokens = TokenSource(env)
    user = env.get("MLFLOW_TRACKING_USERNAME", "")
    password = env.get("MLFLOW_TRACKING_PASSWORD", "")
    auth: httpx.Auth | None = None
    if tokens.configured:
        auth = BearerToken(tokens)
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

    def json_at(self, path: str, *, params: Mapping[str, Any] | None = None,
                max_bytes: int = MAX_JSON_BYTES) -> dict[str, Any]:
        """GET a JSON document outside /api/2.0/mlflow/ (the artifact proxy's listing), read up to `max_bytes`
        (more is a TooLarge error)."""

        def once() -> dict[str, Any]:
            return self._streamed(path, params, lambda response: self._decode_bounded(response, max_bytes))

        return self.retrying(once)

    def send(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
             body: Mapping[str, Any] | None = None, retry: bool = True) -> httpx.Response:
        """One request (retried unless `retry=False`); returns the successful, fully read response."""

        def once() -> httpx.Response:
            return self._once(method, path, params, body)

        return self.retrying(once) if retry else self._renewing(once)

    def upload_file(self, path: str, file: Path) -> None:
        """PUT a file, streamed from disk and reopened for each attempt."""

        def once() -> None:
            with file.open("rb") as handle:
                headers = {"Content-Length": str(file.stat().st_size)}
                self._checked(lambda: self.client.request("PUT", self.base + path, content=handle,
                                                          headers=headers), path)

        self.retrying(once)

    def download_file(self, path: str, target: Path, max_bytes: int | None = None) -> int:
        """GET into `target` (support.files.download_into: complete or not at all); returns the bytes written.
        More than `max_bytes` is a TooLarge error."""
        with download_into(target) as temp, temp.open("wb") as handle:
            return self.retrying(lambda: self._streamed(
                path, None, lambda response: _copy(response, handle, max_bytes, self.display + path)))

    def retrying(self, operation: Callable[[], T]) -> T:
        """Runs `operation` until it succeeds, fails for good, or the time budget is spent."""
        started = time.monotonic()
        try:
            return self._retrier.call(lambda: self._renewing(operation), TransientError)
        except TransientError as exc:
            spent = time.monotonic() - started
            raise RemoteError(exc.service, exc.status, exc.url,
                              f"{exc.detail} (gave up after {spent:.1f} s of retries; check that the server "
                              "is up and reachable, or try again later)") from None

    def _renewing(self, operation: Callable[[], T]) -> T:
        """`operation()`, once more with a renewed token when the server refused the token as expired (401)."""
        try:
            return operation()
        except AuthError as exc:
            auth = self.client.auth
            if exc.status != 401 or not isinstance(auth, BearerToken):
                raise
            refused = auth.source.current()
            if auth.source.renew(refused) is None:
                raise AuthError(exc.service, exc.status, exc.url,
                                f"{exc.detail}; the token was refused and no fresh one is at hand: set "
                                f"{TOKEN_COMMAND} to a command that prints one (Azure ML: `az account "
                                "get-access-token --resource https://ml.azure.com --query accessToken -o tsv`)"
                                ) from None
            return operation()

    def _once(self, method: str, path: str, params: Mapping[str, Any] | None,
              body: Mapping[str, Any] | None) -> httpx.Response:
        return self._checked(lambda: self.client.request(method, self.base + path, params=params, json=body), path)

    def _streamed(self, path: str, params: Mapping[str, Any] | None, consume: Callable[[httpx.Response], T]) -> T:
        """GET `path` as a stream: a 2xx answer is handed to `consume`, any other becomes its error (read from
        the first MiB of its body: a hostile server may send an endless error page)."""

        def call() -> T:
            with self.client.stream("GET", self.base + path, params=params) as response:
                if response.is_success:
                    return consume(response)
                query = f"?{response.request.url.query.decode()}" if response.request.url.query else ""
                raise error_from_response(_error_page(response), self.display + path + query)

        return self._wrapped(call, path)

    def _wrapped(self, call: Callable[[], T], path: str) -> T:
        """`call()` with httpx's exceptions translated."""
        shown = self.display + path
        try:
            return call()
        except httpx.TransportError as exc:
            raise error_from_transport(exc, shown) from None
        except httpx.DecodingError as exc:  # a body whose Content-Encoding lies
            raise RemoteError(SERVICE, None, shown, f"sent a body that cannot be decoded ({exc}); check that the "
                                                    "tracking URI is the server you expect") from None
        except httpx.InvalidURL as exc:
            raise UsageError(f"{SERVICE}: invalid URL {shown}: {exc}; check the tracking URI.") from None

    def _checked(self, call: Callable[[], httpx.Response], path: str) -> httpx.Response:
        response = self._wrapped(call, path)
        if response.is_success:
            return response
        query = f"?{response.request.url.query.decode()}" if response.request.url.query else ""
        raise error_from_response(response, self.display + path + query)

    def _decode(self, response: httpx.Response, content: bytes | None = None) -> dict[str, Any]:
        """The JSON object in the answer (`content`: its body, when read already)."""
        shown = self.display + response.request.url.path
        content = response.content if content is None else content
        if not content:
            return {}
        try:
            document = json.loads(content)
        except (ValueError, RecursionError):  # RecursionError: JSON nested thousands deep
            raise RemoteError(SERVICE, response.status_code, shown,
                              "answered with a body that is not JSON; is the tracking URI an MLflow "
                              "server (a login page or proxy in the way?)") from None
        if not isinstance(document, dict):
            raise RemoteError(SERVICE, response.status_code, shown, "answered with JSON that is not an object")
        return document

    def _decode_bounded(self, response: httpx.Response, max_bytes: int) -> dict[str, Any]:
        body = bytearray()
        for chunk in _chunks(response, max_bytes, self.display + response.request.url.path):
            body += chunk
        return self._decode(response, bytes(body))


def _chunks(response: httpx.Response, limit: int | None, shown: str) -> Iterator[bytes]:
    """The decoded body, chunk by chunk; TooLarge as soon as it (or its declared length) passes `limit`."""
    if limit is not None:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit and not response.headers.get("content-encoding"):
            raise TooLarge(response.status_code, shown, limit)
    received = 0
    for chunk in response.iter_bytes():
        received += len(chunk)
        if limit is not None and received > limit:
            raise TooLarge(response.status_code, shown, limit)
        yield chunk


def _copy(response: httpx.Response, handle: IO[bytes], limit: int | None, shown: str) -> int:
    """Writes the body to `handle` from its start (a retry starts over); returns its length."""
    handle.seek(0)
    handle.truncate()
    written = 0
    for chunk in _chunks(response, limit, shown):
        handle.write(chunk)
        written += len(chunk)
    return written


def _error_page(response: httpx.Response) -> httpx.Response:
    """A non-2xx streamed answer, read up to _MAX_ERROR_BYTES, as a response error_from_response can read."""
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) >= _MAX_ERROR_BYTES:
            break
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _ENCODED]
    return httpx.Response(response.status_code, headers=headers, content=bytes(body[:_MAX_ERROR_BYTES]),
                          request=response.request)
