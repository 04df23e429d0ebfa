"""Replays of captured GitHub and GitLab deliveries under fresh header ids, against the real `mlops-bot serve`:
accepted once, whatever id they carry (neither sender signs its delivery id), while a different event is still
accepted and a sender's own retry is answered as before. The body's digest and the event's ids are kept on disk:
a restart does not reopen the window."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from tests.helpers.event_projects import audit_lines, write_project
from tests.helpers.webhooks import github_fixture, github_signed, gitlab_headers, gitlab_merge_request

REPLAYS = 100


def test_a_captured_github_delivery_replayed_under_fresh_ids_is_accepted_once(tmp_path: Path, serve: Any) -> None:
    config = write_project(tmp_path / "p")
    served = serve(config.root)
    body, headers = github_signed("pull_request", github_fixture("pull_request-opened.payload.json"))
    assert served.post("/webhooks/github", body, headers).status_code == 202
    replayed = [served.post("/webhooks/github", body, {**headers, "X-GitHub-Delivery": str(uuid.uuid4())}).status_code
                for _ in range(REPLAYS)]
    assert replayed == [409] * REPLAYS
    assert served.post("/webhooks/github", body, headers).status_code == 409  # the sender's retry: as before
    assert served.post("/webhooks/github", body, {**headers, "X-GitHub-Event": "push",
                                                  "X-GitHub-Delivery": str(uuid.uuid4())}).status_code == 409
    # The same event sent by a second hook (a repository hook: no `installation`): the event's own ids repeat.
    doc = json.loads(body)
    del doc["installation"]
    assert served.post("/webhooks/github", *github_signed("pull_request", json.dumps(doc).encode())).status_code == 409
    # Different events of the same pull request are accepted.
    for name in ("pull_request-synchronize.payload.json", "pull_request-closed.payload.json"):
        assert served.post("/webhooks/github", *github_signed("pull_request", github_fixture(name))).status_code == 202
    health = served.wait_idle()
    assert health["accepted"] == 3 and health["rejected"] == {"replayed": REPLAYS + 3}
    assert health["spool"] == {"pending": 0, "handled": 3, "failed": 0}
    actions = [e["data"]["action"] for e in audit_lines(config.root) if e["type"] == "github.pull_request"]
    assert actions == ["opened", "synchronize", "closed"]  # each once, in order: nothing lost, nothing twice
    assert served.log().count("repeats a delivery accepted before") == REPLAYS + 3


def test_a_captured_gitlab_delivery_replayed_under_fresh_ids_is_accepted_once_even_after_a_restart(
        tmp_path: Path, serve: Any) -> None:
    config = write_project(tmp_path / "p")
    served = serve(config.root)
    body, headers = gitlab_merge_request(), gitlab_headers()
    assert served.post("/webhooks/gitlab", body, headers).status_code == 202
    fresh = [gitlab_headers() for _ in range(REPLAYS)]  # both X-Gitlab-Event-UUID and Idempotency-Key fresh
    assert [served.post("/webhooks/gitlab", body, h).status_code for h in fresh] == [409] * REPLAYS
    assert served.post("/webhooks/gitlab", body, headers).status_code == 409  # GitLab's retry: same key
    # The same merge request event, re-serialized (another hook's formatting): its ids repeat.
    compact = json.dumps(json.loads(body), separators=(",", ":")).encode()
    assert served.post("/webhooks/gitlab", compact, gitlab_headers()).status_code == 409
    updated = gitlab_merge_request("update", updated_at="2025-03-04 11:02:09 UTC", last_commit="b" * 40)
    assert served.post("/webhooks/gitlab", updated, gitlab_headers()).status_code == 202  # a new event
    assert served.wait_idle()["spool"]["handled"] == 2
    assert served.stop() == 0
    again = serve(config.root)
    assert again.post("/webhooks/gitlab", body, gitlab_headers()).status_code == 409
    assert again.post("/webhooks/gitlab", updated, gitlab_headers()).status_code == 409
    closed = gitlab_merge_request("close", updated_at="2025-03-04 12:00:00 UTC", last_commit="b" * 40)
    assert again.post("/webhooks/gitlab", closed, gitlab_headers()).status_code == 202
    assert again.wait_idle()["spool"]["handled"] == 3
    actions = [e["data"]["action"] for e in audit_lines(config.root) if e["type"] == "gitlab.merge_request"]
    assert actions == ["open", "update", "close"]
