"""A submitted Ray job followed to its end: its log echoed as `[step] line` while it comes (Ray's websocket tail, in
a thread), its status polled, heartbeat lines while it is quiet, its timeout enforced; the end it reached turned into
the step's duration or a StepFailed that says what happened on the cluster."""

from __future__ import annotations

import asyncio
import collections
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

from ...errors import StepFailed
from ...support.processes import HEARTBEAT_S
from ...support.urls import redact, redact_text
from .base import Echo, RemoteStep

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient

POLL_S = 0.5
LOST_AFTER_S = 10.0  # status requests failing this long: the cluster is gone (a dashboard restart takes less)
STOP_WAIT_S = 15.0  # Ray sends SIGTERM, then SIGKILL after its own grace (RAY_JOB_STOP_WAIT_TIME_S, 3 s)
TAIL_LINES = 20
MESSAGE_LINES = 12  # of Ray's own message (a runtime env's failure is a traceback ending in pip's error)


class Watch:
    """One submitted job, until it ends."""

    def __init__(self, client: JobSubmissionClient, job: RemoteStep, submission: str, address: str) -> None:
        self.client, self.job, self.submission, self.address = client, job, submission, address
        self.log = LogFollower(client, submission, f"[{job.step.name}] ", job.echo)

    def until_done(self, started: float) -> None:
        """Returns when the job succeeded; StepFailed for every other end (exit 3)."""
        timeout = self.job.step.timeout or None
        beat = started + HEARTBEAT_S
        failing_since: float | None = None
        while True:
            now = time.monotonic()
            try:
                info = self.client.get_job_info(self.submission)
                failing_since = None
            except Exception as exc:  # requests' and Ray's errors alike: judged by how long they last
                failing_since = failing_since or now
                if now - failing_since >= LOST_AFTER_S:
                    self.log.close(None)
                    raise self._lost(exc) from None
                info = None
            if info is not None and info.status.is_terminal():
                self.log.close(self.client)
                self._judge(info)
                return
            if timeout is not None and now - started >= timeout:
                self.stop()
                self.log.close(self.client)
                raise self._failed(None, f"timed out after {timeout:g}s and was stopped on the Ray cluster",
                                   f"raise pipeline.{self.job.step.name}.timeout or make the step faster")
            if now >= beat:
                self.job.echo(f"{self.job.progress}: still running ({now - started:.0f}s)")
                beat += HEARTBEAT_S
            time.sleep(POLL_S)

    def stop(self) -> None:
        stop_job(self.client, self.submission, self.address, self.job.echo)

    def _judge(self, info: Any) -> None:
        status, code = str(info.status), getattr(info, "driver_exit_code", None)  # older Rays lack these two
        error_type = getattr(info, "error_type", None)
        kind = str(getattr(error_type, "value", error_type) or "")
        if status == "SUCCEEDED":
            return
        if status == "STOPPED":
            raise self._failed(-signal.SIGTERM, "was stopped on the Ray cluster before it finished",
                               "someone or something stopped it there (ray job stop, the dashboard); run again")
        if kind.startswith("RUNTIME_ENV_SETUP"):
            raise self._failed(None, "could not start: the Ray cluster failed to build its runtime environment",
                               f"fix pipeline.{self.job.step.name}.backend.pip or the cluster's package index",
                               _essence(info.message))
        if code is not None:
            signum = code - 128 if 128 < code <= 128 + 64 else 0  # the cluster's shell reports a signal as 128+n
            what = f"was killed by signal {signum} on the Ray cluster" if signum else \
                f"failed with exit code {code} on the Ray cluster"
            raise self._failed(-signum if signum else code, what)
        raise self._failed(None, f"failed on the Ray cluster ({kind or status})", "", _essence(info.message))

    def _failed(self, code: int | None, what: str, hint: str = "", said: str = "") -> StepFailed:
        name, tail = self.job.step.name, "\n".join(self.log.tail)
        text = f"step '{name}' {what} (job {self.submission} at {redact(self.address)})" + (f"; {hint}" if hint else "")
        if said:
            text += f"\nRay said:\n{said}"
        if tail:
            text += "\nits last lines:"
        elif not said:
            text += "\nit printed nothing."
        return StepFailed(name, code, text, tail)

    def _lost(self, exc: BaseException) -> StepFailed:
        name = self.job.step.name
        return StepFailed(name, None, f"lost the Ray cluster at {redact(self.address)} while step '{name}' ran (job "
                          f"{self.submission}): no answer for {LOST_AFTER_S:g}s ({_one_line(exc)}); whether the step "
                          "finished is unknown: check the cluster, then run again.")


