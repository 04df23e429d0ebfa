"""The local forge's governance: the person at the terminal is the repository's admin, there is no pull request
to discuss, nothing approves, and replies follow the report in the comment file."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from mlops_bot.errors import UsageError
from mlops_bot.forges.base import Forge
from mlops_bot.forges.local import LocalForge


def test_roles_discussions_and_approvals_locally(tmp_path: Path) -> None:
    forge = LocalForge(tmp_path / ".mlops-bot", io.StringIO())
    assert isinstance(forge, Forge)  # the whole protocol, governance included
    assert forge.role_of("anyone") == "admin"
    assert forge.approvers(2) == [] and forge.environment_approvers("9001", "production") == []
    assert forge.comment_by_url("https://github.com/o/r/pull/2#issuecomment-1") is None  # no comments locally
    with pytest.raises(UsageError, match="no pull request #2 outside GitHub Actions or GitLab CI"):
        forge.discussion(2)


def test_replies_follow_the_report_in_the_comment_file(tmp_path: Path) -> None:
    shown = io.StringIO()
    forge = LocalForge(tmp_path / ".mlops-bot", shown)
    first = forge.reply(2, "nothing reported yet")
    assert forge.comment_path.read_text() == "nothing reported yet\n"
    forge.upsert_comment("<!-- m -->", "<!-- m -->\nthe report")
    second = forge.reply(2, "promoted v3 to production")
    assert first.action == second.action == "created" and second.url == str(forge.comment_path)
    assert forge.comment_path.read_text() == "<!-- m -->\nthe report\n\n---\n\npromoted v3 to production\n"
    assert shown.getvalue().endswith("promoted v3 to production\n")
