"""The `webhook` target: POSTs a signed JSON document about the version to deploy.

The request:
  POST <url>
  Content-Type: application/json
  User-Agent: mlops-bot/<version>
  X-MLOps-Bot-Event: deployment
  X-MLOps-Bot-Delivery: <hex id of this delivery; the same on its retries, new on each `deploy` run>
  X-MLOps-Bot-Timestamp: <unix seconds when the delivery was made; also in the body>
  X-MLOps-Bot-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed with the secret>
  Idempotency-Key: <the same for every delivery of one deployment of (model, version, target)>

  {"event": "deployment", "delivery_id": ..., "timestamp": ..., "idempotency_key": ..., "target": ...,
   "model": {"name": ..., "version": ..., "uri": "models:/<name>/<version>"},
   "decision": {"verdict": "pass" | "fail" | "", "summary": ...}, "commit": ...}

A receiver verifies the signature over the exact bytes received (constant-time compare), rejects a body
whose `timestamp` is more than a few minutes old (the timestamp is inside the signed body, so it cannot be
altered), and treats a second request with an Idempotency-Key it has processed as done (answer 2xx).

The secret is read from the environment variable named by `secret_env`. Connection errors, timeouts,
408, 429 and 5xx are retried (bounded, exponential backoff, or the server's Retry-After when given, capped);
any other 4xx fails at once; 3xx is not followed (support/retry.py). Neither the secret nor the URL's query
string, fragment or credentials appear in logs or results (support/urls.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import __version__
from ..config.model import DeployTarget
from ..console import log
from ..errors import RemoteError, UsageError
from ..support.retry import Retrier, RetryPolicy, parse_retry_after
from ..support.urls import redact
from .base import DeployRequest, DeployResult, DeploySession

if TYPE_CHECKING:
    import httpx

ATTEMPTS = 5
BACKOFF_S = 1.0  # first wait; doubles each retry
MAX_WAIT_S = 60.0  # cap on any wait, Retry-After included
TIMEOUT_S = 30.0
RETRY_STATUSES = frozenset({408, 429})


@dataclass(frozen=True)
class DeliveryOptions:
    """How hard `deliver` tries; `sleep` is injectable so tests never really wait."""

    timeout: float = TIMEOUT_S  # one request
    attempts: int = ATTEMPTS
    backoff: float = BACKOFF_S
    echo: Callable[[str], None] = log
    sleep: Callable[[float], None] = time.sleep


class _Retryable(Exception):
    def __init__(self, status: int | None, why: str, retry_after: float | None = None) -> None:
        super().__init__(why)
        self.status, self.why, self.retry_after = status, why, retry_after


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def payload(request: DeployRequest, target: str, delivery: str, timestamp: int) -> bytes:
    doc = {
        "event": "deployment", "delivery_id": delivery, "timestamp": timestamp,
        "idempotency_key": request.idempotency_key, "target": target,
        "model": {"name": request.model_name, "version": request.version, "uri": request.model_uri},
        "decision": {"verdict": request.verdict, "summary": request.summary}, "commit": request.commit,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def headers(body: bytes, secret: str, request: DeployRequest, delivery: str, timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json", "User-Agent": f"mlops-bot/{__version__}",
        "X-MLOps-Bot-Event": "deployment", "X-MLOps-Bot-Delivery": delivery,
        "X-MLOps-Bot-Timestamp": str(timestamp), "X-MLOps-Bot-Signature": sign(body, secret),
        "Idempotency-Key": request.idempotency_key,
    }


def _secret(target: DeployTarget, env: Mapping[str, str]) -> str:
    if not target.secret_env:
        raise UsageError(f"deploy target '{target.name}' (webhook) has no secret_env; add secret_env: NAME, "
                         "the environment variable holding the signing secret.")
    secret = env.get(target.secret_env, "")
    if not secret:
        raise UsageError(f"deploy target '{target.name}': the environment variable {target.secret_env} "
                         "(its secret_env) is not set or empty; set it to the webhook's signing secret.")
    return secret


def deploy(target: DeployTarget, request: DeployRequest, session: DeploySession) -> DeployResult:
    if not target.url:
        raise UsageError(f"deploy target '{target.name}' (webhook) has no url; add url: to it in ml.yaml.")
    secret = _secret(target, session.env)
    timestamp = int(time.time())
    body = payload(request, target.name, session.delivery, timestamp)
    status = deliver(target.url, body, headers(body, secret, request, session.delivery, timestamp),
                     DeliveryOptions(timeout=target.timeout or TIMEOUT_S, echo=session.echo))
    return DeployResult(target.name, target.type, "succeeded", f"POST {redact(target.url)} answered {status}")


def deliver(url: str, body: bytes, request_headers: Mapping[str, str],
            options: DeliveryOptions | None = None) -> int:
    """POSTs until a 2xx (returned) or a final failure (RemoteError); the same bytes on every attempt."""
    import httpx

    options = options or DeliveryOptions()
    policy = RetryPolicy(initial_wait=options.backoff, max_wait=MAX_WAIT_S, retry_after_cap=MAX_WAIT_S,
                         attempts=options.attempts)

    def before_sleep(failure: BaseException, attempt: int, wait: float) -> None:
        options.echo(f"mlops-bot: webhook POST {redact(url)}: {failure}; retry {attempt}/{options.attempts - 1} "
                     f"in {wait:.1f}s")

    try:
        with httpx.Client(timeout=options.timeout, follow_redirects=False) as client:
            return Retrier(policy, sleep=options.sleep).call(lambda: _post(client, url, body, request_headers),
                                                            _Retryable, before_sleep)
    except _Retryable as exc:
        raise RemoteError("webhook", exc.status, redact(url), f"{exc.why}, still after {options.attempts} "
                          "attempts; check the receiver and run `mlops-bot deploy` again") from None


def _post(client: httpx.Client, url: str, body: bytes, request_headers: Mapping[str, str]) -> int:
    import httpx

    try:
        answer = client.post(url, content=body, headers=dict(request_headers))
    except httpx.TransportError as exc:  # connect, read and write errors and timeouts
        raise _Retryable(None, type(exc).__name__) from None
    except httpx.HTTPError as exc:
        raise RemoteError("webhook", None, redact(url), f"{type(exc).__name__}; check the url in ml.yaml") from None
    code = answer.status_code
    if code in RETRY_STATUSES or code >= 500:
        raise _Retryable(code, f"HTTP {code}", parse_retry_after(answer.headers.get("Retry-After")))
    if code >= 300:
        hint = "point url at the final address" if code < 400 else "the receiver refused the delivery"
        raise RemoteError("webhook", code, redact(url), f"{answer.text[:200].strip() or answer.reason_phrase}; "
                          f"{hint}")
    return code
