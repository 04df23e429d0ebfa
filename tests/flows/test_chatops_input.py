"""`mlops-bot chatops` and its input: the payload file (or GITHUB_EVENT_PATH), which forge and repository it must
come from, and a GitLab note answered outside CI through the forge MLOPS_BOT_FORGE names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlops_bot.cli import main
from mlops_bot.config.model import Config
from tests.chatops.builders import approval_of, comment_payload, with_versions, write_project
from tests.helpers.ci_env import GITLAB_TOKEN, apply_env, github_env
from tests.servers.gitlab_server import GitLabServer

GITLAB_EVENTS = Path(__file__).resolve().parents[1] / "fixtures" / "gitlab-events"
pytestmark = pytest.mark.usefixtures("clean_env")


@pytest.fixture
def project(tmp_path: Path) -> Config:
    config = write_project(tmp_path / "repo")
    with_versions(config, tmp_path / "runs")
    return config


def chatops(project: Config, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["-C", str(project.root), "chatops", *args])
    return code, capsys.readouterr().err


def write(path: Path, doc: Any) -> str:
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return str(path)


def test_outside_ci_the_payload_must_be_given(project: Config, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = chatops(project, capsys)
    assert code == 2 and "pass --event FILE" in err


def test_in_a_workflow_it_answers_issue_comment_events_only(project: Config, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    apply_env(monkeypatch, github_env(None, tmp_path / "step"))  # a pull_request event
    code, err = chatops(project, capsys)
    assert code == 2 and "answers issue_comment events" in err and "pull_request" in err


@pytest.mark.parametrize(("content", "expected"), [
    (None, "cannot read the event payload"), ("{not json", "is not JSON"), ("[1, 2]", "JSON list, not an object"),
])
def test_an_unusable_payload_file_is_named(project: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch, content: str | None,
                                           expected: str) -> None:
    monkeypatch.setenv("MLOPS_BOT_FORGE", "local")
    path = tmp_path / "event.json"
    if content is not None:
        path.write_text(content)
    code, err = chatops(project, capsys, "--event", str(path))
    assert code == 2 and expected in err and str(path) in err


def test_a_comment_from_another_forge_or_repository_does_nothing(project: Config, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str],
                                                                gitlab: GitLabServer) -> None:
    apply_env(monkeypatch, {"MLOPS_BOT_FORGE": "gitlab", "CI_SERVER_URL": gitlab.url, "CI_PROJECT_ID": "42",
                            "CI_PROJECT_PATH": "group/project", "GITLAB_TOKEN": GITLAB_TOKEN})
    github_comment = write(tmp_path / "gh.json", comment_payload("/mlops-bot approve v2 production"))
    code, err = chatops(project, capsys, "--event", github_comment)
    assert code == 2 and "comes from github but the bot is set up for gitlab" in err
    code, err = chatops(project, capsys, "--event", write(tmp_path / "gl.json", note(text="/mlops-bot rerun")))
    assert code == 2 and "written in gitlab-org/gitlab-test, not in group/project" in err
    assert gitlab.notes_on(7) == [] and approval_of(project.root, "2", "production") is None


def test_a_gitlab_note_outside_ci(project: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str], gitlab: GitLabServer) -> None:
    gitlab.add_member("root", "maintainer")
    apply_env(monkeypatch, {"MLOPS_BOT_FORGE": "gitlab", "CI_SERVER_URL": gitlab.url, "CI_PROJECT_ID": "42",
                            "CI_PROJECT_PATH": "group/project", "GITLAB_TOKEN": GITLAB_TOKEN})
    event = write(tmp_path / "note.json", note(text="/mlops-bot approve v2 production", path="group/project"))
    capsys.readouterr()
    assert main(["-C", str(project.root), "chatops", "--json", "--event", event]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["command"], result["outcome"], result["ref"]) == ("approve", "done", None)
    assert result["reply"].endswith("#note_" + str(gitlab.notes_on(7)[-1]["id"]))
    approval = approval_of(project.root, "2", "production")
    assert approval is not None and approval["by"] == "root"
    assert not (project.root / "mlops-bot.env").exists() or "MLOPS_BOT_CHATOPS_COMMAND" not in (
        project.root / "mlops-bot.env").read_text()  # outside GitLab CI no dotenv report is written


def note(text: str, path: str = "gitlab-org/gitlab-test") -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((GITLAB_EVENTS / "note-merge_request.json").read_text())
    doc["object_attributes"]["note"] = text
    doc["project"]["path_with_namespace"] = path
    doc["merge_request"]["iid"] = 7
    return doc
