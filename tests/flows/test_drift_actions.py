"""Closing the drift loop through `on:` rules: `open_pr` against a real bare git repository and the local GitHub
and GitLab stand-ins (which check every request against the forge's API description), and `retrain` started once
per drift finding, recorded on the champion version in the embedded registry."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_bot.config.model import Config
from mlops_bot.deploy.gitrepo import token_config
from mlops_bot.events.event import Event
from mlops_bot.flows.actions import RETRAINED_KEPT, retrained_ids, retrained_value, rule_handler
from mlops_bot.flows.open_pr import RECORD, report_body
from mlops_bot.forges.base import COMMENT_LIMIT
from mlops_bot.registry import tags
from mlops_bot.registry.local.store import LocalRegistry
from tests.helpers.ci_env import APP_TOKEN, GITLAB_TOKEN, REPO
from tests.helpers.event_projects import write_project
from tests.helpers.git import git
from tests.helpers.gitops import Remote
from tests.helpers.registries import add_version
from tests.servers.github_server import GitHubServer
from tests.servers.gitlab_server import GitLabServer

FINDING_A = "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"
FINDING_B = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
REPORT = "# Drift of demo v1\n\n| feature | test | statistic |\n|---|---|---|\n| petal_length | psi | 0.41 |\n"
OPEN_PR = "  - {event: drift.detected, do: [open_pr]}"
RETRAIN = "  - {event: drift.detected, do: [retrain]}"


@pytest.fixture(autouse=True)
def isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None) -> None:
    """No global or system git configuration (no identity: the bot's own is used), no CI variables."""
    config = tmp_path / "gitconfig"
    config.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(name, raising=False)


def drift(finding: str, version: str = "1", model: str = "demo") -> Event:
    """A drift.detected event as `mlops-bot drift` emits it (a new event id each time, as on another day)."""
    return Event("drift.detected", f"models/{model}/versions/{version}", {
        "model": model, "version": version, "finding_id": finding, "drifted_features": ["petal_length", "sepal_width"],
        "findings": 2, "report_file": ".mlops-bot/drift.md", "run_id": "monitor-run-1",
        "summary": "2 of 4 features drifted: petal_length, sepal_width"})


def project_in_clone(tmp_path: Path, remote: Remote, rules: str) -> Config:
    """The project is a clone of the remote (its `origin`), with ml.yaml and the drift report of the monitoring job."""
    root = tmp_path / "project"
    git(tmp_path, "clone", "-q", str(remote.bare), str(root))
    config = write_project(root, rules=rules)
    (root / ".mlops-bot").mkdir(exist_ok=True)
    (root / ".mlops-bot" / "drift.md").write_text(REPORT)
    return config


def github_env(server: GitHubServer) -> dict[str, str]:
    return {**os.environ, "MLOPS_BOT_FORGE": "github", "GITHUB_REPOSITORY": REPO, "GITHUB_API_URL": server.api_url,
            "GITHUB_TOKEN": APP_TOKEN, "MLOPS_BOT_RETRAIN_WORKFLOW": "promote.yml", "MLOPS_BOT_WRITE_INTERVAL": "0"}


def gitlab_env(server: GitLabServer) -> dict[str, str]:
    return {**os.environ, "MLOPS_BOT_FORGE": "gitlab", "CI_SERVER_URL": server.url, "CI_PROJECT_ID": "42",
            "CI_PROJECT_PATH": "group/project", "GITLAB_TOKEN": GITLAB_TOKEN}


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    return Remote.create(tmp_path)


def drift_pulls(server: GitHubServer) -> list[dict[str, object]]:
    return [p for p in server.pulls.values() if str(p["head_ref"]).startswith("mlops-bot/drift-")]


def test_open_pr_commits_the_record_on_a_branch_and_opens_one_pull_request(
        tmp_path: Path, remote: Remote, github: GitHubServer, capsys: pytest.CaptureFixture[str]) -> None:
    config = project_in_clone(tmp_path, remote, OPEN_PR)
    handler = rule_handler(config, github_env(github))
    first = drift(FINDING_A)
    handler(first)
    head = "mlops-bot/drift-a1b2c3d4e5f6"
    [pull] = drift_pulls(github)
    assert (pull["head_ref"], pull["base_ref"]) == (head, "main")
    assert pull["body"] == REPORT and "petal_length" in str(pull["title"])
    record = json.loads(remote.show(head, RECORD))
    assert record == {"finding_id": FINDING_A, "model": "demo", "version": "1", "findings": 2,
                      "drifted_features": ["petal_length", "sepal_width"], "run_id": "monitor-run-1",
                      "report_file": ".mlops-bot/drift.md", "detected_at": first.time,
                      "summary": "2 of 4 features drifted: petal_length, sepal_width"}
    assert remote.count(head) == 2 and f"Drift-Finding: {FINDING_A}" in remote.message(head)
    assert "monitor" not in git(remote.bare, "ls-tree", "--name-only", "main")  # main waits for the review

    pushed = remote.head(head)
    remote.commit_in_seed("README.md", "moved on\n", "a colleague's change")  # a rebuilt branch would differ
    handler(drift(FINDING_A))  # the same drift, seen again on another day
    assert len(drift_pulls(github)) == 1 and remote.head(head) == pushed  # no second PR, no second commit
    assert json.loads(remote.show(head, RECORD))["detected_at"] == first.time  # as first seen

    handler(drift(FINDING_B))  # another drift: another pull request
    assert sorted(str(p["head_ref"]) for p in drift_pulls(github)) == ["mlops-bot/drift-0f1e2d3c4b5a", head]
    assert json.loads(remote.show("mlops-bot/drift-0f1e2d3c4b5a", RECORD))["finding_id"] == FINDING_B
    assert " failed: " not in capsys.readouterr().err


def test_a_finding_merged_into_the_default_branch_opens_nothing(tmp_path: Path, remote: Remote,
                                                                github: GitHubServer,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    config = project_in_clone(tmp_path, remote, OPEN_PR)
    handler = rule_handler(config, github_env(github))
    handler(drift(FINDING_A))
    remote.commit_in_seed(RECORD, remote.show("mlops-bot/drift-a1b2c3d4e5f6", RECORD), "merge the drift PR")
    github.pulls.clear()  # merged: no open pull request any more
    capsys.readouterr()
    handler(drift(FINDING_A))
    assert drift_pulls(github) == []
    said = capsys.readouterr().err
    assert "is recorded on main already" in said and "failed" not in said


def test_open_pr_on_gitlab_opens_one_merge_request_per_finding(tmp_path: Path, remote: Remote,
                                                               gitlab: GitLabServer) -> None:
    config = project_in_clone(tmp_path, remote, OPEN_PR)
    handler = rule_handler(config, gitlab_env(gitlab))
    handler(drift(FINDING_A))
    handler(drift(FINDING_A))
    handler(drift(FINDING_B))
    sources = sorted(mr["source_branch"] for mr in gitlab.merge_requests.values() if mr["iid"] != 7)
    assert sources == ["mlops-bot/drift-0f1e2d3c4b5a", "mlops-bot/drift-a1b2c3d4e5f6"]
    created = [seen.body for seen in gitlab.calls("mrs.create")]
    assert len(created) == 3 and all(isinstance(b, dict) and b["description"] == REPORT for b in created)
    assert json.loads(remote.show("mlops-bot/drift-a1b2c3d4e5f6", RECORD))["finding_id"] == FINDING_A


def test_the_report_is_cut_at_the_forge_limit_and_never_read_outside_the_project(tmp_path: Path) -> None:
    root = tmp_path / "p"
    (root / ".mlops-bot").mkdir(parents=True)
    (root / ".mlops-bot" / "drift.md").write_text("x" * (COMMENT_LIMIT + 100))
    body = report_body(root, drift(FINDING_A), COMMENT_LIMIT)
    assert len(body) == COMMENT_LIMIT and body.rstrip().endswith("in the monitoring job.")
    (tmp_path / "secret.md").write_text("secret")
    outside = Event("drift.detected", "m", {"finding_id": "x", "report_file": "../secret.md", "summary": "s"})
    assert report_body(root, outside, COMMENT_LIMIT) == "s"
    (root / "link.md").symlink_to(tmp_path / "secret.md")
    linked = Event("drift.detected", "m", {"finding_id": "x", "report_file": "link.md", "summary": "s"})
    assert report_body(root, linked, COMMENT_LIMIT) == "s"


@pytest.fixture
def champion(tmp_path: Path) -> Iterator[tuple[Config, LocalRegistry, str]]:
    config = write_project(tmp_path / "p", rules=RETRAIN)
    registry = LocalRegistry(config.root / ".mlops-bot")
    version = add_version(registry, config, tmp_path)
    registry.set_alias("demo", "champion", version)
    try:
        yield config, registry, version
    finally:
        registry.close()


def test_retrain_starts_one_pipeline_per_drift_finding(champion: tuple[Config, LocalRegistry, str],
                                                       github: GitHubServer) -> None:
    config, registry, version = champion
    handler = rule_handler(config, github_env(github))
    handler(drift(FINDING_A, version))
    assert github.dispatches == [{"workflow": "promote.yml", "ref": "main", "inputs": {}}]
    assert retrained(registry, version) == [FINDING_A]
    handler(drift(FINDING_A, version))  # the same drift, on a fresh runner: the tag says it was acted on
    assert len(github.dispatches) == 1
    handler(drift(FINDING_B, version))
    assert len(github.dispatches) == 2
    assert retrained(registry, version) == [FINDING_A, FINDING_B]
    handler(Event("model_version.tag_set", "models/demo/versions/1", {"model": "demo"}))  # no rule for it
    assert len(github.dispatches) == 2


def retrained(registry: LocalRegistry, version: str) -> list[str]:
    return list(json.loads(registry.get_model_version("demo", version).tags[tags.DRIFT_RETRAINED]))


def test_a_finding_that_comes_back_after_another_is_not_retrained_again(
        champion: tuple[Config, LocalRegistry, str], github: GitHubServer) -> None:
    config, registry, version = champion
    handler = rule_handler(config, github_env(github))
    for finding in (FINDING_A, FINDING_B, FINDING_A, FINDING_B):
        handler(drift(finding, version))
    assert len(github.dispatches) == 2
    assert retrained(registry, version) == [FINDING_A, FINDING_B]


def test_a_single_id_recorded_by_an_older_bot_still_counts(champion: tuple[Config, LocalRegistry, str],
                                                          github: GitHubServer) -> None:
    config, registry, version = champion
    registry.set_model_version_tag("demo", version, tags.DRIFT_RETRAINED, FINDING_A)  # the old format: one bare id
    handler = rule_handler(config, github_env(github))
    handler(drift(FINDING_A, version))
    assert github.dispatches == []
    handler(drift(FINDING_B, version))
    handler(drift(FINDING_A, version))
    assert len(github.dispatches) == 1 and retrained(registry, version) == [FINDING_A, FINDING_B]


def test_the_retrained_list_keeps_the_last_ids_within_the_tag_limit(
        champion: tuple[Config, LocalRegistry, str], github: GitHubServer) -> None:
    config, registry, version = champion
    handler = rule_handler(config, github_env(github))
    findings = [f"{n:032x}" for n in range(RETRAINED_KEPT + 3)]
    for finding in findings:
        handler(drift(finding, version))
    assert len(github.dispatches) == len(findings)
    assert retrained(registry, version) == findings[-RETRAINED_KEPT:]
    handler(drift(findings[0], version))  # forgotten after 20 others: retrained again
    assert len(github.dispatches) == len(findings) + 1
    assert retrained(registry, version)[-1] == findings[0]
    long_ids = ["x" * 900 + str(n) for n in range(8)]  # ids from elsewhere, longer than the bot's digests
    value = retrained_value(long_ids[:-1], long_ids[-1])
    assert len(value) <= 5000 and json.loads(value)[-1] == long_ids[-1] and json.loads(value)[0] != long_ids[0]
    assert retrained_ids("not json, an old id") == ["not json, an old id"] and retrained_ids('{"a": 1}') == ['{"a": 1}']


def test_retrain_on_gitlab_starts_one_pipeline_per_finding(champion: tuple[Config, LocalRegistry, str],
                                                           gitlab: GitLabServer) -> None:
    config, _, version = champion
    handler = rule_handler(config, gitlab_env(gitlab))
    for finding in (FINDING_A, FINDING_A, FINDING_B, FINDING_B):
        handler(drift(finding, version))
    assert [p["ref"] for p in gitlab.pipelines] == ["main", "main"]


def test_other_events_retrain_as_before(tmp_path: Path, github: GitHubServer) -> None:
    rule = "  - {event: model_version.tag_set, where: {key: drift}, do: [retrain]}"
    handler = rule_handler(write_project(tmp_path / "p", rules=rule), github_env(github))
    for _ in range(2):
        handler(Event("model_version.tag_set", "models/demo/versions/1", {"model": "demo", "key": "drift"}))
    assert len(github.dispatches) == 2  # no finding id: nothing to dedupe on


def test_git_gets_the_job_token_for_the_forge_host_only() -> None:
    env = {"GITHUB_TOKEN": "ghs_secret", "GIT_CONFIG_COUNT": "1"}
    config = token_config("https://github.com/o/r.git", env)
    assert config["GIT_CONFIG_COUNT"] == "2" and config["GIT_CONFIG_KEY_1"] == "http.https://github.com/.extraheader"
    assert config["GIT_CONFIG_VALUE_1"].startswith("AUTHORIZATION: basic ")
    assert token_config("https://evil.example/o/r.git", env) == {}
    assert token_config("https://user:pw@github.com/o/r.git", env) == {}
    assert token_config("git@github.com:o/r.git", env) == {}
    lab = token_config("https://gitlab.example/g/p.git", {"CI_JOB_TOKEN": "job", "CI_SERVER_URL": "https://gitlab.example"})
    assert lab["GIT_CONFIG_KEY_0"] == "http.https://gitlab.example/.extraheader"
