"""`git` for tests: a throwaway identity, no signing, output returned."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git(cwd: Path, *args: str) -> str:
    """Runs `git ARGS` in `cwd` and returns its stripped stdout; a failure raises CalledProcessError."""
    done = subprocess.run(["git", "-C", str(cwd), "-c", "user.name=tester", "-c", "user.email=tester@example.invalid",
                           "-c", "commit.gpgsign=false", *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()
