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


class CheckRunning(BotError):
    """rerun_check found the check of that commit still running: there is nothing to start again yet. Not a
    failure: the caller answers that it is running, with `url` to watch it."""

    def __init__(self, sha: str, url: str) -> None:
        self.sha, self.url = sha, url
        super().__init__(f"the check of {sha[:12]} is still running" + (f": {url}" if url else "")
                         + "; wait for it to finish, then ask again if it should run once more.")


class NoCheckRun(NotFound):
    """rerun_check found no check that ran on that commit (nothing to re-run: GitHub re-runs a run, it does not
    start a pull request's check from nothing)."""

    def __init__(self, service: str, url: str, sha: str) -> None:
        super().__init__(service, None, url, f"no check ran on {sha[:12]} yet; push or reopen the pull request")
        self.args = (f"{service}: {self.detail} (asked {url}).",)


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


@dataclass(frozen=True)
class Discussion:
    """The pull/merge request or issue a ChatOps comment was written on, as the forge's API describes it now."""

    number: int
    is_pull_request: bool
    state: str  # "open", "closed" or "merged"
    from_fork: bool  # the head branch lives in another repository (never run with this repository's token)
    head_sha: str  # "" for an issue
    author: str
    url: str
    head_ref: str = ""  # the head branch (GitHub pull.head.ref, GitLab source_branch); "" for an issue


@dataclass(frozen=True)
class Approver:
    """Someone whose approval the forge records: a pull request review, a merge request approval, or an
    approved deployment review of a workflow run's environment."""

    login: str
    url: str  # the review, the merge request's approvals, or the workflow run
    commit: str = ""  # the commit a review approved ("" where the forge does not say)


@dataclass(frozen=True)
class WrittenComment:
    """A comment (GitHub) or note (GitLab) as the forge's API gives it now: who wrote it and what it says."""

    author: str  # the login (GitHub) or username (GitLab)
    body: str
    edited: bool  # changed after it was written (its updated_at is later than its created_at)


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

    def rerun_check(self, number: int, sha: str) -> str:
        """Runs PR/MR `number`'s check on its head commit `sha` again, in the forge's CI, never in the bot; returns a
        URL to watch it (may be empty). GitHub: re-runs the newest pull_request workflow run of `sha` (of the
        configured workflow file when the forge knows it); CheckRunning while that run is not completed,
        NoCheckRun when there is none. GitLab: creates a merge request pipeline. Local: records the request in
        .mlops-bot/pipeline-requests.jsonl as trigger_pipeline does."""
        ...

    # governance: asked only when an approval or a ChatOps command is checked
    def role_of(self, login: str) -> str:
        """The repository role of `login` through the API: one of config.model.ROLES, or "none". GitHub: the
        collaborator permission's role_name (a custom role: its base permission; no account: "none"); GitLab: the
        member's access level (Guest = read, Reporter = triage, Developer = write, Maintainer = maintain, Owner =
        admin; no member: "none"); local: "admin" (the person at the terminal)."""
        ...

    def discussion(self, number: int) -> Discussion:
        """The pull/merge request (or GitHub issue) `number`; NotFound when there is none. GitLab asks merge
        requests only; the local forge raises UsageError (no pull request outside CI)."""
        ...

    def approvers(self, number: int) -> list[Approver]:
        """Who approves PR/MR `number` now: on GitHub each reviewer whose latest review is APPROVED (a later
        CHANGES_REQUESTED or DISMISSED withdraws it); on GitLab the MR's approved_by."""
        ...

    def environment_approvers(self, run_id: str, environment: str) -> list[Approver]:
        """Who approved workflow run `run_id`'s deployment to `environment` (GitHub's review history of the run);
        [] where the forge has no such mechanism."""
        ...

    def reply(self, number: int, body: str) -> CommentResult:
        """A new comment on PR/MR or issue `number` (ChatOps answers that are not the sticky report)."""
        ...

    def comment_by_url(self, url: str) -> WrittenComment | None:
        """The comment whose web address is `url`, read through the API now: a comment on
        this repository's pull request or issue (GitHub: `<repository page>/pull/N#issuecomment-ID`, or `/issues/N`),
        or a note on this project's merge request (GitLab: `<project page>/-/merge_requests/N#note_ID`). None when
        `url` is no such address of this repository/project, or the comment is gone; the local forge: None (it
        has no comments to read)."""
        ...


def edited_since(created: object, updated: object) -> bool:
    """A comment's `updated` time (ISO 8601, as GitHub and GitLab give it) is later than its `created` time: its
    text was changed after it was written. Without both times the forge says nothing of an edit."""
    from datetime import datetime

    if not created or not updated:
        return False
    try:
        return datetime.fromisoformat(str(updated)) > datetime.fromisoformat(str(created))
    except (ValueError, TypeError):  # another shape, or one time with a zone and one without: compare as written
        return str(updated) != str(created)


def is_degradable(exc: BotError) -> bool:
    """True for failures that must not fail the check (see the module doc)."""
    return isinstance(exc, PermissionDenied)


def fit_description(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= STATUS_DESCRIPTION_LIMIT else text[: STATUS_DESCRIPTION_LIMIT - 1] + "…"


def fit_comment(body: str) -> str:
    """`body` within COMMENT_LIMIT (the smallest forge limit): a longer reply is cut with a note saying so rather
    than refused by the forge."""
    if len(body) <= COMMENT_LIMIT:
        return body
    note = "\n\n… (cut: the reply passed the forge's comment limit)"
    return body[: COMMENT_LIMIT - len(note)] + note


def has_marker(body: str, marker: str) -> bool:
    """The comment starts with `marker`, as the report does: a report that merely quotes another model's marker
    (a param value, shown as code) is not that model's comment."""
    return bool(marker) and body.lstrip().startswith(marker)


def absent() -> contextlib.suppress:
    """Swallows the answers that make a remembered status useless: it, its commit or its comment is gone (404,
    or 422/400 for a commit the forge no longer knows), or the token may not read it (403). The caller then
    falls back on the full scan, which fails loudly if the forge really refuses."""
    return contextlib.suppress(NotFound, InvalidParameter, PermissionDenied)
