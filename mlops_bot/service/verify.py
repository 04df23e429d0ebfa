"""Checking a webhook delivery and turning it into an Event: MLflow, GitHub and GitLab. Pure: no I/O.

MLflow 3 signs `X-MLflow-Signature: v1,<base64 HMAC-SHA256(secret, "{delivery_id}.{timestamp}.{body}")>`
with `X-MLflow-Delivery-Id` (a UUID, the same on its retries) and `X-MLflow-Timestamp` (unix seconds), and
sends {"entity", "action", "timestamp", "data"}. GitHub signs `X-Hub-Signature-256: sha256=<hex HMAC of the
body>` and names the event in X-GitHub-Event, the delivery in X-GitHub-Delivery. GitLab sends the secret
itself in X-Gitlab-Token, the event in X-Gitlab-Event and a retry-stable Idempotency-Key (17.4+; else
X-Gitlab-Event-UUID, else the body's hash). Every comparison is constant-time. A delivery older than
MAX_AGE_S or more than MAX_SKEW_S in the future is refused; a replay within the window is refused by the
spool, which keeps every accepted id. GitHub and GitLab sign no time and their ids are unsigned headers: a
`Delivery` of theirs also carries the keys of replay.py (the body's digest, the event's own ids), which the
spool refuses to see twice whatever the header id.

Refused 400 before any parsing can fail: a timestamp that is not 1-12 ASCII digits (`str.isdigit` accepts
'²' and '１２３'), and a body nested deeper than MAX_DEPTH (json recurses per level: 100,000 '[' would raise
RecursionError; real payloads nest under 15).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..events.event import Event, model_subject
from .replay import replay_keys

MAX_AGE_S = 300
MAX_SKEW_S = 60
MAX_DEPTH = 64
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")
_STAMP = re.compile(r"[0-9]{1,12}")  # ASCII only: str.isdigit() and int() also take other scripts' digits
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")

MLFLOW_EVENTS = {
    "registered_model.created": "registered_model.created",
    "model_version.created": "model_version.created",
    "model_version_tag.set": "model_version.tag_set",
    "model_version_tag.deleted": "model_version.tag_deleted",
    "model_version_alias.created": "model_version.alias_set",
    "model_version_alias.deleted": "model_version.alias_deleted",
}
GITHUB_EVENTS = frozenset({"push", "pull_request", "release", "workflow_run", "workflow_dispatch", "check_suite",
                           "check_run", "deployment", "deployment_status", "issue_comment", "registry_package",
                           "create", "delete", "ping"})
GITLAB_EVENTS = frozenset({"push", "tag_push", "merge_request", "pipeline", "release", "deployment", "job",
                           "note"})
# A comment's fields, for the chatops action: its id, text, author, page and discussion.
COMMENT_BODY_LIMIT = 64 * 1024  # chatops/command.py's MAX_BODY: longer comments are not read
GITHUB_COMMENT = {"comment_id": "comment.id", "body": "comment.body", "author": "comment.user.login",
                  "author_type": "comment.user.type", "comment_url": "comment.html_url", "issue": "issue.number"}
GITLAB_NOTE = {"comment_id": "object_attributes.id", "body": "object_attributes.note", "author": "user.username",
               "comment_url": "object_attributes.url", "noteable_type": "object_attributes.noteable_type",
               "system": "object_attributes.system", "merge_request_iid": "merge_request.iid",
               "issue_iid": "issue.iid"}


@dataclass(frozen=True)
class Rejected(Exception):
    """A delivery refused: the HTTP status, the counter it increments, and a message safe to log."""

    status: int
    reason: str
    message: str


@dataclass(frozen=True)
class Delivery:
    """A verified delivery: its event, and what else identifies it against a replay under a fresh id."""

    event: Event
    keys: tuple[str, ...] = ()


def _signed_equal(expected: bytes, given: bytes) -> bool:
    return hmac.compare_digest(expected, given)


def _too_deep(body: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether the JSON body nests deeper than `limit` (brackets inside strings do not count)."""
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    if len(brackets) <= limit:
        return False
    depth = 0
    for byte in brackets:
        depth += 1 if byte in b"[{" else -1
        if depth > limit:
            return True
    return False


def _json(body: bytes) -> dict[str, Any]:
    if _too_deep(body):
        raise Rejected(400, "too_deep", f"the body nests deeper than {MAX_DEPTH} levels")
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise Rejected(400, "malformed_json", "the body is not JSON") from None
    if not isinstance(doc, dict):
        raise Rejected(400, "malformed_json", "the body is not a JSON object")
    return doc


def _delivery(value: str | None, header: str) -> str:
    if not value:
        raise Rejected(400, "missing_header", f"no {header} header")
    if not _ID.fullmatch(value):
        raise Rejected(400, "bad_header", f"{header} is not an id")
    return value


