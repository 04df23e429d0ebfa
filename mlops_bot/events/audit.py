"""The audit log: every Event as one JSON line in `<root>/.mlops-bot/events/audit.jsonl`, rotated by size.

Durable and safe for several writers (the CLI, `serve`, `watch` at once): each append takes an exclusive
`flock` on `audit.lock`, rotates when the file would pass `max_bytes` (audit.jsonl -> audit.jsonl.1 -> ...,
keeping `keep` old files), writes its lines with one O_APPEND write and fsyncs before the lock is released.
A reader skips a line it cannot parse (the torn end of a write cut by a power loss).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from ..support.sqlite_guard import open_lock_file
from ..support.state import AUDIT_FILE, AUDIT_LOCK_FILE, EVENTS_DIR, local_state_dir, state_path

if TYPE_CHECKING:
    from .event import Event

MAX_BYTES = 10 * 1024 * 1024
KEEP = 5


def events_dir(root: Path) -> Path:
    """Where the project at `root` keeps its audit log (and `serve`'s and `watch`'s spools)."""
    return state_path(root, EVENTS_DIR)


class EventLog:
    def __init__(self, directory: Path, max_bytes: int = MAX_BYTES, keep: int = KEEP) -> None:
        self.directory, self.max_bytes, self.keep = directory, max_bytes, max(keep, 1)
        self.path = directory / AUDIT_FILE
        self._ready = False

    def append(self, event: Event) -> None:
        self.append_many([event])

    def append_many(self, events: Iterable[Event]) -> None:
        payload = "".join(event.to_json() + "\n" for event in events).encode()
        if not payload:
            return
        if not self._ready:
            local_state_dir(self.directory)
            self._ready = True
        with self._locked():
            self._rotate_if_full(len(payload))
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    payload = b"\n" + payload  # end a line torn by a crash, so it does not swallow ours
                view = memoryview(payload)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = open_lock_file(self.directory / AUDIT_LOCK_FILE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _rotate_if_full(self, incoming: int) -> None:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size == 0 or size + incoming <= self.max_bytes:
            return
        for number in range(self.keep - 1, 0, -1):
            older = self._rotated(number)
            if older.exists():
                older.replace(self._rotated(number + 1))
        self.path.replace(self._rotated(1))
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the renames survive a crash too
        finally:
            os.close(dir_fd)

    def _rotated(self, number: int) -> Path:
        return self.directory / f"{AUDIT_FILE}.{number}"

    def files(self) -> list[Path]:
        """The log's files, oldest first."""
        rotated = [self._rotated(n) for n in range(self.keep, 0, -1)]
        return [p for p in [*rotated, self.path] if p.exists()]

    def read(self) -> Iterator[Event]:
        for path in self.files():
            with contextlib.suppress(FileNotFoundError), path.open("rb") as handle:
                yield from _parse_lines(handle.read().splitlines())

    def ids_in_tail(self, limit_bytes: int = 64 * 1024 * 1024) -> set[str]:
        """Ids of the events in the newest `limit_bytes` of the log (what a restart checks before re-logging)."""
        found: set[str] = set()
        budget = limit_bytes
        for path in reversed(self.files()):
            if budget <= 0:
                break
            with contextlib.suppress(FileNotFoundError), path.open("rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                handle.seek(max(size - budget, 0))
                budget -= size
                found.update(event.id for event in _parse_lines(handle.read().splitlines()))
        return found

    def read_rotated(self) -> Iterator[Event]:
        for path in self.files():
            if path != self.path:
                with contextlib.suppress(FileNotFoundError), path.open("rb") as handle:
                    yield from _parse_lines(handle.read().splitlines())

    def snapshot(self) -> tuple[list[Event], tuple[int, int]]:
        """Every event in the log now, and where `follow` goes on from: (inode, offset) of the current file."""
        events = list(self.read_rotated())
        try:
            with self.path.open("rb") as handle:
                data, inode = handle.read(), os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            return events, (0, 0)
        end = data.rfind(b"\n") + 1
        events.extend(_parse_lines(data[:end].splitlines()))
        return events, (inode, end)

    def follow(self, start: tuple[int, int] | None = None, poll_s: float = 0.5,
               stop: Callable[[], bool] = lambda: False) -> Iterator[Event]:
        """Events as they are appended, across rotations, until `stop()` is true; from `start` (a snapshot's
        (inode, offset)), else from the end of the current file. A rotated file is read to its end, then
        the next newer one from its beginning, so several rotations between two polls lose nothing."""
        handle: BinaryIO | None = None
        if start is not None:
            handle = self._open_inode(start[0])
            if handle is not None:
                handle.seek(start[1])
        elif self.path.exists():
            handle = self.path.open("rb")
            handle.seek(0, os.SEEK_END)
        partial = b""
        while not stop():
            if handle is None:
                handle = self.path.open("rb") if self.path.exists() else None
            chunk = handle.read() if handle is not None else b""
            if chunk:
                lines = (partial + chunk).split(b"\n")
                partial = lines.pop()
                yield from _parse_lines(lines)
                continue
            if handle is not None and os.fstat(handle.fileno()).st_ino != _inode(self.path):
                newer = self._after(os.fstat(handle.fileno()).st_ino)
                if newer is not None:
                    handle.close()
                    handle, partial = newer.open("rb"), b""
                    continue
            time.sleep(poll_s)
        if handle is not None:
            handle.close()

    def _open_inode(self, inode: int) -> BinaryIO | None:
        for path in self.files():
            if _inode(path) == inode:
                return path.open("rb")
        return None

    def _after(self, inode: int) -> Path | None:
        """The file written after the one with `inode` (the current one when that is gone)."""
        files = self.files()
        inodes = [_inode(p) for p in files]
        if inode in inodes:
            index = inodes.index(inode)
            return files[index + 1] if index + 1 < len(files) else None
        return self.path if self.path.exists() else None


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


def _parse_lines(lines: Iterable[bytes]) -> Iterator[Event]:
    from .event import Event

    for line in lines:
        if not line.strip():
            continue
        try:
            yield Event.from_dict(json.loads(line))
        except (ValueError, TypeError, KeyError):
            continue  # a torn line (a write cut short by a crash) is not an event
