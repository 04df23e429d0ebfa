"""Where a rollout stands, kept on the version it rolls out (tag `mlops_bot.deploy.<target>.rollout`, compact
JSON), so that any process (`deploy`, `mlops-bot rollout`, `watch`, a scheduled workflow) continues it from
the registry alone.

`since_ms` is when the current phase's traffic took effect; 0 means the traffic is not applied yet (a process
killed between the decision and the change applies it again, idempotently, and the hold starts only then).
So a resumed rollout never repeats a step that took effect and never shortens its hold.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Literal

from ...registry.base import ModelVersion, Registry
from ...registry.tags import deploy_tag

Phase = Literal["shadow", "step", "aborting", "aborted", "completed"]
ACTIVE: tuple[Phase, ...] = ("shadow", "step", "aborting")
FIELD = "rollout"


@dataclass(frozen=True)
class RolloutState:
    phase: Phase
    step: int  # index into rollout.steps (-1 while shadowing)
    traffic: int  # percent the new version answers (0 while shadowing or after an abort)
    stable: str | None  # the version that serves the rest, and gets everything back on abort
    since_ms: int = 0  # when this phase's traffic took effect (0: not yet)
    started_ms: int = 0  # when the rollout began
    reason: str = ""  # why it aborted
    findings: list[dict[str, object]] = field(default_factory=list)  # the last analysis

    @property
    def active(self) -> bool:
        return self.phase in ACTIVE

    def to(self, **changes: object) -> RolloutState:
        return replace(self, **changes)  # type: ignore[arg-type]

    def as_json(self) -> dict[str, object]:
        return asdict(self)


def now_ms() -> int:
    return int(time.time() * 1000)


def tag(target: str) -> str:
    return deploy_tag(target, FIELD)


def read_state(version: ModelVersion, target: str) -> RolloutState | None:
    raw = version.tags.get(tag(target), "")
    if not raw:
        return None
    try:
        data = json.loads(raw)
        return RolloutState(**data)
    except (ValueError, TypeError):
        return None  # unreadable: treated as no rollout (the caller reports it)


def write_state(registry: Registry, version: ModelVersion, target: str, state: RolloutState) -> None:
    # bounded: findings are few (the schema allows 20 queries) and each is a short record
    text = json.dumps(state.as_json(), separators=(",", ":"), sort_keys=True)
    registry.set_model_version_tag(version.name, version.version, tag(target), text)
