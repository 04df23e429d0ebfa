from __future__ import annotations

import json
import os
import time
from pathlib import Path

import blake3

from mlops_bot.pipeline.hashing import Hasher
from mlops_bot.support.state import HASHES_FILE

OLD_NS = 1_600_000_000 * 10**9  # an mtime well in the past, so cache entries are not "racy"


def age(path: Path) -> None:
    os.utime(path, ns=(OLD_NS, OLD_NS))


def test_file_hash_is_blake3_of_content(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"hello")
    assert Hasher(tmp_path, tmp_path / ".s").hash("a.txt") == blake3.blake3(b"hello").hexdigest()


def test_missing_path_hashes_to_none(tmp_path: Path) -> None:
    assert Hasher(tmp_path, tmp_path / ".s").hash("nope") is None


def test_large_file_uses_the_same_hash_as_small_reads(tmp_path: Path) -> None:
    data = os.urandom(3 << 20)
    (tmp_path / "big").write_bytes(data)
    assert Hasher(tmp_path, tmp_path / ".s").hash("big") == blake3.blake3(data).hexdigest()


def test_directory_hash_depends_on_names_and_contents_not_creation_order(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    for base, names in ((one, ["b", "a/x", "a/y"]), (two, ["a/y", "a/x", "b"])):
        for name in names:
            (base / name).parent.mkdir(parents=True, exist_ok=True)
            (base / name).write_text(name)
    hasher = Hasher(tmp_path, tmp_path / ".s")
    assert hasher.hash("one") == hasher.hash("two")
    (two / "a" / "x").rename(two / "a" / "z")
    assert hasher.hash("one") != hasher.hash("two")
    (two / "a" / "z").rename(two / "a" / "x")
    (two / "b").write_text("B")
    assert hasher.hash("one") != hasher.hash("two")


def test_unchanged_old_files_are_not_reread_by_a_later_process(tmp_path: Path) -> None:
    for i in range(3):
        (tmp_path / f"f{i}").write_text(str(i))
        age(tmp_path / f"f{i}")
    first = Hasher(tmp_path, tmp_path / ".s")
    digests = [first.hash(f"f{i}") for i in range(3)]
    first.save()
    assert first.files_hashed == 3
    second = Hasher(tmp_path, tmp_path / ".s")
    assert [second.hash(f"f{i}") for i in range(3)] == digests
    assert second.files_hashed == 0


def test_a_changed_byte_is_seen_even_with_the_same_size(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"abcdef")
    age(path)
    hasher = Hasher(tmp_path, tmp_path / ".s")
    before = hasher.hash("data.bin")
    hasher.save()
    path.write_bytes(b"abcdeX")  # new mtime
    assert Hasher(tmp_path, tmp_path / ".s").hash("data.bin") != before


def test_touched_but_unchanged_file_is_rehashed_to_the_same_value(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"same")
    age(path)
    hasher = Hasher(tmp_path, tmp_path / ".s")
    before = hasher.hash("data.bin")
    hasher.save()
    os.utime(path, ns=(OLD_NS + 10**9, OLD_NS + 10**9))
    again = Hasher(tmp_path, tmp_path / ".s")
    assert again.hash("data.bin") == before
    assert again.files_hashed == 1


def test_recently_written_files_are_never_trusted_from_the_cache(tmp_path: Path) -> None:
    # A rewrite within the same mtime tick keeps (size, mtime, inode): such entries must be re-read.
    path = tmp_path / "fresh.txt"
    path.write_text("one")
    now = time.time_ns() + 10**9  # within the tick however slow this test runs (a clock a little ahead)
    os.utime(path, ns=(now, now))
    hasher = Hasher(tmp_path, tmp_path / ".s")
    first = hasher.hash("fresh.txt")
    with open(path, "r+") as handle:  # same inode, same size
        handle.write("two")
    os.utime(path, ns=(now, now))
    assert hasher.hash("fresh.txt") != first


def test_damaged_cache_file_is_ignored(tmp_path: Path) -> None:
    (tmp_path / ".s").mkdir()
    (tmp_path / ".s" / HASHES_FILE).write_text("{not json")
    (tmp_path / "a").write_text("x")
    hasher = Hasher(tmp_path, tmp_path / ".s")
    assert hasher.hash("a") is not None
    hasher.save()
    assert json.loads((tmp_path / ".s" / HASHES_FILE).read_text())["format"] == 1


def test_state_dirs_are_not_part_of_a_directory_hash(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("x")
    hasher = Hasher(tmp_path, tmp_path / ".s")
    before = hasher.hash("d")
    (tmp_path / "d" / "__pycache__").mkdir()
    (tmp_path / "d" / "__pycache__" / "f.pyc").write_text("junk")
    assert hasher.hash("d") == before
