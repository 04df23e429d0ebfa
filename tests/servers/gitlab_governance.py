"""The governance half of the local GitLab server: merge requests with their authors, forks and states, users and
project members with their access levels, merge request approvals and merge request pipelines. Mixed into
GitLabServer, whose request pipeline checks every request against the routes below (each citing the page of
GitLab's REST API docs, https://docs.gitlab.com/api/..., it follows).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from tests.servers.fakehttp import Answer, Seen, page_of

if TYPE_CHECKING:
    from tests.servers.gitlab_server import Account

NOT_FOUND = {"message": "404 Not found"}
# https://docs.gitlab.com/api/members/#roles: the access levels a member may hold
ACCESS_LEVELS = {"no access": 0, "minimal access": 5, "guest": 10, "planner": 15, "reporter": 20, "developer": 30,
                 "maintainer": 40, "owner": 50}
MR_STATES = ("opened", "closed", "locked", "merged")
# route name, method, path pattern, required body fields, optional body fields, query fields (as gitlab_server)
ROUTES: list[tuple[str, str, str, tuple[str, ...], tuple[str, ...] | None, tuple[str, ...]]] = [
    # users/#list-users: `username` filters to that user (case-insensitive); [] when there is none
    ("users.list", "GET", r"/users", (), (), ("username", "page", "per_page", "active", "blocked")),
    # members/#get-a-member-of-a-group-or-project-including-inherited-and-invited-members: 404 for a non-member
    ("members.all_get", "GET", r"/projects/(?P<project>[^/]+)/members/all/(?P<user>\d+)", (), (), ()),
    # merge_request_approvals/#retrieve-approval-state-for-a-merge-request (all tiers): approved_by[].user
    ("mrs.approvals", "GET", r"/projects/(?P<project>[^/]+)/merge_requests/(?P<iid>\d+)/approvals", (), (), ()),
    # merge_requests/#create-merge-request-pipeline ("Create MR Pipeline"): id, merge_request_iid (and `async`); 201
    # with the pipeline, 404 for an iid the project does not have
    ("mrs.pipelines_create", "POST", r"/projects/(?P<project>[^/]+)/merge_requests/(?P<iid>\d+)/pipelines", (),
     ("async",), ()),
]


class Governance:
    """State and routes; the host provides lock, origin, project_path, project_id and _author."""

    origin: str
    project_path: str
    project_id: int
    lock: Any

    def _init_governance(self) -> None:
        self.merge_requests: dict[int, dict[str, Any]] = {}
        self.versions: dict[int, list[dict[str, Any]]] = {}
        self.users: dict[str, int] = {}  # username -> id
        self.members: dict[int, int] = {}  # user id -> access level (direct, inherited or invited alike)
        self.approvals: dict[int, list[str]] = {}  # MR iid -> usernames, in the order they approved
        self._user_ids = itertools.count(101)
        self._version_ids = itertools.count(20_001)

    # state

    def add_merge_request(self, iid: int, source: str = "feature", target: str = "main", sha: str = "b" * 40,
                          author: str = "alice", source_project_id: int | None = None) -> None:
        """An open MR; `source_project_id` another project's id makes it a fork's."""
        self.merge_requests[iid] = {"iid": iid, "source_branch": source, "target_branch": target, "state": "opened",
                                    "title": f"MR {iid}", "description": "", "sha": sha, "author": author,
                                    "source_project_id": source_project_id or self.project_id}
        self.versions[iid] = []
        self.approvals[iid] = []
        self.push(iid, sha)

    def set_state(self, iid: int, state: str) -> None:
        assert state in MR_STATES, state
        self.merge_requests[iid]["state"] = state

    def push(self, iid: int, sha: str) -> None:
        """A push to the MR's source branch: `sha` is its head and a new diff version records it."""
        with self.lock:
            self.merge_requests[iid]["sha"] = sha
            self.versions[iid].append({"id": next(self._version_ids), "head_commit_sha": sha,
                                       "base_commit_sha": "a" * 40, "start_commit_sha": "a" * 40,
                                       "created_at": "2024-01-01T00:00:00.000Z", "merge_request_id": 9000 + iid,
                                       "state": "collected", "real_size": "1", "patch_id_sha": "c" * 40})

    def user_id(self, username: str) -> int:
        """The id of `username`, who exists from now on."""
        with self.lock:
            if username.lower() not in self.users:
                self.users[username.lower()] = next(self._user_ids)
            return self.users[username.lower()]

    def add_member(self, username: str, role: str) -> None:
        """`role`: a name of ACCESS_LEVELS (guest, reporter, developer, maintainer, owner, ...)."""
        self.members[self.user_id(username)] = ACCESS_LEVELS[role]

    def approve(self, iid: int, username: str) -> None:
        self.user_id(username)
        if username not in self.approvals[iid]:
            self.approvals[iid].append(username)

    def unapprove(self, iid: int, username: str) -> None:
        self.approvals[iid].remove(username)

    # routes

    def _users_list(self, seen: Seen, params: dict[str, str], account: Account) -> Answer:
        wanted = (seen.query.get("username") or [""])[0].lower()
        names = [name for name in sorted(self.users, key=self.users.__getitem__) if wanted in ("", name)]
        items, page, per_page, last = page_of(names, seen.query, default_per_page=20)
        return Answer(200, [self._author(name) for name in items], self._paging(seen, page, per_page, last,
                                                                                len(names)))

    def _members_all_get(self, seen: Seen, params: dict[str, str], account: Account) -> Answer:
        user = int(params["user"])
        level = self.members.get(user)
        name = next((n for n, i in self.users.items() if i == user), None)
        if level is None or name is None:
            return Answer(404, NOT_FOUND)
        return Answer(200, {**self._author(name), "access_level": level, "created_at": "2024-01-01T00:00:00.000Z",
                            "expires_at": None, "membership_state": "active"})

    def _mrs_approvals(self, seen: Seen, params: dict[str, str], account: Account) -> Answer:
        mr = self.merge_requests.get(int(params["iid"]))
        if mr is None:
            return Answer(404, NOT_FOUND)
        approved = self.approvals[mr["iid"]]
        return Answer(200, {"id": 9000 + mr["iid"], "iid": mr["iid"], "project_id": self.project_id,
                            "title": mr["title"], "description": mr["description"], "state": mr["state"],
                            "created_at": "2024-01-01T00:00:00.000Z", "updated_at": "2024-01-01T00:00:00.000Z",
                            "merge_status": "can_be_merged", "approved": bool(approved),
                            "approved_by": [{"user": self._author(name)} for name in approved],
                            "user_has_approved": account.username in approved, "user_can_approve": True})

    def _mrs_pipelines_create(self, seen: Seen, params: dict[str, str], account: Account) -> Answer:
        # A detached merge request pipeline on refs/merge-requests/<iid>/head (a merged results pipeline when the
        # project enables them), sourced merge_request_event, on the MR's latest commit.
        mr = self.merge_requests.get(int(params["iid"]))
        if mr is None:
            return Answer(404, NOT_FOUND)
        pipeline = self._pipeline({"ref": f"refs/merge-requests/{mr['iid']}/head", "mr": mr["iid"]},
                                  "merge_request_event")
        return Answer(201, {**pipeline, "sha": mr["sha"], "status": "pending", "before_sha": "0" * 40, "tag": False,
                            "user": self._author(account.username), "created_at": "2024-01-01T00:00:00.000Z",
                            "updated_at": "2024-01-01T00:00:00.000Z", "detailed_status": {"text": "pending"}})

    def _mrs_get(self, seen: Seen, params: dict[str, str], account: Account) -> Answer:
        # merge_requests/#get-single-mr: 404 for an iid the project does not have
        mr = self.merge_requests.get(int(params["iid"]))
        return Answer(200, self._mr(mr)) if mr else Answer(404, NOT_FOUND)

    # rendering

    def _mr(self, mr: dict[str, Any]) -> dict[str, Any]:
        fields = {k: v for k, v in mr.items() if k != "author"}
        return {**fields, "id": 9000 + mr["iid"], "project_id": self.project_id, "target_project_id": self.project_id,
                "author": self._author(mr["author"]), "draft": False,
                "merged_at": "2024-01-02T00:00:00.000Z" if mr["state"] == "merged" else None,
                "web_url": f"{self.origin}/{self.project_path}/-/merge_requests/{mr['iid']}"}

    def _author(self, username: str) -> dict[str, Any]:
        raise NotImplementedError

    def _pipeline(self, fields: dict[str, Any], source: str) -> dict[str, Any]:
        raise NotImplementedError

    def _paging(self, seen: Seen, page: int, per_page: int, last: int, total: int) -> dict[str, str]:
        raise NotImplementedError