class LogFollower:
    """The job's log as Ray's websocket delivers it; `close` then reads the log once more for whatever the socket
    had not delivered yet, so no line is lost or shown twice (both are the same file, counted in characters)."""

    def __init__(self, client: JobSubmissionClient, submission: str, prefix: str, echo: Echo) -> None:
        self.client, self.submission, self.prefix, self.echo = client, submission, prefix, echo
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.first_line_at: float | None = None  # monotonic; the benchmark's "first log line"
        self._seen = 0
        self._partial = ""
        self._closed = False
        self._lock = threading.Lock()
        threading.Thread(target=self._follow, name=f"ray-log-{submission}", daemon=True).start()

    def close(self, client: JobSubmissionClient | None) -> None:
        """No more lines from the socket; with a client, the rest of the log from a last full read."""
        with self._lock:
            self._closed = True
            rest = ""
            if client is not None:
                try:
                    rest = client.get_job_logs(self.submission)[self._seen:]
                except Exception:  # the log is a courtesy: the job's status decides
                    rest = ""
            self._take(rest + ("\n" if self._partial and not rest.endswith("\n") else ""))

    def _follow(self) -> None:
        async def follow() -> None:
            async for chunk in self.client.tail_job_logs(self.submission):
                with self._lock:
                    if self._closed:
                        return
                    self._take(chunk)

        try:
            asyncio.run(follow())
        except Exception:  # the socket closed early (the cluster went away): `close` reads what is left
            return

    def _take(self, text: str) -> None:
        self._seen += len(text)
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            line = line.rstrip("\r")
            if self.first_line_at is None:
                self.first_line_at = time.monotonic()
            self.tail.append(line)
            self.echo(f"{self.prefix}{line}")


def stop_job(client: JobSubmissionClient, submission: str, address: str, echo: Echo) -> None:
    """Asks Ray to stop the job and waits, bounded, until it is stopped; quiet when the job was never created."""
    deadline = time.monotonic() + STOP_WAIT_S
    try:
        client.stop_job(submission)
        while time.monotonic() < deadline:
            if client.get_job_status(submission).is_terminal():
                return
            time.sleep(POLL_S)
    except Exception as exc:
        if "does not exist" not in str(exc):  # interrupted before Ray took the submission: nothing runs
            echo(f"mlops-bot: warning: could not stop Ray job {submission} at {redact(address)}: {_one_line(exc)}; "
                 "stop it there (ray job stop).")
        return
    echo(f"mlops-bot: warning: Ray job {submission} was not stopped after {STOP_WAIT_S:g}s; stop it there "
         "(ray job stop).")


def _essence(message: str | None) -> str:
    """Ray's message, bounded: its first line and the tool's ERROR lines (pip's), else its last lines."""
    lines = [line.rstrip() for line in (message or "").splitlines() if line.strip()]
    errors = [line.strip() for line in lines[1:] if line.strip().startswith("ERROR")]
    kept = lines[:1] + errors[-MESSAGE_LINES:] if errors else lines[-MESSAGE_LINES:]
    return redact_text("\n".join(kept))


def _one_line(exc: BaseException) -> str:
    return redact_text(" ".join(str(exc).split())[:300] or type(exc).__name__)
