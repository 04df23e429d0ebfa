"""A ChatOps command from a comment's text. Pure.

The command is the first line (outside fenced code and quotes) that starts with `/mlops-bot` followed by a space
or the end of the line; the command word is case-insensitive. The forms:

    /mlops-bot rerun
    /mlops-bot compare against v5        (or: compare v5)
    /mlops-bot promote v7 [stage]        (default: the entry stage)
    /mlops-bot rollback [stage]          (default: the entry stage)
    /mlops-bot approve v7 <stage>
    /mlops-bot help

Anything else on a `/mlops-bot` line is a Command whose `problem` says what was wrong; the answer then lists
the forms. A version is `v<digits>` or digits (kept as the digits); a stage is an alias name.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

PREFIX = "/mlops-bot"
MAX_BODY = 64 * 1024  # longer comments are not read at all
VERBS = ("rerun", "compare", "promote", "rollback", "approve", "help")
FORMS = (
    "`/mlops-bot rerun`: run this pull request's check again",
    "`/mlops-bot compare against v5`: compare this pull request's run with version 5",
    "`/mlops-bot promote v7 staging`: move version 7 to a stage (default: the first stage)",
    "`/mlops-bot rollback production`: put a stage's previous version back (default: the first stage)",
    "`/mlops-bot approve v7 production`: approve version 7 for a stage that requires approval",
    "`/mlops-bot help`: this list",
)
_VERSION = re.compile(r"[vV]?([0-9]{1,18})")
_STAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")  # what an alias may be (MLflow's, and our tag names)
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


@dataclass(frozen=True)
class Command:
    verb: str  # one of VERBS; "help" also for a line that is not a valid command (see `problem`)
    line: str  # the command line as written (for the answer)
    version: str | None = None  # digits
    stage: str | None = None  # None: the entry stage (promote, rollback)
    problem: str = ""  # why the line is not a valid command; "" when it is

    @property
    def valid(self) -> bool:
        return not self.problem


Parser = Callable[[str, list[str]], Command]


def command_line(body: str) -> str | None:
    """The first `/mlops-bot` line of `body`, stripped; None when there is none (or the body is too long).
    Lines in fenced code blocks and quotes (`> /mlops-bot ...`, a reply quoting a command) are not commands."""
    if len(body) > MAX_BODY:
        return None
    fence = ""
    for raw in body.splitlines():
        opened = _FENCE.match(raw)
        if opened:
            mark = opened.group(1)
            if not fence:
                fence = mark
            elif mark[0] == fence[0] and len(mark) >= len(fence) and not raw.strip()[len(mark):].strip():
                fence = ""
            continue
        if fence or raw.startswith("    ") or raw.startswith("\t"):
            continue  # inside a fenced block, or an indented code block
        line = raw.strip()
        head = line[:len(PREFIX)]
        if head.lower() == PREFIX and (len(line) == len(PREFIX) or line[len(PREFIX)].isspace()):
            return line
    return None


def parse_line(line: str) -> Command:
    """The Command a `/mlops-bot` line asks for (see the module doc)."""
    words = line.split()[1:]
    if not words:
        return Command("help", line, problem="no command after /mlops-bot")
    verb, rest = words[0].lower(), words[1:]
    if verb not in VERBS:
        return Command("help", line, problem=f"unknown command {words[0]!r}")
    return _PARSERS[verb](line, rest)


def find_command(body: str) -> Command | None:
    line = command_line(body)
    return None if line is None else parse_line(line)


def _bad(line: str, problem: str) -> Command:
    return Command("help", line, problem=problem)


def _version(word: str) -> str | None:
    found = _VERSION.fullmatch(word)
    return str(int(found.group(1))) if found else None


def _no_args(verb: str) -> Parser:
    def parse(line: str, rest: list[str]) -> Command:
        if rest:
            return _bad(line, f"`{verb}` takes nothing after it, not {' '.join(rest)!r}")
        return Command(verb, line)
    return parse


def _compare(line: str, rest: list[str]) -> Command:
    words = rest[1:] if rest[:1] and rest[0].lower() == "against" else rest
    if len(words) != 1:
        return _bad(line, "`compare` takes one version: `compare against v5`")
    version = _version(words[0])
    if version is None:
        return _bad(line, f"{words[0]!r} is not a version (write v5 or 5)")
    return Command("compare", line, version=version)


def _stage(word: str) -> str | None:
    return word if _STAGE.fullmatch(word) else None


def _promote_or_approve(verb: str, stage_required: bool) -> Parser:
    def parse(line: str, rest: list[str]) -> Command:
        usage = f"`{verb} v7 production`" if stage_required else f"`{verb} v7` or `{verb} v7 staging`"
        if not rest or len(rest) > 2 or (stage_required and len(rest) != 2):
            return _bad(line, f"`{verb}` takes a version and {'a' if stage_required else 'optionally a'} stage: "
                              f"{usage}")
        version = _version(rest[0])
        if version is None:
            return _bad(line, f"{rest[0]!r} is not a version (write v7 or 7)")
        stage = _stage(rest[1]) if len(rest) == 2 else None
        if len(rest) == 2 and stage is None:
            return _bad(line, f"{rest[1]!r} is not a stage name")
        return Command(verb, line, version=version, stage=stage)
    return parse


def _rollback(line: str, rest: list[str]) -> Command:
    if len(rest) > 1:
        return _bad(line, "`rollback` takes at most a stage: `rollback production`")
    stage = _stage(rest[0]) if rest else None
    if rest and stage is None:
        return _bad(line, f"{rest[0]!r} is not a stage name")
    return Command("rollback", line, stage=stage)


_PARSERS: dict[str, Parser] = {"rerun": _no_args("rerun"), "help": _no_args("help"), "compare": _compare,
            "promote": _promote_or_approve("promote", False), "approve": _promote_or_approve("approve", True),
            "rollback": _rollback}
