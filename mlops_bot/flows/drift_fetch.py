"""`monitor.current.url`: the current batch downloaded to a temp file, bounded in size, with the bot's retries
(support/retry: connection errors, timeouts, 408, 429 and 5xx; any other status fails at once).

The URL may carry a token (user:password@, `?sig=`); only its redacted form (support/urls) is ever shown.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .. import __version__
from ..console import log
from ..drift.readers import SUFFIXES
from ..errors import RemoteError
from ..support.files import WriteFailed, download_into
from ..support.retry import Retrier, RetryPolicy, parse_retry_after
from ..support.urls import redact

if TYPE_CHECKING:
    import httpx

SERVICE = "monitor.current.url"
CHUNK = 1 << 20
RETRY_STATUSES = frozenset({408, 429})


@dataclass(frozen=True)
class FetchOptions:
    """How hard a download tries; `sleep` is injectable so tests never really wait."""

    timeout: float = 60.0  # seconds without progress on one request
    attempts: int = 4
    backoff: float = 1.0
    sleep: Callable[[float], None] = time.sleep


class _Retryable(Exception):
    def __init__(self, status: int | None, why: str, retry_after: float | None = None) -> None:
        super().__init__(why)
        self.status, self.why, self.retry_after = status, why, retry_after


class _TooLarge(Exception):
    pass


def download(url: str, workdir: Path, max_mb: float, options: FetchOptions | None = None) -> Path:
    """The file at `url`, saved under `workdir` with the URL's data suffix (.csv when it has none); RemoteError
    naming the redacted URL and the status when it cannot be had, or when it is larger than `max_mb`."""
    import httpx

    options = options or FetchOptions()
    suffix = Path(urlsplit(url).path).suffix.lower()
    target = workdir / ("current" + (suffix if suffix in SUFFIXES else ".csv"))
    limit = int(max_mb * 1024 * 1024)
    policy = RetryPolicy(initial_wait=options.backoff, max_wait=30.0, retry_after_cap=30.0, attempts=options.attempts)
    shown = redact(url)

    def before_sleep(failure: BaseException, attempt: int, wait: float) -> None:
        log(f"mlops-bot drift: GET {shown}: {failure}; retry {attempt}/{options.attempts - 1} in {wait:.1f}s")

    try:
        with httpx.Client(timeout=options.timeout, follow_redirects=True,
                          headers={"User-Agent": f"mlops-bot/{__version__}"}) as client:
            Retrier(policy, sleep=options.sleep).call(lambda: _get(client, url, target, limit), _Retryable,
                                                       before_sleep)
    except _Retryable as exc:
        raise RemoteError(SERVICE, exc.status, shown, f"{exc.why}, still after {options.attempts} attempts; check "
                          "that the server is up, or pass --current PATH") from None
    except _TooLarge:
        raise RemoteError(SERVICE, None, shown, f"the file is larger than monitor.max_mb ({max_mb:g} MB); "
                          "raise max_mb (with a monitor.sample for large data) or fetch it with monitor.current.cmd"
                          ) from None
    return target


def _get(client: httpx.Client, url: str, target: Path, limit: int) -> None:
    import httpx

    try:
        with client.stream("GET", url) as response:
            _check_status(response)
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > limit:
                raise _TooLarge()
            _save(response, target, limit)
    except httpx.HTTPError as exc:  # connection refused or reset, timeouts, a broken body
        raise _Retryable(None, f"{type(exc).__name__}: {redact(str(exc)) or 'no answer'}") from None


def _check_status(response: httpx.Response) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    if status in RETRY_STATUSES or status >= 500:
        wait = parse_retry_after(response.headers.get("Retry-After"))
        raise _Retryable(status, f"the server answered {status}", wait)
    what = {401: "credentials are needed", 403: "access is refused", 404: "there is no file there",
            410: "the file is gone"}.get(status, "the request was refused")
    raise RemoteError(SERVICE, status, redact(str(response.url)), f"{what}; fix monitor.current.url in ml.yaml (a "
                      "signed URL may have expired), or pass --current PATH")


def _save(response: httpx.Response, target: Path, limit: int) -> None:
    received = 0
    try:
        with download_into(target) as temp, open(temp, "wb") as handle:
            for chunk in response.iter_bytes(CHUNK):
                received += len(chunk)
                if received > limit:
                    raise _TooLarge()
                handle.write(chunk)
    except OSError as exc:
        raise WriteFailed(target, exc.strerror or str(exc)) from exc
