"""The workflow runs of the local GitHub server: the runs each commit's checks started (by event, workflow file and
status) and their re-runs. Mixed into GitHubServer, whose request pipeline checks every request and answer against
the contract (tests/contracts/github-rest-subset.json).

Each route says which page of GitHub's REST docs (https://docs.github.com/rest/...) it follows.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from tests.servers.contract import CONTRACT, build
from tests.servers.fakehttp import Answer, Seen, page_of
from tests.servers.github_host import Host

if TYPE_CHECKING:
    from tests.servers.github_server import Account

RUN_STATUSES = ("queued", "in_progress", "waiting", "requested", "pending", "completed")
# What GitHub answers when a run that is not completed is asked to run again (cli/cli#9221 shows the 403).
ALREADY_RUNNING = "This workflow is already running"


class Runs(Host):
    """State and routes; the host (GitHubServer) provides lock, repository, api_url, origin, _user, _links, _stamp
    and the not-found answer."""

    def _init_runs(self) -> None:
        self.workflow_runs: dict[int, dict[str, Any]] = {}
        self.reruns: list[int] = []  # the run ids POSTed to .../rerun, in order
        self._run_ids = itertools.count(30_433_642)

    # state

    def add_workflow_run(self, head_sha: str, workflow: str = "ci.yml", status: str = "completed",
                         conclusion: str | None = "success", event: str = "pull_request",
                         head_branch: str = "changes") -> int:
        """A run of .github/workflows/`workflow` for `head_sha`, started by `event`; newer than every earlier one."""
        assert status in RUN_STATUSES, status
        with self.lock:
            run_id = next(self._run_ids)
            self.workflow_runs[run_id] = {
                "id": run_id, "head_sha": head_sha, "path": f".github/workflows/{workflow}", "name": workflow,
                "status": status, "conclusion": conclusion if status == "completed" else None, "event": event,
                "head_branch": head_branch, "run_attempt": 1, "created_at": self._stamp()}
            self.workflow_runs[run_id]["run_started_at"] = self.workflow_runs[run_id]["created_at"]
        return run_id

    def finish_workflow_run(self, run_id: int, conclusion: str = "success") -> None:
        self.workflow_runs[run_id].update(status="completed", conclusion=conclusion)

    # routes

    def _actions_list_workflow_runs_for_repo(self, seen: Seen, params: dict[str, str], account: Account) -> Answer:
        # actions/workflow-runs#list-workflow-runs-for-a-repository: newest first, filtered by head_sha, event,
        # branch and status (a conclusion or a status), paginated (per_page default 30, at most 100).
        query = {k: v[0] for k, v in seen.query.items()}
        wanted = [r for r in sorted(self.workflow_runs.values(), key=lambda r: r["id"], reverse=True)
                  if all(query.get(k, r[f]) == r[f] for k, f in (("head_sha", "head_sha"), ("event", "event"),
                                                                  ("branch", "head_branch")))
                  and query.get("status", r["status"]) in (r["status"], r["conclusion"])]
        items, page, _, last = page_of(wanted, seen.query, default_per_page=30)
        schema = CONTRACT.response_schema("actions/list-workflow-runs-for-repo", 200)
        item = schema["properties"]["workflow_runs"]["items"]
        return Answer(200, build(schema, {"total_count": len(wanted),
                                          "workflow_runs": [build(item, self._run_state(r)) for r in items]}),
                      self._links(seen, page, last))

    def _actions_re_run_workflow(self, seen: Seen, params: dict[str, str], account: Account) -> Answer:
        # actions/workflow-runs#re-run-a-workflow: 201 with an empty object; the run keeps its id and starts a new
        # attempt, queued again. A run that is not completed cannot be re-run (403).
        run = self.workflow_runs.get(int(params["run_id"]))
        if run is None:
            return self._not_found()
        if run["status"] != "completed":
            return Answer(403, {"message": ALREADY_RUNNING, "documentation_url": "https://docs.github.com/rest/"
                                "actions/workflow-runs#re-run-a-workflow", "status": "403"})
        run.update(status="queued", conclusion=None, run_attempt=run["run_attempt"] + 1,
                   run_started_at=self._stamp())
        self.reruns.append(run["id"])
        return Answer(201, {})

    # rendering

    def _run_state(self, r: dict[str, Any]) -> dict[str, Any]:
        api = f"{self.api_url}/repos/{self.repository}/actions/runs/{r['id']}"
        repo = {"id": 1296269, "node_id": "R_1", "name": self.repository.split("/")[1], "full_name": self.repository,
                "owner": self._user(self.repository.split("/")[0]), "html_url": f"{self.origin}/{self.repository}",
                "url": f"{self.api_url}/repos/{self.repository}"}
        return {**{k: r[k] for k in ("id", "head_sha", "path", "name", "status", "conclusion", "event", "head_branch",
                                     "run_attempt", "created_at", "run_started_at")},
                "node_id": f"WFR_{r['id']}", "run_number": r["id"] % 1000, "display_title": f"run {r['id']}",
                "workflow_id": abs(hash(r["path"])) % 10**6, "updated_at": r["run_started_at"],
                "html_url": f"{self.origin}/{self.repository}/actions/runs/{r['id']}", "url": api,
                "jobs_url": f"{api}/jobs", "logs_url": f"{api}/logs", "cancel_url": f"{api}/cancel",
                "rerun_url": f"{api}/rerun", "artifacts_url": f"{api}/artifacts",
                "check_suite_url": f"{self.api_url}/repos/{self.repository}/check-suites/{r['id']}",
                "workflow_url": f"{self.api_url}/repos/{self.repository}/actions/workflows/{r['name']}",
                "pull_requests": [], "head_commit": None,  # the bot asks with exclude_pull_requests=true
                "head_repository": repo, "repository": repo}

