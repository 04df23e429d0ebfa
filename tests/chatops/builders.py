"""The ChatOps tests' project, comments and command runs: a project with two stages (staging, then production
with an approval taken from comments) on the embedded registry, real issue_comment payloads with the text and
author a test needs, and `mlops-bot chatops` run in-process as a GitHub workflow step runs it."""

from __future__ import annotations

import copy
import json
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlops_bot.cli import main
from mlops_bot.config import load_config
from mlops_bot.config.model import Config
from mlops_bot.registry import alias_holder, tags
from mlops_bot.registry.base import Registry
from mlops_bot.registry.local.store import LocalRegistry
from tests.helpers.ci_env import EVENTS, REPO, apply_env, github_env, parse_github_outputs
from tests.helpers.projects import DEPLOY_RECORD, ML_YAML
from tests.helpers.registries import add_version

STAGES = """\
promote:
  stages:
    - {alias: staging}
    - alias: production
      requires: staging
      approval: {permission: maintain, via: [comment]}
"""
PR = 1  # the pull request of the derived payload (issue_comment-created-on-pull-request)
MAINTAINER, WRITER, READER = "Codertocat", "wri-ter", "reader"  # Codertocat: the author in octokit's payloads
MODEL = "demo"


def write_project(root: Path, chatops: str = "{permission: write}", uri: str = "local", rules: str = "") -> Config:
    """The promotion tests' project (one step, a deploy target recording versions) with STAGES, `chatops` and
    `rules` (lines of an `on:` list)."""
    root.mkdir(parents=True, exist_ok=True)
    text = (textwrap.dedent(ML_YAML.format(model=MODEL, uri=uri, deploy=DEPLOY_RECORD)) + STAGES
            + f"chatops: {chatops}\n" + (f"on:\n{rules}\n" if rules else ""))
    (root / "ml.yaml").write_text(text)
    return load_config(root / "ml.yaml", env={})


def with_versions(config: Config, workdir: Path, accuracies: tuple[float, ...] = (0.9, 0.95)) -> list[str]:
    registry = LocalRegistry(config.root / ".mlops-bot")
    try:
        return [add_version(registry, config, workdir, accuracy) for accuracy in accuracies]
    finally:
        registry.close()


def comment_payload(body: str, login: str = MAINTAINER, *, number: int = PR, action: str = "created",
                    user_type: str = "User", comment_id: int = 492700400,
                    origin: str = "https://github.com") -> dict[str, Any]:
    """The derived pull request comment payload with another text, author, number or action; `origin`: the web
    host its html_url names (a stand-in's, for a comment the stand-in holds)."""
    name = "issue_comment-created-on-pull-request.payload.json"
    payload: dict[str, Any] = copy.deepcopy(json.loads((EVENTS / name).read_text()))
    comment, issue = payload["comment"], payload["issue"]
    comment["body"], comment["id"] = body, comment_id
    comment["user"] = dict(comment["user"], login=login, type=user_type)
    comment["html_url"] = f"{origin}/{REPO}/pull/{number}#issuecomment-{comment_id}"
    issue["number"] = number
    payload["action"] = action
    payload["sender"] = dict(payload["sender"], login=login, type=user_type)
    return payload


@dataclass(frozen=True)
class Answered:
    code: int
    result: dict[str, Any]  # the --json document ({} when the command failed: stdout has its annotation)
    outputs: dict[str, str]  # what the step wrote to $GITHUB_OUTPUT


def run_chatops(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], root: Path, api_url: str,
                payload: dict[str, Any], *extra: str) -> Answered:
    """`mlops-bot chatops --json` as the workflow's step runs it: GITHUB_EVENT_PATH holds `payload`."""
    work = root.parent / f"step-{len(list(root.parent.glob('step-*')))}"
    env = github_env(None, work, event="issue_comment")
    event_file = work / "event.json"
    event_file.write_text(json.dumps(payload))
    env.update(GITHUB_EVENT_PATH=str(event_file), GITHUB_API_URL=api_url, GITHUB_REF="refs/heads/master",
               GITHUB_WORKFLOW_REF=f"{REPO}/.github/workflows/chatops.yml@refs/heads/master")
    apply_env(monkeypatch, env)
    capsys.readouterr()
    code = main(["-C", str(root), "chatops", "--json", *extra])
    out = capsys.readouterr().out
    output_file = work / "output.txt"
    outputs = parse_github_outputs(output_file.read_text()) if output_file.exists() else {}
    return Answered(code, json.loads(out) if out.startswith("{") else {}, outputs)


def holder(root: Path, alias: str) -> str | None:
    registry: Registry = LocalRegistry(root / ".mlops-bot")
    try:
        found = alias_holder(registry, MODEL, alias)
        return found.version if found else None
    finally:
        registry.close()


def version_tags(root: Path, version: str) -> dict[str, str]:
    registry = LocalRegistry(root / ".mlops-bot")
    try:
        return dict(registry.get_model_version(MODEL, version).tags)
    finally:
        registry.close()


def approval_of(root: Path, version: str, alias: str) -> dict[str, Any] | None:
    raw = version_tags(root, version).get(tags.approval_tag(alias))
    return json.loads(raw) if raw else None
