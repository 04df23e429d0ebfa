"""`mlops-bot serve` as a subprocess on 127.0.0.1: what it refuses (and how it tells), what it accepts (on
disk before the answer, handled once), and that no secret reaches its log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mlops_bot.registry.local.store import LocalRegistry
from tests.helpers.event_projects import audit_lines, write_project
from tests.helpers.projects import deployed
from tests.helpers.registries import add_version
from tests.helpers.serve import Served
from tests.helpers.webhooks import (
    GITHUB_SECRET,
    GITLAB_TOKEN,
    SECRET,
    SECRETS_ENV,
    github_request,
    github_signed,
    mlflow_request,
)
from tests.servers.mlflow_server import free_port

CHAMPION = {"name": "demo", "alias": "champion", "version": "1"}


def refuse(served: Served, path: str, body: bytes, headers: dict[str, str], status: int) -> None:
    answer = served.post(path, body, headers)
    assert answer.status_code == status, answer.text


def test_bad_deliveries_are_refused_counted_and_leave_nothing(tmp_path: Path, serve: Any) -> None:
    config = write_project(tmp_path / "p")
    registry = LocalRegistry(config.root / ".mlops-bot")
    add_version(registry, config, tmp_path)
    registry.set_alias("demo", "champion", "1")
    registry.close()
    served = serve(config.root, extra=("--max-body", "4096"))
    body, good = mlflow_request(CHAMPION)
    refuse(served, "/webhooks/mlflow", body, {**good, "X-MLflow-Signature": "v1,bm90LXRoZS1zaWduYXR1cmU="}, 401)
    refuse(served, "/webhooks/mlflow", body, {k: v for k, v in good.items() if k != "X-MLflow-Signature"}, 401)
    refuse(served, "/webhooks/mlflow", *mlflow_request(CHAMPION, stamp=int(time.time()) - 600), 400)
    refuse(served, "/webhooks/mlflow", *mlflow_request(CHAMPION, body=b'{"entity": "model_version_al'), 400)
    refuse(served, "/webhooks/mlflow", *mlflow_request({"name": "p"}, "prompt_alias", "created"), 422)
    huge = json.dumps({"entity": "model_version_alias", "action": "created", "data": CHAMPION, "pad": "x" * 5000})
    refuse(served, "/webhooks/mlflow", *mlflow_request(CHAMPION, body=huge.encode()), 413)
    refuse(served, "/webhooks/github", *github_request("push", {"ref": "x"}, secret="not-the-secret"), 401)
    refuse(served, "/webhooks/gitlab", b"{}", {"X-Gitlab-Token": "guess", "X-Gitlab-Event": "Push Hook"}, 401)
    health = served.health()
    assert health["accepted"] == 0 and health["spool"] == {"pending": 0, "handled": 0, "failed": 0}
    assert health["rejected"] == {"bad_signature": 3, "missing_signature": 1, "stale_timestamp": 1,
                                  "malformed_json": 1, "unknown_event": 1, "body_too_large": 1}
    time.sleep(0.3)
    assert deployed(config.root) == [] and audit_lines(config.root) == []
    log = served.log()
    assert log.count("refused") == 8
    for secret in (SECRET, GITHUB_SECRET, GITLAB_TOKEN, good["X-MLflow-Signature"]):
        assert secret not in log


def test_an_accepted_delivery_is_handled_once_and_its_replay_refused(tmp_path: Path, serve: Any) -> None:
    config = write_project(tmp_path / "p")
    registry = LocalRegistry(config.root / ".mlops-bot")
    add_version(registry, config, tmp_path)
    registry.set_alias("demo", "champion", "1")
    registry.close()
    served = serve(config.root)
    body, headers = mlflow_request(CHAMPION)
    first = served.post("/webhooks/mlflow", body, headers)
    assert first.status_code == 202 and first.json()["type"] == "model_version.alias_set"
    assert served.post("/webhooks/mlflow", body, headers).status_code == 409  # replay (or a sender's retry)
    push = {"ref": "refs/heads/main", "repository": {"full_name": "o/r"}}
    assert served.post("/webhooks/github", *github_request("push", push)).status_code == 202
    gitlab = {"X-Gitlab-Token": GITLAB_TOKEN, "X-Gitlab-Event": "Pipeline Hook", "Idempotency-Key": "gl-1"}
    assert served.post("/webhooks/gitlab", b'{"object_kind": "pipeline"}', gitlab).status_code == 202
    health = served.wait_idle()
    assert health["spool"] == {"pending": 0, "handled": 3, "failed": 0} and health["rejected"] == {"replayed": 1}
    assert deployed(config.root) == ["1"]
    types = [e["type"] for e in audit_lines(config.root)]
    assert sorted(types) == sorted(["model_version.alias_set", "deployment.started", "deployment.succeeded",
                                    "github.push", "gitlab.pipeline"])
    second = subprocess.run([sys.executable, "-m", "mlops_bot", "-C", str(config.root), "serve", "--port",
                             str(free_port())], env={**os.environ, **SECRETS_ENV}, capture_output=True, text=True,
                            timeout=60)
    assert second.returncode == 2 and "another `mlops-bot serve` is running" in second.stderr
    assert served.stop() == 0  # SIGTERM: a clean stop
    assert "stopped" in served.log()


def test_odd_digits_and_deep_nesting_are_refused_400_not_500(tmp_path: Path, serve: Any) -> None:
    served = serve(write_project(tmp_path / "p").root)
    # Signed over the timestamp as the server reads the header (bytes as Latin-1): '²' is isdigit() but int()
    # fails; fullwidth digits arrive as UTF-8; then ASCII shapes that are not unix seconds.
    for stamp in ("²".encode("latin-1"), "１２３".encode(), b"-1", b"1e9", b"9" * 40):
        body, headers = mlflow_request(CHAMPION, stamp=stamp.decode("latin-1"))
        answer = served.client.post(served.url + "/webhooks/mlflow", content=body,
                                    headers=[(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()])
        assert answer.status_code == 400 and answer.json()["error"] == "bad_timestamp", (stamp, answer.text)
    deep = b"[" * 100_000
    answer = served.post("/webhooks/github", *github_signed("push", deep))
    assert (answer.status_code, answer.json()["error"]) == (400, "too_deep")
    body, headers = mlflow_request(CHAMPION, body=b'{"entity": ' + b"{" * 100_000)
    assert served.post("/webhooks/mlflow", body, headers).status_code == 400
    gitlab = {"X-Gitlab-Token": GITLAB_TOKEN, "X-Gitlab-Event": "Push Hook"}
    assert served.post("/webhooks/gitlab", b'{"a":' + b"[" * 100_000, gitlab).status_code == 400
    health = served.health()
    assert health["rejected"] == {"bad_timestamp": 5, "too_deep": 3} and health["spool"]["pending"] == 0
    assert "Exception in ASGI application" not in served.log() and "Traceback" not in served.log()
