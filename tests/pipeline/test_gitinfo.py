from __future__ import annotations

from pathlib import Path

from mlops_bot.pipeline.gitinfo import GitInfo, git_info
from tests.helpers.git import git


def test_not_a_repository_gives_no_lineage(tmp_path: Path) -> None:
    assert git_info(tmp_path) == GitInfo()
    assert GitInfo().tags() == {}


def test_commit_branch_and_dirty_flag(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "-b", "feature/x")
    (tmp_path / "a.txt").write_text("1")
    git(tmp_path, "add", "a.txt")
    git(tmp_path, "commit", "-q", "-m", "one")
    info = git_info(tmp_path)
    assert info == GitInfo(commit=git(tmp_path, "rev-parse", "HEAD"), branch="feature/x", dirty=False)
    assert info.tags() == {"mlflow.source.git.commit": info.commit, "mlflow.source.git.branch": "feature/x",
                           "mlops_bot.git.dirty": "false"}
    (tmp_path / "untracked.txt").write_text("untracked files do not make a tree dirty")
    assert git_info(tmp_path).dirty is False
    (tmp_path / "a.txt").write_text("2")
    assert git_info(tmp_path).dirty is True


def test_detached_head_has_no_branch(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("1")
    git(tmp_path, "add", "a.txt")
    git(tmp_path, "commit", "-q", "-m", "one")
    git(tmp_path, "checkout", "-q", "--detach")
    info = git_info(tmp_path)
    assert info.commit and info.branch is None and info.dirty is False


def test_repository_without_commits(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    assert git_info(tmp_path) == GitInfo()
