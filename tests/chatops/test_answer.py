"""The replies: the commenter is the one mention, and nothing from the comment or a remote becomes markup."""

from __future__ import annotations

from mlops_bot.chatops import answer
from mlops_bot.chatops.command import find_command, parse_line
from mlops_bot.chatops.comment import from_payload
from tests.chatops.builders import comment_payload


def test_a_reply_mentions_the_commenter_and_escapes_the_rest() -> None:
    comment = from_payload(comment_payload("/mlops-bot promote v7 staging", "octo-cat"))
    command = comment.command()
    body = answer.reply(comment, command, "v7 of [x](https://evil.example/?token=s3cret) <img src=x> @team *ok*")
    assert body.startswith(answer.MARKER + "\n@octo-cat ")
    assert "s3cret" not in body and "<img" not in body and "\\[x\\]" in body and "\\*ok\\*" in body
    assert "@\u2060team" in body  # a mention in the text is broken by a word joiner: only the commenter is pinged
    assert "<sub>in answer to `/mlops-bot promote v7 staging`</sub>" in body
    assert find_command(body) is None  # a reply never reads as a command, even if a bot were obeyed


def test_a_login_that_is_not_a_forges_login_is_not_a_mention() -> None:
    comment = from_payload(comment_payload("/mlops-bot rerun", "<b>x</b>"))
    body = answer.reply(comment, parse_line("/mlops-bot rerun"), "done")
    assert "<b>" not in body and "@" not in body


def test_help_lists_every_form_after_the_problem() -> None:
    comment = from_payload(comment_payload("/mlops-bot deploy `v7`"))
    command = comment.command()
    assert command is not None
    body = answer.help_text(comment, command)
    assert body.startswith(answer.MARKER + "\n@Codertocat unknown command 'deploy'. These are the commands")
    for verb in ("rerun", "compare against v5", "promote v7 staging", "rollback production", "approve v7 production"):
        assert f"`/mlops-bot {verb}`" in body
    assert "<sub>in answer to `` /mlops-bot deploy `v7` ``</sub>" in body
