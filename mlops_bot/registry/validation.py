"""Checks both adapters apply before asking a store, with MLflow's own rules, and errors raised locally.

An error found without asking the server has no HTTP status; its message says so instead of "no answer".
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from ..errors import InvalidParameter, RemoteError, UsageError
from .base import RUN_STATUSES

_ALIAS_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_RESERVED_RE = re.compile(r"^[vV]\d+$")


def rejected(cls: type[RemoteError], service: str, where: str, message: str) -> RemoteError:
    """A RemoteError subclass (so callers catch one type) for a problem found before any request."""
    error = cls(service, None, where, message)
    error.args = (f"{service}: {message} ({where})",)
    return error


def alias_problem(alias: str) -> str:
    """Why MLflow would reject `alias` ("" when it is fine)."""
    if not alias:
        return "the alias name is empty"
    if not _ALIAS_RE.match(alias):
        return f"invalid alias name {alias!r}: names may only contain alphanumerics, underscores (_) and dashes (-)"
    if alias.lower() == "latest" or _RESERVED_RE.match(alias):
        return f"alias name {alias!r} is reserved"
    return ""


def model_name_problem(name: str) -> str:
    if not name:
        return "the model name is empty"
    if "/" in name or ":" in name:
        return f"invalid model name {name!r}: names cannot contain '/' or ':'"
    return ""


def check_alias(alias: str, service: str, where: str) -> None:
    problem = alias_problem(alias)
    if problem:
        raise rejected(InvalidParameter, service, where, problem)


def check_status(status: str) -> None:
    # MLflow's REST API silently ignores an unknown status, so the bug would go unnoticed without this.
    if status not in RUN_STATUSES:
        raise UsageError(f"run status {status!r} is not one of {', '.join(RUN_STATUSES)}.")


def artifact_parts(path: str) -> tuple[str, ...]:
    """A relative artifact path as parts; refuses absolute paths, `..` that would leave the run's root, and NUL
    (no file system can hold it)."""
    pure = PurePosixPath(path.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or "\x00" in path:
        raise UsageError(f"artifact path {path!r} must be relative and stay inside the run's artifacts.")
    return tuple(part for part in pure.parts if part not in ("", "."))
