"""Azure Resource Manager for the `azureml_endpoint` target: the bearer token, requests with retries, long-running
operations and Azure's errors, for the Machine Learning online-endpoint operations of api-version 2024-04-01
(Azure/azure-rest-api-specs, specification/machinelearningservices/resource-manager/
Microsoft.MachineLearningServices/stable/2024-04-01/mfe.json).

The token: `AZURE_ACCESS_TOKEN` when the job sets it (e.g. `az account get-access-token --query accessToken`), else
azure-identity's DefaultAzureCredential for https://management.azure.com/.default (the `azure` extra). An endpoint
whose authMode is AADToken is scored with a token for https://ml.azure.com/.default instead (`AZURE_ML_ACCESS_TOKEN`,
e.g. `az account get-access-token --resource https://ml.azure.com`, else the same credential).

Long-running operations (ARM's async protocol, as the spec's x-ms-long-running-operation options say): a PUT answers
200/201 with `Azure-AsyncOperation`, polled until its status is Succeeded, Failed or Canceled, then the resource is
read again (final-state-via original-uri); a DELETE answers 202 with `Location`, polled while it answers 202
(final-state-via location). Retry-After is honoured between polls; the whole wait is bounded by the target's timeout.

Errors: Azure's envelope {"error": {"code", "message"}} becomes a RemoteError naming "Azure ML", the status and the
URL without its query; 429, 5xx and connection failures are retried. The token never appears in any message.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import AuthError, BotError, NotFound, RemoteError, UsageError
from ..support.retry import Retrier, RetryPolicy, parse_retry_after
from ..support.urls import redact

if TYPE_CHECKING:
    import httpx

API_VERSION = "2024-04-01"
SERVICE = "Azure ML"
SCOPE = "https://management.azure.com/.default"
TOKEN_ENV = "AZURE_ACCESS_TOKEN"
SCORING_SCOPE = "https://ml.azure.com/.default"  # an AADToken endpoint's audience
SCORING_TOKEN_ENV = "AZURE_ML_ACCESS_TOKEN"
LRO_TIMEOUT_S = 1200.0  # a managed deployment takes minutes to provision
POLL_DEFAULT_S = 60.0  # between polls when the service names no Retry-After (ARM's async API reference)
POLL_MAX_S = 60.0
REQUEST_TIMEOUT_S = 60.0
POLICY = RetryPolicy(initial_wait=1.0, max_wait=30.0, retry_after_cap=60.0, attempts=5)
TERMINAL = ("Succeeded", "Failed", "Canceled")


class OperationFailed(RemoteError):
    """A long-running operation ended Failed or Canceled; `status` is the operation's status document."""

    def __init__(self, url: str, document: Mapping[str, Any]) -> None:
        self.document = dict(document)
        error = document.get("error")
        error = error if isinstance(error, dict) else {}
        why = f"{error.get('code') or 'no code'}: {error.get('message') or 'no message'}"
        super().__init__(SERVICE, 200, url, f"the operation ended {document.get('status')} ({why}); see the "
                         "deployment's logs in Azure ML studio, fix the cause and run `mlops-bot deploy` again")


class _Retryable(Exception):
    def __init__(self, status: int | None, why: str, retry_after: float | None = None) -> None:
        super().__init__(why)
        self.status, self.why, self.retry_after = status, why, retry_after


def access_token(env: Mapping[str, str], variable: str = TOKEN_ENV, scope: str = SCOPE) -> str:
    """The bearer token for Azure Resource Manager (or, with SCORING_TOKEN_ENV and SCORING_SCOPE, for scoring an
    AADToken endpoint)."""
    given = env.get(variable, "").strip()
    if given:
        return given
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError:
        raise UsageError(f"deploying to Azure ML needs a token: set {variable}, or install azure-identity with "
                         "`pip install mlops-bot[azure]` to sign in with the job's Azure identity.") from None
    try:
        return str(DefaultAzureCredential().get_token(scope).token)
    except Exception as exc:  # azure-identity's CredentialUnavailableError, ClientAuthenticationError, ...
        raise UsageError(f"no Azure credential was found ({type(exc).__name__}); sign in with azure/login or "
                         f"`az login`, or set {variable}.") from None


