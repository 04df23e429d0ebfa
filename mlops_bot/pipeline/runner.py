"""Runs the stale steps in order: each in its own process group, output live with a `[step]` prefix, a
progress line (step i/n, elapsed), a per-step timeout and Ctrl-C handling.

A string command runs through `/bin/sh -c` (it comes from ml.yaml itself); a list runs as an argument
vector. Nothing from outside ml.yaml is ever put into a shell command line. After each success ml.lock is
rewritten, so a later failure or Ctrl-C keeps the cache of the steps that succeeded; a failed step stops
the steps below it, not independent ones.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config.model import Config, Step
from ..console import log
from ..errors import DataError, StepFailed
from ..support import processes
from ..support.processes import Launch
from . import dag
from .cache import LockEntry, hash_outs, stale_reasons, step_inputs, write_lock
from .hashing import Hasher
from .result import StepResult

if TYPE_CHECKING:
    from .step_artifacts import StepArtifacts

TAIL_LINES = 20
Echo = Callable[[str], None]


def argv_of(step: Step) -> list[str]:
    return ["/bin/sh", "-c", step.cmd] if isinstance(step.cmd, str) else list(step.cmd)


def _launch(step: Step, root: Path, env: Mapping[str, str], echo: Echo) -> Launch:
    return Launch(argv_of(step), root, env, f"[{step.name}] ", echo, TAIL_LINES)


def run_step(step: Step, root: Path, env: Mapping[str, str], progress: str, echo: Echo = log) -> float:
    """Runs the step to completion and returns its duration; raises StepFailed with the last output lines."""
    argv = argv_of(step)

    def heartbeat(elapsed: float) -> None:
        echo(f"{progress}: still running ({elapsed:.0f}s)")

    try:
        done = processes.run(_launch(step, root, env, echo), step.timeout or None, heartbeat)
    except FileNotFoundError:
        raise StepFailed(step.name, None, f"step '{step.name}': command '{argv[0]}' not found; install it or "
                         f"fix pipeline.{step.name}.cmd in ml.yaml.") from None
    except PermissionError:
        raise StepFailed(step.name, None, f"step '{step.name}': '{argv[0]}' is not executable; "
                         "chmod +x it or run it through its interpreter.") from None
    if done.code == 0:
        return done.duration
    raise StepFailed(step.name, done.code, f"step '{step.name}' {_failure(step, done.code)} after "
                     f"{done.duration:.1f}s; {'its last lines:' if done.tail else 'it printed nothing.'}",
                     "\n".join(done.tail))


def _failure(step: Step, code: int | None) -> str:
    if code is None:
        return (f"timed out after {step.timeout:g}s and was killed; raise pipeline.{step.name}.timeout "
                "or make the step faster")
    hint = {127: " (command not found)", 126: " (not executable)"}.get(code, "")
    return f"failed with exit code {code}{hint if code > 0 else f' (killed by signal {-code})'}"


@dataclass
class Workspace:
    """What the steps of one execution share: the project, its hashes, params and ml.lock."""

    config: Config
    hasher: Hasher
    params: Mapping[str, Any]
    lock: dict[str, LockEntry]
    lock_path: Path
    echo: Echo
    force: bool = False
    started: float = 0.0
    run_artifacts: StepArtifacts | None = None  # the tracking run, for steps on a cluster (pipeline/backends)

    def elapsed(self) -> str:
        return f"elapsed {time.monotonic() - self.started:.1f}s"


def run_steps(ws: Workspace, selected: list[str], graph: Mapping[str, set[str]],
              env_of: Callable[[Step], dict[str, str]], results: list[StepResult],
              after: Callable[[str, bool], None] | None = None) -> StepFailed | None:
    """Runs `selected` (in dependency order) unless cached, appending to `results`; returns the first failure.
    `after(step, succeeded)` follows each step that ran or failed (pipeline/selflog: what its mlflow code did)."""
    failure: StepFailed | None = None
    for i, name in enumerate(selected, 1):
        above = dag.upstream(graph, [name]) & {r.name for r in results if r.status in ("failed", "skipped")}
        if above:
            results.append(StepResult(name, "skipped", [f"upstream '{u}' failed" for u in sorted(above)]))
            continue
        step = ws.config.pipeline[name]
        try:
            results.append(_run_if_stale(ws, step, f"step {i}/{len(selected)} {name}", env_of(step)))
        except StepFailed as exc:
            results.append(StepResult(name, "failed", [str(exc).splitlines()[0]]))
            failure = failure or exc
        if after is not None and results[-1].status in ("ran", "failed"):
            after(name, results[-1].status == "ran")
    return failure


def _run_if_stale(ws: Workspace, step: Step, progress: str, env: dict[str, str]) -> StepResult:
    now = step_inputs(step, ws.hasher, ws.params)
    reasons = ["forced (--force)"] if ws.force else stale_reasons(step, now, ws.lock.get(step.name), ws.hasher)
    if not reasons:
        ws.echo(f"{progress}: cached")
        return StepResult(step.name, "cached")
    ws.echo(f"{progress}: running ({'; '.join(reasons)}), {ws.elapsed()}")
    root = ws.config.root
    for out in dag.step_outs(step):
        _remove(root / out)  # a stale out must not pass for one the step wrote
    duration = run_step(step, root, env, progress, ws.echo) if step.backend is None \
        else _run_remote(ws, step, env, progress)
    outs = hash_outs(step, ws.hasher)
    missing = [out for out, digest in outs.items() if digest is None]
    if missing:
        raise StepFailed(step.name, 0, f"step '{step.name}' exited 0 but did not write {', '.join(missing)}; "
                         "fix the step or its outs in ml.yaml.")
    if step.metrics:
        read_step_metrics(root, step.name, step.metrics)
    ws.lock[step.name] = replace(now, outs=outs)
    write_lock(ws.lock_path, ws.lock)
    ws.hasher.save()
    ws.echo(f"{progress}: done in {duration:.1f}s, {ws.elapsed()}")
    return StepResult(step.name, "ran", reasons, duration)


def _run_remote(ws: Workspace, step: Step, env: Mapping[str, str], progress: str) -> float:
    from ..support.paths import normalise
    from .backends.base import RemoteStep, portable_environment, run_remote

    assert ws.run_artifacts is not None, "a step runs remotely only inside a tracking run"
    model = normalise(ws.config.model.artifact)
    return run_remote(RemoteStep(step, ws.config.root, portable_environment(env), ws.run_artifacts, progress,
                                 ws.echo, model if model in dag.step_outs(step) else None))


def read_step_metrics(root: Path, step: str, path: str) -> dict[str, float]:
    """The step's metrics; an unusable file fails the step (exit 3) and names the file and the problem."""
    from ..metrics.files import read_metrics

    try:
        return read_metrics(root / path)
    except DataError as exc:
        raise StepFailed(step, 0, f"step '{step}': {exc}") from exc


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
