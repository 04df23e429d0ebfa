"""The bot's replies to ChatOps commands, as markdown. Pure.

Every value that is not the bot's own words (the command as written, a version, a stage, an error's message)
goes through report.escape, so a reply can neither ping anyone else nor carry markup or links from the comment.
The one mention is the commenter's, and only for a login made of the characters forges allow in one.
"""

from __future__ import annotations

import re

from ..report import escape
from .command import FORMS, Command
from .comment import Comment

# GitHub logins (letters, digits, single hyphens) and GitLab usernames (also `_` and `.`)
_LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,253}[A-Za-z0-9])?")
MARKER = "<!-- mlops-bot:chatops -->"  # the bot's replies start with it (never a command line, never a report)


def mention(login: str) -> str:
    return f"@{login}" if _LOGIN.fullmatch(login) else escape.text(login)


def reply(comment: Comment, command: Command | None, text: str) -> str:
    """`text` (plain text, escaped here) addressed to the commenter, with the command it answers."""
    quoted = f"\n\n<sub>in answer to {escape.code(command.line)}</sub>" if command is not None else ""
    return f"{MARKER}\n{mention(comment.author)} {escape.text(text)}{quoted}\n"


def help_text(comment: Comment, command: Command) -> str:
    """The forms, after what was wrong with the command (when something was)."""
    lead = f"{escape.text(command.problem)}. " if command.problem else ""
    forms = "\n".join(f"- {form}" for form in FORMS)
    return (f"{MARKER}\n{mention(comment.author)} {lead}These are the commands I know:\n\n{forms}\n\n"
            f"<sub>in answer to {escape.code(command.line)}</sub>\n")


def with_report(comment: Comment, command: Command, text: str, report: str) -> str:
    """A reply that carries a comparison's markdown report (rendered by report/, escaped there)."""
    return f"{reply(comment, command, text)}\n{report}"
