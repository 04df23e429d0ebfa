"""The commit, branch and dirty flag of a working tree, asked of `git` itself (argument lists, no shell).

Everything is optional: outside a repository, without git installed, or on a detached HEAD the
missing parts are None, never an error - a run is still worth recording without lineage.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..registry import tags as names

_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class GitInfo:
    commit: str | None = None
    branch: str | None = None  # None on a detached HEAD (as CI checkouts often are)
    dirty: bool | None = None  # None when unknown

    def tags(self) -> dict[str, str]:
        """MLflow's own lineage tags where they exist, ours for the rest."""
        out: dict[str, str] = {}
        if self.commit:
            out[names.MLFLOW_GIT_COMMIT] = self.commit
        if self.branch:
            out[names.MLFLOW_GIT_BRANCH] = self.branch
        if self.dirty is not None:
            out[names.GIT_DIRTY] = "true" if self.dirty else "false"
        return out


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=_TIMEOUT_S, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_info(root: Path) -> GitInfo:
    commit = _git(root, "rev-parse", "--verify", "-q", "HEAD")
    if commit is None:
        return GitInfo()
    branch = _git(root, "symbolic-ref", "--short", "-q", "HEAD") or None
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    return GitInfo(commit=commit, branch=branch, dirty=None if status is None else bool(status))
