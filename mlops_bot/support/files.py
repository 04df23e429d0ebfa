"""Writing a file so that no reader ever sees half of it, with one error that says what went wrong."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from ..errors import BotError


class WriteFailed(BotError):
    """A file could not be written (exit 3); names the file, the system's reason and what to check."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"cannot write {path} ({reason}); check that {path.parent} is a writable directory "
                         "with free space, then run again.")


def write_atomic(path: Path, data: str) -> None:
    """Creates the parent directories, writes a temp file next to `path`, fsyncs it and renames it over
    `path`: readers see the old content or the new, never a mix. Raises WriteFailed."""
    # pid and thread in the name: two writers of the same file never share a temp file
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        _sync_directory(path.parent)
    except FileExistsError as exc:  # from mkdir: a file stands where a parent directory should be
        raise WriteFailed(path, os.strerror(errno.ENOTDIR)) from exc
    except OSError as exc:
        raise WriteFailed(path, exc.strerror or str(exc) or type(exc).__name__) from exc


def _sync_directory(directory: Path) -> None:
    """Makes the rename itself durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def download_into(target: Path) -> Iterator[Path]:
    """A temp file beside `target` for a download to fill; renamed onto `target` when the block ends without an
    error, removed otherwise, so no half-downloaded file ever has the real name. A symbolic link at `target` is
    never replaced or followed. Raises WriteFailed."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".download-", suffix=".part")
        os.close(fd)
    except OSError as exc:
        raise WriteFailed(target, exc.strerror or str(exc)) from exc
    try:
        yield Path(temp)
        if target.is_symlink():
            raise WriteFailed(target, "a symbolic link stands there, and a download never replaces or follows one")
        os.replace(temp, target)
    except OSError as exc:
        raise WriteFailed(target, exc.strerror or str(exc)) from exc
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temp)  # gone already when renamed into place
