"""Retrying a remote call: the Retry-After header, the wait between attempts, and the loop (tenacity).

A failure worth retrying is an exception of the types the caller names; when it carries a `retry_after`
attribute (seconds, from the server's Retry-After header) that wait is honoured up to a cap, else the wait
grows exponentially with jitter. The loop stops after a number of attempts, a time budget, or both; the
last exception then propagates for the caller to turn into its own message.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timezone
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import tenacity

T = TypeVar("T")
Sleep = Callable[[float], None]
Clock = Callable[[], float]
BeforeSleep = Callable[[BaseException, int, float], None]  # (failure, attempt number, seconds to wait)


def parse_retry_after(value: str | None, now: Clock = time.time) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds ('120', also '1.5') or an HTTP-date
    ('Wed, 21 Oct 2015 07:28:00 GMT'; a date in the past means 0). None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        return _seconds_until(text, now)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _seconds_until(date: str, now: Clock) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(date)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # '-0000' parses as naive; an HTTP-date is always GMT
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now())


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep trying. At least one of `attempts` and `total_seconds` should be set."""

    initial_wait: float = 0.5  # the first backoff; it doubles on each retry
    max_wait: float = 10.0  # cap on a backoff wait
    retry_after_cap: float = 30.0  # a server asking for longer than this is not waited for in full
    attempts: int | None = None  # stop after this many attempts (None: no limit)
    total_seconds: float | None = None  # stop when this budget, sleeps included, is spent (None: no limit)


@dataclass
class Retrier:
    """Runs calls under a policy; `sleep`, `clock` and `rng` are injectable so tests never really wait."""

    policy: RetryPolicy
    sleep: Sleep = time.sleep
    clock: Clock = time.monotonic
    rng: random.Random = field(default_factory=random.Random)

    def wait(self, attempt: int, retry_after: float | None, remaining: float | None = None) -> float:
        """Seconds before attempt `attempt + 1`: the server's Retry-After (capped) or a jittered backoff,
        never past the remaining budget."""
        policy = self.policy
        if retry_after is not None:
            seconds = min(retry_after, policy.retry_after_cap)
        else:
            ceiling = min(policy.max_wait, policy.initial_wait * 2 ** (attempt - 1))
            seconds = self.rng.uniform(ceiling / 2, ceiling)  # jitter keeps parallel bots from retrying in step
        return max(0.0, seconds if remaining is None else min(seconds, remaining))

    def call(self, operation: Callable[[], T], retry_on: type[BaseException] | tuple[type[BaseException], ...],
             before_sleep: BeforeSleep | None = None) -> T:
        """`operation()` until it returns, raises something else, or the policy gives up (then its last
        exception propagates)."""
        import tenacity  # imported on first use: most commands never retry anything

        started = self.clock()
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(retry_on), stop=lambda state: self._spent(state, started),
            wait=lambda state: self._wait(state, started), sleep=self.sleep, reraise=True,
            before_sleep=None if before_sleep is None else lambda state: _announce(state, before_sleep))
        return retrying(operation)

    def _remaining(self, started: float) -> float | None:
        total = self.policy.total_seconds
        return None if total is None else total - (self.clock() - started)

    def _spent(self, state: tenacity.RetryCallState, started: float) -> bool:
        """The attempts or the time budget are used up (the same clock as the waits, so tests can fake it)."""
        attempts, remaining = self.policy.attempts, self._remaining(started)
        return (attempts is not None and state.attempt_number >= attempts) or (remaining is not None
                                                                              and remaining <= 0)

    def _wait(self, state: tenacity.RetryCallState, started: float) -> float:
        failure = state.outcome.exception() if state.outcome else None
        retry_after = getattr(failure, "retry_after", None)
        known = retry_after if isinstance(retry_after, (int, float)) else None
        return self.wait(state.attempt_number, known, self._remaining(started))


def _announce(state: tenacity.RetryCallState, before_sleep: BeforeSleep) -> None:
    failure = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    if failure is not None:
        before_sleep(failure, state.attempt_number, wait)
