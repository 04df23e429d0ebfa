"""`run_pipeline(config, registry, options)`: the pipeline as one use case, callable by `run`, `ci` and `compare`.

Order of business: plan (which steps are stale and why); when something must run, reuse a finished run
with the same pipeline key from the tracking server, else run the stale steps inside one tracking run.
A fully cached pipeline names the run that holds its result, without opening the registry when it can.
Before a run is opened, the experiment's artifact location is checked (pipeline/preflight): nothing trains
for a run that could not upload. Every run opened here ends FINISHED, FAILED or KILLED (`_in_run`), and so
does every run a step's own mlflow code made in it (pipeline/selflog).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from .. import __version__
from ..config.model import Config, Step
from ..console import log
from ..errors import StepFailed, UsageError
from ..events.bus import emit
from ..registry import tags as names
from ..registry.base import Registry, Run, RunStatus
from ..support.environment import child_environment
from ..support.paths import normalise, overlaps
from ..support.processes import interrupts_held
from ..support.sqlite_guard import open_lock_file
from ..support.state import RUN_LOCK_FILE, local_state_dir, state_path
from . import dag, noop
from .cache import (
    LOCK_FILE,
    hash_outs,
    inputs_hash,
    load_params,
    pipeline_key,
    read_lock,
    stale_reasons,
    step_inputs,
    write_lock,
)
from .gitinfo import git_info
from .hashing import Hasher
from .result import PipelineResult, PipelineStepFailed, RunOptions, StepResult
from .runner import Workspace, read_step_metrics, run_steps
from .step_artifacts import StepArtifacts
from .tracking import Tracker

T = TypeVar("T")


def run_pipeline(config: Config, registry: Registry | Callable[[], Registry],
                 options: RunOptions | None = None) -> PipelineResult:
    """Runs (or reuses, or skips as cached) the pipeline; raises PipelineStepFailed when a step fails.

    `registry` may be a function that opens it: then a run with nothing to do never opens it.
    """
    execution = _Execution(config, registry, options or RunOptions())
    if execution.options.dry_run:
        return execution.dry_run()
    with _exclusive(state_path(config.root)):
        return execution.run()


@contextmanager
def _exclusive(state_dir: Path) -> Iterator[None]:
    """One `run` per project at a time: two would race on outs and ml.lock."""
    local_state_dir(state_dir)
    fd = open_lock_file(state_dir / RUN_LOCK_FILE)  # never empty: MLflow's tools refuse it (support/sqlite_guard)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"another `mlops-bot run` is running in {state_dir.parent}; wait for it to finish.") \
                from None
        yield
    finally:
        os.close(fd)  # closing releases the lock


class _Execution:
    def __init__(self, config: Config, registry: Registry | Callable[[], Registry], options: RunOptions) -> None:
        self.config, self.options = config, options
        steps, source = config.pipeline, config.path.name
        self.graph = dag.edges(steps, source)
        order = dag.order(steps, source)
        if options.step is not None and options.step not in steps:
            raise UsageError(f"--step {options.step}: no such step; the pipeline has {', '.join(order)}.")
        wanted = dag.upstream(self.graph, [options.step]) if options.step else set(order)
        self.selected = [name for name in order if name in wanted]
        lock_path = config.root / LOCK_FILE
        self.ws = Workspace(config, Hasher(config.root, state_path(config.root)),
                            load_params(config.root, config.params_file, steps),
                            {name: e for name, e in read_lock(lock_path).items() if name in steps},
                            lock_path, options.echo, options.force, time.monotonic())
        self.tracker = Tracker(config, registry, state_path(config.root))
        self.result = PipelineResult(steps=[], dry_run=options.dry_run)
        self._check_sources()
        self.key = None if options.step else pipeline_key(steps, self.graph, self.ws.hasher, self.ws.params)

    def _check_sources(self) -> None:
        """Deps no step writes must exist before anything runs."""
        writes = [out for step in self.config.pipeline.values() for out in dag.step_outs(step)]
        for name in self.selected:
            for dep in map(normalise, self.config.pipeline[name].deps):
                if not any(overlaps(dep, out) for out in writes) and not self.ws.hasher.exists(dep):
                    raise UsageError(f"{self.config.path.name}: pipeline.{name}.deps: '{dep}' does not exist in "
                                     f"{self.config.root}; create it or fix the dep.")

    def plan(self) -> dict[str, list[str]]:
        """step -> why it must run ([] = cached). A step below a stale one is re-checked after it runs."""
        reasons: dict[str, list[str]] = {}
        for name in self.selected:
            step, stale_up = self.config.pipeline[name], sorted(u for u in self.graph[name] if reasons.get(u))
            if self.options.force:
                reasons[name] = ["forced (--force)"]
            elif stale_up:
                reasons[name] = [f"upstream '{up}' runs first" for up in stale_up]
            else:
                now = step_inputs(step, self.ws.hasher, self.ws.params)
                reasons[name] = stale_reasons(step, now, self.ws.lock.get(name), self.ws.hasher)
        return reasons

    def dry_run(self) -> PipelineResult:
        plan = self.plan()
        self.result.pipeline_key = self.key
        self.result.steps = [StepResult(n, "would run" if plan[n] else "cached", plan[n]) for n in self.selected]
        return self._done()

    def run(self) -> PipelineResult:
        plan = self.plan()
        self.result.pipeline_key = self.key
        try:
            if not any(plan.values()):
                self._all_cached()
            elif self.key is None or self.options.force or not self.options.reuse or not self._try_reuse():
                self._execute()
        finally:
            self.ws.hasher.save()
        self.ws.hasher.save(prune=self.key is not None)  # a full run hashed every file worth remembering
        return self._done()

    def _done(self) -> PipelineResult:
        self.result.duration = time.monotonic() - self.ws.started
        return self.result

    def _metrics(self) -> dict[str, float]:
        metrics: dict[str, float] = {}
        for name in self.selected:
            path = self.config.pipeline[name].metrics
            if path:
                metrics.update(read_step_metrics(self.config.root, name, path))
        return metrics

    def _all_cached(self) -> None:
        for i, name in enumerate(self.selected, 1):
            self.ws.echo(f"step {i}/{len(self.selected)} {name}: cached")
            self.result.steps.append(StepResult(name, "cached"))
            emit(self.config, "step.cached", f"steps/{name}", {"model": self.config.model.name, "step": name})
        self.result.metrics = self._metrics()
        if self.key is None:
            return
        run_id = self.tracker.remembered(self.key)
        if run_id is None:
            found = self.tracker.find_reusable(self.key)
            # Outs made elsewhere (committed, or a forgotten server): record them as a run of their own.
            run_id = found.run_id if found else self._record_cached()
            self.tracker.remember(self.key, run_id)
        self.result.run_id = run_id
        watched = [LOCK_FILE, *([self.config.params_file] if self.config.params_file else []), *self._outs()]
        watched += [normalise(d) for name in self.selected for d in self.config.pipeline[name].deps]
        noop.record(state_path(self.config.root), self.config.path, __version__, watched, self.result.as_json())

    def _try_reuse(self) -> bool:
        assert self.key is not None
        run = self.tracker.find_reusable(self.key)
        if run is None:
            return False
        missing = self.tracker.restore(run, self._outs())
        if missing:
            self.ws.echo(f"mlops-bot: run {run.run_id} has the same inputs but lacks {', '.join(missing)}; "
                         "running the pipeline instead.")
            return False
        self._adopt(run, self.key)
        return True

    def _adopt(self, run: Run, key: str) -> None:
        for name in self.selected:
            step = self.config.pipeline[name]
            now = step_inputs(step, self.ws.hasher, self.ws.params)
            self.ws.lock[name] = replace(now, outs=hash_outs(step, self.ws.hasher))
            self.result.steps.append(StepResult(name, "reused", [f"outs of run {run.run_id}"]))
        write_lock(self.ws.lock_path, self.ws.lock)
        self.tracker.remember(key, run.run_id)
        self.tracker.note_metrics(run.run_id, run=run)
        self.result.run_id, self.result.reused = run.run_id, True
        self.result.metrics = self._metrics()
        self.ws.echo(f"mlops-bot: reused run {run.run_id} (same pipeline key {key[:12]}): its outs and model "
                     "were restored; nothing retrained.")

    def _outs(self) -> list[str]:
        return [out for name in self.selected for out in dag.step_outs(self.config.pipeline[name])]

    def _start_tags(self) -> dict[str, str]:
        tags = {names.CONFIG_DIGEST: self.config.digest, **git_info(self.config.root).tags(),
                names.DATA_HASH: inputs_hash(self.config.pipeline, self.ws.hasher)}
        if self.options.step is not None:
            tags[names.PARTIAL] = "true"
        return tags

    def _in_run(self, body: Callable[[str], T]) -> T:
        """Opens a run and hands it to `body`; whatever escapes ends the run KILLED (a signal) or FAILED.
        A signal while the run is being created waits until its id is known."""
        run_id: str | None = None
        try:
            with interrupts_held():
                run_id = self.result.run_id = self.tracker.start(self._start_tags())
            return body(run_id)
        except KeyboardInterrupt:
            if run_id is not None:
                self._end_quietly(run_id, "KILLED")
            raise
        except BaseException:
            if run_id is not None:
                self._end_quietly(run_id, "FAILED")
            raise

    def _record_cached(self) -> str:
        self.tracker.check_artifacts()
        return self._in_run(self._record)

    def _execute(self) -> None:
        self.tracker.check_artifacts()  # before the first step: never train for nothing
        failure = self._in_run(self._run_and_record)
        if failure is not None:
            raise PipelineStepFailed(failure, self._done())
        run_id = self.result.run_id
        if self.key is not None and run_id is not None:
            self.tracker.remember(self.key, run_id)
        emit(self.config, "run.finished", f"runs/{run_id}", {"model": self.config.model.name, "run_id": run_id,
                                                             "status": "FINISHED", "metrics": self.result.metrics,
                                                             "pipeline_key": self.key})

    def _run_and_record(self, run_id: str) -> StepFailed | None:
        """The stale steps in the run; the run is recorded and FINISHED, or FAILED with the first failure."""
        emit(self.config, "run.started", f"runs/{run_id}", {"model": self.config.model.name, "run_id": run_id,
                                                            "steps": self.selected, "pipeline_key": self.key})
        children = self.tracker.self_logging(run_id)  # runs the steps' own mlflow code made (pipeline/selflog)
        self.ws.run_artifacts = StepArtifacts(self.tracker, run_id)
        failure = run_steps(self.ws, self.selected, self.graph, self._env_of(run_id), self.result.steps,
                            children.after_step if children else None)
        for cached in (s.name for s in self.result.steps if s.status == "cached"):
            emit(self.config, "step.cached", f"steps/{cached}", {"model": self.config.model.name,
                                                                 "step": cached, "run_id": run_id})
        if failure is not None:
            self._end_quietly(run_id, "FAILED")
            return failure
        self.result.metrics = self._metrics()
        self.tracker.fold_children(run_id, self.ws.params, self.result.metrics)
        self._record(run_id)
        return None

    def _env_of(self, run_id: str) -> Callable[[Step], dict[str, str]]:
        # A step sees no secret of the job (support/environment), and logs to our run, whatever MLFLOW_RUN_ID says.
        def env_of(step: Step) -> dict[str, str]:
            seen = child_environment(os.environ, step.pass_env, tracking=True, secrets=self.config.secret_names)
            return {"PYTHONUNBUFFERED": "1", **seen, **step.env, **self.tracker.step_env(run_id, step.name)}

        return env_of

    def _record(self, run_id: str) -> str:
        tags = {names.step_key(n): self.ws.lock[n].key for n in self.selected if n in self.ws.lock}
        tags.update({names.step_status(s.name): s.status for s in self.result.steps})
        if self.key is not None:
            tags[names.PIPELINE_KEY] = self.key
        model = self.ws.hasher.hash(normalise(self.config.model.artifact))
        if model is not None:  # keys the champion's rescoring records (lifecycle/rescore_record.py)
            tags[names.MODEL_DIGEST] = model
        outs = self.ws.run_artifacts.not_returned(self._outs()) if self.ws.run_artifacts else self._outs()
        self.tracker.finish(run_id, self.ws.params, self.result.metrics, outs, tags)
        self.tracker.note_metrics(run_id, self.result.metrics)
        return run_id

    def _end_quietly(self, run_id: str, status: RunStatus) -> None:
        """Marks the run ended first (a second Ctrl-C waits for it), then records the event."""
        with interrupts_held():
            try:
                self.tracker.end(run_id, status)
            except Exception as exc:  # the original failure matters more than a failed status update
                log(f"mlops-bot: warning: could not mark run {run_id} {status}: {exc}")
            try:
                self.tracker.end_children(run_id, status)
            except Exception as exc:
                log(f"mlops-bot: warning: could not mark the child runs of run {run_id} {status}: {exc}")
        emit(self.config, "run.finished", f"runs/{run_id}", {"model": self.config.model.name, "run_id": run_id,
                                                             "status": status})
