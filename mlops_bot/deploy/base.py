"""Deployment: the request each target gets and the result it returns; `deploy_all` (deploy/deployment.py) runs
the targets of ml.yaml in order and records every outcome on the model version as tags.

Tags, per target T (the registry is the record of what is deployed where; names from `tags.deploy_tag`):
  mlops_bot.deploy.T.status   running | succeeded | failed
  mlops_bot.deploy.T.at       when that status was set (ISO 8601, UTC, milliseconds)
  mlops_bot.deploy.T.key      the idempotency key of the deployment (webhook receivers dedup on it)
  mlops_bot.deploy.T.detail   one line of what happened (or the error)
  mlops_bot.deploy.T.url / .commit   the pull request opened or the commit pushed, when there is one
  mlops_bot.deploy.T.verify   the evidence of verification before traffic (mlflow_serve, azureml_endpoint), JSON
  mlops_bot.deploy.T.rollout  where a rollout stands (deploy/rollout/state.py), JSON
The request's decision comes from the version's tags.VERDICT and tags.DECISION_SUMMARY (written by promote).

`running` is written before a target starts, so a deploy killed half-way leaves `running` behind and the
next `deploy` retries it with the same key. A target whose last status is `succeeded` is skipped, unless a
later deployment of another version went to the same target since (a rollback then redeploys the older
version, under a new key) or `force` is given. A target that knows what it serves (mlflow_serve: its state and
its server's health) answers that itself through its `up_to_date`, so a dead server is started again.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ..console import log
from ..decide.decision import Verdict
from ..errors import BotError, UsageError
from ..registry import tags as names

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
AbortHook = Callable[[str, str, str, str], str]  # (model, version rolled back, version restored, reason) -> alias moves
RecordedStatus = Literal["running", "succeeded", "failed"]  # the status tag of a target on a version
Outcome = Literal["succeeded", "failed", "skipped", "rolling_out"]  # what one deploy_all call did for a target


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
    on_abort: AbortHook | None = None  # a rollout that aborts moves the alias back with it (flows/rollback)
    wait: bool | None = None  # drive a rollout to its end (None: as ml.yaml's rollout.hand_off says)


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
    on_abort: AbortHook | None = None  # see DeploySession
    wait: bool | None = None


def with_key(request: DeployRequest, key: str) -> DeployRequest:
    return replace(request, idempotency_key=key)
