"""The end-to-end runs' tools and environment, and the quickstart repositories they run.

The tools come from scripts/install-ci-tools (the test command runs it); a missing tool FAILS the test with the
command to run, it never skips.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "examples" / "quickstart"
TOOLS = {
    "act": ROOT / ".venv" / "bin" / "act",
    "node": ROOT / ".tools" / "node" / "node_modules" / ".bin" / "node",
    "gitlab-ci-local": ROOT / ".tools" / "npm" / "node_modules" / ".bin" / "gitlab-ci-local",
}
# Variables of the machine running the tests that must not leak into the jobs' own CI context.
_CI_PREFIXES = ("GITHUB_", "GITLAB_", "CI_", "RUNNER_", "MLOPS_BOT_", "MLFLOW_", "ACT", "PIP_")
_GIT = {"GIT_AUTHOR_NAME": "e2e", "GIT_AUTHOR_EMAIL": "e2e@example.com", "GIT_COMMITTER_NAME": "e2e",
        "GIT_COMMITTER_EMAIL": "e2e@example.com"}


def tool(name: str) -> Path:
    path = TOOLS[name]
    if not os.access(path, os.X_OK):
        pytest.fail(f"{name} is not installed at {path}; run `bash scripts/install-ci-tools` (the test command "
                    "does) and make sure PyPI and the npm registry are reachable.", pytrace=False)
    if shutil.which("rsync") is None and name == "gitlab-ci-local":
        pytest.fail("rsync is missing (gitlab-ci-local needs it); run `bash scripts/install-ci-tools` as root or "
                    "install rsync.", pytrace=False)
    return path


def host_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The runners' own environment: ours without CI variables, the project's Python first on PATH (the quickstart's
    steps need scikit-learn, which the dev venv has), Node 22 next."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_CI_PREFIXES)}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), str(TOOLS["node"].parent), env.get("PATH", "")])
    env.update(_GIT)
    env.update(extra or {})
    return env


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=host_env())
    return done.stdout.strip()


@dataclass(frozen=True)
class Repo:
    path: Path
    head: str
    model: str


def make_repo(path: Path, branch: str, remote: str, extra: Mapping[str, str], drop: tuple[str, ...] = ()) -> Repo:
    """A real git repository holding the quickstart under a model name of its own (the mlflow server is shared by
    the session), plus the `extra` files, minus the `drop` ones."""
    model = f"e2e-{uuid.uuid4().hex[:8]}"
    shutil.copytree(QUICKSTART, path, ignore=shutil.ignore_patterns("build", ".mlops-bot", "deployed", "__pycache__"))
    config = path / "ml.yaml"
    text, renamed = re.subn(r"^model: \{name: [\w.-]+,", f"model: {{name: {model},", config.read_text(), flags=re.M)
    text, moved = re.subn(r"experiment: [\w.-]+\}", f"experiment: {model}}}", text)
    assert renamed == moved == 1, "the quickstart's ml.yaml changed shape; update make_repo"
    config.write_text(text)
    for name, text in extra.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    for name in drop:
        (path / name).unlink()
    git(path, "init", "--quiet", "--initial-branch", branch)
    git(path, "remote", "add", "origin", remote)
    git(path, "add", "--all")
    git(path, "commit", "--quiet", "--message", "quickstart")
    return Repo(path, git(path, "rev-parse", "HEAD"), model)


def spying_prepare(spy: Path) -> str:
    """The quickstart's prepare.py as a hostile pull request would change it: it records the environment it was
    given into `spy` (outside the repository), for a test to search for the job's tokens."""
    prepare = (QUICKSTART / "prepare.py").read_text()
    return prepare + f"\nimport json as _json, os as _os\n_json.dump(dict(_os.environ), open({str(spy)!r}, 'w'))\n"
