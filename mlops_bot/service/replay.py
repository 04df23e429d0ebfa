"""What identifies a GitHub or GitLab delivery besides its header id, so that a replay under a fresh id is
refused. Pure: no I/O.

GitHub signs the body but not X-GitHub-Delivery; GitLab signs nothing (its token travels in a header), and
Idempotency-Key and X-Gitlab-Event-UUID are headers too. A captured delivery replayed under a fresh id still
repeats (1) its exact body and (2) the event's own ids inside the payload. `replay_keys` names both; the spool
keeps them with the accepted event for KEEP_IDS_S (7 days, the replay window: neither sender signs a time)
and refuses, 409, a delivery repeating any of them, whatever its header id. (MLflow signs its delivery id and
timestamp: its id alone guards it.)

Event keys are taken only where the payload names the change itself: an id plus what moves with each change
(a time, a sha, the `changes` made); other events are guarded by their body alone. They also make one event
sent by two hooks (a repository hook and an app: the bodies differ by `installation`) count once.
Consequence, by design: two deliveries with byte-identical bodies within the window are one event. GitHub
puts the time of the change in its payloads (a push: `repository.pushed_at`); GitLab's push hooks carry none,
so the same before..after pushed to the same ref twice within 7 days (force-pushed away and back) is seen once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

# event -> (fields that must all be present, fields added when present)
GITHUB_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "push": (("repository.id", "ref", "before", "after", "repository.pushed_at"), ()),
    "pull_request": (("action", "pull_request.id", "pull_request.updated_at", "pull_request.head.sha"),
                     ("label.name", "requested_reviewer.login", "requested_team.slug", "assignee.login", "changes")),
    "issue_comment": (("action", "comment.id", "comment.updated_at"), ("changes",)),
    "workflow_run": (("action", "workflow_run.id", "workflow_run.run_attempt", "workflow_run.updated_at"), ()),
    "deployment": (("action", "deployment.id"), ()),
    "deployment_status": (("action", "deployment_status.id"), ()),
}
GITLAB_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "merge_request": (("object_attributes.id", "object_attributes.updated_at"),
                      ("object_attributes.action", "object_attributes.last_commit.id", "changes")),
    "note": (("object_attributes.id", "object_attributes.updated_at"), ()),
    "deployment": (("deployment_id", "status", "status_changed_at"), ()),
}


def replay_keys(source: str, event: str, doc: Mapping[str, Any], body: bytes) -> tuple[str, ...]:
    """The body's digest, and the event's own key where its payload has one."""
    keys = [f"{source}-body:{hashlib.sha256(body).hexdigest()}"]
    table = GITHUB_KEYS if source == "github" else GITLAB_KEYS
    if event in table:
        required, optional = table[event]
        values = [_get(doc, path) for path in required]
        if all(value is not None for value in values):
            values += [_get(doc, path) for path in optional]
            canonical = json.dumps([event, *values], sort_keys=True, separators=(",", ":"), default=str)
            keys.append(f"{source}-event:{hashlib.sha256(canonical.encode()).hexdigest()[:40]}")
    return tuple(keys)


def _get(doc: Mapping[str, Any], path: str) -> Any:
    value: Any = doc
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value
