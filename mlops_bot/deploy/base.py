"""Deployment: the request each target gets, the result it returns, and `deploy_all`, which runs the targets
of ml.yaml in order and records every outcome on the model version as tags.

Tags, per target T (the registry is the record of what is deployed where; names from `tags.deploy_tag`):
  mlops_bot.deploy.T.status   running | succeeded | failed
  mlops_bot.deploy.T.at       when that status was set (ISO 8601, UTC, milliseconds)
  mlops_bot.deploy.T.key      the idempotency key of the deployment (webhook receivers dedup on it)
  mlops_bot.deploy.T.detail   one line of what happened (or the error)
  mlops_bot.deploy.T.url / .commit   the pull request opened or the commit pushed, when there is one
  mlops_bot.deploy.T.verify   the evidence of verification before traffic (mlflow_serve), JSON, passed or not
The request's decision comes from the version's tags.VERDICT and tags.DECISION_SUMMARY (written by promote).

`running` is written before a target starts, so a deploy killed half-way leaves `running` behind and the
next `deploy` retries it with the same key. A target whose last status is `succeeded` is skipped, unless a
later deployment of another version went to the same target since (a rollback then redeploys the older
version, under a new key) or `force` is given. A target that knows what it serves (mlflow_serve: its state and
its server's health) answers that itself through its `up_to_date`, so a dead server is started again.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ..console import log
from ..decide.decision import Verdict
from ..errors import BotError, UsageError
from ..events.bus import emit
from ..events.event import model_subject
from ..registry import tags as names
from ..registry.tags import deploy_tag

if TYPE_CHECKING:
    from ..config.model import Config, DeployTarget
    from ..registry.base import ModelVersion, Registry

class ChangeRequests(Protocol):
    """The forge seam for pull/merge requests (GitHub, GitLab and the local forge adapters satisfy it)."""

    def open_pull_request(self, head: str, base: str, title: str, body: str) -> str:
        """Opens a pull/merge request from branch `head` into `base`, or finds the open one; returns its URL."""
        ...


DETAIL_LIMIT = 500
Echo = Callable[[str], None]
RecordedStatus = Literal["running", "succeeded", "failed"]  # the status tag of a target on a version
Outcome = Literal["succeeded", "failed", "skipped"]  # what one deploy_all call did for a target


@dataclass(frozen=True)
class DeployRequest:
    model_name: str
    version: str
    model_uri: str  # models:/<name>/<version>
    verdict: Verdict | Literal[""] = ""  # "" when no decision is recorded on the version
    summary: str = ""
    commit: str | None = None  # the training commit
    idempotency_key: str = ""  # stable for (model, version, target) across retries and re-runs

    @property
    def decision(self) -> str:
        """The decision in a few words, for commit messages and logs."""
        return {"pass": "criteria passed", "fail": "criteria failed"}.get(self.verdict, "no recorded decision")

    def placeholders(self) -> dict[str, str]:
        return {"model_uri": self.model_uri, "model_name": self.model_name, "model_version": self.version}


@dataclass(frozen=True)
class DeployResult:
    target: str
    type: str
    status: Outcome
    detail: str
    url: str | None = None  # pull request opened
    commit: str | None = None  # commit pushed (gitops)
    key: str = ""
    evidence: Mapping[str, str] = field(default_factory=dict)  # more tags of the target (e.g. verify)

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    def as_json(self) -> dict[str, Any]:
        return {"target": self.target, "type": self.type, "status": self.status, "detail": self.detail,
                "url": self.url, "commit": self.commit, "idempotency_key": self.key}


@dataclass(frozen=True)
class DeploySession:
    """What the targets of one `deploy_all` call share beyond their request: where ml.yaml lives, the
    delivery id, the forge, the output and the environment."""

    root: Path
    delivery: str  # one id per deploy_all call (webhook X-MLOps-Bot-Delivery)
    forge: ChangeRequests | None = None
    echo: Echo = log
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    secrets: frozenset[str] = frozenset()  # variables ml.yaml names as secrets: a command never sees them
    registry: Registry | None = None  # where a target that serves the model downloads it from


class DeployRefused(BotError):
    """A target refused the version on evidence (e.g. verification before traffic); the evidence is recorded
    as tags of the target on the version."""

    def __init__(self, message: str, evidence: Mapping[str, str]) -> None:
        self.evidence = dict(evidence)
        super().__init__(message)


class DeployFailed(BotError):
    """At least one target failed; the others ran and every result is recorded on the model version."""

    def __init__(self, results: Sequence[DeployResult]) -> None:
        self.results = list(results)
        failed = [r for r in results if r.failed]
        lines = [f"{r.target}: {r.detail}" for r in failed]
        super().__init__(f"{len(failed)} of {len(results)} deploy target(s) failed; fix the cause and run "
                         "`mlops-bot deploy` again to retry them:\n" + "\n".join(lines))


def first_key(model: str, version: str, target: str) -> str:
    return hashlib.sha256(f"mlops-bot\0{model}\0{version}\0{target}".encode()).hexdigest()[:32]


def next_key(previous: str) -> str:
    """The key of a redeployment after `previous` succeeded: new, yet the same on every retry of it."""
    return hashlib.sha256(f"{previous}\0redeploy".encode()).hexdigest()[:32]


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def request_for(version: ModelVersion) -> DeployRequest:
    return DeployRequest(
        model_name=version.name, version=version.version, model_uri=f"models:/{version.name}/{version.version}",
        verdict=_verdict(version.tags.get(names.VERDICT, "")), summary=version.tags.get(names.DECISION_SUMMARY, ""),
        commit=version.tags.get(names.COMMIT) or version.tags.get(names.MLFLOW_GIT_COMMIT) or None,
    )


def _verdict(value: str) -> Verdict | Literal[""]:
    return "pass" if value == "pass" else "fail" if value == "fail" else ""


def select(config: Config, wanted: Sequence[str] | None) -> list[DeployTarget]:
    if not wanted:
        return list(config.deploy)
    known = [t.name for t in config.deploy]
    unknown = [n for n in wanted if n not in known]
    if unknown:
        have = ", ".join(known) if known else "none"
        raise UsageError(f"--target {unknown[0]}: no such deploy target in {config.path.name} (it has: {have}).")
    return [t for t in config.deploy if t.name in wanted]


def scrub(text: str, secrets: Sequence[str]) -> str:
    """One line, bounded, and without any secret value even if a library echoed one."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = " | ".join(line.strip() for line in text.splitlines() if line.strip())
    return text if len(text) <= DETAIL_LIMIT else text[:DETAIL_LIMIT - 3] + "..."


