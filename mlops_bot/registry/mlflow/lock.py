"""A lock on an MLflow server, which offers no compare-and-set: creating a registered model is atomic
(a second create answers RESOURCE_ALREADY_EXISTS), so the lock is a registered model named
`mlops-bot-lock.<name>` whose tags say who holds it and until when. It exists only while held.

An expired lock is deleted and taken over; two bots breaking the same stale lock at once is possible in
theory (delete is not conditional), which is why the TTL is long compared with the critical section.

A registry that cannot delete a registered model (Azure ML keeps them for good) gets generations instead:
the lock is the newest of `<name>`, `<name>.1`, `<name>.2`, ... and is released by creating a marker
`<generation>.released`; taking it over creates the next generation, which only one bot can create. Nothing
is ever deleted there, so each promotion leaves two small registered models behind.
"""

from __future__ import annotations

import time

from ...errors import AlreadyExists, NotFound
from .. import tags as names
from .errors import EndpointMissing
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
        if _generational(http, model):
            return _attempt_generations(http, model, owner, ttl_ms)
        if holder[0] == owner:
            return owner
        if holder[1] > time.time_ns() // 1_000_000:
            return holder[0] or "unknown"
        if not _delete(http, model):  # a registry that keeps registered models: generations from now on
            return _attempt_generations(http, model, owner, ttl_ms)
    return "unknown"


def unlock(http: MlflowHttp, name: str, owner: str) -> None:
    model = PREFIX + name
    holder = _holder(http, model)
    if holder is None:
        return
    if _generational(http, model):
        _unlock_generation(http, model, owner)
    elif holder[0] == owner and not _delete(http, model):
        _create(http, _released(model), owner, 0)


def _generational(http: MlflowHttp, model: str) -> bool:
    """The lock has gone to generations: its first generation was released or taken over without a delete."""
    return _exists(http, _released(model)) or _exists(http, _generation(model, 1))


def _delete(http: MlflowHttp, model: str) -> bool:
    """False when the registry has no way to delete a registered model."""
    try:
        http.json("DELETE", "registered-models/delete", body={"name": model}, retry=False)
    except EndpointMissing:
        return False
    except NotFound:
        pass
    return True


def _exists(http: MlflowHttp, model: str) -> bool:
    return _holder(http, model, retry=False) is not None


def _released(model: str) -> str:
    return model + ".released"


def _generation(model: str, n: int) -> str:
    return model if n == 0 else f"{model}.{n}"


def _create(http: MlflowHttp, model: str, owner: str, expires: int) -> bool:
    """True when this call created `model` (registered-model creation is atomic); False when it existed."""
    tags = [{"key": names.LOCK_OWNER, "value": owner}, {"key": names.LOCK_EXPIRES, "value": str(expires)}]
    try:
        http.json("POST", "registered-models/create", body={"name": model, "tags": tags,
                                                            "description": "held by mlops-bot"}, retry=False)
        return True
    except AlreadyExists:
        return False


def _newest(http: MlflowHttp, model: str) -> int:
    """The highest generation that exists (0 is `model` itself, which does): doubling, then bisecting."""
    high = 1
    while _exists(http, _generation(model, high)):
        high *= 2
    low = high // 2  # exists (0 does by assumption)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if _exists(http, _generation(model, middle)) else (low, middle)
    return low


def _attempt_generations(http: MlflowHttp, model: str, owner: str, ttl_ms: int) -> str:
    for _ in range(3):
        n = _newest(http, model)
        current = _generation(model, n)
        holder = _holder(http, current, retry=False) or ("", 0)
        if not _exists(http, _released(current)):
            if holder[0] == owner:
                return owner
            if holder[1] > time.time_ns() // 1_000_000:
                return holder[0] or "unknown"
        if _create(http, _generation(model, n + 1), owner, time.time_ns() // 1_000_000 + ttl_ms):
            return owner
    return "unknown"


def _unlock_generation(http: MlflowHttp, model: str, owner: str) -> None:
    current = _generation(model, _newest(http, model))
    holder = _holder(http, current)
    if holder is not None and holder[0] == owner:
        _create(http, _released(current), owner, 0)