@dataclass
class Arm:
    """One session with Azure Resource Manager at `base` (e.g. https://management.azure.com)."""

    base: str
    token: str
    timeout: float = LRO_TIMEOUT_S  # the bound of one long-running operation
    echo: Callable[[str], None] = field(default=lambda _line: None)
    sleep: Callable[[float], None] = time.sleep
    _client: httpx.Client | None = None

    def __enter__(self) -> Arm:
        return self

    def __exit__(self, *_: object) -> None:
        if self._client is not None:
            self._client.close()

    def get(self, path: str) -> dict[str, Any] | None:
        """The resource at `path`, or None when it does not exist."""
        try:
            return self.json_of(self.call("GET", self.url(path)))
        except NotFound:
            return None

    def put(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Creates or replaces the resource and waits for it; its final state (original-uri)."""
        answer = self.call("PUT", self.url(path), body)
        deadline = time.monotonic() + self.timeout
        status_url = answer.headers.get("Azure-AsyncOperation")
        if status_url:
            self._poll_status(status_url, deadline, parse_retry_after(answer.headers.get("Retry-After")))
        resource = self.json_of(answer)
        while not status_url and _state(resource) not in TERMINAL:
            self._pause(None, deadline, self.url(path))  # no status to poll: the resource's own state
            resource = self.json_of(self.call("GET", self.url(path)))
        found = resource if not status_url else self.get(path)
        if found is None:
            raise RemoteError(SERVICE, 404, redact(self.url(path)), "the resource vanished right after it was "
                              "created; run `mlops-bot deploy` again")
        state = _state(found)
        if state in ("Failed", "Canceled"):  # an operation that reported success on a resource that did not
            raise OperationFailed(redact(self.url(path)), {"status": state, "resource": found.get("properties")})
        return found

    def delete(self, path: str) -> bool:
        """Deletes the resource and waits until it is gone; False when there was none (404, or ARM's 204)."""
        try:
            answer = self.call("DELETE", self.url(path))
        except NotFound:
            return False
        if answer.status_code == 204:
            return False
        deadline = time.monotonic() + self.timeout
        if answer.headers.get("Azure-AsyncOperation"):
            self._poll_status(answer.headers["Azure-AsyncOperation"], deadline,
                              parse_retry_after(answer.headers.get("Retry-After")))
        elif answer.status_code == 202 and answer.headers.get("Location"):
            location, wait = answer.headers["Location"], parse_retry_after(answer.headers.get("Retry-After"))
            while True:
                self._pause(wait, deadline, location)
                polled = self.call("GET", self.confined(location))
                if polled.status_code != 202:
                    break
                wait = parse_retry_after(polled.headers.get("Retry-After"))
        return True

    def items(self, path: str, pages: int = 50) -> list[dict[str, Any]]:
        """Every item of a list operation, its nextLink pages followed on the management host (bounded)."""
        found: list[dict[str, Any]] = []
        page = self.json_of(self.call("GET", self.url(path)))
        for _ in range(pages):
            found.extend(item for item in page.get("value") or [] if isinstance(item, dict))
            link = page.get("nextLink")
            if not link:
                break
            page = self.json_of(self.call("GET", self.confined(str(link))))
        return found

    def url(self, path: str) -> str:
        return f"{self.base.rstrip('/')}{path}?api-version={API_VERSION}"

    def _poll_status(self, url: str, deadline: float, wait: float | None) -> None:
        """Polls an Azure-AsyncOperation URL until a terminal status; OperationFailed unless Succeeded."""
        url = self.confined(url)
        while True:
            self._pause(wait, deadline, url)
            answer = self.call("GET", url)
            document = self.json_of(answer)
            if document.get("status") == "Succeeded":
                return
            if document.get("status") in TERMINAL:
                raise OperationFailed(redact(url), _scrubbed(document, self.token))
            wait = parse_retry_after(answer.headers.get("Retry-After"))

    def _pause(self, wait: float | None, deadline: float, url: str) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise RemoteError(SERVICE, None, redact(url), f"the operation did not finish within {self.timeout:.0f}s "
                              "(the target's timeout); look at it in Azure ML studio and run `mlops-bot deploy` "
                              "again, or raise timeout:")
        self.sleep(min(POLL_DEFAULT_S if wait is None else wait, POLL_MAX_S, left))

    def confined(self, url: str) -> str:
        """A polling URL from an answer is followed only on the management host: the token goes nowhere else."""
        origin = self.base.rstrip("/")
        if not (url == origin or url.startswith(origin + "/")):
            raise RemoteError(SERVICE, None, redact(url), f"an operation asked to be polled outside {redact(origin)}; "
                              "check management_url in ml.yaml")
        return url

    def call(self, method: str, url: str, body: Mapping[str, Any] | None = None) -> httpx.Response:
        """One request, retried on 429, 5xx and connection failures; Azure's errors as BotErrors."""
        def before_sleep(failure: BaseException, attempt: int, wait: float) -> None:
            self.echo(f"mlops-bot: {SERVICE} {method} {redact(url)}: {failure}; retry {attempt} in {wait:.1f}s")

        try:
            answer = Retrier(POLICY, sleep=self.sleep).call(lambda: self._send(method, url, body), _Retryable,
                                                            before_sleep)
        except _Retryable as exc:
            raise RemoteError(SERVICE, exc.status, redact(url), f"{exc.why}, still after {POLICY.attempts} attempts; "
                              "Azure may be busy: run `mlops-bot deploy` again later") from None
        if answer.status_code >= 300:  # redirects are not followed: the token stays on the management host
            raise self._error(answer, redact(url))
        return answer

    def _send(self, method: str, url: str, body: Mapping[str, Any] | None) -> httpx.Response:
        import httpx

        if self._client is None:
            self._client = httpx.Client(timeout=REQUEST_TIMEOUT_S, follow_redirects=False)
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        try:
            answer = self._client.request(method, url, json=body, headers=headers)
        except httpx.TransportError as exc:
            raise _Retryable(None, type(exc).__name__) from None
        if answer.status_code == 429 or answer.status_code >= 500:
            raise _Retryable(answer.status_code, f"HTTP {answer.status_code} {_message(answer, self.token)}".strip(),
                             parse_retry_after(answer.headers.get("Retry-After")))
        return answer

    def _error(self, answer: httpx.Response, url: str) -> BotError:
        code, why = answer.status_code, _message(answer, self.token)
        if code in (401, 403):
            hint = ("the token was refused: renew AZURE_ACCESS_TOKEN or the job's Azure sign-in" if code == 401 else
                    "the identity lacks a role on the workspace (e.g. AzureML Data Scientist)")
            return AuthError(SERVICE, code, url, f"{why}; {hint}")
        if code == 404:
            return NotFound(SERVICE, code, url, f"{why}; check workspace and endpoint in ml.yaml")
        return RemoteError(SERVICE, code, url, f"{why}; fix what Azure names and run `mlops-bot deploy` again")

    def json_of(self, answer: httpx.Response) -> dict[str, Any]:
        if not answer.content:
            return {}
        try:
            document = answer.json()
        except ValueError:
            raise RemoteError(SERVICE, answer.status_code, redact(str(answer.url)), "the answer is not JSON; is "
                              "management_url Azure Resource Manager?") from None
        return document if isinstance(document, dict) else {}


def _message(answer: httpx.Response, token: str) -> str:
    """Azure's `code: message` from its error envelope (or the start of the body), without the token."""
    try:
        error = answer.json().get("error")
        text = f"{error.get('code')}: {error.get('message')}" if isinstance(error, dict) else ""
    except (ValueError, AttributeError):
        text = answer.text[:200].strip()
    text = text or answer.reason_phrase
    return text.replace(token, "***") if token else text


def _state(resource: Mapping[str, Any]) -> str:
    properties = resource.get("properties")
    return str(properties.get("provisioningState") or "Succeeded") if isinstance(properties, dict) else "Succeeded"


def _scrubbed(document: Mapping[str, Any], token: str) -> dict[str, Any]:
    text = json.dumps(document)
    return dict(json.loads(text.replace(token, "***"))) if token and token in text else dict(document)


def compact(document: Mapping[str, Any], limit: int = 1000) -> str:
    """A status document as one JSON line for an evidence tag; a long one keeps its status and error, shortened."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    if len(text) <= limit:
        return text
    found = document.get("error")
    error: dict[str, Any] = found if isinstance(found, dict) else {}
    short = {"status": document.get("status"), "error": {"code": error.get("code"),
                                                        "message": str(error.get("message"))[:limit // 2]}}
    return json.dumps(short, sort_keys=True, separators=(",", ":"))
