"""A deploy target with `rollout:` inside `deploy_all`: start the rollout (the driver prepares the new version,
the engine takes it from there) or continue the one on record, and record the outcome like any deployment:
status `running` while it rolls out, `succeeded` once at 100%, `failed` with the reason when it rolled back."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from ...config.durations import spoken
from ...config.model import DeployTarget
from ...errors import BotError
from ...registry.lock import registry_lock
from ...registry.tags import deploy_tag
from ..base import DeployRefused, DeployResult, scrub, with_key
from .engine import Engine, Hooks, Progress
from .prometheus import Prometheus
from .state import RolloutState, now_ms, read_state
from .traffic import driver_for

if TYPE_CHECKING:
    from ..deployment import _Deployment

TICK_TTL_S = 1800.0  # longer than any tick: a traffic change waits on the platform (an Azure ML update takes minutes)


def roll(deployment: _Deployment, target: DeployTarget, key: str) -> DeployResult:
    assert target.rollout is not None
    version, session = deployment.version, deployment.session
    state = read_state(version, target.name)
    if state is not None and state.phase == "aborted" and not deployment.force:
        return DeployResult(target.name, target.type, "failed", f"v{version.version}'s rollout was rolled back "
                            f"({state.reason}); --force rolls it out again", key=key)
    driver = driver_for(target, with_key(deployment.request, key), session)
    engine = Engine(target, version, deployment.registry, driver, _hooks(deployment, target),
                    echo=lambda line: session.echo(f"mlops-bot: deploy {target.name} v{version.version}: {line}"))
    if state is not None and state.active:
        engine.state = state
        where = "shadow" if state.phase == "shadow" else f"step {state.step + 1} of {len(target.rollout.steps)}"
        session.echo(f"mlops-bot: deploy {target.name}: continuing v{version.version}'s rollout ({where}, "
                     f"{state.traffic}% of traffic)")
    else:
        deployment._record(target.name, "running", {"key": key, "detail": "rolling out"})
        deployment._emit("deployment.started", target, {"key": key, "rollout": True})
        try:
            evidence = driver.prepare()
        except BotError as exc:
            return _failed(deployment, target, key, exc)
        engine.begin(driver.stable())
        deployment._record(target.name, "running", {"detail": "rolling out", **evidence})
    wait = session.wait if session.wait is not None else not target.rollout.hand_off
    return _recorded(deployment, target, key, engine.drive(wait))


def stop(deployment: _Deployment, target: DeployTarget, reason: str) -> DeployResult | None:
    """Rolls back `target`'s rollout of the version when one is in progress (None when there is none)."""
    version, session = deployment.version, deployment.session
    state = read_state(version, target.name)
    if state is None or not state.active:
        return None
    key = version.tags.get(deploy_tag(target.name, "key"), "")
    driver = driver_for(target, with_key(deployment.request, key), session)
    hooks = _hooks(deployment, target)
    hooks.on_abort = lambda _stable, _reason: "the aliases were moved by the rollback itself"
    engine = Engine(target, version, deployment.registry, driver, hooks,
                    echo=lambda line: session.echo(f"mlops-bot: deploy {target.name} v{version.version}: {line}"))
    return _recorded(deployment, target, key, engine.stop(reason))


def _hooks(deployment: _Deployment, target: DeployTarget) -> Hooks:
    assert target.rollout is not None
    metrics = target.rollout.metrics
    session, model = deployment.session, deployment.version.name

    def emit(event_type: str, data: object) -> None:
        deployment._emit(event_type, target, dict(data) if isinstance(data, dict) else {"data": data})

    def on_abort(stable: str, reason: str) -> str:
        if session.on_abort is None:
            return "the alias was left as it is (no alias to move back here)"
        version = deployment.version.version
        return session.on_abort(model, version, stable, f"rollout of v{version} to {target.name}: {reason}")

    def measure(query: str) -> float | None:
        if metrics is None:
            return None
        return Prometheus(metrics).value(query)

    registry, version = deployment.registry, deployment.version.version

    def exclusive() -> AbstractContextManager[object]:
        return registry_lock(registry, model, ttl_s=TICK_TTL_S, scope=f"rollout.{target.name}")

    def reload() -> RolloutState | None:
        return read_state(registry.get_model_version(model, version), target.name)

    return Hooks(emit=emit, on_abort=on_abort, measure=measure, exclusive=exclusive, reload=reload)


def _failed(deployment: _Deployment, target: DeployTarget, key: str, exc: BotError) -> DeployResult:
    evidence = exc.evidence if isinstance(exc, DeployRefused) else {}
    detail = scrub(str(exc), [])
    deployment._record(target.name, "failed", {"detail": detail, **evidence})
    deployment._emit("deployment.failed", target, {"key": key, "detail": detail, **evidence})
    deployment.session.echo(f"mlops-bot: deploy {target.name} ({target.type}) v{deployment.version.version}: "
                            f"failed: {detail}")
    return DeployResult(target.name, target.type, "failed", detail, key=key, evidence=evidence)


def _recorded(deployment: _Deployment, target: DeployTarget, key: str, progress: Progress) -> DeployResult:
    state, name = progress.state, target.name
    if state.phase == "completed":
        result = DeployResult(name, target.type, "succeeded", progress.detail, key=key)
        deployment._record(name, "succeeded", {"detail": result.detail})
        deployment._emit("deployment.succeeded", target, {"key": key, "detail": result.detail})
    elif state.phase == "aborted":
        result = DeployResult(name, target.type, "failed", scrub(progress.detail, []), key=key)
        deployment._record(name, "failed", {"detail": result.detail})
    else:
        due = "" if progress.due_ms is None else f"; `mlops-bot rollout` continues it (next look in " \
              f"{spoken(max(0, round((progress.due_ms - now_ms()) / 1000)))})"
        result = DeployResult(name, target.type, "rolling_out", f"{progress.detail}{due}", key=key)
        deployment._record(name, "running", {"detail": scrub(result.detail, [])})
    deployment.session.echo(f"mlops-bot: deploy {name} ({target.type}) v{deployment.version.version}: "
                            f"{result.status}: {result.detail}")
    return result
