"""The GitLab adapter (python-gitlab): the sticky MR note, commit statuses, merge requests, pipelines; roles,
approvals and replies in gitlab_governance.

`url` is CI_SERVER_URL (self-managed instances work like gitlab.com). python-gitlab retries 429 (obeying
Retry-After / RateLimit-Reset) and transient 5xx itself; the count is bounded by `max_retries` and each wait by
`wait_cap` seconds (a response hook shortens longer Retry-After values), so a request gives up within about
max_retries x wait_cap. A project, personal or group access token (GITLAB_TOKEN) can write notes and
statuses; CI_JOB_TOKEN cannot, and its 403 degrades like a fork's read-only token on GitHub. The sticky note
is found through the bot's earlier commit status, whose target_url names it (see `_remembered`), and by reading
every page of notes only when no status names the bot's own note.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import gitlab
import requests
from gitlab.exceptions import GitlabError

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
from .gitlab_governance import GitLabGovernance

SERVICE = "GitLab"
_NOTE_URL = re.compile(r"/-/merge_requests/(?P<iid>\d+)#note_(?P<id>\d+)\Z")  # a note's web link (_note_url)
_STATES: dict[StatusState, str] = {"pending": "pending", "success": "success", "failure": "failed", "error": "failed"}


@dataclass(frozen=True)
class GitLabSettings:
    """Which project and merge request the adapter works on, and how it retries its requests. The token is not
    one of them: it is passed on its own, so that no repr of the settings can show it."""

    server_url: str  # CI_SERVER_URL: gitlab.com or a self-managed instance
    project: str  # the project's id (or path), as the API takes it
    project_path: str = ""  # group/project, for web links; `project` when empty
    mr_iid: int | None = None  # the merge request to comment on
    login: str = ""  # the account the token writes as; found by itself when empty
    max_retries: int = 5
    wait_cap: float = 20.0  # longest wait in seconds before one retry
    timeout: float = 30.0


class GitLabForge(GitLabGovernance):
    name = SERVICE

    def __init__(self, settings: GitLabSettings, token: str, *, job_token: bool = False) -> None:
        """`job_token`: the token is CI_JOB_TOKEN, sent as such, which starts pipelines through the trigger API."""
        self._server = settings.server_url.rstrip("/")
        self._project_ref = settings.project
        self._path = settings.project_path or settings.project
        self._iid = settings.mr_iid
        self._login = settings.login
        self._job_token = job_token
        self._token = token
        self._retry: dict[str, Any] = {"max_retries": settings.max_retries, "obey_rate_limit": True}
        session = requests.Session()
        session.hooks["response"].append(_cap_retry_after(settings.wait_cap))
        self._gl = gitlab.Gitlab(url=self._server, private_token=None if job_token else token,
                                 job_token=token if job_token else None, timeout=settings.timeout, per_page=100,
                                 retry_transient_errors=True, session=session, user_agent="mlops-bot")
        self._project = self._gl.projects.get(settings.project, lazy=True)

    def _api(self, tail: str) -> str:
        return f"{self._server}/api/v4/projects/{quote(self._project_ref, safe='')}{tail}"

    # notes

    def upsert_comment(self, marker: str, body: str, *, remembered: StatusRef | None = None) -> CommentResult:
        iid = self._mr_iid()
        url = self._api(f"/merge_requests/{iid}/notes")
        mr = self._project.mergerequests.get(iid, lazy=True)
        mine = self._remembered(mr, iid, marker, remembered) if remembered else None
        if mine is None:
            with self._translate(url, f"list the notes of !{iid}"):
                notes = mr.notes.list(iterator=True, sort="asc", order_by="created_at", **self._retry)
                mine = next((n for n in notes if self._is_report(n, marker)), None)
        if mine is None:
            with self._translate(url, f"create a note on !{iid}"):
                created = mr.notes.create({"body": body}, **self._retry)
            return CommentResult("created", self._note_url(iid, created.id), str(created.id))
        if mine.body == body:
            return CommentResult("unchanged", self._note_url(iid, mine.id), str(mine.id))
        with self._translate(f"{url}/{mine.id}", f"edit note {mine.id} on !{iid}"):
            mine.body = body
            mine.save(**self._retry)
        return CommentResult("updated", self._note_url(iid, mine.id), str(mine.id))

    def _remembered(self, mr: Any, iid: int, marker: str, ref: StatusRef) -> Any:
        """The note the bot's earlier status names (its target_url), if it is the bot's own report on this merge
        request; None sends the caller to the full scan. Three reads, whatever the number of notes: the MR's
        versions (the head before this push), that commit's status, the note."""
        with absent():
            with self._translate(self._api(f"/merge_requests/{iid}/versions"), f"read the versions of !{iid}"):
                sha = ref.previous or self._previous_head(mr, ref.sha)
            with self._translate(self._api(f"/repository/commits/{sha}/statuses"),
                                 f"read the {ref.label!r} status of {sha[:12]}"):
                statuses = self._project.commits.get(sha, lazy=True).statuses.list(name=ref.label, get_all=False,
                                                                                   **self._retry)
            newest = max(statuses, key=lambda s: int(s.id), default=None)
            found = _NOTE_URL.search(str(newest.attributes.get("target_url") or "")) if newest else None
            if found is None or int(found["iid"]) != iid:
                return None
            with self._translate(self._api(f"/merge_requests/{iid}/notes/{found['id']}"),
                                 f"read note {found['id']} on !{iid}"):
                note = mr.notes.get(int(found["id"]), **self._retry)
                ours = self._is_report(note, marker) and note.attributes.get("noteable_iid", iid) == iid
            return note if ours else None
        return None  # the commit, its status or the note is gone, or the token may not read them

    def _previous_head(self, mr: Any, sha: str) -> str:
        """The head commit of the newest version of the MR that is not `sha` (GitLab lists versions newest
        first), else `sha` itself: a re-run, or the version of this push not recorded yet."""
        versions = mr.diffs.list(get_all=False, **self._retry)
        return next((str(v.head_commit_sha) for v in versions if v.head_commit_sha and v.head_commit_sha != sha), sha)

    def _is_report(self, note: Any, marker: str) -> bool:
        return (not note.attributes.get("system") and has_marker(note.body or "", marker)
                and self._is_mine(str(note.author.get("username", ""))))

    def _mr_iid(self) -> int:
        if self._iid is None:
            raise UsageError("GitLab: there is no merge request to comment on in this pipeline; notes are posted "
                             "only in merge request pipelines.")
        return self._iid

    def _note_url(self, iid: int, note_id: int) -> str:
        return f"{self._mr_url(iid)}#note_{note_id}"

    def _mr_url(self, iid: int) -> str:
        return f"{self._server}/{self._path}/-/merge_requests/{iid}"

    def _is_mine(self, username: str) -> bool:
        if not self._login:
            # A project access token acts as its own bot user; GET /user says which.
            with self._translate(f"{self._server}/api/v4/user", "read the token's user"):
                user = self._gl.http_get("/user", **self._retry)
            self._login = str(user.get("username", "")) if isinstance(user, dict) else ""
        return username.lower() == self._login.lower()

    # statuses

    def set_status(self, sha: str, state: StatusState, description: str, target_url: str = "",
                   label: str = "mlops-bot") -> None:
        data = {"state": _STATES.get(state, "failed"), "name": label, "description": fit_description(description)}
        if target_url:
            data["target_url"] = target_url
        try:
            with self._translate(self._api(f"/statuses/{sha}"), f"set the {label!r} status of {sha[:12]}"):
                self._project.commits.get(sha, lazy=True).statuses.create(data, **self._retry)
        except InvalidParameter as exc:
            # GitLab refuses to "transition" a status to the state it already has: nothing to change.
            if "cannot transition status" not in exc.detail.lower():
                raise

    def create_check_run(self, sha: str, name: str, conclusion: CheckConclusion, title: str, summary: str,
                         details_url: str = "") -> str | None:
        return None  # GitLab has no check runs; the commit status and the metrics report carry the result

    # merge requests and pipelines

    def pull_request_head(self, number: int) -> str:
        with self._translate(self._api(f"/merge_requests/{number}"), f"read merge request !{number}"):
            return str(self._project.mergerequests.get(number, **self._retry).sha)

    def open_pull_request(self, head: str, base: str, title: str, body: str) -> str:
        url = self._api("/merge_requests")
        data = {"source_branch": head, "target_branch": base, "title": title, "description": body}
        try:
            with self._translate(url, f"open a merge request from {head} into {base}"):
                return str(self._project.mergerequests.create(data, **self._retry).web_url)
        except InvalidParameter:
            with self._translate(url, f"find the open merge request from {head} into {base}"):
                found = self._project.mergerequests.list(source_branch=head, target_branch=base, state="opened",
                                                         get_all=False, **self._retry)
            if not found:
                raise
            return str(found[0].web_url)

    def trigger_pipeline(self, ref: str, inputs: Mapping[str, str]) -> str:
        with self._translate(self._api("/pipeline"), f"start a pipeline on {ref}"):
            if self._job_token:
                # A job token may only start pipelines through the trigger API, as a multi-project trigger.
                pipeline = self._project.trigger_pipeline(ref, self._token, variables=dict(inputs), **self._retry)
            else:
                variables = [{"key": k, "value": v} for k, v in inputs.items()]
                pipeline = self._project.pipelines.create({"ref": ref, "variables": variables}, **self._retry)
        return str(pipeline.attributes.get("web_url", ""))

    @contextlib.contextmanager
    def _translate(self, url: str, doing: str) -> Iterator[None]:
        try:
            yield
        except GitlabError as exc:
            raise error_for(exc.response_code, str(exc.error_message), url, doing) from None
        except requests.RequestException as exc:
            raise RemoteError(SERVICE, None, url, f"could not {doing} ({type(exc).__name__}); check the network "
                              "and CI_SERVER_URL, then run again.") from None


