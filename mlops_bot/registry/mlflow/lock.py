"""A lock on an MLflow server, which offers no compare-and-set: creating a registered model is atomic
(a second create answers RESOURCE_ALREADY_EXISTS), so the lock is a registered model named
`mlops-bot-lock.<name>` whose tags say who holds it and until when. It exists only while held.

An expired lock is deleted and taken over; two bots breaking the same stale lock at once is possible in
theory (delete is not conditional), which is why the TTL is long compared with the critical section.
"""

from __future__ import annotations

import contextlib
import time

from ...errors import AlreadyExists, NotFound
from .. import tags as names
from .http import MlflowHttp

PREFIX = "mlops-bot-lock."  # a registered model's name, not a tag


def _holder(http: MlflowHttp, model: str, retry: bool = True) -> tuple[str, int] | None:
    try:
        doc = http.json("GET", "registered-models/get", params={"name": model}, retry=retry)
    except NotFound:
        return None
    tags = {t["key"]: t.get("value", "") for t in doc["registered_model"].get("tags", [])}
    expires = tags.get(names.LOCK_EXPIRES, "0")
    return tags.get(names.LOCK_OWNER, ""), int(expires) if expires.isdigit() else 0


def try_lock(http: MlflowHttp, name: str, owner: str, ttl_ms: int) -> str:
    # A transient failure anywhere repeats the whole attempt; the read after AlreadyExists tells whether a
    # create whose answer was lost made the lock ours.
    return http.retrying(lambda: _attempt(http, PREFIX + name, owner, ttl_ms))


def _attempt(http: MlflowHttp, model: str, owner: str, ttl_ms: int) -> str:
    for _ in range(3):
        expires = time.time_ns() // 1_000_000 + ttl_ms
        tags = [{"key": names.LOCK_OWNER, "value": owner}, {"key": names.LOCK_EXPIRES, "value": str(expires)}]
        try:
            http.json("POST", "registered-models/create", body={"name": model, "tags": tags,
                                                                "description": "held by mlops-bot"}, retry=False)
            return owner
        except AlreadyExists:
            pass
        except NotFound:
            # MLflow answers 404 when a concurrent unlock deletes the model while this create adds its tags.
            continue
        holder = _holder(http, model, retry=False)
        if holder is None:
            continue  # released in between: try again
        if holder[0] == owner:
            return owner
        if holder[1] > time.time_ns() // 1_000_000:
            return holder[0] or "unknown"
        with contextlib.suppress(NotFound):
            http.json("DELETE", "registered-models/delete", body={"name": model}, retry=False)
    return "unknown"


def unlock(http: MlflowHttp, name: str, owner: str) -> None:
    model = PREFIX + name
    holder = _holder(http, model)
    if holder is not None and holder[0] == owner:
        with contextlib.suppress(NotFound):
            http.json("DELETE", "registered-models/delete", body={"name": model})
