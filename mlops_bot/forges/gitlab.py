"""The GitLab adapter (python-gitlab): the sticky MR note, commit statuses, merge requests, pipelines.

`url` is CI_SERVER_URL (self-managed instances work like gitlab.com). python-gitlab retries 429 (obeying
Retry-After / RateLimit-Reset) and transient 5xx itself; the count is bounded by `max_retries` and each wait by
`wait_cap` seconds (a response hook shortens longer Retry-After values), so a request gives up within about
max_retries x wait_cap. A project, personal or group access token (GITLAB_TOKEN) can write notes and
statuses; CI_JOB_TOKEN cannot, and its 403 degrades like a fork's read-only token on GitHub.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import gitlab
import requests
from gitlab.exceptions import GitlabError

from ..errors import AuthError, BotError, InvalidParameter, NotFound, RemoteError, UsageError
from .base import CheckConclusion, CommentResult, PermissionDenied, StatusState, fit_description, has_marker

SERVICE = "GitLab"
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


class GitLabForge:
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

    def upsert_comment(self, marker: str, body: str) -> CommentResult:
        iid = self._mr_iid()
        url = self._api(f"/merge_requests/{iid}/notes")
        mr = self._project.mergerequests.get(iid, lazy=True)
        with self._translate(url, f"list the notes of !{iid}"):
            notes = mr.notes.list(iterator=True, sort="asc", order_by="created_at", **self._retry)
            mine = next((n for n in notes if not n.attributes.get("system") and has_marker(n.body or "", marker)
                         and self._is_mine(str(n.author.get("username", "")))), None)
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

    def _mr_iid(self) -> int:
        if self._iid is None:
            raise UsageError("GitLab: there is no merge request to comment on in this pipeline; notes are posted "
                             "only in merge request pipelines.")
        return self._iid

    def _note_url(self, iid: int, note_id: int) -> str:
        return f"{self._server}/{self._path}/-/merge_requests/{iid}#note_{note_id}"

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
