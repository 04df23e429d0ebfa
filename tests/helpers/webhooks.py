"""Webhook deliveries as MLflow 3, GitHub and GitLab sign them, and the secrets `mlops-bot serve` checks them with."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

SECRET = "mlflow-whsec-0123456789abcdef"
GITHUB_SECRET = "github-whsec-fedcba9876543210"
GITLAB_TOKEN = "gitlab-token-5a5a5a5a5a5a5a5a"
SECRETS_ENV = {"MLOPS_BOT_MLFLOW_WEBHOOK_SECRET": SECRET, "MLOPS_BOT_GITHUB_WEBHOOK_SECRET": GITHUB_SECRET,
               "MLOPS_BOT_GITLAB_WEBHOOK_TOKEN": GITLAB_TOKEN}


def mlflow_request(data: Mapping[str, Any], entity: str = "model_version_alias", action: str = "created",
                   secret: str = SECRET, delivery: str | None = None, stamp: int | None = None,
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
    body = json.dumps(dict(payload)).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-GitHub-Event": event,
                  "X-GitHub-Delivery": str(uuid.uuid4()), "X-Hub-Signature-256": signature}
