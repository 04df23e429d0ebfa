"""The working directory a remote step gets: the project's files git knows (tracked, or untracked and not ignored)
and the step's deps (data is often ignored by git), never `.git`, `.mlops-bot`, ignore files or the step's own
outs. Staged by hard links (copies across file systems) into a directory the backend ships: Ray's `working_dir`, a
tarball in the tracking run for Kubernetes."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from ...config.model import Step
from ...support.paths import normalise, overlaps
from ...support.state import STATE_DIR
from ..dag import step_outs

NEVER = (".git", STATE_DIR)
# Applied here already; shipped, they would make Ray's packaging drop the deps git ignores (data, often).
IGNORE_FILES = {".gitignore", ".rayignore"}
SKIPPED_DIRS = {".git", STATE_DIR, ".venv", "venv", "__pycache__", "node_modules", ".mypy_cache", ".ruff_cache"}


def stage_workdir(root: Path, step: Step, dest: Path) -> int:
    """Fills `dest` with the step's working directory; returns its size in bytes."""
    outs = list(step_outs(step))
    total = 0
    for rel in sorted(set(_project_files(root)) | set(_dep_files(root, step.deps))):
        if rel.split("/", 1)[0] in NEVER or rel.rsplit("/", 1)[-1] in IGNORE_FILES \
                or any(overlaps(rel, out) for out in outs):
            continue
        src, dst = root / rel, dest / rel
        if src.is_symlink() or not src.is_file():
            continue  # a link could point anywhere on this runner: never shipped
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
        total += dst.stat().st_size
    return total


def tarball(directory: Path, archive: Path) -> Path:
    """`directory`'s files as a gzipped tar with relative names (what remote_entry --workdir-artifact unpacks)."""
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            tar.add(path, arcname=path.relative_to(directory).as_posix(), recursive=False)
    return archive


def _project_files(root: Path) -> Iterator[str]:
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                                capture_output=True, check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        yield from _walk(root, root)  # not a git repository (or no git): every file but the skipped folders
        return
    yield from (name for name in listed.decode("utf-8", "surrogateescape").split("\0") if name)


def _dep_files(root: Path, deps: Iterable[str]) -> Iterator[str]:
    for dep in map(normalise, deps):
        path = root / dep
        if path.is_dir():
            yield from _walk(root, path)
        elif path.is_file():
            yield dep


def _walk(root: Path, top: Path) -> Iterator[str]:
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS]
        base = Path(folder)
        yield from ((base / name).relative_to(root).as_posix() for name in files)
