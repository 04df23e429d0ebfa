"""One atomic write (support/files.py) and one error for its failures: callers once wrapped it in three
different error types (or none), with three different messages."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_bot.ci.outputs import CIOutput
from mlops_bot.errors import EXIT_RUNTIME, BotError
from mlops_bot.forges.local import LocalForge
from mlops_bot.pipeline.cache import write_lock
from mlops_bot.pipeline.hashing import Hasher
from mlops_bot.support import files
from mlops_bot.support.files import WriteFailed, write_atomic


def test_parents_are_created_and_no_temp_file_is_left(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.txt"
    write_atomic(target, "one\n")
    write_atomic(target, "two\n")
    assert target.read_text() == "two\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]


def test_a_failed_write_keeps_the_old_content_and_says_what_to_do(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.txt"
    write_atomic(target, "old\n")

    def full(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", full)
    with pytest.raises(WriteFailed) as caught:
        write_atomic(target, "new\n")
    message = str(caught.value)
    assert str(target) in message and "No space left on device" in message and "writable directory" in message
    assert isinstance(caught.value, BotError) and caught.value.exit_code == EXIT_RUNTIME
    assert target.read_text() == "old\n" and os.listdir(tmp_path) == ["out.txt"]


def _blocked(tmp_path: Path) -> Path:
    """A file where a directory should be: every write below it fails (also for root, unlike chmod)."""
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory\n")
    return blocker


WRITERS: dict[str, Callable[[Path], object]] = {
    "ml.lock": lambda d: write_lock(d / "ml.lock", {}),
    "hash cache": lambda d: _dirty_hasher(d).save(),
    "GitLab dotenv": lambda d: CIOutput("gitlab", {}, root=d).outputs({"verdict": "pass"}),
    "local comment": lambda d: LocalForge(d, io.StringIO()).upsert_comment("m", "body"),
}


def _dirty_hasher(state_dir: Path) -> Hasher:
    hasher = Hasher(Path(__file__).parent, state_dir)
    hasher.hash(Path(__file__).name)
    return hasher


@pytest.mark.parametrize("writer", WRITERS)
def test_every_caller_fails_with_the_one_error(tmp_path: Path, writer: str) -> None:
    with pytest.raises(WriteFailed, match=r"cannot write .*blocker.* \(Not a directory\); check that"):
        WRITERS[writer](_blocked(tmp_path))
