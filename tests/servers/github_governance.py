"""The governance half of the local GitHub server: pull requests and issues as discussions (authors, forks, closed
and merged states), collaborators and their roles, pull request reviews, and the deployment reviews of workflow
runs. Mixed into GitHubServer, whose request pipeline checks every request and answer against the contract.

Each route says which page of GitHub's REST docs (https://docs.github.com/rest/...) it follows.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from tests.servers.contract import CONTRACT, build, overlay
from tests.servers.fakehttp import Answer, Seen, page_of
from tests.servers.github_host import Host

if TYPE_CHECKING:
    from tests.servers.github_server import Account

# role -> the legacy base permission GitHub's permission endpoint reports beside role_name ("maintain" is
# mapped to "write" and "triage" to "read", as its description says).
BASE_PERMISSION = {"admin": "admin", "maintain": "write", "write": "write", "triage": "read", "read": "read"}
REVIEW_STATES = ("APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED", "PENDING")


class Governance(Host):
    """State and routes; the host (GitHubServer) provides lock, repository, api_url, origin, _user, _links,
    _stamp and the not-found answer."""

    def _init_governance(self) -> None:
        self.pulls: dict[int, dict[str, Any]] = {}
        self.issues: dict[int, dict[str, Any]] = {}  # plain issues (no pull request)
        self.users: set[str] = set()  # GitHub accounts that exist, collaborators or not
        self.collaborators: dict[str, tuple[str, str]] = {}  # login -> (role_name, base permission)
        self.private = False  # a public repository: every GitHub user may read it
        self.reviews: dict[int, list[dict[str, Any]]] = {}
        self.run_approvals: dict[int, list[dict[str, Any]]] = {}
        self._review_ids = itertools.count(80_001)

    # state

    def add_pull(self, number: int, head_sha: str, head_ref: str = "changes", base_ref: str = "master",
                 author: str = "octocat", head_repo: str = "") -> None:
        """An open pull request; `head_repo` another repository's full name makes it a fork's."""
        self.pulls[number] = {"number": number, "head_sha": head_sha, "head_ref": head_ref, "base_ref": base_ref,
                              "state": "open", "merged": False, "title": f"PR {number}", "body": "", "author": author,
                              "head_repo": head_repo or self.repository}
        self.users.add(author)

    def close_pull(self, number: int, merged: bool = False) -> None:
        self.pulls[number].update(state="closed", merged=merged)

    def add_issue(self, number: int, author: str = "octocat", state: str = "open") -> None:
        self.issues[number] = {"number": number, "state": state, "author": author, "title": f"Issue {number}"}
        self.users.add(author)

    def add_user(self, login: str) -> None:
        """A GitHub account that is not a collaborator of the repository."""
        self.users.add(login)

    def add_collaborator(self, login: str, role: str, permission: str = "") -> None:
        """`role`: read, triage, write, maintain, admin, or a custom role's name with its base `permission`."""
        self.users.add(login)
        self.collaborators[login.lower()] = (role, permission or BASE_PERMISSION[role])

    def add_review(self, number: int, login: str, state: str, commit: str = "") -> int:
        assert state in REVIEW_STATES, state
        self.users.add(login)
        with self.lock:
            review_id = next(self._review_ids)
            self.reviews.setdefault(number, []).append({"id": review_id, "login": login, "state": state,
                                                        "commit": commit or self.pulls[number]["head_sha"],
                                                        "at": self._stamp()})
        return review_id

    def dismiss_review(self, number: int, review_id: int) -> None:
        """As PUT .../reviews/{id}/dismissals does: the review itself turns DISMISSED."""
        next(r for r in self.reviews[number] if r["id"] == review_id)["state"] = "DISMISSED"

    def add_run(self, run_id: int) -> None:
        self.run_approvals.setdefault(run_id, [])

    def add_run_approval(self, run_id: int, login: str, environments: list[str], state: str = "approved",
                         comment: str = "") -> None:
        """A reviewer's decision on the deployment of run `run_id` to `environments` (one review may cover several)."""
        assert state in ("approved", "rejected", "pending"), state
        self.users.add(login)
        self.run_approvals.setdefault(run_id, []).append(
            {"login": login, "environments": environments, "state": state, "comment": comment})

    def is_discussion(self, number: int) -> bool:
        return number in self.pulls or number in self.issues

    # routes

    def _repos_get_collaborator_permission_level(self, seen: Seen, params: dict[str, str], account: Account
                                                 ) -> Answer:
        # collaborators/collaborators#get-repository-permissions-for-a-user: role_name and the legacy permission.
        # The description documents 200 and 404 only. GitHub answers 404 for a login with no account; an existing
        # user who is no collaborator gets 200 with the base access anybody has: "read" on a public repository,
        # "none" on a private one.
        login = unquote(params["username"])
        known = next((u for u in self.users if u.lower() == login.lower()), None)
        if known is None:
            return self._not_found()
        base = "none" if self.private else "read"
        role, permission = self.collaborators.get(login.lower(), (base, base))
        schema = CONTRACT.response_schema("repos/get-collaborator-permission-level", 200)
        user = overlay(self._user(known), {"role_name": role,
                                           "permissions": {"pull": permission != "none",
                                                           "push": permission in ("write", "admin"),
                                                           "admin": permission == "admin"}})
        return Answer(200, build(schema, {"permission": permission, "role_name": role, "user": user}))

    def _issues_get(self, seen: Seen, params: dict[str, str], account: Account) -> Answer:
        # issues/issues#get-an-issue: every pull request is an issue, told apart by its `pull_request` key; 404 for
        # a number that is neither.
        number = int(params["issue_number"])
        pull, issue = self.pulls.get(number), self.issues.get(number)
        if pull is None and issue is None:
            return self._not_found()
        schema = CONTRACT.response_schema("issues/get", 200)
        state: dict[str, Any]
        if pull is not None:
            html = f"{self.origin}/{self.repository}/pull/{number}"
            state = {"state": pull["state"], "title": pull["title"], "author": pull["author"], "pull_request": {
                "url": f"{self.api_url}/repos/{self.repository}/pulls/{number}", "html_url": html,
                "diff_url": f"{html}.diff", "patch_url": f"{html}.patch",
                "merged_at": "2024-01-02T00:00:00Z" if pull["merged"] else None}}
        else:
            assert issue is not None
            html = f"{self.origin}/{self.repository}/issues/{number}"
            state = {"state": issue["state"], "title": issue["title"], "author": issue["author"]}
        author = state.pop("author")
        return Answer(200, build(schema, {
            **state, "id": 7000 + number, "node_id": f"I_{number}", "number": number, "user": self._user(author),
            "url": f"{self.api_url}/repos/{self.repository}/issues/{number}", "html_url": html,
            "repository_url": f"{self.api_url}/repos/{self.repository}",
            "comments_url": f"{self.api_url}/repos/{self.repository}/issues/{number}/comments",
            "events_url": f"{self.api_url}/repos/{self.repository}/issues/{number}/events",
            "labels_url": f"{self.api_url}/repos/{self.repository}/issues/{number}/labels{{/name}}",
            "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z"}))

    def _pulls_list_reviews(self, seen: Seen, params: dict[str, str], account: Account) -> Answer:
        # pulls/reviews#list-reviews-for-a-pull-request: chronological, paginated (per_page default 30); a PENDING
        # review is seen by its author only.
        number = int(params["pull_number"])
        if number not in self.pulls:
            return self._not_found()
        visible = [r for r in self.reviews.get(number, []) if r["state"] != "PENDING" or r["login"] == account.login]
        items, page, _, last = page_of(visible, seen.query, default_per_page=30)
        schema = CONTRACT.response_schema("pulls/list-reviews", 200)["items"]
        html = f"{self.origin}/{self.repository}/pull/{number}"
        api = f"{self.api_url}/repos/{self.repository}/pulls/{number}"
        return Answer(200, [build(schema, {
            "id": r["id"], "node_id": f"PRR_{r['id']}", "user": self._user(r["login"]), "body": "",
            "state": r["state"], "commit_id": r["commit"], "html_url": f"{html}#pullrequestreview-{r['id']}",
            "pull_request_url": api, "submitted_at": r["at"], "author_association": "COLLABORATOR",
            "_links": {"html": {"href": f"{html}#pullrequestreview-{r['id']}"}, "pull_request": {"href": api}},
        }) for r in items], self._links(seen, page, last))

    def _actions_get_reviews_for_run(self, seen: Seen, params: dict[str, str], account: Account) -> Answer:
        # actions/workflow-runs#get-the-review-history-for-a-workflow-run: every review of the run's deployments,
        # not paginated; 404 for a run the repository does not have.
        run_id = int(params["run_id"])
        if run_id not in self.run_approvals:
            return self._not_found()
        schema = CONTRACT.response_schema("actions/get-reviews-for-run", 200)["items"]
        return Answer(200, [build(schema, {
            "state": a["state"], "comment": a["comment"], "user": self._user(a["login"]),
            "environments": [{"id": abs(hash(name)) % 10**6, "node_id": f"EN_{name}", "name": name,
                              "url": f"{self.api_url}/repos/{self.repository}/environments/{name}",
                              "html_url": f"{self.origin}/{self.repository}/deployments/activity_log?environments_"
                                          f"filter={name}"} for name in a["environments"]],
        }) for a in self.run_approvals[run_id]])

    # rendering

    def _pull(self, p: dict[str, Any], operation: str, status: int) -> dict[str, Any]:
        schema = CONTRACT.response_schema(operation, status)
        schema = schema.get("items", schema)
        repo_schema = schema["properties"]["head"]["properties"]["repo"]
        head_repo, base_repo = (build(repo_schema, self._repo_state(name))
                                for name in (p["head_repo"], self.repository))
        return build(schema, {
            "number": p["number"], "id": p["number"], "state": p["state"], "title": p["title"], "body": p["body"],
            "merged": p["merged"], "merged_at": "2024-01-02T00:00:00Z" if p["merged"] else None,
            "user": self._user(p["author"]),
            "url": f"{self.api_url}/repos/{self.repository}/pulls/{p['number']}",
            "html_url": f"{self.origin}/{self.repository}/pull/{p['number']}",
            "head": {"ref": p["head_ref"], "sha": p["head_sha"], "repo": head_repo,
                     "label": f"{p['head_repo'].split('/')[0]}:{p['head_ref']}"},
            "base": {"ref": p["base_ref"], "repo": base_repo}})

    def _repo_state(self, full_name: str) -> dict[str, Any]:
        owner, name = full_name.split("/")
        return {"full_name": full_name, "name": name, "owner": self._user(owner), "fork": full_name != self.repository,
                "url": f"{self.api_url}/repos/{full_name}", "html_url": f"{self.origin}/{full_name}"}

    def _not_found(self) -> Answer:
        return Answer(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest",
                            "status": "404"})

