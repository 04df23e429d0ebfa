"""`mlops-bot rollout`: continue the rollouts in progress (deploy[].rollout), from the state on their versions.

Each one is advanced as far as its clock allows: a hold that is over is analysed and the next step applied, a
failing analysis rolls traffic and the alias back. Without --wait it returns when every rollout waits for a hold
(for a scheduled workflow or cron); with --wait it drives them to their end. `watch` calls `continue_rollouts`
on every poll, `serve` from a `Ticker` thread. Exit 0 when every rollout advanced, waits or completed, 3 when one
rolled back.

`alias_back` is the abort hook every deploy path hands to `deploy_all`: the stage aliases that hold the rolled
back version go back to the version that serves again, through `flows/rollback.rollback` (recorded as a move,
the version tagged rolled back).
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Mapping

from ..ci.context import read_context
from ..config.model import Config
from ..console import emit_json, log
from ..deploy import DeployOptions, DeployResult, deploy_all, raise_for_failures
from ..deploy.base import AbortHook
from ..errors import BotError
from ..lifecycle.history import mover_of
from ..lifecycle.stages import stage_config
from ..registry import alias_holder
from ..registry.base import Registry
from .project import Project


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", action="append", metavar="NAME", help="only the rollouts to this target "
                                                                           "(repeatable)")
    parser.add_argument("--wait", action="store_true", help="drive the rollouts to their end instead of returning "
                                                             "while they hold")
    parser.epilog = "Exit 0 when every rollout advanced, holds or completed; 3 when one was rolled back."


def alias_back(config: Config, registry: Registry, env: Mapping[str, str]) -> AbortHook:
    mover = mover_of(read_context(env))

    def hook(model: str, version: str, stable: str, reason: str) -> str:
        from .rollback import rollback

        moved = []
        for stage in config.promote.all_stages:
            holder = alias_holder(registry, model, stage.alias)
            if holder is None or holder.version != version:
                continue
            staged = stage_config(config, stage) if config.promote.stages else config
            restored, _replaced = rollback(staged, registry, stable, reason, mover)
            moved.append(f"{stage.alias} back to v{restored.version}")
        return "; ".join(moved) or f"no alias held v{version}"

    return hook


def in_progress(config: Config, registry: Registry, names: list[str] | None = None) -> list[tuple[str, str]]:
    """(version, target) of every rollout in progress, oldest version first."""
    from ..deploy.rollout.state import read_state

    targets = [t.name for t in config.deploy if t.rollout is not None and (not names or t.name in names)]
    if not targets:
        return []
    found = []
    for version in registry.search_model_versions(config.model.name):
        for target in targets:
            state = read_state(version, target)
            if state is not None and state.active:
                found.append((version.version, target))
    return sorted(found, key=lambda pair: (int(pair[0]) if pair[0].isdigit() else 0, pair[1]))


def continue_rollouts(config: Config, registry: Registry, env: Mapping[str, str], wait: bool = False,
                      names: list[str] | None = None) -> list[DeployResult]:
    """Advances each rollout in progress; one that cannot (Prometheus or the platform unreachable after retries)
    is a failed result with the reason, stays in progress for the next call, and does not stop the others."""
    hook = alias_back(config, registry, env)
    results: list[DeployResult] = []
    for version, target in in_progress(config, registry, names):
        try:
            results += deploy_all(config, registry, version, DeployOptions(targets=[target], on_abort=hook,
                                                                           wait=wait))
        except BotError as exc:
            kind = next(t.type for t in config.deploy if t.name == target)
            results.append(DeployResult(target, kind, "failed", f"v{version}'s rollout could not advance: {exc}; "
                                        "it holds where it was and is tried again next time"))
    return results


class Ticker:
    """Continues the rollouts in progress every `interval` seconds from a thread of its own (`serve`), with a
    registry of its own per round; a round that fails is logged and the next one tries again."""

    def __init__(self, config: Config, env: Mapping[str, str], interval: float) -> None:
        self.config, self.env, self.interval = config, env, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mlops-bot-rollout", daemon=True)

    @classmethod
    def of(cls, config: Config, env: Mapping[str, str]) -> Ticker | None:
        """A ticker at the shortest rollout.interval of ml.yaml; None when no target rolls out."""
        intervals = [t.rollout.interval_s for t in config.deploy if t.rollout is not None]
        return cls(config, env, max(1.0, min(intervals))) if intervals else None

    def start(self) -> Ticker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with Project.of(self.config, self.env) as project:
                    for result in continue_rollouts(self.config, project.registry, self.env):
                        log(f"mlops-bot: rollout to {result.target}: {result.status}: {result.detail}")
            except BotError as exc:
                log(f"mlops-bot: rollout: {exc}; trying again in {self.interval:g} s")


def main(args: argparse.Namespace, project: Project) -> int:
    config, registry = project.config, project.registry
    results = continue_rollouts(config, registry, project.env, args.wait, args.target)
    if args.json:
        emit_json({"model": config.model.name, "results": [r.as_json() for r in results]})
    elif not results:
        log(f"mlops-bot: no rollout of {config.model.name} is in progress.")
    for result in results:
        print(f"{result.target}: {result.status}: {result.detail}", flush=True)
    raise_for_failures(results)
    return 0
