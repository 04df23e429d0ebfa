"""Fixtures for the end-to-end runs of the GitHub Action (act) and the GitLab component (gitlab-ci-local).

The tools come from scripts/install-ci-tools (the test command runs it); a missing tool FAILS the test with the
command to run, it never skips. What the runners install comes from a wheelhouse built once per session, so a
run needs no network: pip reads PIP_FIND_LINKS and PIP_NO_INDEX from the job's environment. Helpers (tools, the
runners' environment, quickstart repositories) are in tests/helpers/e2e.py.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.e2e import ROOT


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
    """Wheels of mlops-bot, its dependencies (with the drift extra) and its build backend, so the jobs install
    without an index."""
    house = tmp_path_factory.mktemp("wheelhouse")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
                           "--wheel-dir", str(house), f"{bot_source}[drift]", "setuptools>=68", "wheel"],
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        pytest.fail(f"could not build the wheelhouse (is PyPI reachable?):\n{done.stderr[-3000:]}", pytrace=False)
    shutil.rmtree(bot_source / "build", ignore_errors=True)
    return house


@pytest.fixture(scope="session")
def pip_offline(wheelhouse: Path) -> dict[str, str]:
    return {"PIP_FIND_LINKS": str(wheelhouse), "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
