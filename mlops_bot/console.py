"""What the user sees on stderr (and the one JSON document on stdout), plus CI annotations."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from .errors import BotError, ConfigError


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def emit_json(document: Any) -> None:
    json.dump(document, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")
    sys.stdout.flush()


def in_github_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(level: str, message: str, file: str = "", line: int = 0, col: int = 0) -> None:
    """A GitHub Actions workflow command (`::error file=..,line=..,col=..::msg`), on stdout as the runner reads it."""
    if not in_github_actions():
        return
    props = []
    if file:
        props.append(f"file={_escape_property(_workspace_relative(file))}")
        if line:
            props.append(f"line={line}")
        if col:
            props.append(f"col={col}")
    head = f"::{level} {','.join(props)}" if props else f"::{level}"
    # Annotations go to stdout, where the runner looks for workflow commands; --json users are not in Actions.
    print(f"{head}::{_escape_data(message)}", flush=True)


def _workspace_relative(file: str) -> str:
    """GitHub places annotations by paths relative to the checkout."""
    workspace = os.environ.get("GITHUB_WORKSPACE")
    if not workspace:
        return file
    path, root = os.path.abspath(file), os.path.abspath(workspace)
    return os.path.relpath(path, root) if path.startswith(root + os.sep) else file


def report_config_error(exc: ConfigError) -> None:
    for problem in exc.problems:
        log(str(problem))
        where = f"{problem.path}: " if problem.path else ""
        annotation("error", where + problem.message, problem.file, problem.line, problem.col)
    count = len(exc.problems)
    log(f"mlops-bot: {count} configuration problem{'s' if count != 1 else ''}; fix the above and run again.")


def report_error(exc: BotError) -> None:
    log(f"mlops-bot: error: {exc}")
    annotation("error", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def report_internal_error(exc: BaseException) -> None:
    """One line for the user; the traceback goes to a file they can attach to a bug report."""
    import tempfile  # here, not at the top: every command imports this module, few fail (5 ms of start-up)
    import traceback

    fd, path = tempfile.mkstemp(prefix="mlops-bot-traceback-", suffix=".txt")
    with os.fdopen(fd, "w") as handle:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=handle)
    log(f"mlops-bot: internal error ({type(exc).__name__}: {exc}); please report it with the traceback "
        f"in {path} (--traceback shows it here)")
