"""The order of the checks and the refusals the stand-in tests do not reach: a forge object answering as the
GitHub stand-in would (roles and discussions are inputs here; tests/flows/test_chatops.py asks the stand-in)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from mlops_bot.chatops.authorize import authorize
from mlops_bot.chatops.command import parse_line
from mlops_bot.chatops.comment import from_payload
from mlops_bot.config.model import ApprovalRule, Config
from mlops_bot.errors import NotFound
from mlops_bot.forges.base import Discussion
from mlops_bot.registry.local.store import LocalRegistry
from tests.chatops.builders import comment_payload, with_versions, write_project


class Forge:
    """Answers role_of and discussion from its fields, and counts the questions."""

    name = "GitHub"

    def __init__(self, role: str = "admin", discussion: Discussion | None = None) -> None:
        self.role = role
        self.found = discussion or Discussion(1, True, "open", False, "a" * 40, "octocat", "https://x/pull/1")
        self.asked: list[str] = []

    def role_of(self, login: str) -> str:
        self.asked.append(f"role_of {login}")
        return self.role

    def discussion(self, number: int) -> Discussion:
        self.asked.append(f"discussion {number}")
        if number != self.found.number:
            raise NotFound("GitHub", 404, f"https://api.example/issues/{number}", "Not Found")
        return self.found


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Config, LocalRegistry]]:
    config = write_project(tmp_path / "p")
    with_versions(config, tmp_path / "runs")
    registry = LocalRegistry(config.root / ".mlops-bot")
    yield config, registry
    registry.close()


def check(setup: tuple[Config, LocalRegistry], line: str, forge: Forge, number: int = 1, config: Config | None = None
          ) -> str:
    comment = from_payload(comment_payload(line, number=number))
    verdict = authorize(config or setup[0], setup[1], forge, comment, parse_line(line))  # type: ignore[arg-type]
    return "" if verdict.allowed else verdict.reason


def test_the_first_refusal_is_the_answer_and_later_checks_are_not_asked(setup: tuple[Config, LocalRegistry]) -> None:
    forge = Forge(role="read")
    assert "your role here: read" in check(setup, "/mlops-bot approve v99 nowhere", forge)
    assert forge.asked == ["role_of Codertocat"]  # neither the discussion nor the version was looked at


def test_a_discussion_the_forge_does_not_know(setup: tuple[Config, LocalRegistry]) -> None:
    assert check(setup, "/mlops-bot rollback", Forge(), number=9) == "#9 was not found on GitHub; nothing was done."


def test_approve_may_be_given_on_an_issue_but_rerun_may_not(setup: tuple[Config, LocalRegistry]) -> None:
    issue = Forge(discussion=Discussion(1, False, "open", False, "", "octocat", "https://x/issues/1"))
    assert check(setup, "/mlops-bot approve v2 production", issue) == ""
    refused = check(setup, "/mlops-bot compare v1", issue)
    assert refused == "'compare' works on a pull/merge request, and this is an issue."
    closed = Forge(discussion=Discussion(1, False, "closed", False, "", "octocat", "https://x/issues/1"))
    assert check(setup, "/mlops-bot approve v2 production", closed).startswith("this issue is closed")


def test_approvals_not_taken_from_comments(setup: tuple[Config, LocalRegistry]) -> None:
    config = setup[0]
    staging, production = config.promote.stages
    no_comments = replace(production, approval=ApprovalRule(via=("environment", "review")))
    other = replace(config, promote=replace(config.promote, stages=(staging, no_comments)))
    reason = check(setup, "/mlops-bot approve v2 production", Forge(), config=other)
    assert reason == ("approvals of production are not taken from comments here (promote.stages[].approval.via: "
                      "environment, review).")


def test_an_unknown_version_of_a_model_never_registered(setup: tuple[Config, LocalRegistry]) -> None:
    config = setup[0]
    other = replace(config, model=replace(config.model, name="unregistered"))
    assert check(setup, "/mlops-bot promote v1", Forge(), config=other) == (
        "v1 of unregistered does not exist; unregistered has no versions yet.")
