"""The BotError tree: every expected failure, with the exit code DESIGN.md assigns to it.

Adapters translate library exceptions into these at their edge; only `cli` turns them into exit codes.
"""

from __future__ import annotations

from typing import NamedTuple

EXIT_OK = 0
EXIT_NEGATIVE = 1
EXIT_CONFIG = 2
EXIT_RUNTIME = 3
EXIT_INTERNAL = 4
EXIT_INTERRUPTED = 130


class BotError(Exception):
    """Base of all expected failures; `str()` is the one-line message shown to the user."""

    exit_code = EXIT_RUNTIME


class UsageError(BotError):
    """Bad command-line usage or an input file that cannot be used as given."""

    exit_code = EXIT_CONFIG


class Problem(NamedTuple):
    """One configuration problem, located in its file. (A NamedTuple, not a dataclass: this module is on
    the start-up path of every command, and dataclasses costs ~9 ms to import.)"""

    file: str
    line: int
    col: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}:{self.line}:{self.col}: {where}{self.message}"


class ConfigError(BotError):
    """An invalid ml.yaml (or another declarative input); carries every problem found, not just the first."""

    exit_code = EXIT_CONFIG

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class RemoteError(BotError):
    """A remote service failed (after retries where retrying makes sense)."""

    def __init__(self, service: str, status: int | None, url: str, message: str) -> None:
        self.service = service
        self.status = status
        self.url = url
        self.detail = message
        code = f"HTTP {status}" if status is not None else "no answer"
        super().__init__(f"{service}: {code} from {url}: {message}")


class NotFound(RemoteError):
    """The remote object does not exist (MLflow RESOURCE_DOES_NOT_EXIST, HTTP 404)."""


class AlreadyExists(RemoteError):
    """The remote object exists already (MLflow RESOURCE_ALREADY_EXISTS)."""


class InvalidParameter(RemoteError):
    """The remote rejected a parameter (MLflow INVALID_PARAMETER_VALUE; also an unknown alias)."""


class AuthError(RemoteError):
    """The credentials were refused (HTTP 401/403)."""


class StepFailed(BotError):
    """A pipeline step exited non-zero, timed out or could not start."""

    def __init__(self, step: str, returncode: int | None, message: str, tail: str = "") -> None:
        self.step = step
        self.returncode = returncode
        self.tail = tail
        super().__init__(message + (f"\n{tail}" if tail else ""))


class DataError(BotError):
    """An input produced by the user's code (metrics, predictions) cannot be used."""
