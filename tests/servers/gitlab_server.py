"""A local GitLab REST API (v4) for tests, shaped from GitLab's API docs: merge request notes with GitLab's
pagination headers (X-Page, X-Per-Page, X-Next-Page, X-Prev-Page, X-Total, X-Total-Pages and Link), commit
statuses, pipelines (create and trigger), merge requests and GET /user; users, members and approvals in
gitlab_governance; scripted faults like the GitHub one.

Every request is checked: a known route, PRIVATE-TOKEN or JOB-TOKEN authentication, the documented parameters
(required ones present, no unknown ones, enums respected); a failed check is recorded as a violation.
A job token may not write notes or statuses (403), as on GitLab.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlencode

from tests.servers.fakehttp import Answer, FakeServer, Seen, page_of
from tests.servers.gitlab_governance import ROUTES as GOVERNANCE_ROUTES
from tests.servers.gitlab_governance import Governance

PREFIX = "/api/v4"
STATUS_STATES = ("pending", "running", "success", "failed", "canceled", "skipped")
# route name, method, path pattern, required body fields, optional body fields (None = anything), query fields
_ROUTES: list[tuple[str, str, str, tuple[str, ...], tuple[str, ...] | None, tuple[str, ...]]] = [
    ("user", "GET", r"/user", (), (), ()),
    ("notes.list", "GET", r"/projects/(?P<project>[^/]+)/merge_requests/(?P<iid>\d+)/notes", (), (),
     ("page", "per_page", "sort", "order_by", "pagination")),
    ("notes.create", "POST", r"/projects/(?P<project>[^/]+)/merge_requests/(?P<iid>\d+)/notes", ("body",),
     ("internal", "created_at", "merge_request_diff_head_sha"), ()),
    # doc/api/notes.md "Get single merge request note": id, merge_request_iid, note_id; 404 for a note of another MR
    ("notes.get", "GET", r"/projects/(?P<project>[^/]+)/merge_requests/(?P<iid>\d+)/notes/(?P<note>\d+)", (), (), ()),
    ("notes.update", "PUT", r"/projects/(?P<project>[^/]+)/merge_requests/(?P<iid>\d+)/notes/(?P<note>\d+)",
     ("body",), (), ()),
    ("statuses.create", "POST", r"/projects/(?P<project>[^/]+)/statuses/(?P<sha>[^/]+)", ("state",),
     ("ref", "name", "context", "target_url", "description", "coverage", "pipeline_id"), ()),
    # doc/api/commits.md "List the statuses of a commit": sha, ref, stage, name, pipeline_id, order_by (id,
    # pipeline_id), sort (asc, desc), all; paginated. The latest status of each name unless all=true.
    ("statuses.list", "GET", r"/projects/(?P<project>[^/]+)/repository/commits/(?P<sha>[^/]+)/statuses", (), (),
     ("ref", "stage", "name", "pipeline_id", "order_by", "sort", "all", "page", "per_page")),
    # doc/api/merge_requests.md "Get merge request diff versions": id, merge_request_iid; newest first, paginated
    ("mrs.versions", "GET", r"/projects/(?P<project>[^/]+)/merge_requests/(?P<iid>\d+)/versions", (), (),
     ("page", "per_page")),
    ("pipelines.create", "POST", r"/projects/(?P<project>[^/]+)/pipeline", ("ref",), ("variables", "inputs"), ()),
    ("pipelines.trigger", "POST", r"/projects/(?P<project>[^/]+)/trigger/pipeline", ("ref", "token"), None, ()),
    ("mrs.create", "POST", r"/projects/(?P<project>[^/]+)/merge_requests",
     ("source_branch", "target_branch", "title"), ("description", "remove_source_branch", "labels"), ()),
    ("mrs.get", "GET", r"/projects/(?P<project>[^/]+)/merge_requests/(?P<iid>\d+)", (), (), ()),
    *GOVERNANCE_ROUTES,
    ("mrs.list", "GET", r"/projects/(?P<project>[^/]+)/merge_requests", (), (),
     ("source_branch", "target_branch", "state", "page", "per_page", "pagination")),
]
_COMPILED = [(n, m, re.compile(f"^{p}$"), req, opt, q) for n, m, p, req, opt, q in _ROUTES]


@dataclass
class Account:
    username: str
    job_token: bool = False
    write: bool = True
    expired: bool = False


class GitLabServer(FakeServer, Governance):
    def __init__(self, project_path: str = "group/project", project_id: int = 42) -> None:
        super().__init__()
        self.project_path, self.project_id = project_path, project_id
        self.accounts: dict[str, Account] = {}
        self._init_governance()
        self.notes: dict[int, dict[str, Any]] = {}
        self.statuses: list[dict[str, Any]] = []
        self.pipelines: list[dict[str, Any]] = []
        self._ids = itertools.count(501)

    @property
    def url(self) -> str:
        return self.origin

    def add_account(self, token: str, username: str, job_token: bool = False, write: bool = True,
                    expired: bool = False) -> None:
        self.accounts[token] = Account(username, job_token, write, expired)

    def add_status(self, sha: str, name: str, target_url: str, username: str = "project_42_bot_1") -> None:
        """A status some earlier run (or anybody with the Developer role) set on `sha`."""
        with self.lock:
            self.statuses.append({"id": next(self._ids), "sha": sha, "status": "success", "name": name,
                                  "target_url": target_url, "description": "earlier", "author": self._author(username),
                                  "created_at": "2024-01-01T00:00:00.000Z", "ref": None, "allow_failure": False,
                                  "coverage": None})

    def add_note(self, iid: int, body: str, username: str, system: bool = False) -> int:
        with self.lock:
            note_id = next(self._ids)
            self.notes[note_id] = {"id": note_id, "iid": iid, "body": body, "username": username, "system": system,
                                   "created_at": "2024-01-01T00:00:00.000Z", "updated_at": "2024-01-01T00:00:00.000Z"}
        return note_id

    def edit_note(self, note_id: int, body: str) -> None:
        """As PUT .../notes/:note_id does: new text, a later updated_at."""
        with self.lock:
            self.notes[note_id].update(body=body, updated_at="2024-01-02T00:00:00.000Z")

    def notes_on(self, iid: int) -> list[dict[str, Any]]:
        return [n for n in sorted(self.notes.values(), key=lambda n: n["id"]) if n["iid"] == iid]

    def handle(self, seen: Seen) -> Answer:
        route = self._route(seen)
        if route is None:
            return Answer(404, {"error": "404 Not Found"})
        name, params = route
        seen.operation = name
        token = seen.headers.get("private-token") or seen.headers.get("job-token") or ""
        account = self.accounts.get(token)
        if account is None or account.expired:
            return Answer(401, {"message": "401 Unauthorized"})
        if account.job_token != ("job-token" in seen.headers):
            self.violation(f"{name}: token sent in the wrong header")
        if "project" in params and unquote(params["project"]) not in (self.project_path, str(self.project_id)):
            return Answer(404, {"message": "404 Project Not Found"})
        fault = self.take_fault(name)
        if fault is not None:
            return fault
        if seen.method != "GET" and name != "pipelines.trigger" and (account.job_token or not account.write):
            return Answer(403, {"message": "403 Forbidden"})
        with self.lock:
            answer: Answer = getattr(self, "_" + name.replace(".", "_"))(seen, params, account)
        return answer

    def _route(self, seen: Seen) -> tuple[str, dict[str, str]] | None:
        path = seen.path.removeprefix(PREFIX)
        if not seen.path.startswith(PREFIX + "/"):
            self.violation(f"{seen.method} {seen.path}: outside {PREFIX}")
            return None
        for name, method, pattern, required, optional, query in _COMPILED:
            match = pattern.match(path)
            if match and method == seen.method:
                self._check(name, seen, required, optional, query)
                return name, match.groupdict()
        self.violation(f"{seen.method} {seen.path}: not an endpoint this server knows from GitLab's docs")
        return None

    def _check(self, name: str, seen: Seen, required: tuple[str, ...], optional: tuple[str, ...] | None,
               query: tuple[str, ...]) -> None:
        fields = _form(seen.body)
        for key in required:
            if key not in fields:
                self.violation(f"{name}: required parameter {key!r} is missing")
        for key in fields:
            if optional is not None and key not in required and key not in optional:
                self.violation(f"{name}: parameter {key!r} is not documented")
        for key, values in seen.query.items():
            if key not in query:
                self.violation(f"{name}: query parameter {key!r} is not documented")
            elif key in ("page", "per_page") and not (values[0].isdigit() and 0 < int(values[0]) <= 100):
                self.violation(f"{name}: {key}={values[0]!r} is not an integer in 1..100")
        if name == "statuses.create" and fields.get("state") not in STATUS_STATES:
            self.violation(f"{name}: state {fields.get('state')!r} is not one of {STATUS_STATES}")

    # endpoints

    def _user(self, seen: Seen, params: dict[str, str], account: Account) -> Answer:
        if account.job_token:
            return Answer(401, {"message": "401 Unauthorized"})
        return Answer(200, self._author(account.username))

    def _notes_list(self, seen: Seen, params: dict[str, str], account: Account) -> Answer:
        iid = int(params["iid"])
        if iid not in self.merge_requests:
            return Answer(404, {"message": "404 Not found"})
        notes = self.notes_on(iid)
        if (seen.query.get("sort") or ["desc"])[0] == "desc":
            notes.reverse()  # GitLab's default order is newest first
        items, page, per_page, last = page_of(notes, seen.query, default_per_page=20)
        return Answer(200, [self._note(n) for n in items], self._paging(seen, page, per_page, last, len(notes)))

    def _notes_create(self, seen: Seen, params: dict[str, str], account: Account) -> Answer:
        iid = int(params["iid"])
        if iid not in self.merge_requests:
            return Answer(404, {"message": "404 Not found"})
        body = str(_form(seen.body).get("body", ""))
        if len(body) > 1_000_000:
            return Answer(400, {"message": {"note": ["is too long (maximum is 1000000 characters)"]}})
        return Answer(201, self._note(self.notes[self.add_note(iid, body, account.username)]))

    def _notes_get(self, seen: Seen, params: dict[str, str], account: Account) -> Answer:
        note = self.notes.get(int(params["note"]))
        if int(params["iid"]) not in self.merge_requests or note is None or note["iid"] != int(params["iid"]):
            return Answer(404, {"message": "404 Not found"})
        return Answer(200, self._note(note))

    def _notes_update(self, seen: Seen, params: dict[str, str], account: Account) -> Answer:
        note = self.notes.get(int(params["note"]))
        if note is None or note["iid"] != int(params["iid"]):
            return Answer(404, {"message": "404 Note Not Found"})
        if note["username"] != account.username:
            return Answer(403, {"message": "403 Forbidden"})
        note["body"], note["updated_at"] = str(_form(seen.body)["body"]), "2024-01-02T00:00:00.000Z"
        return Answer(200, self._note(note))

    def _statuses_create(self, seen: Seen, params: dict[str, str], account: Account) -> Answer:
        fields, sha = _form(seen.body), params["sha"]
        name = str(fields.get("name") or fields.get("context") or "default")
        last = next((s for s in reversed(self.statuses) if s["sha"] == sha and s["name"] == name), None)
        if last is not None and last["status"] == fields["state"]:
            return Answer(400, {"message": f"Cannot transition status via :{fields['state']} from :{last['status']}"})
        status = {"id": next(self._ids), "sha": sha, "status": fields["state"], "name": name,
                  "target_url": fields.get("target_url"), "description": fields.get("description"),
                  "author": self._author(account.username), "created_at": "2024-01-01T00:00:00.000Z",
                  "ref": fields.get("ref"), "allow_failure": False, "coverage": None}
        self.statuses.append(status)
        return Answer(201, status)

    def _statuses_list(self, seen: Seen, params: dict[str, str], account: Account) -> Answer:
        query = {k: v[0] for k, v in seen.query.items()}
        found = [st for st in self.statuses if st["sha"] == params["sha"]
                 and all(st.get(k) == query[k] for k in ("name", "ref") if k in query)]
        if query.get("all") != "true":
            latest: dict[str, dict[str, Any]] = {}
            for status in found:
                latest[status["name"]] = status  # the newest of each name
            found = sorted(latest.values(), key=lambda st: st["id"])
        if query.get("sort") == "desc":
            found.reverse()
        items, page, per_page, last = page_of(found, seen.query, default_per_page=20)
        return Answer(200, items, self._paging(seen, page, per_page, last, len(found)))

    def _mrs_versions(self, seen: Seen, params: dict[str, str], account: Account) -> Answer:
        iid = int(params["iid"])
        if iid not in self.merge_requests:
            return Answer(404, {"message": "404 Not found"})
        versions = list(reversed(self.versions[iid]))
        items, page, per_page, last = page_of(versions, seen.query, default_per_page=20)
        return Answer(200, items, self._paging(seen, page, per_page, last, len(versions)))

    def _pipelines_create(self, seen: Seen, params: dict[str, str], account: Account) -> Answer:
        return Answer(201, self._pipeline(_form(seen.body), "api"))

    def _pipelines_trigger(self, seen: Seen, params: dict[str, str], account: Account) -> Answer:
        return Answer(201, self._pipeline(_form(seen.body), "trigger"))

    def _mrs_create(self, seen: Seen, params: dict[str, str], account: Account) -> Answer:
        fields = _form(seen.body)
        for mr in self.merge_requests.values():
            if mr["state"] == "opened" and (mr["source_branch"], mr["target_branch"]) == (
                    fields["source_branch"], fields["target_branch"]):
                return Answer(409, {"message": [f"Another open merge request already exists for this source branch: "
                                                f"!{mr['iid']}"]})
        iid = max(self.merge_requests, default=0) + 1
        self.add_merge_request(iid, str(fields["source_branch"]), str(fields["target_branch"]))
        return Answer(201, self._mr(self.merge_requests[iid]))

    def _mrs_list(self, seen: Seen, params: dict[str, str], account: Account) -> Answer:
        want = {k: v[0] for k, v in seen.query.items() if k in ("source_branch", "target_branch", "state")}
        found = [mr for _, mr in sorted(self.merge_requests.items()) if all(mr.get(k) == v for k, v in want.items())]
        items, page, per_page, last = page_of(found, seen.query, default_per_page=20)
        return Answer(200, [self._mr(mr) for mr in items], self._paging(seen, page, per_page, last, len(found)))

    # rendering

    def _author(self, username: str) -> dict[str, Any]:
        return {"id": self.user_id(username), "username": username, "name": username, "state": "active",
                "avatar_url": None, "web_url": f"{self.origin}/{username}"}

    def _note(self, n: dict[str, Any]) -> dict[str, Any]:
        return {"id": n["id"], "type": None, "body": n["body"], "author": self._author(n["username"]),
                "created_at": n["created_at"], "updated_at": n["updated_at"],
                "system": n["system"], "noteable_id": n["iid"], "noteable_type": "MergeRequest",
                "noteable_iid": n["iid"], "project_id": self.project_id, "resolvable": False, "confidential": False,
                "internal": False}

    def _pipeline(self, fields: dict[str, Any], source: str) -> dict[str, Any]:
        pipeline_id = next(self._ids)
        self.pipelines.append({"id": pipeline_id, "source": source, **fields})
        return {"id": pipeline_id, "iid": len(self.pipelines), "project_id": self.project_id, "sha": "0" * 40,
                "ref": fields.get("ref"), "status": "created", "source": source,
                "web_url": f"{self.origin}/{self.project_path}/-/pipelines/{pipeline_id}"}

    def _paging(self, seen: Seen, page: int, per_page: int, last: int, total: int) -> dict[str, str]:
        def url(n: int) -> str:
            query = {k: v[0] for k, v in seen.query.items()}
            query.update(page=str(n), per_page=str(per_page))
            return f"{self.origin}{seen.path}?{urlencode(query)}"

        rels = ([(page + 1, "next")] if page < last else []) + ([(page - 1, "prev")] if page > 1 else [])
        rels += [(1, "first"), (last, "last")]
        return {"X-Page": str(page), "X-Per-Page": str(per_page), "X-Total": str(total), "X-Total-Pages": str(last),
                "X-Next-Page": str(page + 1) if page < last else "", "X-Prev-Page": str(page - 1) if page > 1 else "",
                "Link": ", ".join(f'<{url(n)}>; rel="{rel}"' for n, rel in rels)}


def _form(body: Any) -> dict[str, Any]:
    """The request's parameters: python-gitlab sends JSON; the trigger API also takes form fields."""
    if isinstance(body, dict):
        return body
    if isinstance(body, str) and body:
        from urllib.parse import parse_qs

        return {k: v[0] for k, v in parse_qs(body).items()}
    return {}
