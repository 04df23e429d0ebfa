"""Training code that logs to MLflow itself: what it did, reconciled with the pipeline run (issue #14).

A step gets MLFLOW_RUN_ID (the pipeline run) and MLFLOW_RUN_CONTEXT (`run_context`). mlflow's fluent API
resumes the pipeline run once per process (`start_run` deletes MLFLOW_RUN_ID from the environment on first
use) and ends it when that first run ends: `autolog()` around `fit()`, `with mlflow.start_run()`, the exit of
the process. Whatever the step's code logs after that goes into new runs, and mlflow gives every run it
creates the tags of MLFLOW_RUN_CONTEXT (resuming a run adds none). So each such run names the pipeline run:
a child, found by its tag alone (no time window, whatever other jobs log to the experiment), and never a
candidate for reuse or `compare` (it carries no pipeline key).

After each step (`after_step`) the pipeline run is RUNNING again (the bot alone ends it), and a child the step
left RUNNING (a killed process, `os._exit`) is ended as the step ended. Before the run is recorded (`fold`),
the children's params and latest metrics are copied into the pipeline run where it lacks the key, so criteria
can judge a metric that training code logged in a child run. Talks to the Registry protocol only: the same
on the REST registry and any other.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from ..console import log
from ..errors import InvalidParameter
from ..registry import tags as names
from ..registry.base import Registry, Run, RunStatus

RUN_CONTEXT_ENV = "MLFLOW_RUN_CONTEXT"  # read by mlflow.tracking.context.system_environment_context
V = TypeVar("V", str, float)
Clash = Callable[[str, str, str, str], str]  # tracking.param_clash: (key, kept, other, whose) -> warning line


def run_context(run_id: str, step: str) -> str:
    """MLFLOW_RUN_CONTEXT for `step`: the tags of every run its mlflow code creates (MLflow nests them
    under the pipeline run in its UI; `mlops_bot.parent_run` is what the bot finds them by)."""
    return json.dumps({names.MLFLOW_PARENT_RUN_ID: run_id, names.PARENT_RUN: run_id,
                       names.ROLE: names.ROLE_CHILD, names.MADE_BY_STEP: step}, sort_keys=True)


@dataclass(frozen=True)
class SelfLogging:
    """The children of one pipeline run, in its experiment."""

    registry: Registry
    experiment_id: str
    run_id: str

    def children(self) -> list[Run]:
        """Every run a step's code created in this pipeline run (nested ones too), oldest first."""
        return self.registry.search_runs([self.experiment_id], f"tags.`{names.PARENT_RUN}` = '{self.run_id}'",
                                         ["attributes.start_time ASC"])

    def after_step(self, step: str, ok: bool) -> None:
        """The pipeline run RUNNING again if the step's code ended it; the step's children ended."""
        if self.registry.get_run(self.run_id).status != "RUNNING":
            self.registry.update_run(self.run_id, "RUNNING")
        self.end_children("FINISHED" if ok else "FAILED", step)

    def end_children(self, status: RunStatus, step: str | None = None) -> None:
        """Ends the children (of `step`, or all) still RUNNING: no run the pipeline made stays RUNNING."""
        for child in self.children():
            if child.status == "RUNNING" and step in (None, child.tags.get(names.MADE_BY_STEP)):
                self.registry.update_run(child.run_id, status)

    def fold(self, planned_params: Mapping[str, str], planned_metrics: Mapping[str, float], clash: Clash) -> None:
        """After the last step, before the run is recorded: ends any child still RUNNING, and copies the
        children's params and latest metrics into the pipeline run where it lacks the key and the bot logs
        none itself (`planned_*`: what it will log when it records the run).

        A key the children disagree on is not copied (which one would be the model's? a parameter search
        logs one child per candidate) and is named once. A param the children agree on but the run has, or
        will have, with another value keeps the run's value and is reported once with `clash`."""
        children = self.children()
        if not children:
            return
        for child in children:  # left RUNNING by something a step started in the background
            if child.status == "RUNNING":
                self.registry.update_run(child.run_id, "FINISHED")
        run = self.registry.get_run(self.run_id)
        params, disputed = _agreed(children, lambda child: child.params)
        metrics, disputed_metrics = _agreed(children, lambda child: child.metrics)
        for key, (value, child) in sorted(params.items()):
            kept = run.params.get(key, planned_params.get(key))
            if kept is not None and kept != value:
                log(clash(key, kept, value, f"child run {child.run_id} (step "
                                            f"'{child.tags.get(names.MADE_BY_STEP, '?')}')"))
        missing_params = {k: v for k, (v, _) in params.items() if k not in run.params and k not in planned_params}
        missing_metrics = {k: v for k, (v, _) in metrics.items() if k not in run.metrics and k not in planned_metrics}
        unsettled = sorted(k for k in disputed if k not in run.params and k not in planned_params) \
            + sorted(k for k in disputed_metrics if k not in run.metrics and k not in planned_metrics)
        if unsettled:
            log(f"mlops-bot: warning: child runs of run {self.run_id} logged {', '.join(unsettled)} with different "
                "values; not copied into the pipeline run: log the one to judge in the run itself or in the "
                "step's metrics file.")
        if missing_metrics:
            self.registry.log_batch(self.run_id, metrics=missing_metrics)
        try:
            if missing_params:
                self.registry.log_batch(self.run_id, params=missing_params)
        except InvalidParameter as exc:  # logged meanwhile by something else still running
            log(f"mlops-bot: warning: params {', '.join(sorted(missing_params))} of child runs not copied into "
                f"run {self.run_id}: {exc.detail}")


def _agreed(children: list[Run], values: Callable[[Run], Mapping[str, V]]) -> tuple[dict[str, tuple[V, Run]],
                                                                                      set[str]]:
    """key -> (its value, the first child that logged it) where every child that logged the key agrees; and
    the keys they disagree on."""
    agreed: dict[str, tuple[V, Run]] = {}
    disputed: set[str] = set()
    for child in children:
        for key, value in values(child).items():
            if key not in agreed:
                agreed[key] = (value, child)
            elif repr(agreed[key][0]) != repr(value):  # repr: a NaN equals a NaN
                disputed.add(key)
    return {k: v for k, v in agreed.items() if k not in disputed}, disputed