@dataclass(frozen=True)
class DeployOptions:
    """Which targets of ml.yaml a `deploy_all` call deploys to, and how."""

    targets: Sequence[str] | None = None  # by name; None or empty: all of them
    force: bool = False  # deploy again to targets that are up to date
    forge: ChangeRequests | None = None  # opens the pull requests of gitops targets with pull_request: true
    echo: Echo = log


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
                            secrets=config.secret_names, registry=registry)
    deployment = _Deployment(registry, model_version, session, options.force, config)
    return [deployment.run(target) for target in chosen]


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
        self._record(name, "running", {"key": key, "detail": "deploying"})
        self._emit("deployment.started", target, {"key": key})
        result = self._attempt(target, key)
        extra = {**{k: v for k, v in (("url", result.url), ("commit", result.commit)) if v}, **result.evidence}
        self._record(name, "failed" if result.failed else "succeeded", {"detail": result.detail, **extra})
        self._emit(f"deployment.{result.status}", target, {"key": key, "detail": result.detail, **extra})
        self.session.echo(f"mlops-bot: deploy {name} ({target.type}) v{self.version.version}: {result.status}: "
                          f"{result.detail}")
        return result

    def _emit(self, event_type: str, target: DeployTarget, data: Mapping[str, str]) -> None:
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


TYPES = ("command", "webhook", "gitops", "mlflow_serve")


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


def with_key(request: DeployRequest, key: str) -> DeployRequest:
    return replace(request, idempotency_key=key)
