"""What the GitHub adapter reads for approvals and ChatOps: a login's repository role, the pull request or issue a
comment was written on, who approves a pull request, who approved a workflow run's deployment, replies, and the
re-run of a pull request's check (`/mlops-bot rerun` under `serve`).

Mixed into GitHubForge (forges/github.py), which provides the PyGithub client, the repository and the error
translation. Every answer is read through the API at the moment it is needed: nothing here trusts what an
event payload or a comment says about who someone is.
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import quote

from ..config.model import ROLES
from ..errors import NotFound
from .base import (
    Approver,
    CheckRunning,
    CommentResult,
    Discussion,
    NoCheckRun,
    PermissionDenied,
    WrittenComment,
    edited_since,
    fit_comment,
)

# The legacy `permission` of GitHub's permission endpoint, for a custom role whose role_name is not one of ROLES
# (maintain is reported as write, triage as read, so the role is never overstated).
_BASE_ROLES = {"admin": "admin", "write": "write", "read": "read"}
# The review states that decide a reviewer's standing; COMMENTED leaves the earlier decision in place.
_DECIDING = frozenset({"APPROVED", "CHANGES_REQUESTED", "DISMISSED"})
# A comment's html_url after the repository's page: on a pull request or on an issue.
_COMMENT_PAGE = re.compile(r"/(?:pull|issues)/(?P<number>\d+)#issuecomment-(?P<id>\d+)")


class GitHubGovernance:
    name: str
    _api: str
    _repository: str
    _workflow: str  # the workflow file (ci.yml) the bot is told about; "" when it knows none
    _gh: Any  # github.Github
    _repo: Any  # github.Repository.Repository (lazy)

    def _translate(self, url: str, doing: str) -> AbstractContextManager[None]:
        raise NotImplementedError  # GitHubForge's

    def _web(self) -> str:
        raise NotImplementedError  # GitHubForge's: the web origin (github.com, or the GHES host)

    def role_of(self, login: str) -> str:
        # https://docs.github.com/rest/collaborators/collaborators#get-repository-permissions-for-a-user: role_name
        # (read, triage, write, maintain, admin or a custom role) and the legacy permission (admin, write, read,
        # none). 404: the login has no GitHub account, so it holds no role here.
        url = f"{self._api}/repos/{self._repository}/collaborators/{quote(login, safe='')}/permission"
        try:
            with self._translate(url, f"read the repository role of {login}"):
                _, data = self._gh.requester.requestJsonAndCheck("GET", url)
        except NotFound:
            return "none"
        role = str(data.get("role_name") or "")
        return role if role in ROLES else _BASE_ROLES.get(str(data.get("permission") or ""), "none")

    def discussion(self, number: int) -> Discussion:
        url = f"{self._api}/repos/{self._repository}/issues/{number}"
        with self._translate(url, f"read issue or pull request #{number}"):
            issue = self._repo.get_issue(number)
            is_pull = issue.pull_request is not None
            author, state, html_url = str(issue.user.login if issue.user else ""), str(issue.state), issue.html_url
        if not is_pull:
            return Discussion(number, False, state, False, "", author, str(html_url))
        with self._translate(f"{self._api}/repos/{self._repository}/pulls/{number}", f"read pull request #{number}"):
            pull = self._repo.get_pull(number)
            head_repo, base_repo = pull.head.repo, pull.base.repo
            # A deleted fork leaves head.repo null: its code still came from outside this repository.
            fork = head_repo is None or base_repo is None or head_repo.full_name != base_repo.full_name
            state = "merged" if pull.merged else str(pull.state)
            return Discussion(number, True, state, fork, str(pull.head.sha), author, str(pull.html_url),
                              str(pull.head.ref))

    def approvers(self, number: int) -> list[Approver]:
        """Reviews come in chronological order: each reviewer's latest deciding review stands."""
        url = f"{self._api}/repos/{self._repository}/pulls/{number}/reviews"
        latest: dict[str, Any] = {}
        with self._translate(url, f"list the reviews of pull request #{number}"):
            for review in self._repo.get_pull(number).get_reviews():
                if review.user is not None and review.state in _DECIDING:
                    latest[str(review.user.login).lower()] = review
        return [Approver(str(r.user.login), str(r.html_url), str(r.commit_id or ""))
                for r in latest.values() if r.state == "APPROVED"]

    def environment_approvers(self, run_id: str, environment: str) -> list[Approver]:
        # https://docs.github.com/rest/actions/workflow-runs#get-the-review-history-for-a-workflow-run: each
        # reviewer's decision on the run's pending deployments, with the environments it covered.
        if not run_id.isdigit():
            return []  # not a workflow run (GITHUB_RUN_ID is always a number inside Actions)
        url = f"{self._api}/repos/{self._repository}/actions/runs/{run_id}/approvals"
        with self._translate(url, f"read the deployment reviews of workflow run {run_id}"):
            _, data = self._gh.requester.requestJsonAndCheck("GET", url)
        run_url = f"{self._web()}/{self._repository}/actions/runs/{run_id}"
        found: list[Approver] = []
        for review in data if isinstance(data, list) else []:
            names = {str(e.get("name")) for e in review.get("environments") or [] if isinstance(e, dict)}
            login = str((review.get("user") or {}).get("login") or "")
            if review.get("state") == "approved" and environment in names and login:
                found.append(Approver(login, run_url))
        return found

    def comment_by_url(self, url: str) -> WrittenComment | None:
        # https://docs.github.com/rest/issues/comments#get-an-issue-comment: the comment by its id, under this
        # repository only (another repository's id answers 404); its issue_url must be the discussion `url` names.
        page = f"{self._web()}/{self._repository}"
        found = _COMMENT_PAGE.fullmatch(url[len(page):]) if url.lower().startswith(page.lower() + "/") else None
        if found is None:
            return None
        api = f"{self._api}/repos/{self._repository}/issues/comments/{found['id']}"
        try:
            with self._translate(api, f"read comment {found['id']}"):
                _, data = self._gh.requester.requestJsonAndCheck("GET", api)
        except NotFound:
            return None
        issue = f"/repos/{self._repository}/issues/{found['number']}".lower()
        if not str(data.get("issue_url") or "").rstrip("/").lower().endswith(issue):
            return None
        login = str((data.get("user") or {}).get("login") or "")
        edited = edited_since(data.get("created_at"), data.get("updated_at"))
        return WrittenComment(login, str(data.get("body") or ""), edited)

    def reply(self, number: int, body: str) -> CommentResult:
        url = f"{self._api}/repos/{self._repository}/issues/{number}/comments"
        with self._translate(url, f"reply on #{number}"):
            created = self._repo.get_issue(number).create_comment(fit_comment(body))
        return CommentResult("created", str(created.html_url), str(created.id))

    def rerun_check(self, number: int, sha: str) -> str:
        # https://docs.github.com/rest/actions/workflow-runs#list-workflow-runs-for-a-repository, filtered to the
        # pull_request runs of the head commit; #re-run-a-workflow then runs one again with its original event and
        # token, so the pull request's code runs in its own check on GitHub's runners, never in the bot.
        url = f"{self._api}/repos/{self._repository}/actions/runs"
        query = {"head_sha": sha, "event": "pull_request", "per_page": 100, "exclude_pull_requests": "true"}
        with self._translate(url, f"list the workflow runs of {sha[:12]}"):
            _, data = self._gh.requester.requestJsonAndCheck("GET", url, parameters=query)
        runs = [r for r in (data or {}).get("workflow_runs") or [] if isinstance(r, dict) and r.get("head_sha") == sha]
        run = newest_run(runs, self._workflow)
        if run is None:
            raise NoCheckRun(self.name, url, sha)
        web = str(run.get("html_url") or "")
        if run.get("status") != "completed":  # queued, waiting, in_progress...: GitHub refuses to re-run it (403)
            raise CheckRunning(sha, web)
        rerun = f"{url}/{int(run['id'])}/rerun"
        try:
            with self._translate(rerun, f"re-run workflow run {run['id']} of #{number}"):
                self._gh.requester.requestJsonAndCheck("POST", rerun, input={})  # its one field is optional
        except PermissionDenied as exc:
            if "already running" in exc.detail.lower():  # it was started again between the two requests
                raise CheckRunning(sha, web) from None
            raise PermissionDenied(exc.service, exc.status, exc.url, f"{exc.detail} Re-running a workflow needs "
                                   "the `actions: write` permission.") from None
        return web


def newest_run(runs: list[dict[str, Any]], workflow: str) -> dict[str, Any] | None:
    """The newest run of `workflow` (a file name such as ci.yml) if there is one, else the newest of all: a
    retrain workflow named in place of the check has no pull_request runs, and its absence must not hide the check's.
    GitHub lists runs newest first; sorting by creation then id keeps that whatever the order."""
    def of_workflow(run: dict[str, Any]) -> bool:
        path = str(run.get("path") or "").split("@", 1)[0]
        return bool(workflow) and path.rsplit("/", 1)[-1] == workflow.rsplit("/", 1)[-1]

    chosen = [r for r in runs if of_workflow(r)] or runs
    return max(chosen, key=lambda r: (str(r.get("created_at") or ""), int(r.get("id") or 0)), default=None)
