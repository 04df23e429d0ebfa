"""Lookups behind the checks in schema.py and semantics.py: did-you-mean hints, the params file's keys, and
the disk, asked safely about the paths ml.yaml names. (Paths and their overlap: support/paths.py, shared with
the pipeline.)"""

from __future__ import annotations

import difflib
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import yaml

from ..support.paths import PROJECT, normalise
from .compose import explain, load_yaml

NAME_MAX = 255  # bytes in one part of a path (Linux, macOS; Windows counts 255 characters)
PATH_MAX = 4095  # bytes in a whole path (Linux)


def close_match(word: str, choices: Iterable[str]) -> str:
    choices = list(choices)
    if len(choices) > 2000 or len(word) > 200:  # difflib is slow; a hint among thousands is no help anyway
        return ""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


class Writers:
    """Which steps write a path, by the overlap rule of support/paths (the same path, a directory above it, a
    file below it; "." covers all), found in sorted paths instead of by comparing every pair: thousands of
    outs are checked in milliseconds, and the work is bounded by the length of the paths."""

    def __init__(self, produced: Sequence[tuple[str, Any, str]]) -> None:
        self.produced = produced
        self.at: dict[tuple[str, ...], dict[str, int]] = {}  # path parts -> {step: its first entry}, in order
        for i, (step, _, out) in enumerate(produced):
            self.at.setdefault(_parts(out), {}).setdefault(step, i)
        self.order = sorted(self.at)

    def overlapping(self, path: str) -> Iterator[tuple[tuple[str, ...], dict[str, int]]]:
        """(parts, writers) of each written path that overlaps `path`: its parents, itself, its children."""
        key = _parts(path)
        for n in range(len(key) + 1):
            if key[:n] in self.at:
                yield key[:n], self.at[key[:n]]
        for j in range(bisect_right(self.order, key), len(self.order)):
            if self.order[j][: len(key)] != key:
                break
            yield self.order[j], self.at[self.order[j]]

    def steps(self, path: str) -> set[str]:
        return {step for _, writers in self.overlapping(path) for step in writers}

    def written(self, path: str) -> bool:
        return next(self.overlapping(path), None) is not None

    def conflict(self, index: int) -> int | None:
        """The first entry before `produced[index]` that writes an overlapping path, other than the same step
        naming the same path again (None if there is none)."""
        step, _, out = self.produced[index]
        key = _parts(out)
        earliest = None
        for other, writers in self.overlapping(out):
            for other_step, i in islice(writers.items(), 2):  # the first writer, or else the next one
                if i < index and not (other_step == step and other == key):
                    earliest = i if earliest is None else min(earliest, i)
                    break
        return earliest


def _parts(path: str) -> tuple[str, ...]:
    norm = normalise(path)
    return () if norm == PROJECT else tuple(norm.split("/"))


def path_problem(path: str) -> str:
    """Why no file system can hold `path` (a path as ml.yaml writes it), "" when one can."""
    control = next((c for c in path if ord(c) < 32 or ord(c) == 127), None)
    if control is not None:
        return f"holds the control character {control!r}; write the path without it"
    size = len(path.encode("utf-8", "replace"))
    if size > PATH_MAX:
        return f"is {size} bytes long; paths are limited to {PATH_MAX} bytes: shorten it"
    part = max(path.replace("\\", "/").split("/"), key=lambda p: len(p.encode("utf-8", "replace")))
    size = len(part.encode("utf-8", "replace"))
    if size > NAME_MAX:
        return f"has a name of {size} bytes; file and directory names are limited to {NAME_MAX} bytes: shorten it"
    return ""


def exists(path: Path) -> bool | None:
    """Whether `path` exists; None when the system cannot tell (no permission to look, a name it refuses)."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return None


def is_file(path: Path) -> bool | None:
    try:
        return path.is_file()
    except (OSError, ValueError):
        return None


def load_yaml_keys(path: Path) -> tuple[Any, str]:
    """(data, "") or (None, why not): the params file, read with ml.yaml's limits (`compose.load_yaml`)."""
    try:
        if not path.is_file():
            return None, "the file does not exist"
        text = path.read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        return None, f"the file cannot be read ({getattr(exc, 'strerror', None) or exc})"
    try:
        return load_yaml(text), ""
    except yaml.YAMLError as exc:
        line, col, what = explain(exc, text)
        return None, f"{path.name}:{line}:{col}: {what}"


def flatten_keys(data: Any, prefix: str = "") -> set[str]:
    """Every key of a nested mapping, dotted ("train.C"), parents included."""
    keys: set[str] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            full = f"{prefix}{key}"
            keys.add(full)
            keys |= flatten_keys(value, full + ".")
    return keys
