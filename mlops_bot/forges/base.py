"""The Forge protocol: what the bot asks of GitHub, GitLab or the local stand-in, and how failures degrade.

Degrade rules (what the report flow does with each failure, after the job summary and report file are
written):
- PermissionDenied (HTTP 403 that is not a rate limit: a fork's read-only token, missing `pull-requests:
  write` / `statuses: write`): not a failed check. Warn once and keep the summary and the file; a follow-up
  `workflow_run` job with a write token posts the file.
- AuthError (401: expired or revoked token), NotFound (404: the PR/MR or repository is gone),
  InvalidParameter (422/400: the forge rejected the body): clear errors, exit 3.
- RemoteError after retries (5xx, rate limits not lifted within the time budget): exit 3.
- create_check_run is best effort: it returns None instead of raising when the token may not create one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from ..errors import AuthError, BotError, InvalidParameter, NotFound

CommentAction = Literal["created", "updated", "unchanged"]
StatusState = Literal["pending", "success", "failure", "error"]  # each adapter maps them to its forge's names
CheckConclusion = Literal["success", "failure"]  # the check-run conclusions the bot reports
STATUS_DESCRIPTION_LIMIT = 140  # GitHub's limit on a commit status description
COMMENT_LIMIT = 65_536  # GitHub's limit on a comment body; GitLab allows more


class PermissionDenied(AuthError):
    """The token is valid but may not do this here (HTTP 403 that is not a rate limit)."""


@dataclass(frozen=True)
class CommentResult:
    action: CommentAction
    url: str
    id: str = ""


@dataclass(frozen=True)
class StatusRef:
    """Where the bot's earlier commit status for this report may be: its `label` on the commit before this
    push (`previous`, when the CI knows it) or on `sha` itself. The status's target_url is the sticky comment's
    URL, so the comment is found with a constant number of requests instead of a scan. The status is
    untrusted (anyone with write access can set one): the comment it names is checked before it is edited."""

    label: str
    sha: str = ""
    previous: str = ""


@runtime_checkable
class Forge(Protocol):
    """One pull/merge request's conversation and one repository's commit statuses.

    Errors are BotErrors: PermissionDenied, AuthError, NotFound, InvalidParameter or RemoteError.
    """

    name: str  # "GitHub", "GitLab", "local": used in messages

    def upsert_comment(self, marker: str, body: str, *, remembered: StatusRef | None = None) -> CommentResult:
        """Edits the comment this bot wrote earlier that starts with `marker` (the oldest, if several), or
        creates one. Comments by anybody else are never touched, even if they quote the marker. `remembered`:
        the status that may name the comment (read first; the full scan of the comments only when it names
        none that is the bot's own on this PR/MR)."""
        ...

    def set_status(self, sha: str, state: StatusState, description: str, target_url: str = "",
                   label: str = "mlops-bot") -> None:
        """A commit status on `sha`; `label` tells it from other statuses (GitHub's `context`, GitLab's `name`)."""
        ...

    def create_check_run(self, sha: str, name: str, conclusion: CheckConclusion, title: str, summary: str,
                         details_url: str = "") -> str | None:
        """A completed check run with a markdown summary; its URL, or None where the forge or token has none."""
        ...

    def pull_request_head(self, number: int) -> str:
        """The head commit of PR/MR `number` (a follow-up job checks an artifact's PR number against it)."""
        ...

    def open_pull_request(self, head: str, base: str, title: str, body: str) -> str:
        """Opens a PR/MR from `head` into `base` (or finds the open one) and returns its URL."""
        ...

    def trigger_pipeline(self, ref: str, inputs: Mapping[str, str]) -> str:
        """Starts the CI pipeline/workflow on `ref` with `inputs`; returns a URL to watch it (may be empty)."""
        ...


def is_degradable(exc: BotError) -> bool:
    """True for failures that must not fail the check (see the module doc)."""
    return isinstance(exc, PermissionDenied)


def fit_description(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= STATUS_DESCRIPTION_LIMIT else text[: STATUS_DESCRIPTION_LIMIT - 1] + "…"


def has_marker(body: str, marker: str) -> bool:
    """The comment starts with `marker`, as the report does: a report that merely quotes another model's marker
    (a param value, shown as code) is not that model's comment."""
    return bool(marker) and body.lstrip().startswith(marker)


def absent() -> contextlib.suppress:
    """Swallows the answers that make a remembered status useless: it, its commit or its comment is gone (404,
    or 422/400 for a commit the forge no longer knows), or the token may not read it (403). The caller then
    falls back on the full scan, which fails loudly if the forge really refuses."""
    return contextlib.suppress(NotFound, InvalidParameter, PermissionDenied)
