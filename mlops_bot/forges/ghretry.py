"""BoundedRetry: PyGithub's GithubRetry with 429 handling and a time budget for each request.

GithubRetry already retries 5xx and the 403s GitHub uses for rate limits (waiting Retry-After, or until
x-ratelimit-reset for the primary limit). This adds 429 (GitHub answers secondary limits with either code),
PATCH (editing the sticky comment) and a deadline: a retry whose wait would end past `budget` seconds after
the first attempt is not made, and the last answer goes back to the caller, which reports it.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

from github.GithubRetry import GithubRetry
from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import InvalidHeader, MaxRetryError, ResponseError
from urllib3.response import BaseHTTPResponse, HTTPResponse
from urllib3.util.retry import Retry

if TYPE_CHECKING:
    from typing_extensions import Self

_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "POST", "PATCH"})


class BoundedRetry(GithubRetry):
    def __init__(self, budget: float = 120.0, deadline: float | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("total", 8)
        kwargs.setdefault("backoff_factor", 0.5)
        kwargs.setdefault("backoff_max", 30)
        kwargs.setdefault("raise_on_status", False)  # the last answer reaches PyGithub, which raises with its status
        kwargs.setdefault("status_forcelist", [*range(500, 600), 429])
        kwargs.setdefault("allowed_methods", _METHODS)
        kwargs.setdefault("secondary_rate_wait", min(60.0, budget))  # GitHub: wait at least a minute
        kwargs.setdefault("max_rate_limit_wait", budget)
        kwargs.setdefault("retry_after_max", max(1, int(budget)))
        super().__init__(**kwargs)
        self.budget = budget
        self.deadline = deadline  # monotonic time; set on the first retry of each request

    def new(self, **kw: Any) -> Self:
        kw.setdefault("budget", self.budget)
        kw.setdefault("deadline", self.deadline)
        return super().new(**kw)

    def increment(  # type: ignore[override]
        self,
        method: str | None = None,
        url: str | None = None,
        response: HTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Retry:
        deadline = self.deadline if self.deadline is not None else time.monotonic() + self.budget
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        wait = _planned_wait(retry, response)
        if time.monotonic() + wait > deadline:
            spent = ResponseError(f"retry budget of {self.budget:g}s spent")
            raise MaxRetryError(_pool, url or "", spent)  # type: ignore[arg-type]  # urllib3 allows a None pool
        if isinstance(retry, BoundedRetry):
            retry.deadline = deadline
        return retry


def _planned_wait(retry: Retry, response: BaseHTTPResponse | None) -> float:
    """How long urllib3 will sleep before the next attempt; waits for x-ratelimit-reset on a 429 without
    Retry-After, as GitHub's rate-limit guide asks."""
    wait = retry.get_backoff_time()
    if response is None:
        return wait
    try:
        after = retry.get_retry_after(response)
    except InvalidHeader:
        after = None
    if after:
        return after
    reset = str(response.headers.get("x-ratelimit-reset", ""))
    if response.status == 429 and response.headers.get("x-ratelimit-remaining") == "0" and reset.isdigit():
        until = max(0.0, int(reset) - time.time()) + 1.0
        if until > wait:
            retry.get_backoff_time = lambda: until  # type: ignore[method-assign]
            wait = until
    return wait
