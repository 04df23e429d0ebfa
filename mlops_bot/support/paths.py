"""Paths as ml.yaml writes them (relative to its directory, `/`-separated): one normal form and one overlap
rule, shared by validation (config) and run time (the pipeline's DAG), so that both agree on what a step
reads and writes. Purely lexical: the disk is never touched.
"""

from __future__ import annotations

import posixpath

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
