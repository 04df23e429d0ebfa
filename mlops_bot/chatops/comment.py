"""The comment a ChatOps command came in: from a GitHub `issue_comment` payload, a GitLab note (Comment Hook)
payload, or the Event `serve` made of either (service/verify.py picks the same fields). Pure.

Nothing here is trusted for permissions: the author's login only says whose role to ask the forge for, and
whether the comment is on a pull request is asked again (forge.discussion) before anything runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .command import MAX_BODY, Command, find_command

# GitLab's bot users: project and group access tokens' users, and its service accounts' default names.
_GITLAB_BOT = re.compile(r"(?:project|group)_\d+_bot(?:_[0-9a-f]+)?|service_account_.*", re.IGNORECASE)
_ON_MERGE_REQUEST = "MergeRequest"  # GitLab: a note on an issue, a commit or a snippet is not read


@dataclass(frozen=True)
class Comment:
    forge: str  # "github" or "gitlab"
    id: str
    body: str
    author: str  # the login (GitHub) or username (GitLab)
    author_is_bot: bool  # by the payload's own account type (GitHub's user.type Bot, GitLab's bot usernames)
    url: str  # the comment's web page: where an approval or a move it caused says it came from
    number: int | None  # the pull request / issue number, or the merge request / issue iid; None: no discussion
    on_pull_request: bool  # by the payload (checked again through the API)
    action: str  # "created" or "edited" (GitLab's create/update), or what else the payload says

    def ignored(self, bot_login: str = "") -> str:
        """Why this comment is not a command to act on ("" when it is one to read)."""
        if self.action != "created":
            return f"the comment was {self.action or 'changed'}, not created: only a new comment runs a command"
        if self.author_is_bot or (bot_login and _same_login(self.author, bot_login)):
            return f"the comment is by a bot ({self.author}): bots never command the bot"
        if len(self.body) > MAX_BODY:
            return f"the comment is longer than {MAX_BODY} characters"
        if self.number is None:
            return "the comment is not on a pull/merge request (or, on GitHub, an issue)"
        return ""

    def command(self) -> Command | None:
        return find_command(self.body)


def _same_login(a: str, b: str) -> bool:
    strip = "[bot]"
    return a.lower().removesuffix(strip) == b.lower().removesuffix(strip)


def _get(doc: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        doc = doc.get(part) if isinstance(doc, Mapping) else None
    return doc


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and 0 < int(value) < 10**12:
        return int(value)
    return None


def from_github(payload: Mapping[str, Any]) -> Comment:
    """An `issue_comment` payload (GitHub sends it for issues and pull requests alike; a pull request's issue
    carries `pull_request`)."""
    login = _text(_get(payload, "comment.user.login"))
    return Comment(forge="github", id=_text(_get(payload, "comment.id")), body=_text(_get(payload, "comment.body")),
                   author=login, author_is_bot=_get(payload, "comment.user.type") == "Bot" or login.endswith("[bot]"),
                   url=_text(_get(payload, "comment.html_url")), number=_number(_get(payload, "issue.number")),
                   on_pull_request=isinstance(_get(payload, "issue.pull_request"), Mapping),
                   action=_text(payload.get("action")))


def from_gitlab(payload: Mapping[str, Any]) -> Comment:
    """A note payload (`X-Gitlab-Event: Note Hook`): object_attributes is the note, merge_request or issue its
    discussion. GitLab's own system notes (`system: true`) count as a bot's."""
    on_mr = _get(payload, "object_attributes.noteable_type") == _ON_MERGE_REQUEST
    number = _number(_get(payload, "merge_request.iid")) if on_mr else None
    username = _text(_get(payload, "user.username"))
    return Comment(forge="gitlab", id=_text(_get(payload, "object_attributes.id")),
                   body=_text(_get(payload, "object_attributes.note")), author=username,
                   author_is_bot=_gitlab_bot(username, _get(payload, "object_attributes.system")),
                   url=_text(_get(payload, "object_attributes.url")), number=number, on_pull_request=on_mr,
                   action=_gitlab_action(_get(payload, "object_attributes.action")))


def _gitlab_bot(username: str, system: Any) -> bool:
    return system is True or bool(_GITLAB_BOT.fullmatch(username))


def _gitlab_action(value: Any) -> str:
    # GitLab before 16.11 sent no action and fired only on new notes.
    return {"create": "created", "update": "edited", None: "created"}.get(value, _text(value))


def from_payload(payload: Mapping[str, Any]) -> Comment:
    """Either payload, told apart by GitLab's object_kind."""
    return from_gitlab(payload) if payload.get("object_kind") == "note" else from_github(payload)


def from_event(event_type: str, data: Mapping[str, Any]) -> Comment | None:
    """The comment of a `github.issue_comment` or `gitlab.note` Event (service/verify.py); None for others."""
    if event_type == "github.issue_comment":
        login = _text(data.get("author"))
        return Comment("github", _text(data.get("comment_id")), _text(data.get("body")), login,
                       data.get("author_type") == "Bot" or login.endswith("[bot]"), _text(data.get("comment_url")),
                       _number(data.get("issue")), data.get("is_pull_request") is True, _text(data.get("action")))
    if event_type == "gitlab.note":
        on_mr = data.get("noteable_type") == _ON_MERGE_REQUEST
        number = _number(data.get("merge_request_iid")) if on_mr else None
        username = _text(data.get("author"))
        return Comment("gitlab", _text(data.get("comment_id")), _text(data.get("body")), username,
                       _gitlab_bot(username, data.get("system")),
                       _text(data.get("comment_url")), number, on_mr, _gitlab_action(data.get("action")))
    return None