def error_for(status: int | None, said: str, url: str, doing: str) -> BotError:
    said = said.strip()
    detail = f"could not {doing}: {said}" if said else f"could not {doing}"
    if status == 401:
        return AuthError(SERVICE, status, url, f"{detail}; the token is expired, revoked or wrong: pass a valid "
                         "GITLAB_TOKEN.")
    if status == 403:
        return PermissionDenied(SERVICE, status, url, f"{detail}; the token may not write here (CI_JOB_TOKEN cannot "
                                "post notes or statuses: set GITLAB_TOKEN to a project access token with api scope "
                                "and the Reporter role or more).")
    if status == 404:
        return NotFound(SERVICE, status, url, f"{detail}; the merge request, commit or project does not exist "
                        "(deleted?) or the token cannot see it.")
    if status in (400, 409, 422):
        return InvalidParameter(SERVICE, status, url, f"{detail}; GitLab rejected the request.")
    if status == 429:
        return RemoteError(SERVICE, status, url, f"{detail}; the rate limit did not lift within the retries, run "
                           "again later.")
    return RemoteError(SERVICE, status, url, f"{detail}; GitLab kept failing after retries, run again later.")


def _cap_retry_after(cap: float) -> Any:
    def hook(response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        value = response.headers.get("Retry-After", "")
        if value.strip().isdigit() and int(value) > cap:
            response.headers["Retry-After"] = str(int(cap))
        return response

    return hook
