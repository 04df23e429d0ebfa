"""`registry_lock`: one bot at a time moves a model's aliases, whichever machine it runs on.

The lock lives in the registry itself (see `Registry.try_lock`), so it holds across CI runners. It has a
time to live, so a bot killed while holding it delays the next one by at most that long.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from ..console import log
from ..errors import BotError
from .base import Registry

TTL_S = 120.0  # far longer than the critical section (a few reads and writes)
WAIT_S = 300.0


class LockTimeout(BotError):
    """Another bot held the lock for longer than we were willing to wait."""


@contextmanager
def registry_lock(registry: Registry, model: str, wait_s: float = WAIT_S, ttl_s: float = TTL_S,
                  scope: str = "promote") -> Iterator[str]:
    """`scope` names what is locked: `promote` (the aliases), or another job on the model (`rollout.<target>`)."""
    owner = uuid.uuid4().hex
    name = f"{scope}.{model}"
    deadline = time.monotonic() + wait_s
    delay, told = 0.05, False
    while (holder := registry.try_lock(name, owner, int(ttl_s * 1000))) != owner:
        if time.monotonic() >= deadline:
            raise LockTimeout(f"another mlops-bot ({holder}) still holds the {scope} lock of {model} after "
                              f"{wait_s:.0f}s; it expires {ttl_s:.0f}s after it was taken: retry then.")
        if not told:
            log(f"waiting for another mlops-bot to finish its {scope} of {model}")
            told = True
        time.sleep(delay * (1 + random.random()))
        delay = min(delay * 2, 2.0)
    try:
        yield owner
    finally:
        registry.unlock(name, owner)
