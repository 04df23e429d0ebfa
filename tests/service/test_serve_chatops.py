"""`/mlops-bot` comments through `mlops-bot serve`: a signed issue_comment delivery of GitHub's, the `chatops`
action of an `on:` rule, the GitHub stand-in answering for roles and pull requests, the embedded registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.chatops.builders import MAINTAINER, PR, READER, approval_of, comment_payload, holder, with_versions
from tests.chatops.builders import write_project as write_chatops_project
from tests.helpers.ci_env import APP_TOKEN, HEAD_SHA, REPO
from tests.helpers.ci_env import GITLAB_TOKEN as GITLAB_CI_TOKEN
from tests.helpers.event_projects import audit_lines
from tests.helpers.projects import deployed
from tests.helpers.webhooks import github_signed, gitlab_headers
from tests.servers.github_server import GitHubServer
from tests.servers.gitlab_server import GitLabServer

GITLAB_EVENTS = Path(__file__).resolve().parents[1] / "fixtures" / "gitlab-events"

RULES = "  - {event: github.issue_comment, do: [chatops]}"


def serve_env(github: GitHubServer) -> dict[str, str]:
    return {"MLOPS_BOT_FORGE": "github", "GITHUB_REPOSITORY": REPO, "GITHUB_API_URL": github.api_url,
            "GITHUB_TOKEN": APP_TOKEN, "MLOPS_BOT_WRITE_INTERVAL": "0", "MLOPS_BOT_RETRY_SECONDS": "5"}


def test_serve_answers_comments_and_a_replayed_delivery_moves_nothing(
        tmp_path: Path, serve: Any, github: GitHubServer, clean_env: None) -> None:
    config = write_chatops_project(tmp_path / "p", rules=RULES)
    with_versions(config, tmp_path / "runs")
    github.add_pull(PR, HEAD_SHA)
    github.add_collaborator(MAINTAINER, "maintain")
    github.add_collaborator(READER, "read")
    served = serve(config.root, env=serve_env(github))
    approve = json.dumps(comment_payload("/mlops-bot approve v2 production")).encode()
    body, headers = github_signed("issue_comment", approve)
    assert served.post("/webhooks/github", body, headers).status_code == 202
    promote = json.dumps(comment_payload("/mlops-bot promote v1 staging", READER, comment_id=77)).encode()
    assert served.post("/webhooks/github", *github_signed("issue_comment", promote)).status_code == 202
    health = served.wait_idle()
    assert health["spool"]["failed"] == 0, served.log()
    # the same delivery again, under a fresh delivery id: refused before it reaches the action
    replay = served.post("/webhooks/github", *github_signed("issue_comment", approve))
    assert replay.status_code == 409
    assert served.wait_idle()["spool"] == {"pending": 0, "handled": 2, "failed": 0}
    approval = approval_of(config.root, "2", "production")
    assert approval is not None and approval["by"] == MAINTAINER and approval["via"] == "comment"
    assert [e["type"] for e in audit_lines(config.root)].count("approval.recorded") == 1
    assert holder(config.root, "staging") is None and deployed(config.root) == []  # the reader moved nothing
    answers = [c["body"] for c in github.comments_on(PR)]
    assert len(answers) == 2, answers
    assert any(f"@{MAINTAINER} recorded your approval of v2 for production" in a for a in answers)
    assert any(f"@{READER} sorry, only people with at least write access" in a for a in answers)
    assert all(c["login"] == "github-actions[bot]" for c in github.comments_on(PR))
    assert APP_TOKEN not in served.log()


def test_a_comment_from_another_repository_is_skipped(tmp_path: Path, serve: Any, github: GitHubServer,
                                                       clean_env: None) -> None:
    config = write_chatops_project(tmp_path / "p", rules=RULES)
    with_versions(config, tmp_path / "runs")
    github.add_pull(PR, HEAD_SHA)
    github.add_collaborator(MAINTAINER, "maintain")
    served = serve(config.root, env=serve_env(github))
    payload = comment_payload("/mlops-bot approve v2 production")
    payload["repository"] = dict(payload["repository"], full_name="mallory/Hello-World")
    assert served.post("/webhooks/github", *github_signed("issue_comment", json.dumps(payload).encode())
                       ).status_code == 202
    assert served.wait_idle()["spool"]["failed"] == 0
    assert "not in Codertocat/Hello-World" in served.log()
    assert approval_of(config.root, "2", "production") is None and github.comments_on(PR) == []


def test_serve_reruns_the_pull_requests_check_on_github_never_its_code(
        tmp_path: Path, serve: Any, github: GitHubServer, clean_env: None) -> None:
    config = write_chatops_project(tmp_path / "p", rules=RULES)
    with_versions(config, tmp_path / "runs")
    github.add_pull(PR, HEAD_SHA)
    github.add_collaborator(MAINTAINER, "maintain")
    served = serve(config.root, env={**serve_env(github), "MLOPS_BOT_RERUN_WORKFLOW": "ci.yml"})

    def rerun(comment_id: int, number: int = PR) -> str:
        payload = json.dumps(comment_payload("/mlops-bot rerun", comment_id=comment_id, number=number)).encode()
        assert served.post("/webhooks/github", *github_signed("issue_comment", payload)).status_code == 202
        assert served.wait_idle()["spool"]["failed"] == 0, served.log()
        return str(github.comments_on(number)[-1]["body"])

    assert f"no check ran on {HEAD_SHA[:12]} yet; push or reopen the pull request" in rerun(81)
    check = github.add_workflow_run(HEAD_SHA, "ci.yml", status="in_progress")
    github.add_workflow_run(HEAD_SHA, "lint.yml")  # newer, another workflow's run
    run_url = f"{github.origin}/{REPO}/actions/runs/{check}"
    running = rerun(82)
    assert f"the check of {HEAD_SHA[:12]} is still running" in running and f"]({run_url})" in running
    assert github.reruns == []
    github.finish_workflow_run(check, "failure")
    started = rerun(83)
    assert f"started this pull request's check again on {HEAD_SHA[:12]}" in started
    assert f"Watch it: [{run_url.replace('://', chr(92) + '://')}]({run_url})" in started  # a link to the run
    assert github.reruns == [check] and github.workflow_runs[check]["run_attempt"] == 2
    assert len(github.comments_on(PR)) == 3 and github.dispatches == []  # a re-run, no pipeline on a branch
    # a fork's pull request is refused before the forge is asked, though its check ran
    github.add_pull(9, "f" * 40, head_repo="mallory/Hello-World")
    github.add_workflow_run("f" * 40, "ci.yml")
    assert "from a fork never run with this repository's token" in rerun(84, number=9)
    assert github.reruns == [check] and len(github.calls("actions/list-workflow-runs-for-repo")) == 3


def test_serve_answers_a_gitlab_merge_request_note(tmp_path: Path, serve: Any, gitlab: GitLabServer,
                                                    clean_env: None) -> None:
    config = write_chatops_project(tmp_path / "p", rules="  - {event: gitlab.note, do: [chatops]}")
    with_versions(config, tmp_path / "runs")
    gitlab.add_member("root", "maintainer")
    gitlab.add_member("dev", "reporter")
    env = {"MLOPS_BOT_FORGE": "gitlab", "CI_SERVER_URL": gitlab.url, "CI_PROJECT_ID": "42",
           "CI_PROJECT_PATH": "group/project", "GITLAB_TOKEN": GITLAB_CI_TOKEN, "MLOPS_BOT_RETRY_SECONDS": "5"}
    served = serve(config.root, env=env)
    for note_id, user, text in ((1244, "root", "/mlops-bot approve v2 production"),
                                (1245, "dev", "/mlops-bot rollback staging")):
        assert served.post("/webhooks/gitlab", gitlab_note(note_id, user, text), gitlab_headers("Note Hook")
                           ).status_code == 202
    assert served.wait_idle()["spool"]["failed"] == 0, served.log()
    approval = approval_of(config.root, "2", "production")
    assert approval is not None and (approval["by"], approval["role"]) == ("root", "maintain")
    assert approval["where"] == "http://example.com/gitlab-org/gitlab-test/merge_requests/1#note_1244"
    notes = [n["body"] for n in gitlab.notes_on(7)]
    assert any("@root recorded your approval of v2 for production" in n for n in notes), notes
    assert any("@dev sorry, only people with at least write access" in n and "your role here: triage" in n
               for n in notes), notes
    # a rerun is a new merge request pipeline, started by GitLab on its runners
    assert served.post("/webhooks/gitlab", gitlab_note(1246, "root", "/mlops-bot rerun"), gitlab_headers("Note Hook")
                       ).status_code == 202
    assert served.wait_idle()["spool"]["failed"] == 0, served.log()
    [pipeline] = gitlab.pipelines
    assert (pipeline["source"], pipeline["mr"]) == ("merge_request_event", 7)
    assert f"]({gitlab.origin}/group/project/-/pipelines/{pipeline['id']})" in gitlab.notes_on(7)[-1]["body"]


def gitlab_note(note_id: int, username: str, text: str) -> bytes:
    """GitLab's documented merge request note, on merge request !7 of group/project."""
    doc: dict[str, Any] = json.loads((GITLAB_EVENTS / "note-merge_request.json").read_text())
    doc["object_attributes"].update(id=note_id, note=text)
    doc["user"]["username"] = username
    doc["project"]["path_with_namespace"] = "group/project"
    doc["merge_request"]["iid"] = 7
    return json.dumps(doc).encode()
