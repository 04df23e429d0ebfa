"""The GitHub adapter (PyGithub): the sticky PR comment, commit statuses, check runs, PRs, workflow dispatch;
roles, reviews and deployment approvals in github_governance.

`base_url` is GITHUB_API_URL, so GitHub Enterprise Server works as github.com does. Retries: BoundedRetry
(PyGithub's GithubRetry, which understands 403 secondary rate limits, plus 429 and a time budget per request).
Objects are lazy. The sticky comment is found through the bot's earlier commit status, whose target_url
names it (see `_remembered`): a PR check costs 5 requests whatever the number of comments, and one request
per 100 comments only when no status names the bot's own comment (the first check, or it was deleted).
PyGithub and requests exceptions stop here; callers see BotErrors (see forges.base for the degrade rules).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import requests
from github import Auth, Github, GithubException, RateLimitExceededException
from github.Issue import Issue
from github.IssueComment import IssueComment

from ..errors import AuthError, BotError, InvalidParameter, NotFound, RemoteError, UsageError
from .base import (
    CheckConclusion,
    CommentResult,
    PermissionDenied,
    StatusRef,
    StatusState,
    absent,
    fit_description,
    has_marker,
)
from .ghretry import BoundedRetry
from .github_governance import GitHubGovernance

SERVICE = "GitHub"
ACTIONS_BOT = "github-actions[bot]"  # the author of everything written with a workflow's GITHUB_TOKEN
TokenKind = Literal["installation", "user", "unknown"]
STATUS_PAGES = 10  # a commit's combined status read up to 1000 contexts deep; past that the comments are scanned
_COMMENT_URL = re.compile(r"/pull/(?P<number>\d+)#issuecomment-(?P<id>\d+)\Z")  # a comment's html_url


@dataclass(frozen=True)
class GitHubSettings:
    """Which repository and pull request the adapter works on, and how it paces and retries its requests.
    The token is not one of them: it is passed on its own, so that no repr of the settings can show it."""

    api_url: str  # GITHUB_API_URL: github.com's API or a GitHub Enterprise Server's
    repository: str  # owner/name
    number: int | None = None  # the pull request to comment on
    login: str = ""  # the account the token writes as; found by itself when empty
    workflow: str = ""  # the workflow file that trigger_pipeline dispatches
    budget: float = 120.0  # seconds of retries for one request
    timeout: int = 30
    write_interval: float = 1.0  # seconds between writes


class GitHubForge(GitHubGovernance):
    name = SERVICE

    def __init__(self, settings: GitHubSettings, token: str) -> None:
        self._api = settings.api_url.rstrip("/")
        self._repository = settings.repository
        self._number = settings.number
        self._token_kind = _token_kind(token)
        self._login = settings.login
        self._workflow = settings.workflow
        # GitHub asks integrators to space writes by a second to stay clear of secondary rate limits.
        pace = settings.write_interval
        self._gh = Github(base_url=self._api, auth=Auth.Token(token), per_page=100, timeout=settings.timeout,
                          retry=BoundedRetry(budget=settings.budget), lazy=True, user_agent="mlops-bot",
                          seconds_between_requests=min(0.25, pace), seconds_between_writes=pace)
        self._repo = self._gh.get_repo(settings.repository)

    # comments

    def upsert_comment(self, marker: str, body: str, *, remembered: StatusRef | None = None) -> CommentResult:
        number = self._pr_number()
        url = f"{self._api}/repos/{self._repository}/issues/{number}/comments"
        issue = self._repo.get_issue(number)
        mine = self._remembered(issue, number, marker, remembered) if remembered else None
        if mine is None:
            with self._translate(url, f"list the comments of #{number}"):
                mine = next((c for c in issue.get_comments()
                             if has_marker(c.body or "", marker) and self._is_mine(c.user.login)), None)
        if mine is None:
            with self._translate(url, f"create a comment on #{number}"):
                created = issue.create_comment(body)
            return CommentResult("created", created.html_url, str(created.id))
        if mine.body == body:
            return CommentResult("unchanged", mine.html_url, str(mine.id))
        with self._translate(mine.url, f"edit comment {mine.id} on #{number}"):
            mine.edit(body)
        return CommentResult("updated", mine.html_url, str(mine.id))

    def _remembered(self, issue: Issue, number: int, marker: str, ref: StatusRef) -> IssueComment | None:
        """The comment the bot's earlier status names (its target_url), if it is the bot's own report on this
        pull request; None sends the caller to the full scan. Two reads, whatever the number of comments (one
        more per 100 status contexts the commit has before the bot's)."""
        sha = ref.previous or ref.sha
        if not sha:
            return None
        with absent():
            found = _COMMENT_URL.search(self._status_target(sha, ref.label))
            if found is None or int(found["number"]) != number:
                return None
            comment = issue.get_comment(int(found["id"]))
            with self._translate(comment.url, f"read comment {found['id']} on #{number}"):
                issue_url = comment.issue_url.rstrip("/").lower()
                ours = (issue_url.endswith(f"/repos/{self._repository}/issues/{number}".lower())
                        and has_marker(comment.body or "", marker) and self._is_mine(comment.user.login))
            return comment if ours else None
        return None  # the status, its commit or the comment is gone, or the token may not read them

    def _status_target(self, sha: str, label: str) -> str:
        """The target_url of the commit's latest status named `label` ("" when none): the combined status pages
        by contexts (100 a page, total_count of them), read until the label is found, up to STATUS_PAGES."""
        url = f"{self._repo.url}/commits/{sha}/status"
        for page in range(1, STATUS_PAGES + 1):
            with self._translate(url, f"read the statuses of {sha[:12]} (page {page})"):
                _, data = self._gh.requester.requestJsonAndCheck("GET", url, parameters={"per_page": 100,
                                                                                         "page": page})
            statuses = [s for s in data.get("statuses") or [] if isinstance(s, dict)]
            target = next((str(s.get("target_url") or "") for s in statuses if s.get("context") == label), None)
            if target is not None:
                return target
            total = data.get("total_count")
            if len(statuses) < 100 or (isinstance(total, int) and page * 100 >= total):
                break
        return ""

    def _pr_number(self) -> int:
        if self._number is None:
            raise UsageError("GitHub: there is no pull request to comment on in this event; comments are posted "
                           "only for pull_request events.")
        return self._number

    def _is_mine(self, login: str) -> bool:
        """The bot's own comment: authored by the identity this token writes as, never by whoever quotes it."""
        return login.lower() == self._identity().lower()

    def _identity(self) -> str:
        if not self._login:
            self._login = self._ask_login()
        return self._login

    def _ask_login(self) -> str:
        # Installation tokens (a workflow's GITHUB_TOKEN is one) act as "<app>[bot]" and may not read GET /user.
        # GITHUB_TOKEN writes as github-actions[bot]; another app's token needs MLOPS_BOT_LOGIN=<slug>[bot].
        if self._token_kind == "installation":
            return ACTIONS_BOT
        try:
            with self._translate(f"{self._api}/user", "read the token's user"):
                return str(self._gh.get_user().login)
        except PermissionDenied:
            return ACTIONS_BOT

    # statuses and checks

    def set_status(self, sha: str, state: StatusState, description: str, target_url: str = "",
                   label: str = "mlops-bot") -> None:
        url = f"{self._api}/repos/{self._repository}/statuses/{sha}"
        extra: dict[str, Any] = {"target_url": target_url} if target_url else {}
        with self._translate(url, f"set the {label!r} status of {sha[:12]}"):
            # StatusState's names are GitHub's own.
            self._repo.get_commit(sha).create_status(state, description=fit_description(description), context=label,
                                                     **extra)

    def create_check_run(self, sha: str, name: str, conclusion: CheckConclusion, title: str, summary: str,
                         details_url: str = "") -> str | None:
        url = f"{self._api}/repos/{self._repository}/check-runs"
        extra: dict[str, Any] = {"details_url": details_url} if details_url else {}
        try:
            with self._translate(url, f"create the check run {name!r}"):
                run = self._repo.create_check_run(name, sha, status="completed", conclusion=conclusion,
                                                  output={"title": title[:255], "summary": summary[:65_535]},
                                                  **extra)
        except (PermissionDenied, NotFound, InvalidParameter):
            return None  # only GitHub Apps may create check runs: statuses carry the result anyway
        return str(run.html_url)

    # pull requests and workflows

    def pull_request_head(self, number: int) -> str:
        url = f"{self._api}/repos/{self._repository}/pulls/{number}"
        with self._translate(url, f"read pull request #{number}"):
            return str(self._repo.get_pull(number).head.sha)

    def open_pull_request(self, head: str, base: str, title: str, body: str) -> str:
        url = f"{self._api}/repos/{self._repository}/pulls"
        try:
            with self._translate(url, f"open a pull request from {head} into {base}"):
                return str(self._repo.create_pull(base=base, head=head, title=title, body=body).html_url)
        except InvalidParameter:
            owner = self._repository.split("/", 1)[0]
            with self._translate(url, f"find the open pull request from {head} into {base}"):
                existing = next(iter(self._repo.get_pulls(state="open", head=f"{owner}:{head}", base=base)), None)
            if existing is None:
                raise
            return str(existing.html_url)

    def trigger_pipeline(self, ref: str, inputs: Mapping[str, str]) -> str:
        if not self._workflow:
            raise UsageError("GitHub: no workflow to dispatch; run inside GitHub Actions (GITHUB_WORKFLOW_REF) or "
                           "name the workflow file.")
        url = f"{self._api}/repos/{self._repository}/actions/workflows/{self._workflow}/dispatches"
        with self._translate(url, f"dispatch {self._workflow} on {ref}"):
            self._repo.get_workflow(self._workflow).create_dispatch(ref, dict(inputs), throw=True)
        return f"{_web_base(self._api)}/{self._repository}/actions/workflows/{self._workflow}"

    def _web(self) -> str:
        return _web_base(self._api)

    @contextlib.contextmanager
    def _translate(self, url: str, doing: str) -> Iterator[None]:
        try:
            yield
        except GithubException as exc:
            raise error_for(exc, url, doing) from None
        except requests.RequestException as exc:
            raise RemoteError(SERVICE, None, url, f"could not {doing} ({type(exc).__name__}); check the network "
                              "and GITHUB_API_URL, then run again.") from None


def error_for(exc: GithubException, url: str, doing: str) -> BotError:
    """The BotError for a GitHub answer, with GitHub's own message and what to do next."""
    status = exc.status
    data = exc.data if isinstance(exc.data, dict) else {}
    said = str(data.get("message") or exc.message or "").strip()
    detail = f"could not {doing}: {said}" if said else f"could not {doing}"
    if status == 401:
        return AuthError(SERVICE, status, url, f"{detail}; the token is expired, revoked or wrong: pass a valid "
                         "GITHUB_TOKEN.")
    if status in (403, 429) and _rate_limited(exc, said):
        return RemoteError(SERVICE, status, url, f"{detail}; the rate limit did not lift within the retry budget, "
                           "run again later.")
    if status == 403:
        return PermissionDenied(SERVICE, status, url, f"{detail}; the token may not do this here (a fork's "
                                "read-only token, missing pull-requests/statuses: write permission, or actions: read "
                                "for a run's deployment reviews).")
    if status == 404:
        return NotFound(SERVICE, status, url, f"{detail}; the pull request, commit or repository does not exist "
                        "(deleted?) or the token cannot see it.")
    if status == 422:
        errors = "; ".join(str(e.get("message") or e.get("code") or e) for e in data.get("errors", [])
                           if isinstance(e, dict))
        return InvalidParameter(SERVICE, status, url, f"{detail}{f' ({errors})' if errors else ''}; GitHub "
                                "rejected the request body.")
    return RemoteError(SERVICE, status, url, f"{detail}; GitHub kept failing after retries, run again later.")


def _rate_limited(exc: GithubException, message: str) -> bool:
    headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
    return (isinstance(exc, RateLimitExceededException) or exc.status == 429 or "retry-after" in headers
            or headers.get("x-ratelimit-remaining") == "0" or "rate limit" in message.lower())


def _token_kind(token: str) -> TokenKind:
    # https://github.blog/2021-04-05-behind-githubs-new-authentication-token-formats/
    if token.startswith("ghs_"):
        return "installation"
    if token.startswith(("ghp_", "github_pat_", "gho_", "ghu_")):
        return "user"
    return "unknown"  # GHES before 3.2 or a test server: ask GET /user, fall back on 403


def _web_base(api_url: str) -> str:
    if api_url == "https://api.github.com":
        return "https://github.com"
    return api_url.removesuffix("/api/v3")
