"""What the metrics and the predictions readers share: a file's text, and a value shown in a message. Pure apart
from reading the file."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

from ..errors import DataError


def read_text(path: Path, what: str) -> str:
    """The file's text (UTF-8, a byte order mark dropped); a DataError naming the file when it cannot be read or is
    empty."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found; check that the step writes it at this path.") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a {what}.") from None
    except (OSError, ValueError) as exc:  # UnicodeDecodeError; a NUL in the name
        raise DataError(f"{path}: cannot read the {what} ({exc}).") from None
    if not text.strip():
        raise DataError(f"{path}: {what} is empty.")
    return text


def shown(value: object, limit: int = 80) -> str:
    """repr(value), shortened; an integer too long for Python to print (a YAML hex number) is described."""
    try:
        text = repr(value)
    except ValueError:
        return "an integer of more than 4,300 digits"
    return text if len(text) <= limit else text[: limit - 3] + "..."


class NotANumber(Exception):
    """A metric's value cannot be read as a number; str() says why, for the reader to place at the file, line and
    metric."""


def at(path: Path, line: int | None) -> str:
    """`path:line`, or the path alone when there is no line."""
    return f"{path}:{line}" if line is not None else str(path)


def holds_no_mapping(path: Path, kind: str) -> NoReturn:
    raise DataError(f"{path}: holds {kind}, not a mapping of metric names to numbers.")


def why(exc: BaseException) -> str:
    """What a parser's ValueError or RecursionError means, in a few words."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if "integer string conversion" in str(exc):
        return "a number has too many digits"
    return str(exc).splitlines()[0][:120]
