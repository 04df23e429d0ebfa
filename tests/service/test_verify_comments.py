"""The comment fields `serve` keeps from a signed GitHub issue_comment or GitLab note delivery: the chatops action
reads the same Comment from them as `mlops-bot chatops` reads from the payload file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlops_bot.chatops.comment import from_event, from_payload
from mlops_bot.service.verify import COMMENT_BODY_LIMIT, github_delivery, gitlab_delivery
from tests.chatops.builders import comment_payload
from tests.helpers.webhooks import GITHUB_SECRET, GITLAB_TOKEN, github_fixture, github_signed, gitlab_headers

GITLAB_EVENTS = Path(__file__).resolve().parents[1] / "fixtures" / "gitlab-events"


def lowered(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def test_a_pull_request_comment_delivery_carries_the_comment() -> None:
    body = github_fixture("issue_comment-created-on-pull-request.payload.json")
    event = github_delivery(lowered(github_signed("issue_comment", body)[1]), body, GITHUB_SECRET).event
    assert event.type == "github.issue_comment" and event.subject == "repos/Codertocat/Hello-World/issues/1"
    data = event.data
    assert (data["comment_id"], data["author"], data["author_type"], data["issue"]) == (492700400, "Codertocat",
                                                                                          "User", 1)
    assert data["is_pull_request"] is True and data["body"] == "/mlops-bot approve v1 production"
    assert data["comment_url"].endswith("/pull/1#issuecomment-492700400") and data["action"] == "created"
    assert from_event(event.type, data) == from_payload(json.loads(body))


def test_an_issue_comment_delivery_is_not_on_a_pull_request() -> None:
    body = github_fixture("issue_comment-created.payload.json")
    event = github_delivery(lowered(github_signed("issue_comment", body)[1]), body, GITHUB_SECRET).event
    assert event.data["is_pull_request"] is False and from_event(event.type, event.data) == from_payload(
        json.loads(body))


def test_a_long_body_is_kept_only_far_enough_to_be_refused() -> None:
    payload = comment_payload("/mlops-bot rerun\n" + "x" * (2 * COMMENT_BODY_LIMIT))
    body = json.dumps(payload).encode()
    event = github_delivery(lowered(github_signed("issue_comment", body)[1]), body, GITHUB_SECRET).event
    assert len(event.data["body"]) == COMMENT_BODY_LIMIT + 1
    comment = from_event(event.type, event.data)
    assert comment is not None and "longer than" in comment.ignored()


def test_a_merge_request_note_delivery_carries_the_note() -> None:
    doc: dict[str, Any] = json.loads((GITLAB_EVENTS / "note-merge_request.json").read_text())
    doc["object_attributes"]["note"] = "/mlops-bot promote v2 staging"
    body = json.dumps(doc).encode()
    event = gitlab_delivery(lowered(gitlab_headers("Note Hook")), body, GITLAB_TOKEN).event
    assert event.type == "gitlab.note" and event.subject == "projects/gitlab-org/gitlab-test/merge_requests/1"
    data = event.data
    assert (data["comment_id"], data["author"], data["noteable_type"], data["merge_request_iid"]) == (
        1244, "root", "MergeRequest", 1)
    assert data["system"] is False and data["action"] == "create" and "issue_iid" not in data
    assert from_event(event.type, data) == from_payload(doc)


def test_an_issue_note_delivery_names_no_merge_request() -> None:
    body = (GITLAB_EVENTS / "note-issue.json").read_bytes()
    event = gitlab_delivery(lowered(gitlab_headers("Note Hook")), body, GITLAB_TOKEN).event
    assert event.data["issue_iid"] == 17 and event.subject == "projects/gitlab-org/gitlab-test"
    comment = from_event(event.type, event.data)
    assert comment is not None and comment.number is None and comment == from_payload(json.loads(body))


def test_other_events_carry_no_comment_fields() -> None:
    body = github_fixture("push-payload.json")
    event = github_delivery(lowered(github_signed("push", body)[1]), body, GITHUB_SECRET).event
    assert not {"comment_id", "body", "author", "is_pull_request"} & set(event.data)
    assert from_event(event.type, event.data) is None
