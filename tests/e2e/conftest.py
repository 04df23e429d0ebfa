"""Fixtures for the end-to-end runs of the GitHub Action (act) and the GitLab component (gitlab-ci-local).

The tools come from scripts/install-ci-tools (the test command runs it); a missing tool FAILS the test with the
command to run, it never skips. What the runners install comes from a wheelhouse built once per session, so a
run needs no network: pip reads PIP_FIND_LINKS and PIP_NO_INDEX from the job's environment.
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


@pytest.fixture(scope="session")
def bot_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What a user's runner gets from the action's repository: action.yml and the package, without .venv etc."""
    source = tmp_path_factory.mktemp("bot-source") / "mlops-bot"
    source.mkdir()
    for name in ("action.yml", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "mlops_bot", source / "mlops_bot", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "templates", source / "templates")
    return source


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory, bot_source: Path) -> Path:
    """Wheels of mlops-bot, its dependencies and its build backend, so the jobs install without an index."""
    house = tmp_path_factory.mktemp("wheelhouse")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
                           "--wheel-dir", str(house), str(bot_source), "setuptools>=68", "wheel"],
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        pytest.fail(f"could not build the wheelhouse (is PyPI reachable?):\n{done.stderr[-3000:]}", pytrace=False)
    shutil.rmtree(bot_source / "build", ignore_errors=True)
    return house


@pytest.fixture(scope="session")
def pip_offline(wheelhouse: Path) -> dict[str, str]:
    return {"PIP_FIND_LINKS": str(wheelhouse), "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
