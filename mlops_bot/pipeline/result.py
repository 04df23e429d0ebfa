"""What `run_pipeline` takes and gives back: options, per-step results, and the failure that carries them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from ..console import log
from ..errors import StepFailed

# ran: executed now; cached: its inputs match ml.lock; reused: its outs came from an identical earlier run;
# failed; skipped: an upstream step failed; would run: --dry-run
StepStatus = Literal["ran", "cached", "reused", "failed", "skipped", "would run"]
STATUSES: tuple[StepStatus, ...] = get_args(StepStatus)


@dataclass(frozen=True)
class RunOptions:
    force: bool = False  # run every selected step, reuse nothing
    step: str | None = None  # only this step and the steps it depends on
    dry_run: bool = False  # plan only: say what would run and why
    reuse: bool = True  # look for an identical finished run on the tracking server
    echo: Callable[[str], None] = log  # progress and step output (stderr by default)


@dataclass
class StepResult:
    name: str
    status: StepStatus
    reasons: list[str] = field(default_factory=list)  # why it ran / would run / was skipped
    duration: float = 0.0  # seconds, for steps that ran

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "reasons": self.reasons,
                "duration_s": round(self.duration, 3)}


@dataclass
class PipelineResult:
    steps: list[StepResult]
    run_id: str | None = None  # the tracking run holding this result (None: dry run or --step)
    reused: bool = False  # True when the outs came from an earlier run instead of running steps
    pipeline_key: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    duration: float = 0.0
    dry_run: bool = False

    def status_of(self, name: str) -> StepStatus | None:
        return next((s.status for s in self.steps if s.name == name), None)

    def as_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "reused": self.reused, "dry_run": self.dry_run,
                "pipeline_key": self.pipeline_key, "duration_s": round(self.duration, 3),
                "metrics": self.metrics, "steps": [s.as_json() for s in self.steps]}


class PipelineStepFailed(StepFailed):
    """A StepFailed that also carries the partial result (which steps ran, were cached, were skipped)."""

    def __init__(self, cause: StepFailed, result: PipelineResult) -> None:
        super().__init__(cause.step, cause.returncode, str(cause))
        self.tail = cause.tail
        self.result = result
