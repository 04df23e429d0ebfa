"""Paths as ml.yaml writes them (relative to its directory, `/`-separated): one normal form and one overlap
rule, shared by validation (config) and run time (the pipeline's DAG), so that both agree on what a step
reads and writes. Purely lexical: the disk is never touched.

And one confinement rule for names that come from elsewhere (a server's artifact listing): `confined` is the
only place that turns such names into a local path to write, and it does look at the disk (symbolic links).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Sequence
from pathlib import Path

PROJECT = "."  # what "." and "./" normalise to: the whole project


def normalise(path: str) -> str:
    """'./a//b/' -> 'a/b', 'x/../y' -> 'y', './' -> '.'; backslashes count as separators."""
    return posixpath.normpath(path.replace("\\", "/"))


def overlaps(a: str, b: str) -> bool:
    """True when the paths name the same file or one lies inside the other (a directory covers its files).

    The project itself ("." or "./") covers every path in it.
    """
    a, b = normalise(a), normalise(b)
    if PROJECT in (a, b):
        return True
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def inside_project(path: str) -> bool:
    """True for a path strictly below the project directory (not the project itself, not above it)."""
    norm = normalise(path)
    return norm not in (PROJECT, "..") and not norm.startswith("../") and not posixpath.isabs(norm)


class UnsafePath(ValueError):
    """A name that is no plain file name, or a path that would lead out of its root; `str()` says why."""


def shown(value: object, limit: int = 80) -> str:
    """`repr(value)`, shortened: names from a server can be of any length."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def name_problem(name: object) -> str:
    """Why `name` cannot be one component of a path kept inside a directory ("" when it can)."""
    if not isinstance(name, str):
        return f"{shown(name)} is not a string"
    if name in ("", ".", ".."):
        return f"{name!r} is not a file name"
    if "\x00" in name:
        return f"{shown(name)} holds a NUL character"
    if "/" in name or "\\" in name:
        return f"{shown(name)} holds a path separator"
    return ""


def confined(root: Path, parts: Sequence[str]) -> Path:
    """`root` joined with `parts`, as a path to write to, or UnsafePath: each part must be a plain name (see
    `name_problem`), the path must stay inside `root` once the symbolic links already on disk are resolved,
    and the path itself must not be a symbolic link (a write would replace or follow it)."""
    for part in parts:
        problem = name_problem(part)
        if problem:
            raise UnsafePath(problem)
    path = root.joinpath(*parts)
    base, real = Path(os.path.realpath(root)), Path(os.path.realpath(path))
    if not real.is_relative_to(base):
        raise UnsafePath(f"{shown('/'.join(parts))} would lead out of {root} through a symbolic link on its way "
                         f"(to {real})")
    if parts and path.is_symlink():
        raise UnsafePath(f"{shown('/'.join(parts))} is a symbolic link in {root}, which is never replaced or "
                         "followed")
    return path