def mlflow_event(headers: Mapping[str, str], body: bytes, secret: str, now: float) -> Event:
    signature = headers.get("x-mlflow-signature", "")
    if not signature:
        raise Rejected(401, "missing_signature", "no X-MLflow-Signature header")
    delivery = _delivery(headers.get("x-mlflow-delivery-id"), "X-MLflow-Delivery-Id")
    stamp = headers.get("x-mlflow-timestamp", "")
    if not _STAMP.fullmatch(stamp):
        raise Rejected(400, "bad_timestamp", f"X-MLflow-Timestamp of delivery {delivery} is missing or not unix "
                                             "seconds (1-12 ASCII digits)")
    digest = hmac.new(secret.encode(), f"{delivery}.{stamp}.".encode() + body, hashlib.sha256).digest()
    expected = b"v1," + base64.b64encode(digest)
    if not any(_signed_equal(expected, part.encode()) for part in signature.split()):
        raise Rejected(401, "bad_signature", f"the signature of delivery {delivery} does not match")
    age = now - int(stamp)
    if age > MAX_AGE_S or age < -MAX_SKEW_S:
        raise Rejected(400, "stale_timestamp", f"delivery {delivery} is stamped {int(age)} s from now")
    doc = _json(body)
    name = f"{doc.get('entity')}.{doc.get('action')}"
    if name not in MLFLOW_EVENTS:
        raise Rejected(422, "unknown_event", f"MLflow event {name[:60]!r} is not handled")
    raw = doc.get("data")
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise Rejected(422, "malformed_event", f"MLflow event {name} has no data.name")
    data = {("model" if k == "name" else k): v for k, v in raw.items()}
    return Event(type=MLFLOW_EVENTS[name], subject=model_subject(data["model"], data.get("version")), data=data,
                 source="mlflow", id=f"mlflow-{delivery}", time=str(doc.get("timestamp") or "") or _iso(int(stamp)))


def github_event(headers: Mapping[str, str], body: bytes, secret: str) -> Event:
    return github_delivery(headers, body, secret).event


def github_delivery(headers: Mapping[str, str], body: bytes, secret: str) -> Delivery:
    signature = headers.get("x-hub-signature-256", "")
    if not signature:
        raise Rejected(401, "missing_signature", "no X-Hub-Signature-256 header")
    delivery = _delivery(headers.get("x-github-delivery"), "X-GitHub-Delivery")
    expected = b"sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
    if not _signed_equal(expected, signature.encode()):
        raise Rejected(401, "bad_signature", f"the signature of delivery {delivery} does not match")
    name = headers.get("x-github-event", "")
    if name not in GITHUB_EVENTS:
        raise Rejected(422, "unknown_event", f"GitHub event {name[:40]!r} is not handled")
    doc = _json(body)
    data = _pick(doc, {"action": "action", "repository": "repository.full_name", "sender": "sender.login",
                       "ref": "ref", "sha": "after", "number": "pull_request.number", "merged": "pull_request.merged",
                       "head_ref": "pull_request.head.ref", "base_ref": "pull_request.base.ref",
                       "head_sha": "pull_request.head.sha", "conclusion": "workflow_run.conclusion",
                       "workflow": "workflow_run.name", "tag": "release.tag_name"})
    if name == "issue_comment":
        data.update(_comment(doc, GITHUB_COMMENT, {"is_pull_request": isinstance(_dig(doc, "issue.pull_request"),
                                                                                   Mapping)}))
    subject = f"repos/{data.get('repository', '')}" + (f"/pulls/{data['number']}" if "number" in data else
                                                        f"/issues/{data['issue']}" if "issue" in data else "")
    event = Event(type=f"github.{name}", subject=subject, data=data, source="github", id=f"github-{delivery}")
    return Delivery(event, replay_keys("github", name, doc, body))


def gitlab_event(headers: Mapping[str, str], body: bytes, token: str) -> Event:
    return gitlab_delivery(headers, body, token).event


def gitlab_delivery(headers: Mapping[str, str], body: bytes, token: str) -> Delivery:
    given = headers.get("x-gitlab-token", "")
    if not given:
        raise Rejected(401, "missing_signature", "no X-Gitlab-Token header")
    if not _signed_equal(token.encode(), given.encode()):
        raise Rejected(401, "bad_signature", "X-Gitlab-Token does not match")
    header = headers.get("x-gitlab-event", "")
    name = header.lower().removesuffix(" hook").replace(" ", "_")
    if name not in GITLAB_EVENTS:
        raise Rejected(422, "unknown_event", f"GitLab event {header[:40]!r} is not handled")
    doc = _json(body)
    key = headers.get("idempotency-key") or headers.get("x-gitlab-event-uuid") or hashlib.sha256(body).hexdigest()[:40]
    delivery = _delivery(key, "Idempotency-Key")
    data = _pick(doc, {"kind": "object_kind", "action": "object_attributes.action", "ref": "ref",
                       "sha": "checkout_sha", "project": "project.path_with_namespace", "user": "user_username",
                       "iid": "object_attributes.iid", "status": "object_attributes.status",
                       "source_branch": "object_attributes.source_branch",
                       "target_branch": "object_attributes.target_branch", "tag": "tag"})
    if name == "note":
        data.update(_comment(doc, GITLAB_NOTE, {}))
    iid = data.get("iid", data.get("merge_request_iid"))
    subject = f"projects/{data.get('project', '')}" + (f"/merge_requests/{iid}" if iid is not None else "")
    event = Event(type=f"gitlab.{name}", subject=subject, data=data, source="gitlab", id=f"gitlab-{delivery}")
    return Delivery(event, replay_keys("gitlab", name, doc, body))


def _pick(doc: Mapping[str, Any], paths: Mapping[str, str]) -> dict[str, Any]:
    """Flat fields for `where:` filters from dotted paths; scalars only."""
    found: dict[str, Any] = {}
    for name, path in paths.items():
        value = _dig(doc, path)
        if isinstance(value, (str, int, float, bool)):
            found[name] = value
    return found


def _dig(doc: Mapping[str, Any], path: str) -> Any:
    value: Any = doc
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _comment(doc: Mapping[str, Any], paths: Mapping[str, str], extra: Mapping[str, Any]) -> dict[str, Any]:
    """A comment's fields for the chatops action (chatops/comment.py reads them back). The body is cut one
    character past the longest comment a command is read from, so the action still sees that it is too long."""
    found = {**_pick(doc, paths), **extra}
    if isinstance(found.get("body"), str):
        found["body"] = found["body"][:COMMENT_BODY_LIMIT + 1]
    return found


def _iso(seconds: int) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(seconds, timezone.utc).isoformat().replace("+00:00", "Z")
