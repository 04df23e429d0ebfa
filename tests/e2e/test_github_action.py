"""The GitHub Action end to end: `act` (host mode, offline) runs the ready-to-copy workflows/pr-check.yml and
workflows/promote.yml, with real event payloads, in a real git repository holding the quickstart, against the local
GitHub server and the real mlflow server. The action comes from a copy of this repository (as `uses:` would fetch
it), and installs the bot with pip from the session's wheelhouse."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_bot.registry import alias_holder, open_registry
from tests.e2e.runners import Run, run_act
from tests.helpers.e2e import ROOT, Repo, git, make_repo, spying_prepare
from tests.servers.github_server import GitHubServer
from tests.servers.mlflow_server import MlflowServer

pytestmark = [pytest.mark.e2e, pytest.mark.mlflow]

EVENTS = ROOT / "tests" / "fixtures" / "github-events"
REPOSITORY = "Codertocat/Hello-World"  # the repository of the fixture payloads
PR = 2  # their pull request
TOKEN = "ghs_" + "Ab3Cd4" * 6  # the workflow's GITHUB_TOKEN (an installation token)
READ_ONLY = "ghs_" + "Rr0Oo1" * 6  # what a fork's pull request gets
WORKFLOWS = ("pr-check.yml", "promote.yml", "release-gate.yml", "fork-check.yml", "fork-report.yml", "drift.yml")
FORK_PR = 3


Act = Callable[..., Run]


@pytest.fixture(scope="module")
def github() -> Iterator[GitHubServer]:
    server = GitHubServer(REPOSITORY).start()
    server.add_account(TOKEN, "github-actions[bot]", kind="installation")
    server.add_account(READ_ONLY, "github-actions[bot]", kind="installation", write=False)
    yield server
    server.stop()
    assert server.violations == [], "the bot broke GitHub's API contract"


def make_project(root: Path, extra: dict[str, str] | None = None, drop: tuple[str, ...] = ()) -> Repo:
    files = {f".github/workflows/{name}": (ROOT / "workflows" / name).read_text() for name in WORKFLOWS}
    return make_repo(root / "repo", "master", f"https://github.com/{REPOSITORY}.git", {**files, **(extra or {})},
                     drop)


@pytest.fixture(scope="module")
def spy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the pull request's training code records the environment it was given (outside the repository)."""
    return tmp_path_factory.mktemp("spy") / "environment.json"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, spy: Path) -> Repo:
    return make_project(tmp_path_factory.mktemp("github-e2e"), {"prepare.py": spying_prepare(spy)})


@pytest.fixture(scope="module")
def act(tmp_path_factory: pytest.TempPathFactory, github: GitHubServer, mlflow_server: MlflowServer,
        bot_source: Path, pip_offline: dict[str, str]) -> Act:
    """`act(repo, event, payload, workflow, token=TOKEN)`; the runs share act's cache, so the action's venv is
    built by the first run only."""
    cache = tmp_path_factory.mktemp("act-cache")

    def run(repo: Repo, event: str, payload: dict[str, Any], workflow: str, token: str = TOKEN) -> Run:
        env = {"GITHUB_API_URL": github.api_url, "MLOPS_BOT_WRITE_INTERVAL": "0", "MLOPS_BOT_RETRY_SECONDS": "5",
               **pip_offline}
        return run_act(repo.path, event, payload, workflow, action=bot_source, cache=cache, env=env,
                       secrets={"GITHUB_TOKEN": token}, variables={"MLFLOW_TRACKING_URI": mlflow_server.uri})

    return run


def pull_request_payload(head: str, action: str = "opened", fork: bool = False, number: int = PR
                         ) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((EVENTS / f"pull_request-{action}.payload.json").read_text())
    payload["pull_request"]["head"]["sha"] = head
    payload["number"] = payload["pull_request"]["number"] = number
    if fork:
        head_repo = copy.deepcopy(payload["pull_request"]["head"]["repo"])
        head_repo.update(full_name="octo-fork/Hello-World", fork=True)
        payload["pull_request"]["head"]["repo"] = head_repo
    return payload


