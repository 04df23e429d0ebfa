"""The comment a command came in, from real payloads: GitHub's issue_comment (octokit's examples and the variants
derived from them) and GitLab's note hooks (the examples of GitLab's webhook docs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlops_bot.chatops.command import MAX_BODY
from mlops_bot.chatops.comment import from_gitlab, from_payload
from tests.chatops.builders import comment_payload
from tests.helpers.ci_env import EVENTS

GITLAB_EVENTS = Path(__file__).resolve().parents[1] / "fixtures" / "gitlab-events"


def github(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return doc


def gitlab(name: str, **attributes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((GITLAB_EVENTS / name).read_text())
    doc["object_attributes"].update(attributes)
    return doc


def test_a_pull_request_comment_from_github() -> None:
    comment = from_payload(github("issue_comment-created-on-pull-request.payload.json"))
    assert (comment.forge, comment.number, comment.on_pull_request, comment.action) == ("github", 1, True, "created")
    assert (comment.author, comment.author_is_bot, comment.id) == ("Codertocat", False, "492700400")
    assert comment.url == "https://github.com/Codertocat/Hello-World/pull/1#issuecomment-492700400"
    assert comment.ignored() == "" and comment.command() is not None


def test_an_issue_comment_from_github_is_not_on_a_pull_request() -> None:
    comment = from_payload(github("issue_comment-created.payload.json"))
    assert comment.number == 1 and comment.on_pull_request is False and comment.command() is None


def test_an_edited_comment_never_acts() -> None:
    comment = from_payload(github("issue_comment-edited-on-pull-request.payload.json"))
    assert comment.action == "edited" and "edited, not created" in comment.ignored()


@pytest.mark.parametrize(("login", "user_type", "bot_login"), [
    ("github-actions[bot]", "Bot", ""), ("my-app[bot]", "User", ""), ("ml-bot", "User", "ML-Bot"),
    ("my-app", "User", "my-app[bot]")])
def test_bots_never_command_the_bot(login: str, user_type: str, bot_login: str) -> None:
    comment = from_payload(comment_payload("/mlops-bot rerun", login, user_type=user_type))
    assert "by a bot" in comment.ignored(bot_login)


def test_a_comment_too_long_to_read() -> None:
    comment = from_payload(comment_payload("/mlops-bot rerun\n" + "x" * MAX_BODY))
    assert "longer than" in comment.ignored()


def test_a_merge_request_note_from_gitlab() -> None:
    comment = from_gitlab(gitlab("note-merge_request.json", note="/mlops-bot approve v3 production"))
    assert (comment.forge, comment.number, comment.on_pull_request, comment.action) == ("gitlab", 1, True, "created")
    assert (comment.author, comment.id, comment.author_is_bot) == ("root", "1244", False)
    assert comment.url == "http://example.com/gitlab-org/gitlab-test/merge_requests/1#note_1244"
    command = comment.command()
    assert comment.ignored() == "" and command is not None and (command.verb, command.version) == ("approve", "3")


@pytest.mark.parametrize(("attributes", "user", "why"), [
    ({"action": "update"}, "root", "edited, not created"),
    ({"system": True}, "root", "by a bot"),
    ({}, "project_5_bot_0123abcd", "by a bot"),
    ({}, "group_9_bot", "by a bot"),
])
def test_gitlab_notes_that_never_act(attributes: dict[str, Any], user: str, why: str) -> None:
    doc = gitlab("note-merge_request.json", note="/mlops-bot rerun", **attributes)
    doc["user"]["username"] = user
    assert why in from_payload(doc).ignored()


def test_a_note_on_a_gitlab_issue_is_not_read() -> None:
    comment = from_payload(gitlab("note-issue.json", note="/mlops-bot rollback"))
    assert comment.number is None and "not on a pull/merge request" in comment.ignored()


def test_a_note_from_before_gitlab_16_11_has_no_action_and_was_new() -> None:
    doc = gitlab("note-merge_request.json")
    del doc["object_attributes"]["action"]
    assert from_payload(doc).action == "created"
