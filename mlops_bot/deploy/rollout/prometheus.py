"""Instant queries against the Prometheus HTTP API (`GET /api/v1/query`), the metrics source of rollout analysis.

An answer is one number: a scalar, or a vector of exactly one sample. An empty vector (or NaN) is "no data",
which the analysis decides about; several samples are a mistake in the query (aggregate it with sum/avg).
Connection failures, 5xx and 429 are retried within a bound, then reported with the (redacted) URL; a 400 is
the query's own error, reported with Prometheus's message and not retried.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ...errors import RemoteError, UsageError
from ...support.retry import Retrier, RetryPolicy, parse_retry_after
from ...support.urls import redact

TIMEOUT_S = 10.0
POLICY = RetryPolicy(initial_wait=0.5, max_wait=5.0, attempts=4, total_seconds=30.0)


class _Retryable(Exception):
    def __init__(self, status: int | None, why: str, retry_after: float | None = None) -> None:
        super().__init__(why)
        self.status, self.why, self.retry_after = status, why, retry_after


@dataclass(frozen=True)
class Prometheus:
    url: str  # base URL, e.g. http://127.0.0.1:9090
    retrier: Retrier | None = None

    def value(self, query: str) -> float | None:
        """The query's one number, or None when it has no data."""
        endpoint = self.url.rstrip("/") + "/api/v1/query"
        try:
            body = (self.retrier or Retrier(POLICY)).call(lambda: _get(endpoint, query), _Retryable)
        except _Retryable as exc:
            raise RemoteError("Prometheus", exc.status, redact(endpoint), f"{exc.why} (after retries); check that "
                              "rollout.metrics points at a running Prometheus") from None
        return _number(body, query)


def _get(endpoint: str, query: str) -> dict[str, object]:
    import httpx

    try:
        answer = httpx.get(endpoint, params={"query": query}, timeout=TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise _Retryable(None, f"{type(exc).__name__}: {exc}") from None
    if answer.status_code == 429 or answer.status_code >= 500:
        raise _Retryable(answer.status_code, f"HTTP {answer.status_code}",
                         parse_retry_after(answer.headers.get("Retry-After")))
    try:
        body = answer.json()
    except ValueError:
        raise RemoteError("Prometheus", answer.status_code, redact(endpoint), "the answer is not JSON; is "
                          "rollout.metrics the Prometheus server itself?") from None
    if answer.status_code != 200 or not isinstance(body, dict) or body.get("status") != "success":
        why = body.get("error") if isinstance(body, dict) else None
        raise UsageError(f"Prometheus refused the analysis query `{query}` (HTTP {answer.status_code}): "
                         f"{why or 'no reason given'}; fix the query in rollout.analysis.")
    return body


def _number(body: dict[str, object], query: str) -> float | None:
    data = body.get("data")
    kind = data.get("resultType") if isinstance(data, dict) else None
    result = data.get("result") if isinstance(data, dict) else None
    if kind == "scalar" and isinstance(result, list) and len(result) == 2:
        return _finite(result[1])
    if kind == "vector" and isinstance(result, list):
        if not result:
            return None
        if len(result) > 1:
            raise UsageError(f"the analysis query `{query}` returns {len(result)} series; it must return one "
                             "number: aggregate it (sum(...), avg(...)).")
        sample = result[0].get("value") if isinstance(result[0], dict) else None
        return _finite(sample[1]) if isinstance(sample, list) and len(sample) == 2 else None
    raise UsageError(f"the analysis query `{query}` returns a {kind or 'malformed'} result; it must return one "
                     "number (an instant vector of one series, or a scalar).")


def _finite(text: object) -> float | None:
    try:
        value = float(str(text))
    except ValueError:
        return None
    return value if math.isfinite(value) else None
