"""A touched-but-unchanged file is read once per process, however many callers ask for its hash (step keys,
the pipeline key, the lineage hash, another Hasher), and again by the next process while it is racy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from mlops_bot.pipeline import hashing
from mlops_bot.pipeline.execute import run_pipeline
from mlops_bot.pipeline.hashing import RACY_NS, Hasher
from mlops_bot.pipeline.result import RunOptions
from mlops_bot.registry.base import Registry
from tests.helpers.pipeline_project import config

HALF_SECOND = 500_000_000


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a new process would: nothing read yet."""
    monkeypatch.setattr(hashing, "_READ", {})


def touched(path: Path, ago_ns: int) -> int:
    """Sets the mtime `ago_ns` before now, with a sub-second part (a file system with ns timestamps)."""
    mtime = time.time_ns() - ago_ns
    mtime += 1 if mtime % 10**9 == 0 else 0
    os.utime(path, ns=(mtime, mtime))
    return mtime


def in_a_new_process(root: Path, rel: str) -> int:
    code = ("import sys\nfrom pathlib import Path\nfrom mlops_bot.pipeline.hashing import Hasher\n"
            "h = Hasher(Path(sys.argv[1]), Path(sys.argv[1]) / '.s')\nh.hash(sys.argv[2])\nprint(h.files_hashed)")
    done = subprocess.run([sys.executable, "-c", code, str(root), rel], capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_a_touched_file_is_read_once_per_process_and_again_by_the_next(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(3 << 20))  # mapped, as a large input is
    touched(path, HALF_SECOND)  # racy: younger than RACY_NS, so no later process may trust the entry
    hasher = Hasher(tmp_path, tmp_path / ".s")
    digests = {hasher.hash("data.bin") for _ in range(4)}
    assert len(digests) == 1 and hasher.files_hashed == 1
    hasher.save()
    other = Hasher(tmp_path, tmp_path / ".s")  # a second Hasher of the same command (pipeline/lastrun)
    assert other.hash("data.bin") in digests and other.files_hashed == 0
    assert in_a_new_process(tmp_path, "data.bin") == 1


def test_files_inside_a_directory_are_read_once_too(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    for name in ("a", "b"):
        (tmp_path / "d" / name).write_text(name)
        touched(tmp_path / "d" / name, HALF_SECOND)
    hasher = Hasher(tmp_path, tmp_path / ".s")
    assert hasher.hash("d") == hasher.hash("d") and hasher.hash("d/a") is not None
    assert hasher.files_hashed == 2


def test_the_entry_a_reused_digest_leaves_is_still_racy_for_the_next_process(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("x")
    mtime = touched(path, HALF_SECOND)
    first = Hasher(tmp_path, tmp_path / ".s")
    first.hash("f")
    second = Hasher(tmp_path, tmp_path / ".s")
    second.hash("f")
    second.save()
    [entry] = json.loads((tmp_path / ".s" / "hashes.json").read_text())["entries"].values()
    assert entry[1] == mtime and entry[3] < mtime + RACY_NS  # when it was read, not when it was reused


def test_a_rewrite_in_the_same_tick_after_the_read_is_seen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A step may rewrite its out within the file system's clock tick: same size, mtime and (reused) inode.
    path = tmp_path / "out.txt"
    path.write_text("one")
    mtime = touched(path, 0)
    clock = types.SimpleNamespace(time_ns=lambda: mtime + 1_000_000)  # read 1 ms after the write
    monkeypatch.setattr(hashing, "time", clock)
    hasher = Hasher(tmp_path, tmp_path / ".s")
    first = hasher.hash("out.txt")
    path.write_text("two")
    os.utime(path, ns=(mtime, mtime))
    assert hasher.hash("out.txt") != first and hasher.files_hashed == 2


def test_whole_second_timestamps_are_trusted_only_after_the_racy_window(tmp_path: Path) -> None:
    # Whole seconds may come from a 1-2 s file system (FAT, HFS+): a rewrite a second later keeps the mtime.
    path = tmp_path / "f"
    path.write_text("x")
    second = time.time_ns() // 10**9 * 10**9
    os.utime(path, ns=(second, second))
    hasher = Hasher(tmp_path, tmp_path / ".s")
    hasher.hash("f")
    hasher.hash("f")
    assert hasher.files_hashed == 2


def test_a_cached_run_reads_a_touched_input_once(project: Path, registry: Registry, counter: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # step keys, the pipeline key, stale outs and the lineage hash each ask for the same hashes
    run_pipeline(config(project), registry, RunOptions())
    for path in project.rglob("*"):  # all written or touched half a second ago: racy, yet settled
        if path.is_file() and ".mlops-bot" not in path.parts:
            touched(path, HALF_SECOND)
    monkeypatch.setattr(hashing, "_READ", {})  # the next command is a new process
    reads: list[str] = []
    real = hashing._hash_file

    def counting(path: Path, size: int) -> str:
        reads.append(Path(path).relative_to(project).as_posix())
        return real(path, size)

    monkeypatch.setattr(hashing, "_hash_file", counting)
    result = run_pipeline(config(project), registry, RunOptions())
    assert {s.status for s in result.steps} == {"cached"}
    assert "data/raw.csv" in reads and len(reads) == len(set(reads))
