"""A local GitHub REST API for tests: real state (comments, statuses, check runs, pull requests; issues, reviews,
collaborators and run approvals in github_governance; workflow runs and their re-runs in github_runs), Link-header
pagination, scripted faults, and a contract check of EVERY request (path parameters, query, body) and EVERY
response against tests/contracts/ (GitHub's own OpenAPI description, see the LICENSE file there).

It serves under /api/v3, as GitHub Enterprise Server does, so the bot must honour GITHUB_API_URL's path.
Accounts are tokens: a user token may read GET /user; an installation token (GITHUB_TOKEN) may not, as on
GitHub; a read-only token gets 403 on every write; an expired one gets 401; `denied` names operations the token
lacks the permission for (403, as a job whose `permissions:` leave out e.g. `actions: read`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from tests.servers.contract import CONTRACT, build
from tests.servers.fakehttp import Answer, FakeServer, Seen, page_of
from tests.servers.github_governance import Governance
from tests.servers.github_runs import Runs

PREFIX = "/api/v3"
DOCS = "https://docs.github.com/rest"
NOT_ACCESSIBLE = "Resource not accessible by integration"
SECONDARY_LIMIT = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
_WRITES = ("POST", "PATCH", "PUT", "DELETE")


@dataclass
class Account:
    login: str
    kind: str = "user"  # user | installation
    write: bool = True
    expired: bool = False
    denied: frozenset[str] = frozenset()  # operationIds answered 403

    @property
    def type(self) -> str:
        return "Bot" if self.login.endswith("[bot]") else "User"


def error(status: int, message: str, **extra: Any) -> Answer:
    return Answer(status, {"message": message, "documentation_url": DOCS, **extra})


class GitHubServer(FakeServer, Governance, Runs):
    def __init__(self, repository: str = "Codertocat/Hello-World") -> None:
        super().__init__()
        self.repository = repository
        self.accounts: dict[str, Account] = {}
        self._init_governance()
        self._init_runs()
        self.comments: dict[int, dict[str, Any]] = {}
        self.statuses: list[dict[str, Any]] = []
        self.check_runs: list[dict[str, Any]] = []
        self.dispatches: list[dict[str, Any]] = []
        self._ids = itertools.count(1001)
        self._clock = itertools.count(0)

    @property
    def api_url(self) -> str:
        return self.origin + PREFIX

    def add_account(self, token: str, login: str, kind: str = "user", write: bool = True,
                    expired: bool = False, denied: tuple[str, ...] = ()) -> Account:
        self.accounts[token] = Account(login, kind, write, expired, frozenset(denied))
        self.users.add(login)
        return self.accounts[token]

    def add_comment(self, number: int, body: str, login: str) -> int:
        with self.lock:
            comment_id = next(self._ids)
            stamp = self._stamp()
            self.comments[comment_id] = {"id": comment_id, "issue": number, "body": body, "login": login,
                                         "created_at": stamp, "updated_at": stamp}
        return comment_id

    def edit_comment(self, comment_id: int, body: str) -> None:
        """As PATCH .../issues/comments/{id} by anybody with write access does: new text, a later updated_at."""
        with self.lock:
            self.comments[comment_id].update(body=body, updated_at=self._stamp())

    def comments_on(self, number: int) -> list[dict[str, Any]]:
        return [c for c in sorted(self.comments.values(), key=lambda c: c["id"]) if c["issue"] == number]

    def statuses_for(self, sha: str) -> list[dict[str, Any]]:
        return [s for s in self.statuses if s["sha"] == sha]

    def add_status(self, sha: str, context: str, target_url: str, login: str = "github-actions[bot]",
                   state: str = "success") -> None:
        """A status some earlier run (or anybody with write access) set on `sha`."""
        with self.lock:
            self.statuses.append({"id": next(self._ids), "sha": sha, "state": state, "creator": login,
                                  "description": "earlier", "target_url": target_url, "context": context,
                                  "created_at": self._stamp()})

    # the request pipeline

    def handle(self, seen: Seen) -> Answer:
        if not seen.path.startswith(PREFIX + "/"):
            self.violation(f"{seen.method} {seen.path}: outside the API prefix {PREFIX} (GITHUB_API_URL ignored?)")
            return error(404, "Not Found")
        found = CONTRACT.route(seen.method, seen.path.removeprefix(PREFIX))
        if found is None:
            self.violation(f"{seen.method} {seen.path}: no such operation in the contract")
            return error(404, "Not Found")
        operation, params = found
        seen.operation = operation
        for problem in CONTRACT.check_request(operation, params, seen.query, seen.body):
            self.violation(f"{operation}: request: {problem}")
        answer = self._answer(seen, operation, params)
        for problem in CONTRACT.check_response(operation, answer.status, answer.body):
            self.violation(f"{operation}: response {answer.status}: {problem}")
        return answer

    def _answer(self, seen: Seen, operation: str, params: dict[str, str]) -> Answer:
        auth = seen.headers.get("authorization", "")
        token = auth.split(" ", 1)[1] if " " in auth else ""
        account = self.accounts.get(token)
        if not token:
            return error(401, "Requires authentication")
        if account is None or account.expired:
            return error(401, "Bad credentials")
        if "owner" in params and f"{params['owner']}/{params['repo']}" != self.repository:
            return error(404, "Not Found")
        fault = self.take_fault(operation)
        if fault is not None:
            return fault
        if (seen.method in _WRITES and not account.write) or operation in account.denied:
            return error(403, NOT_ACCESSIBLE)
        handler = getattr(self, "_" + operation.replace("/", "_").replace("-", "_"), None)
        if handler is None:
            self.violation(f"{operation}: the bot called an operation this fake does not serve")
            return error(404, "Not Found")
        with self.lock:
            answer: Answer = handler(seen, params, account)
        return answer

    # operations

    def _users_get_authenticated(self, seen: Seen, params: dict[str, str], account: Account) -> Answer:
        if account.kind == "installation":
            return error(403, NOT_ACCESSIBLE)
        user = build(CONTRACT.response_schema("users/get-authenticated", 200), self._user(account.login))
        return Answer(200, user)

    def _issues_list_comments(self, seen: Seen, params: dict[str, str], account: Account) -> Answer:
        number = int(params["issue_number"])
        if not self.is_discussion(number):
            return error(404, "Not Found")
        items, page, _, last = page_of(self.comments_on(number), seen.query, default_per_page=30)
        return Answer(200, [self._comment(c) for c in items], self._links(seen, page, last))

    def _issues_create_comment(self, seen: Seen, params: dict[str, str], account: Account) -> Answer:
        number = int(params["issue_number"])
        if not self.is_discussion(number):
            return error(404, "Not Found")
        body = str(seen.body.get("body", "")) if isinstance(seen.body, dict) else ""
        if len(body) > 65_536:
            return self._too_long()
        return Answer(201, self._comment(self.comments[self.add_comment(number, body, account.login)]))

    def _issues_update_comment(self, seen: Seen, params: dict[str, str], account: Account) -> Answer:
        comment = self.comments.get(int(params["comment_id"]))
        if comment is None:
            return error(404, "Not Found")
        body = str(seen.body.get("body", "")) if isinstance(seen.body, dict) else ""
        if len(body) > 65_536:
            return self._too_long()
        comment.update(body=body, updated_at=self._stamp())
        return Answer(200, self._comment(comment))

    def _issues_get_comment(self, seen: Seen, params: dict[str, str], account: Account) -> Answer:
        comment = self.comments.get(int(params["comment_id"]))
        return Answer(200, self._comment(comment)) if comment else error(404, "Not Found")

    def _repos_create_commit_status(self, seen: Seen, params: dict[str, str], account: Account) -> Answer:
        sha = params["sha"]
        if len(sha) != 40 or any(ch not in "0123456789abcdef" for ch in sha):
            return error(422, f"No commit found for SHA: {sha}")
        body = seen.body if isinstance(seen.body, dict) else {}
        if len(body.get("description") or "") > 140:
            return error(422, "Validation Failed", errors=[{"resource": "Status", "code": "custom",
                                                            "field": "description", "message": "too long"}])
        status = {"id": next(self._ids), "sha": sha, "state": body.get("state"), "creator": account.login,
                  "description": body.get("description"), "target_url": body.get("target_url"),
                  "context": body.get("context", "default"), "created_at": self._stamp()}
        self.statuses.append(status)
        schema = CONTRACT.response_schema("repos/create-commit-status", 201)
        return Answer(201, build(schema, {
            **{k: status[k] for k in ("id", "state", "description", "target_url", "context", "created_at")},
            "updated_at": status["created_at"], "node_id": f"SC_{status['id']}", "creator": self._user(account.login),
            "url": f"{self.api_url}/repos/{self.repository}/statuses/{sha}"}))

    def _repos_get_combined_status_for_ref(self, seen: Seen, params: dict[str, str], account: Account) -> Answer:
        # https://docs.github.com/rest/commits/statuses#get-the-combined-status-for-a-specific-reference: the
        # latest status of each context, newest first, paginated (per_page default 30, at most 100).
        sha = params["ref"]
        if len(sha) != 40 or any(ch not in "0123456789abcdef" for ch in sha):
            return error(404, f"No commit found for SHA: {sha}")
        latest: dict[str, dict[str, Any]] = {}
        for status in reversed(self.statuses_for(sha)):
            latest.setdefault(status["context"], status)
        states = {s["state"] for s in latest.values()}
        state = ("failure" if states & {"failure", "error"} else "pending" if not states or "pending" in states
                 else "success")
        items, _, _, _ = page_of(list(latest.values()), seen.query, default_per_page=30)
        schema = CONTRACT.response_schema("repos/get-combined-status-for-ref", 200)
        item_schema = schema["properties"]["statuses"]["items"]
        statuses = [build(item_schema, {
            **{k: s[k] for k in ("id", "state", "description", "target_url", "context", "created_at")},
            "updated_at": s["created_at"], "node_id": f"SC_{s['id']}", "avatar_url": None,
            "url": f"{self.api_url}/repos/{self.repository}/statuses/{sha}"}) for s in items]
        return Answer(200, build(schema, {
            "state": state, "sha": sha, "total_count": len(latest), "statuses": statuses,
            "repository": {"full_name": self.repository, "name": self.repository.split("/")[1]},
            "commit_url": f"{self.api_url}/repos/{self.repository}/commits/{sha}",
            "url": f"{self.api_url}/repos/{self.repository}/commits/{sha}/status"}))

    def _checks_create(self, seen: Seen, params: dict[str, str], account: Account) -> Answer:
        if account.kind != "installation":
            return error(403, "You must authenticate via a GitHub App.")
        body = seen.body if isinstance(seen.body, dict) else {}
        run_id = next(self._ids)
        self.check_runs.append({"id": run_id, **body})
        return Answer(201, build(CONTRACT.response_schema("checks/create", 201), {
            "id": run_id, "name": body.get("name", ""), "head_sha": body.get("head_sha", ""),
            "status": body.get("status", "queued"), "conclusion": body.get("conclusion"), "check_suite": {"id": run_id},
            "html_url": f"{self.origin}/{self.repository}/runs/{run_id}",
            "url": f"{self.api_url}/repos/{self.repository}/check-runs/{run_id}"}))

    def _pulls_create(self, seen: Seen, params: dict[str, str], account: Account) -> Answer:
        body = seen.body if isinstance(seen.body, dict) else {}
        owner = self.repository.split("/")[0]
        for pull in self.pulls.values():
            if pull["state"] == "open" and (pull["head_ref"], pull["base_ref"]) == (body["head"], body["base"]):
                return error(422, "Validation Failed", errors=[{"resource": "PullRequest", "code": "custom",
                             "message": f"A pull request already exists for {owner}:{body['head']}."}])
        number = max(self.pulls, default=0) + 1
        self.add_pull(number, "0" * 40, body["head"], body["base"])
        self.pulls[number].update(title=body.get("title", ""), body=body.get("body", ""))
        return Answer(201, self._pull(self.pulls[number], "pulls/create", 201))

    def _pulls_list(self, seen: Seen, params: dict[str, str], account: Account) -> Answer:
        state = (seen.query.get("state") or ["open"])[0]
        head = (seen.query.get("head") or [""])[0].split(":")[-1]
        base = (seen.query.get("base") or [""])[0]
        pulls = [p for n, p in sorted(self.pulls.items()) if state in ("all", p["state"])
                 and head in ("", p["head_ref"]) and base in ("", p["base_ref"])]
        items, page, _, last = page_of(pulls, seen.query, default_per_page=30)
        return Answer(200, [self._pull(p, "pulls/list", 200) for p in items], self._links(seen, page, last))

    def _pulls_get(self, seen: Seen, params: dict[str, str], account: Account) -> Answer:
        pull = self.pulls.get(int(params["pull_number"]))
        return Answer(200, self._pull(pull, "pulls/get", 200)) if pull else error(404, "Not Found")

    def _actions_create_workflow_dispatch(self, seen: Seen, params: dict[str, str], account: Account) -> Answer:
        self.dispatches.append({"workflow": params["workflow_id"], **(seen.body or {})})
        return Answer(204)

    # rendering

    def _stamp(self) -> str:
        seconds = next(self._clock)
        return f"2024-01-01T{seconds // 3600 % 24:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}Z"

    def _user(self, login: str) -> dict[str, Any]:
        user_schema = CONTRACT.response_schema("issues/get-comment", 200)["properties"]["user"]
        kind = "Bot" if login.endswith("[bot]") else "User"
        return build(user_schema, nullable=False, state={
            "login": login, "id": abs(hash(login)) % 10**8, "node_id": f"U_{login}", "type": kind,
            "url": f"{self.api_url}/users/{login}", "html_url": f"{self.origin}/{login}"})

    def _comment(self, c: dict[str, Any]) -> dict[str, Any]:
        schema = CONTRACT.response_schema("issues/get-comment", 200)
        kind = "pull" if c["issue"] in self.pulls else "issues"
        return build(schema, {
            "id": c["id"], "node_id": f"IC_{c['id']}", "body": c["body"], "user": self._user(c["login"]),
            "url": f"{self.api_url}/repos/{self.repository}/issues/comments/{c['id']}",
            "html_url": f"{self.origin}/{self.repository}/{kind}/{c['issue']}#issuecomment-{c['id']}",
            "issue_url": f"{self.api_url}/repos/{self.repository}/issues/{c['issue']}",
            "created_at": c["created_at"], "updated_at": c["updated_at"], "author_association": "NONE"})

    def _links(self, seen: Seen, page: int, last: int) -> dict[str, str]:
        def url(n: int) -> str:
            query = {k: v[0] for k, v in seen.query.items()}
            query["page"] = str(n)
            return f"{self.origin}{seen.path}?{urlencode(query)}"

        rels = [(page + 1, "next"), (last, "last")] if page < last else []
        rels += [(page - 1, "prev"), (1, "first")] if page > 1 else []
        return {"Link": ", ".join(f'<{url(n)}>; rel="{rel}"' for n, rel in rels)} if rels else {}

    def _too_long(self) -> Answer:
        return error(422, "Validation Failed", errors=[{"resource": "IssueComment", "code": "custom",
                                                        "field": "body", "message": "body is too long (maximum is "
                                                        "65536 characters)"}])
