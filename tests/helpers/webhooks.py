"""Webhook deliveries as MLflow 3, GitHub and GitLab sign them, and the secrets `mlops-bot serve` checks them with."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SECRET = "mlflow-whsec-0123456789abcdef"
GITHUB_SECRET = "github-whsec-fedcba9876543210"
GITLAB_TOKEN = "gitlab-token-5a5a5a5a5a5a5a5a"
SECRETS_ENV = {"MLOPS_BOT_MLFLOW_WEBHOOK_SECRET": SECRET, "MLOPS_BOT_GITHUB_WEBHOOK_SECRET": GITHUB_SECRET,
               "MLOPS_BOT_GITLAB_WEBHOOK_TOKEN": GITLAB_TOKEN}


def mlflow_request(data: Mapping[str, Any], entity: str = "model_version_alias", action: str = "created",
                   secret: str = SECRET, delivery: str | None = None, stamp: int | str | None = None,
                   body: bytes | None = None) -> tuple[bytes, dict[str, str]]:
    """A delivery as MLflow 3 signs it: v1,base64(HMAC-SHA256(secret, "{delivery}.{timestamp}.{body}"))."""
    if body is None:
        body = json.dumps({"entity": entity, "action": action, "timestamp": "2025-01-01T00:00:00+00:00",
                           "data": dict(data)}).encode()
    delivery = delivery or str(uuid.uuid4())
    ts = str(int(time.time()) if stamp is None else stamp)
    digest = hmac.new(secret.encode(), f"{delivery}.{ts}.".encode() + body, hashlib.sha256).digest()
    return body, {"Content-Type": "application/json", "X-MLflow-Delivery-Id": delivery, "X-MLflow-Timestamp": ts,
                  "X-MLflow-Signature": "v1," + base64.b64encode(digest).decode()}


def github_request(event: str, payload: Mapping[str, Any], secret: str = GITHUB_SECRET) -> tuple[bytes, dict[str, str]]:
    return github_signed(event, json.dumps(dict(payload)).encode(), secret)


def github_signed(event: str, body: bytes, secret: str = GITHUB_SECRET) -> tuple[bytes, dict[str, str]]:
    """These exact bytes as GitHub delivers them: X-Hub-Signature-256 over the body, a fresh delivery GUID."""
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-GitHub-Event": event,
                  "X-GitHub-Delivery": str(uuid.uuid4()), "X-Hub-Signature-256": signature}


def github_fixture(name: str) -> bytes:
    """A real payload as GitHub sends it (tests/fixtures/github-events, octokit/webhooks examples), byte for byte."""
    return (FIXTURES / "github-events" / name).read_bytes()


def gitlab_headers(event: str = "Merge Request Hook", token: str = GITLAB_TOKEN) -> dict[str, str]:
    """The headers GitLab 17.4+ sends: the token itself, and a fresh UUID in both delivery headers."""
    key = str(uuid.uuid4())
    return {"Content-Type": "application/json", "X-Gitlab-Token": token, "X-Gitlab-Event": event,
            "X-Gitlab-Event-UUID": key, "Idempotency-Key": key, "User-Agent": "GitLab/17.6.0"}


def gitlab_merge_request(action: str = "open", updated_at: str = "2025-03-04 10:15:27 UTC",
                         last_commit: str = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7") -> bytes:
    """A merge request hook shaped like the example in GitLab's webhook events documentation."""
    project = {"id": 42, "name": "project", "path_with_namespace": "group/project", "default_branch": "main",
               "web_url": "https://gitlab.example.com/group/project"}
    return json.dumps({
        "object_kind": "merge_request", "event_type": "merge_request",
        "user": {"id": 1, "name": "Administrator", "username": "root"}, "project": project,
        "object_attributes": {"id": 99, "iid": 7, "target_branch": "main", "source_branch": "retrain",
                              "source_project_id": 42, "target_project_id": 42, "title": "Retrain on March data",
                              "state": "opened" if action != "close" else "closed", "merge_status": "can_be_merged",
                              "created_at": "2025-03-04 10:15:27 UTC", "updated_at": updated_at, "action": action,
                              "last_commit": {"id": last_commit, "message": "retrain", "author": {"name": "dev"}},
                              "url": "https://gitlab.example.com/group/project/-/merge_requests/7"},
        "labels": [], "changes": {} if action == "open" else {"updated_at": {"previous": None, "current": updated_at}},
        "repository": {"name": "project", "url": "git@gitlab.example.com:group/project.git"},
    }, indent=2).encode()
