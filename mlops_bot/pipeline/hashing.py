"""Content hashes of deps and outs: blake3 (near disk speed), with a stat cache so unchanged files are not re-read.

A file's cached hash is trusted while its (size, mtime_ns, inode) stay the same - and only once the file
was already older than the timestamp granularity when it was hashed: a file rewritten within the same
clock tick keeps its mtime, so such "racy" entries are re-hashed next time (git's racy-clean rule).
Within one process a digest this process computed is reused for the same (size, mtime_ns, inode) once the
file's mtime is a few clock ticks older than that hash: a later write (a step rewriting its out) gets a later
mtime, so a touched 1 GB input is read once per run, not once per caller (step keys, pipeline key, lineage).
Directories hash by their sorted contents (relative path and content hash of every file).
"""

from __future__ import annotations

import json
import os
import posixpath
import stat
import time
from pathlib import Path

import blake3

from ..support.files import write_atomic
from ..support.state import HASHES_FILE, STATE_DIR

SKIP_DIRS = frozenset({".git", STATE_DIR, "__pycache__"})
RACY_NS = 2_000_000_000  # covers the coarsest common mtime granularity (2 s on FAT)
# Timestamps with a sub-second part come from a clock ticking every few ms at most (ns file systems: jiffies,
# 15.6 ms on Windows; exFAT 10 ms); whole seconds may be a 1-2 s file system, where only RACY_NS is safe.
SETTLED_NS = 50_000_000
MMAP_MIN = 1 << 20  # below this a plain read is faster than mapping
_FORMAT = 1


def hash_bytes(data: bytes) -> str:
    return str(blake3.blake3(data).hexdigest())


# absolute path -> (size, mtime_ns, inode, hashed_at, digest) of files this process read: shared by every
# Hasher, since a command may make several (pipeline/lastrun) and each loads the same racy entries
_READ: dict[str, tuple[int, int, int, int, str]] = {}


def _settled(mtime_ns: int, hashed_at: int) -> bool:
    """No write after `hashed_at` can keep `mtime_ns`: the file was older than its clock's tick by then."""
    window = SETTLED_NS if mtime_ns % 1_000_000_000 else RACY_NS
    return mtime_ns + window < hashed_at


def _hash_file(path: Path, size: int) -> str:
    if size >= MMAP_MIN:
        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        hasher.update_mmap(path)
        return str(hasher.hexdigest())
    return hash_bytes(path.read_bytes())


class Hasher:
    """Hashes paths below `root`; the stat cache lives in `state_dir` and is written by `save()`."""

    def __init__(self, root: Path, state_dir: Path) -> None:
        self.root = root
        self.cache_path = state_dir / HASHES_FILE
        self._entries: dict[str, list[int | str]] = self._load()
        self._dirty = False
        self._seen: set[str] = set()
        self.files_hashed = 0  # how many files were actually read (for tests and benchmarks)

    def _load(self) -> dict[str, list[int | str]]:
        try:
            doc = json.loads(self.cache_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # no cache or a damaged one: hashing from scratch is always correct
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT or not isinstance(doc.get("entries"), dict):
            return {}
        return dict(doc["entries"])

    def save(self, prune: bool = False) -> None:
        """Writes the stat cache; `prune` drops entries of files not hashed by this process."""
        if prune and len(self._seen) < len(self._entries):
            self._entries = {k: v for k, v in self._entries.items() if k in self._seen}
            self._dirty = True
        if not self._dirty:
            return
        data = json.dumps({"format": _FORMAT, "entries": self._entries}, separators=(",", ":"))
        write_atomic(self.cache_path, data)
        self._dirty = False

    def exists(self, rel: str) -> bool:
        return (self.root / rel).exists()

    def hash(self, rel: str) -> str | None:
        """The content hash of a file or directory (None when it does not exist)."""
        rel = posixpath.normpath(rel)
        path = self.root / rel
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        if stat.S_ISDIR(st.st_mode):
            return self._hash_dir(path, rel)
        return self._hash_file_cached(path, rel, st)

    def _hash_file_cached(self, path: Path, key: str, st: os.stat_result) -> str:
        self._seen.add(key)
        signature = (st.st_size, st.st_mtime_ns, st.st_ino)
        entry = self._entries.get(key)
        if entry is not None and len(entry) == 5:
            size, mtime_ns, ino, hashed_at, digest = entry
            if (size, mtime_ns, ino) == signature and isinstance(hashed_at, int) \
                    and st.st_mtime_ns + RACY_NS < hashed_at:
                return str(digest)
        name = os.path.abspath(path)
        read = _READ.get(name)
        if read is not None and read[:3] == signature and _settled(st.st_mtime_ns, read[3]):
            now, digest = read[3], read[4]  # still racy for the next process: it keeps this hashed_at
        else:
            now = time.time_ns()
            digest = _hash_file(path, st.st_size)
            self.files_hashed += 1
            _READ[name] = (*signature, now, digest)
        if entry != [*signature, now, digest]:
            self._entries[key] = [*signature, now, digest]
            self._dirty = True
        return digest

    def _hash_dir(self, path: Path, key: str) -> str:
        lines = []
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
            base = Path(dirpath)
            for name in sorted(filenames):
                file = base / name
                try:
                    st = file.stat()
                except FileNotFoundError:
                    continue  # a dangling symlink holds no content
                rel = file.relative_to(path).as_posix()
                lines.append(f"{rel}\0{self._hash_file_cached(file, f'{key}/{rel}', st)}\n")
        return hash_bytes("".join(lines).encode())
