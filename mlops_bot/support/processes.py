"""Child processes of the user's commands (pipeline steps, deploy commands): each starts in its own process
group, its output is shown line by line behind a prefix while the last lines are kept, and a timeout or
Ctrl-C stops the whole group (SIGTERM, then SIGKILL after a grace), grandchildren included. `interrupts_held`
keeps a short piece of bookkeeping from being cut by a signal.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO

TERM_GRACE_S = 5.0  # between SIGTERM and SIGKILL
HEARTBEAT_S = 60.0  # a silent child still shows it is alive in CI logs
READER_JOIN_S = 2.0  # how long the output may keep flowing after the child exited
Echo = Callable[[str], None]
Heartbeat = Callable[[float], None]  # called with the seconds elapsed while a child runs silently


@dataclass(frozen=True)
class Launch:
    """What to run and where its output goes."""

    argv: Sequence[str]
    cwd: Path
    env: Mapping[str, str]
    prefix: str  # put before each output line, e.g. "[train] "
    echo: Echo
    tail_lines: int = 20


@dataclass(frozen=True)
class Finished:
    code: int | None  # the exit status (negative: killed by that signal); None: timed out, group stopped
    tail: list[str]  # the last lines of output
    duration: float  # seconds


def run(launch: Launch, timeout: float | None, heartbeat: Heartbeat | None = None) -> Finished:
    """Runs the child to completion or to its timeout. OSError when it cannot start (the caller says why in
    its own words); Ctrl-C stops the group and propagates."""
    started = time.monotonic()
    proc = subprocess.Popen(list(launch.argv), cwd=launch.cwd, env=dict(launch.env), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    tail: collections.deque[str] = collections.deque(maxlen=launch.tail_lines)
    assert proc.stdout is not None
    reader = threading.Thread(target=_pump, args=(proc.stdout, launch.prefix, tail, launch.echo), daemon=True)
    reader.start()
    try:
        code = _wait(proc, timeout, heartbeat)
    finally:
        reader.join(timeout=READER_JOIN_S)
        if reader.is_alive():  # a left-over background child still holds the output pipe
            kill_group(proc)
            reader.join(timeout=READER_JOIN_S)
    return Finished(code, list(tail), time.monotonic() - started)


def _pump(stream: IO[bytes], prefix: str, tail: collections.deque[str], echo: Echo) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        tail.append(line)
        echo(f"{prefix}{line}")
    stream.close()


def _wait(proc: subprocess.Popen[bytes], timeout: float | None, heartbeat: Heartbeat | None) -> int | None:
    """The exit status, or None after the timeout stopped the group."""
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout
    try:
        while True:
            budget = HEARTBEAT_S if deadline is None else min(HEARTBEAT_S, max(deadline - time.monotonic(), 0))
            try:
                return proc.wait(timeout=budget)
            except subprocess.TimeoutExpired:
                if deadline is not None and time.monotonic() >= deadline:
                    kill_group(proc)
                    return None
                if heartbeat is not None:
                    heartbeat(time.monotonic() - started)
    except KeyboardInterrupt:
        kill_group(proc)
        raise


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block is done, then arrive as they would have (the first one, through
    the handler that was in place): a short bookkeeping call, such as marking a run KILLED after the first
    Ctrl-C, is not cut in half by a second one or by CI's follow-up SIGTERM. Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        pending.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        if pending:
            signal.raise_signal(pending[0])


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the child's whole process group; SIGKILL whatever is left of it after the grace, even when
    the child itself has exited (a grandchild may ignore SIGTERM). Safe when all of it is gone already.
    A second Ctrl-C (or CI's SIGTERM after its SIGINT) waits until the group is gone: it must not leave it alive."""
    with interrupts_held():
        _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + TERM_GRACE_S
        while time.monotonic() < deadline:
            if proc.poll() is not None and not _group_alive(proc.pid):
                return
            time.sleep(0.05)
        _signal_group(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=1.0)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    """A member of the group is still running (zombies waiting for their reaper do not count)."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return _has_running_member(pgid)


def _has_running_member(pgid: int) -> bool:
    proc_dir = Path("/proc")
    if not proc_dir.is_dir():  # no procfs (macOS): the signal probe above is all we know
        return True
    for entry in proc_dir.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = entry.joinpath("stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False
