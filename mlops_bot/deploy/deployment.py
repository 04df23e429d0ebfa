"""`deploy_all`: one version to the chosen targets of ml.yaml, each result recorded as tags on the version
(status, time, key, detail, evidence) and announced as `deployment.*` events. A target with `rollout:` goes
through the rollout loop (deploy/rollout/) instead of a single hand-off."""

from __future__ import annotations

import contextlib
import importlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..config.model import Config, DeployTarget
from ..errors import BotError, UsageError
from ..events.bus import emit
from ..events.event import model_subject
from ..registry.base import ModelVersion, Registry
from ..registry.tags import deploy_tag
from .base import (
    DeployFailed,
    DeployOptions,
    DeployRefused,
    DeployRequest,
    DeployResult,
    DeploySession,
    RecordedStatus,
    first_key,
    next_key,
    now_iso,
    request_for,
    scrub,
    select,
    with_key,
)


def deploy_all(config: Config, registry: Registry, version: str | int,
               options: DeployOptions | None = None) -> list[DeployResult]:
    """Deploys `version` of config.model.name to the chosen targets (all by default), in ml.yaml order.

    One result per target; a failed target does not stop the others. `raise_for_failures(results)` then
    raises DeployFailed (exit 3) when any failed. Registry errors propagate: without the record, deploying
    on would lose track of what went where.
    """
    options = options or DeployOptions()
    chosen = select(config, options.targets)
    model_version = registry.get_model_version(config.model.name, str(version))
    session = DeploySession(root=config.root, delivery=uuid.uuid4().hex, forge=options.forge, echo=options.echo,
                            secrets=config.secret_names, registry=registry, on_abort=options.on_abort,
                            wait=options.wait)
    deployment = _Deployment(registry, model_version, session, options.force, config)
    return [deployment.run(target) for target in chosen]


def stop_rollouts(config: Config, registry: Registry, version: str, reason: str,
                  options: DeployOptions | None = None) -> list[DeployResult]:
    """Rolls back every rollout of `version` still in progress (traffic to the version it was replacing): what
    `mlops-bot rollback` does to the version it takes out of service, so no later tick takes it to 100%."""
    from .rollout.run import stop

    options = options or DeployOptions()
    model_version = registry.get_model_version(config.model.name, version)
    session = DeploySession(root=config.root, delivery=uuid.uuid4().hex, echo=options.echo,
                            secrets=config.secret_names, registry=registry)
    deployment = _Deployment(registry, model_version, session, False, config)
    return [r for r in (stop(deployment, t, reason) for t in config.deploy if t.rollout is not None) if r]


def raise_for_failures(results: Sequence[DeployResult]) -> None:
    if any(r.failed for r in results):
        raise DeployFailed(results)


class _Deployment:
    def __init__(self, registry: Registry, version: ModelVersion, session: DeploySession, force: bool,
                 config: Config | None = None) -> None:
        self.registry, self.version, self.session, self.force = registry, version, session, force
        self.config = config  # where events go (its audit log and `on:` rules)
        self.request = request_for(version)
        self._others: list[ModelVersion] | None = None

    def run(self, target: DeployTarget) -> DeployResult:
        tags, name = self.version.tags, target.name
        status, key = tags.get(deploy_tag(name, "status"), ""), tags.get(deploy_tag(name, "key"), "")
        checked = _up_to_date(target, self.request, self.session) if not self.force else None
        if checked is not None:
            return DeployResult(name, target.type, "skipped", checked, key=key)
        if status == "succeeded" and not self.force and self._current(name) and not _checks_itself(target):
            return DeployResult(name, target.type, "skipped", f"already deployed ({tags.get(deploy_tag(name, 'at'))}); "
                                "--force deploys again", tags.get(deploy_tag(name, "url")),
                                tags.get(deploy_tag(name, "commit")), key)
        if status == "succeeded" or not key:  # a new deployment; a failed or interrupted one is retried as it was
            key = next_key(key) if key else first_key(self.version.name, self.version.version, name)
        if target.rollout is not None:
            from .rollout.run import roll

            return roll(self, target, key)
        self._record(name, "running", {"key": key, "detail": "deploying"})
        self._emit("deployment.started", target, {"key": key})
        result = self._attempt(target, key)
        extra = {**{k: v for k, v in (("url", result.url), ("commit", result.commit)) if v}, **result.evidence}
        self._record(name, "failed" if result.failed else "succeeded", {"detail": result.detail, **extra})
        self._emit(f"deployment.{result.status}", target, {"key": key, "detail": result.detail, **extra})
        self.session.echo(f"mlops-bot: deploy {name} ({target.type}) v{self.version.version}: {result.status}: "
                          f"{result.detail}")
        return result

    def _emit(self, event_type: str, target: DeployTarget, data: Mapping[str, object]) -> None:
        emit(self.config or self.session.root, event_type, model_subject(self.version.name, self.version.version),
             {"model": self.version.name, "version": self.version.version, "target": target.name,
              "target_type": target.type, **data})

    def _current(self, name: str) -> bool:
        """No other version was deployed to `name` since this one was (else this is a redeploy, a rollback)."""
        if self._others is None:
            self._others = self.registry.search_model_versions(self.version.name)
        mine = self.version.tags.get(deploy_tag(name, "at"), "")
        others = (v for v in self._others if v.version != self.version.version)
        return all(v.tags.get(deploy_tag(name, "at"), "") <= mine for v in others)

    def _attempt(self, target: DeployTarget, key: str) -> DeployResult:
        secrets = [self.session.env.get(target.secret_env, "")] if target.secret_env else []
        try:
            done: DeployResult = _module(target).deploy(target, with_key(self.request, key), self.session)
            return replace(done, detail=scrub(done.detail, secrets), key=key)
        except BotError as exc:
            evidence = exc.evidence if isinstance(exc, DeployRefused) else {}
            return DeployResult(target.name, target.type, "failed", scrub(str(exc), secrets), key=key,
                                evidence=evidence)
        except BaseException as exc:
            why = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"internal error ({type(exc).__name__})"
            with contextlib.suppress(Exception):  # the original exception matters more
                self._record(target.name, "failed", {"detail": why})
            raise

    def _record(self, target: str, status: RecordedStatus, fields: Mapping[str, str]) -> None:
        """Sets the target's status tag, its time, and the other fields given."""
        for field_name, value in {"status": status, "at": now_iso(), **fields}.items():
            self.registry.set_model_version_tag(self.version.name, self.version.version,
                                                deploy_tag(target, field_name), value)


TYPES = ("command", "webhook", "gitops", "mlflow_serve", "azureml_endpoint")


def _module(target: DeployTarget) -> Any:
    if target.type not in TYPES:
        raise UsageError(f"deploy target '{target.name}': unknown type '{target.type}' ({', '.join(TYPES)}).")
    return importlib.import_module(f"{__package__}.{target.type}")


def _checks_itself(target: DeployTarget) -> bool:
    return target.type == "mlflow_serve"


def _up_to_date(target: DeployTarget, request: DeployRequest, session: DeploySession) -> str | None:
    """What a target that knows what it serves says about this version: a detail when it is live and healthy."""
    if not _checks_itself(target):
        return None
    answer: str | None = _module(target).up_to_date(target, request, session)
    return answer
