"""What the GitLab adapter reads for approvals and ChatOps: a username's role in the project, the merge request a
note was written on, who approved it, replies, and a new merge request pipeline for `/mlops-bot rerun`.

Mixed into GitLabForge (forges/gitlab.py), which provides the python-gitlab client, the project and the error
translation. Everything is read through the API when it is needed, never taken from a note or a payload.
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from typing import Any

from ..errors import NotFound
from .base import Approver, CommentResult, Discussion, WrittenComment, edited_since, fit_comment

# GitLab's access levels (https://docs.gitlab.com/api/members/#roles: 0 no access, 5 minimal access, 10 guest,
# 15 planner, 20 reporter, 30 developer, 40 maintainer, 50 owner) onto config.model.ROLES, by what each may do
# (https://docs.gitlab.com/user/permissions/): a guest reads, a reporter triages issues, a developer pushes
# and merges into unprotected branches, a maintainer manages protected branches and settings, an owner administers.
_LEVELS = ((50, "admin"), (40, "maintain"), (30, "write"), (20, "triage"), (10, "read"))
# GitLab's MR states onto Discussion's: a locked MR (being merged or its discussion locked) takes no changes.
_STATES = {"opened": "open", "closed": "closed", "locked": "closed", "merged": "merged"}
# A note's web link after the project's page (GitLab before 12.x linked without the `/-`).
_NOTE_PAGE = re.compile(r"(?:/-)?/merge_requests/(?P<iid>\d+)#note_(?P<id>\d+)")


def role_for(access_level: int) -> str:
    return next((role for level, role in _LEVELS if access_level >= level), "none")


class GitLabGovernance:
    _server: str
    _path: str  # the project's path (group/project), for its web page
    _gl: Any  # gitlab.Gitlab
    _project: Any  # the project (lazy)
    _retry: dict[str, Any]

    def _translate(self, url: str, doing: str) -> AbstractContextManager[None]:
        raise NotImplementedError  # GitLabForge's

    def _api(self, tail: str) -> str:
        raise NotImplementedError  # GitLabForge's: the project's API URL + tail

    def _mr_url(self, iid: int) -> str:
        raise NotImplementedError  # GitLabForge's: the merge request's web page

    def _note_url(self, iid: int, note_id: int) -> str:
        raise NotImplementedError  # GitLabForge's

    def role_of(self, login: str) -> str:
        """The user's access level in the project, direct, inherited from groups or invited
        (GET /projects/:id/members/all/:user_id); "none" when there is no such user or they are no member."""
        with self._translate(f"{self._server}/api/v4/users", f"find the user {login}"):
            users = self._gl.users.list(username=login, get_all=False, **self._retry)
        user = next((u for u in users if str(u.username).lower() == login.lower()), None)
        if user is None:
            return "none"
        try:
            with self._translate(self._api(f"/members/all/{user.id}"), f"read the project role of {login}"):
                member = self._project.members_all.get(user.id, **self._retry)
        except NotFound:
            return "none"
        if str(member.attributes.get("membership_state") or "active") != "active":
            return "none"  # an invitation not accepted yet, or a seat awaiting approval
        return role_for(int(member.access_level))

    def discussion(self, number: int) -> Discussion:
        """Merge request `number` (GitLab's note events carry the MR's iid; issues are not asked here)."""
        with self._translate(self._api(f"/merge_requests/{number}"), f"read merge request !{number}"):
            mr = self._project.mergerequests.get(number, **self._retry)
        fork = mr.attributes.get("source_project_id") != mr.attributes.get("target_project_id")
        author = str((mr.attributes.get("author") or {}).get("username") or "")
        return Discussion(number, True, _STATES.get(str(mr.state), "closed"), fork, str(mr.sha or ""), author,
                          str(mr.web_url), str(mr.attributes.get("source_branch") or ""))

    def approvers(self, number: int) -> list[Approver]:
        """The MR's approved_by (GitLab withdraws approvals itself when a push resets them, if the project says
        so); each approval links the MR, as GitLab gives approvals no page of their own."""
        with self._translate(self._api(f"/merge_requests/{number}/approvals"),
                             f"read the approvals of merge request !{number}"):
            state = self._project.mergerequests.get(number, lazy=True).approvals.get(**self._retry)
        entries = state.attributes.get("approved_by") or []
        logins = [str((e.get("user") or {}).get("username") or "") for e in entries if isinstance(e, dict)]
        return [Approver(login, self._mr_url(number)) for login in logins if login]

    def environment_approvers(self, run_id: str, environment: str) -> list[Approver]:
        """[]: GitLab's deployment approvals are a Premium feature with another shape (approvals of a deployment,
        not of a pipeline's environment review); an MR approval or a ChatOps comment approves instead."""
        return []

    def comment_by_url(self, url: str) -> WrittenComment | None:
        """The note through GET /projects/:id/merge_requests/:iid/notes/:note_id (https://docs.gitlab.com/api/notes/
        #get-single-merge-request-note: 404 for a note of another merge request); a system note is no comment."""
        page = f"{self._server}/{self._path}"
        found = _NOTE_PAGE.fullmatch(url[len(page):]) if url.lower().startswith(page.lower() + "/") else None
        if found is None:
            return None
        iid, note_id = int(found["iid"]), int(found["id"])
        try:
            with self._translate(self._api(f"/merge_requests/{iid}/notes/{note_id}"), f"read note {note_id} on !{iid}"):
                note = self._project.mergerequests.get(iid, lazy=True).notes.get(note_id, **self._retry)
        except NotFound:
            return None
        if note.attributes.get("system") or note.attributes.get("noteable_iid", iid) != iid:
            return None
        author = str((note.attributes.get("author") or {}).get("username") or "")
        edited = edited_since(note.attributes.get("created_at"), note.attributes.get("updated_at"))
        return WrittenComment(author, str(note.attributes.get("body") or ""), edited)

    def reply(self, number: int, body: str) -> CommentResult:
        with self._translate(self._api(f"/merge_requests/{number}/notes"), f"reply on !{number}"):
            note = self._project.mergerequests.get(number, lazy=True).notes.create({"body": fit_comment(body)},
                                                                                   **self._retry)
        return CommentResult("created", self._note_url(number, note.id), str(note.id))

    def rerun_check(self, number: int, sha: str) -> str:
        """A new merge request pipeline (GitLab API docs, "Create MR Pipeline": POST /projects/:id/merge_requests/
        :merge_request_iid/pipelines, https://docs.gitlab.com/api/merge_requests/#create-merge-request-pipeline):
        it runs the jobs whose rules match `$CI_PIPELINE_SOURCE == "merge_request_event"` on the MR's latest commit,
        in GitLab's runners, never in the bot. `sha` is the head the ChatOps check read; GitLab takes the MR's own."""
        with self._translate(self._api(f"/merge_requests/{number}/pipelines"),
                             f"create a pipeline for merge request !{number} ({sha[:12]})"):
            pipeline = self._project.mergerequests.get(number, lazy=True).pipelines.create({}, **self._retry)
        return str(pipeline.attributes.get("web_url") or "")