def push_payload(head: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((EVENTS / "push-payload.json").read_text())
    payload.update(ref="refs/heads/master", before="0" * 40, after=head, created=False, deleted=False,
                   base_ref=None)
    payload["head_commit"] = dict(payload.get("head_commit") or {}, id=head)
    return payload


@pytest.fixture(scope="module")
def pr_runs(project: Repo, github: GitHubServer, act: Act) -> tuple[Run, Run]:
    """The PR check twice, for `opened` and then `synchronize` of the same head."""
    github.add_pull(PR, head_sha=project.head, head_ref="changes", base_ref="master")
    first = act(project, "pull_request", pull_request_payload(project.head), "pr-check.yml")
    second = act(project, "pull_request", pull_request_payload(project.head, "synchronize"), "pr-check.yml")
    return first, second


def test_pr_check_posts_one_sticky_comment_a_status_and_outputs(pr_runs: tuple[Run, Run], project: Repo,
                                                                 github: GitHubServer) -> None:
    first, second = pr_runs
    assert first.returncode == 0, first.explain()
    assert second.returncode == 0, second.explain()
    comments = github.comments_on(PR)
    assert len(comments) == 1, f"expected one sticky comment, got {len(comments)}"
    assert project.model in comments[0]["body"] and comments[0]["login"] == "github-actions[bot]"
    statuses = github.statuses_for(project.head)
    assert [s["state"] for s in statuses] == ["success", "success"]
    assert statuses[0]["context"] == f"mlops-bot/{project.model}"
    assert first.echoed("verdict") == ["pass"]
    run_ids = first.echoed("run-id")
    assert len(run_ids) == 1 and len(run_ids[0]) >= 16, first.explain()
    reports = first.echoed("report")
    assert len(reports) == 1 and reports[0].endswith("/.mlops-bot/report.md"), first.explain()
    assert second.echoed("run-id") == run_ids, "the second check should reuse the first one's tracking run"


@pytest.fixture(scope="module")
def push_run(pr_runs: tuple[Run, Run], project: Repo, act: Act) -> Run:
    return act(project, "push", push_payload(project.head), "promote.yml")


def test_the_pull_requests_training_code_cannot_read_the_token(pr_runs: tuple[Run, Run], spy: Path) -> None:
    seen = json.loads(spy.read_text())  # the action exported GITHUB_TOKEN for the bot; the steps are the PR's code
    assert seen["MLFLOW_TRACKING_URI"]  # it ran under the bot, which says where to log
    assert not [name for name, value in seen.items() if TOKEN in value]
    assert not {"GITHUB_TOKEN", "GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"} & set(seen)


def test_push_to_default_branch_promotes(push_run: Run, pr_runs: tuple[Run, Run], project: Repo,
                                         github: GitHubServer, mlflow_server: MlflowServer) -> None:
    run = push_run
    assert run.returncode == 0, run.explain()
    assert github.statuses_for(project.head)[-1]["state"] == "success"
    assert run.echoed("promoted") == ["true"], run.explain()
    version = run.echoed("model-version")
    assert len(version) == 1 and version[0].isdigit(), run.explain()
    registry = open_registry(mlflow_server.uri, project.path)
    try:
        champion = alias_holder(registry, project.model, "champion")
    finally:
        registry.close()
    assert champion is not None and champion.version == version[0]
    assert champion.run_id == pr_runs[0].echoed("run-id")[0], "the merge should promote the PR's run, not retrain"


def test_release_gate_opens_for_the_champion_and_ships_it(push_run: Run, project: Repo, act: Act) -> None:
    payload: dict[str, Any] = json.loads((EVENTS / "release-published.payload.json").read_text())
    run = act(project, "release", payload, "release-gate.yml")
    assert run.returncode == 0, run.explain()
    version = push_run.echoed("model-version")[0]
    assert f"the gate is open for model version {version};" in run.output, run.explain()


def test_token_without_rights_degrades_with_a_warning(pr_runs: tuple[Run, Run], project: Repo, act: Act,
                                                       github: GitHubServer) -> None:
    before = len(github.comments_on(PR))
    run = act(project, "pull_request", pull_request_payload(project.head), "pr-check.yml", token=READ_ONLY)
    warnings = run.annotations("warning")
    assert any("workflow_run" in w and "mlops-bot report" in w for w in warnings), run.explain()
    assert len(github.comments_on(PR)) == before
    assert run.echoed("verdict") != [""], "the report is still written and the outputs set"


def test_fork_pull_request_keeps_the_report_and_says_how_to_post_it(pr_runs: tuple[Run, Run], project: Repo,
                                                                    act: Act, github: GitHubServer) -> None:
    statuses = len(github.statuses_for(project.head))
    run = act(project, "pull_request", pull_request_payload(project.head, fork=True), "pr-check.yml",
              token=READ_ONLY)
    assert any("--pr N" in w for w in run.annotations("warning")), run.explain()
    assert len(github.statuses_for(project.head)) == statuses
    assert run.echoed("report")[0].endswith("/.mlops-bot/report.md"), run.explain()


def workflow_run_payload(head: str) -> dict[str, Any]:
    """What GitHub sends when fork-check.yml finished: for a fork, `pull_requests` is empty."""
    base = pull_request_payload(head)
    return {"action": "completed", "repository": base["repository"], "sender": base["sender"],
            "workflow_run": {"id": 30433642, "name": "mlops-bot fork check", "event": "pull_request",
                             "status": "completed", "conclusion": "success", "head_sha": head,
                             "head_branch": "changes", "pull_requests": []}}


def test_fork_pair_checks_read_only_then_posts_from_the_workflow_run(pr_runs: tuple[Run, Run], project: Repo,
                                                                     act: Act, github: GitHubServer) -> None:
    github.add_pull(FORK_PR, head_sha=project.head, head_ref="changes", base_ref="master")
    statuses = len(github.statuses_for(project.head))
    check = act(project, "pull_request", pull_request_payload(project.head, fork=True, number=FORK_PR),
                "fork-check.yml", token=READ_ONLY)
    assert github.comments_on(FORK_PR) == [] and len(github.statuses_for(project.head)) == statuses
    assert "Success - Main Upload the report for fork-report.yml" in check.output, check.explain()
    report = act(project, "workflow_run", workflow_run_payload(project.head), "fork-report.yml")
    comments = github.comments_on(FORK_PR)
    assert len(comments) == 1 and project.model in comments[0]["body"], report.explain()
    posted = github.statuses_for(project.head)[statuses:]
    assert len(posted) == 1, report.explain()
    # Like `mlops-bot report`, the job exits with the decision's code (here a fail once the champion exists).
    assert (posted[0]["state"], report.returncode) in (("success", 0), ("failure", 1)), report.explain()


def printed(act: Act, *args: Any) -> Run:
    """act (host mode) can drop the whole output of a step that exits within milliseconds: seen once in CI, the
    action's input check failed with exit-code=2 and nothing it printed reached act's log. Such a run, failed
    without a single annotation, is run once more; a second silent failure is the test's failure."""
    run: Run = act(*args)
    if run.returncode != 0 and not run.annotations("error"):
        run = act(*args)
    return run


def test_missing_ml_yaml_fails_with_an_annotation_naming_the_input(tmp_path: Path, act: Act) -> None:
    bare = make_project(tmp_path, drop=("ml.yaml",))
    run = printed(act, bare, "pull_request", pull_request_payload(bare.head), "pr-check.yml")
    assert run.returncode != 0
    errors = run.annotations("error")
    assert any("ml.yaml does not exist" in e and "config input" in e for e in errors), run.explain()


def test_misspelt_input_fails_with_an_annotation_naming_the_right_one(tmp_path: Path, act: Act) -> None:
    workflow = (ROOT / "workflows" / "pr-check.yml").read_text().replace("config: ml.yaml", "confg: ml/ml.yaml")
    assert "confg:" in workflow
    moved = make_project(tmp_path, extra={".github/workflows/typo.yml": workflow, "ml/ml.yaml": "version: 1\n"},
                         drop=("ml.yaml",))
    run = printed(act, moved, "pull_request", pull_request_payload(moved.head), "typo.yml")
    assert run.returncode != 0
    assert any("set the config input" in e for e in run.annotations("error")), run.explain()


def dispatch_payload() -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((EVENTS / "workflow_dispatch-payload.json").read_text())
    payload.update(inputs={}, ref="refs/heads/master")
    payload["repository"].update(full_name=REPOSITORY, default_branch="master")
    return payload


def test_the_drift_workflow_checks_the_champions_data_and_retrains_once_per_finding(
        push_run: Run, project: Repo, act: Act, github: GitHubServer, tmp_path_factory: pytest.TempPathFactory) -> None:
    assert push_run.returncode == 0, push_run.explain()  # a champion, trained on build/train.csv, on the server
    dispatched = len(github.dispatches)
    fresh = act(project, "workflow_dispatch", dispatch_payload(), "drift.yml")
    assert fresh.returncode == 0, fresh.explain()
    assert "no drift: 0 of 64 feature(s) drifted" in fresh.output, fresh.explain()
    config = project.path / "ml.yaml"  # the current batch is now the smeared scanner's
    config.write_text(config.read_text().replace("current: monitor/fresh.csv", "current: monitor/shifted.csv"))
    git(project.path, "commit", "--quiet", "--all", "--message", "current data: the new scanner")
    drifted = act(project, "workflow_dispatch", dispatch_payload(), "drift.yml")
    assert drifted.returncode != 0, drifted.explain()  # exit 1: the job fails, after keeping the report
    assert "24 of 64 feature(s) drifted" in drifted.output, drifted.explain()
    # the action's exit-1 annotation for drift (`shell: bash` is -e: the step must not end before writing it)
    assert any("found the current data drifted" in e for e in drifted.annotations("error")), drifted.explain()
    assert [d["workflow"] for d in github.dispatches[dispatched:]] == ["promote.yml"], drifted.explain()
    report = next(tmp_path_factory.getbasetemp().rglob("mlops-bot-drift-report/drift.md"))
    assert "Drift detected" in report.read_text()
    again = act(project, "workflow_dispatch", dispatch_payload(), "drift.yml")
    assert again.returncode != 0 and "started a retraining already" in again.output, again.explain()
    assert len(github.dispatches) == dispatched + 1  # the same finding: no second retrain
