"""Reading a ChatOps command from a comment's text: the forms, what is not a command, and each bad form."""

from __future__ import annotations

import pytest

from mlops_bot.chatops.command import MAX_BODY, Command, command_line, find_command, parse_line


@pytest.mark.parametrize(("body", "verb", "version", "stage"), [
    ("/mlops-bot rerun", "rerun", None, None),
    ("/MLOps-Bot RERUN", "rerun", None, None),
    ("/mlops-bot compare against v5", "compare", "5", None),
    ("/mlops-bot compare v5", "compare", "5", None),
    ("/mlops-bot compare Against 12", "compare", "12", None),
    ("/mlops-bot promote v7 staging", "promote", "7", "staging"),
    ("/mlops-bot promote V007", "promote", "7", None),
    ("/mlops-bot rollback production", "rollback", None, "production"),
    ("/mlops-bot rollback", "rollback", None, None),
    ("/mlops-bot approve v7 production", "approve", "7", "production"),
    ("/mlops-bot help", "help", None, None),
    ("   /mlops-bot   approve\tv7   production   ", "approve", "7", "production"),
    ("Thanks!\n\n/mlops-bot approve v7 production\n/mlops-bot rollback production", "approve", "7", "production"),
    ("```\n/mlops-bot rollback\n```\n/mlops-bot rerun", "rerun", None, None),
    ("> /mlops-bot rollback\n\n/mlops-bot rerun", "rerun", None, None),
])
def test_the_forms(body: str, verb: str, version: str | None, stage: str | None) -> None:
    command = find_command(body)
    assert command is not None and command.valid
    assert (command.verb, command.version, command.stage) == (verb, version, stage)


@pytest.mark.parametrize("body", [
    "", "Looks good to me", "/mlops-botrerun", "please /mlops-bot rerun", "> /mlops-bot approve v7 production",
    "```\n/mlops-bot approve v7 production\n```", "~~~~\n/mlops-bot rerun\n~~~\n~~~~", "    /mlops-bot rerun",
    "\t/mlops-bot rerun", "/mlops-bot-v2 rerun",
])
def test_what_is_not_a_command(body: str) -> None:
    assert command_line(body) is None and find_command(body) is None


def test_a_comment_longer_than_the_bound_is_not_read() -> None:
    body = "/mlops-bot approve v7 production\n" + "x" * MAX_BODY
    assert find_command(body) is None
    assert find_command(body[:MAX_BODY]) is not None


@pytest.mark.parametrize(("line", "problem"), [
    ("/mlops-bot", "no command after /mlops-bot"),
    ("/mlops-bot deploy v7", "unknown command 'deploy'"),
    ("/mlops-bot rerun now", "`rerun` takes nothing after it"),
    ("/mlops-bot help me", "`help` takes nothing after it"),
    ("/mlops-bot compare", "`compare` takes one version"),
    ("/mlops-bot compare against", "`compare` takes one version"),
    ("/mlops-bot compare against v5 v6", "`compare` takes one version"),
    ("/mlops-bot compare against latest", "'latest' is not a version"),
    ("/mlops-bot promote", "`promote` takes a version and optionally a stage"),
    ("/mlops-bot promote seven staging", "'seven' is not a version"),
    ("/mlops-bot promote v7 staging now", "`promote` takes a version and optionally a stage"),
    ("/mlops-bot promote v7 ../../etc", "'../../etc' is not a stage name"),
    ("/mlops-bot promote v-1", "'v-1' is not a version"),
    ("/mlops-bot approve v7", "`approve` takes a version and a stage: `approve v7 production`"),
    ("/mlops-bot approve production v7", "'production' is not a version"),
    ("/mlops-bot rollback production now", "`rollback` takes at most a stage"),
    ("/mlops-bot rollback <b>x</b>", "'<b>x</b>' is not a stage name"),
])
def test_each_bad_form_is_help_with_what_was_wrong(line: str, problem: str) -> None:
    command = parse_line(line)
    assert command == Command("help", line, problem=command.problem) and not command.valid
    assert command.problem.startswith(problem), command.problem


def test_versions_are_digits_within_bounds() -> None:
    assert parse_line("/mlops-bot compare v" + "9" * 18).version == "9" * 18
    assert not parse_line("/mlops-bot compare v" + "9" * 19).valid
    assert not parse_line("/mlops-bot compare ５").valid  # other scripts' digits are not versions
