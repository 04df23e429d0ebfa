"""MLflow HTTP answers and httpx failures -> BotErrors, each a one-line message naming service, status, URL."""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING, Any

from ...errors import AlreadyExists, AuthError, InvalidParameter, NotFound, RemoteError
from ...support.retry import parse_retry_after
from ...support.urls import redact_text

if TYPE_CHECKING:
    import httpx

SERVICE = "MLflow"
_MAX_DETAIL = 300


class TransientError(RemoteError):
    """A failure worth retrying: no answer, a timeout, 429 or 5xx."""

    def __init__(self, status: int | None, url: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(SERVICE, status, url, message)
        self.retry_after = retry_after


class EndpointMissing(NotFound):
    """The server has no such endpoint (a partial MLflow API such as GitLab's): a capability is missing."""


_CODES: dict[str, type[RemoteError]] = {
    "RESOURCE_DOES_NOT_EXIST": NotFound,
    "RESOURCE_ALREADY_EXISTS": AlreadyExists,
    "INVALID_PARAMETER_VALUE": InvalidParameter,
    "ENDPOINT_NOT_FOUND": EndpointMissing,
    "NOT_IMPLEMENTED": EndpointMissing,
}


def one_line(text: str, limit: int = _MAX_DETAIL) -> str:
    """The first line of `text`, shortened: server messages can carry whole SQL statements."""
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _json_error(response: httpx.Response) -> dict[str, Any] | None:
    if "json" not in response.headers.get("content-type", "") and not response.content.startswith(b"{"):
        return None
    try:
        document = response.json()
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _page_summary(response: httpx.Response) -> str:
    """What a non-JSON error page says, in a few words (its <title>, or its first line)."""
    text = response.text
    title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    if title:
        return one_line(html.unescape(title.group(1)), 120)
    if text.strip():
        return one_line(re.sub(r"<[^>]+>", " ", text), 120)
    return response.reason_phrase or "empty body"


def error_from_response(response: httpx.Response, url: str) -> RemoteError:
    """The BotError for a non-2xx answer."""
    status = response.status_code
    document = _json_error(response)
    code = str(document.get("error_code", "")) if document else ""
    # Azure ML answers {"Error": {"Message": ...}, "error_code": ...}, with no top-level message.
    nested = document.get("Error") if document else None
    azure = str(nested.get("Message") or "") if isinstance(nested, dict) else ""
    detail = one_line(str(document.get("message") or azure)) if document else ""
    if status in (401, 403):
        what = detail or _page_summary(response)
        return AuthError(SERVICE, status, url, f"credentials refused ({what}); check MLFLOW_TRACKING_TOKEN or "
                                               "MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD")
    if status == 429 or status >= 500:
        what = detail or _page_summary(response)
        return TransientError(status, url, what, parse_retry_after(response.headers.get("retry-after")))
    if code in _CODES:
        return _CODES[code](SERVICE, status, url, f"{detail} ({code})" if detail else code)
    if status in (404, 405, 501):
        # MLflow (and GitLab's MLflow API) name a missing object with an error_code; a bare 404 is a route
        # the server does not have.
        what = detail or (one_line(str(document)) if document else _page_summary(response))
        return EndpointMissing(SERVICE, status, url, f"no such endpoint ({what}); the server does not implement "
                                                     "this part of the MLflow API")
    if document is not None:
        what = f"{detail} ({code})" if code and detail else detail or code or one_line(str(document))
        return RemoteError(SERVICE, status, url, what)
    return RemoteError(SERVICE, status, url, f"answered with a non-JSON error page: {_page_summary(response)}")


def error_from_transport(exc: Exception, url: str) -> RemoteError:
    """A request that got no HTTP answer; timeouts and connection failures are transient."""
    import httpx

    reason = redact_text(one_line(str(exc))) or type(exc).__name__  # httpx may quote the URL, token and all
    if isinstance(exc, httpx.TimeoutException):
        return TransientError(None, url, f"timed out ({type(exc).__name__})")
    if isinstance(exc, (httpx.NetworkError, httpx.RemoteProtocolError)):
        return TransientError(None, url, f"could not connect or the connection broke ({reason})")
    return RemoteError(SERVICE, None, url, f"request failed ({reason})")


HOSTILE_WHAT_TO_DO = ("nothing was written outside the download directory; check that the tracking URI names the "
                      "MLflow server you expect and that no proxy in between rewrites its answers")


def hostile(where: str, problem: str) -> RemoteError:
    """The error for an artifact listing that cannot be followed safely (it answered 200, but not sensibly)."""
    return RemoteError(SERVICE, 200, where, f"refusing the artifact listing: {problem}; {HOSTILE_WHAT_TO_DO}")
