"""What a remote step's working directory holds (pipeline/backends/workdir.py): git's files and the step's deps,
never the bot's state, git's objects, ignore files (Ray would apply them again and drop the ignored deps), the
step's own outs or a link to elsewhere on the runner."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

from mlops_bot.config.model import Step
from mlops_bot.pipeline.backends.workdir import stage_workdir, tarball


def _tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _project(tmp_path: Path, git: bool) -> Path:
    root = tmp_path / "project"
    for rel, text in {"train.py": "print(1)\n", "ml.yaml": "version: 1\n", ".gitignore": "data/\nbuild/\nscratch/\n",
                      "data/big.csv": "a\n1\n", "scratch/notes.txt": "x\n", "build/model/old": "stale\n",
                      ".mlops-bot/secret-state": "x\n", "pkg/util.py": "X = 1\n"}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "link.py").symlink_to("/etc/passwd")
    if git:
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    return root


STEP = Step(name="train", cmd="python train.py", deps=("train.py", "data"), outs=("build/model",))


def test_a_git_project_ships_what_git_knows_and_the_deps(tmp_path: Path) -> None:
    root = _project(tmp_path, git=True)
    size = stage_workdir(root, STEP, tmp_path / "staged")
    assert _tree(tmp_path / "staged") == ["data/big.csv", "ml.yaml", "pkg/util.py", "train.py"]
    assert size == sum(p.stat().st_size for p in (tmp_path / "staged").rglob("*") if p.is_file())


def test_without_git_every_file_but_the_state_and_the_outs(tmp_path: Path) -> None:
    root = _project(tmp_path, git=False)
    stage_workdir(root, STEP, tmp_path / "staged")
    assert _tree(tmp_path / "staged") == ["data/big.csv", "ml.yaml", "pkg/util.py", "scratch/notes.txt",
                                          "train.py"]


def test_the_archive_holds_relative_names(tmp_path: Path) -> None:
    root = _project(tmp_path, git=True)
    stage_workdir(root, STEP, tmp_path / "staged")
    with tarfile.open(tarball(tmp_path / "staged", tmp_path / "w.tar.gz")) as tar:
        assert sorted(tar.getnames()) == ["data/big.csv", "ml.yaml", "pkg/util.py", "train.py"]
