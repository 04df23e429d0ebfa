"""ml.yaml as frozen dataclasses, every default filled in (`config.load_config` builds them). Pure."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..support.state import DRIFT_REPORT_FILE, REPORT_FILE, state_relpath
from .backends import StepBackend as StepBackend
from .targets import Analysis as Analysis
from .targets import DeployTarget as DeployTarget
from .targets import Rollout as Rollout
from .targets import RolloutStep as RolloutStep
from .targets import Shadow as Shadow
from .targets import Verify as Verify


@dataclass(frozen=True)
class Model:
    name: str
    artifact: str  # directory (or file) the pipeline writes; uploaded as the run's model


@dataclass(frozen=True)
class Tracking:
    uri: str  # "local" = the embedded store in the state directory (support/state.py)
    experiment: str
    registry_uri: str = ""  # "" = the tracking server's registry; "databricks-uc" = Unity Catalog on that workspace


@dataclass(frozen=True)
class Step:
    name: str
    cmd: str | tuple[str, ...]  # a string runs through the shell, a list runs as an argument vector
    deps: tuple[str, ...] = ()
    outs: tuple[str, ...] = ()
    params: tuple[str, ...] = ()  # dotted keys of the params file whose values enter the cache key
    env: Mapping[str, str] = field(default_factory=dict)
    pass_env: tuple[str, ...] = ()  # names or globs of the job's variables the step may see (support/environment)
    metrics: str | None = None
    predictions: str | None = None
    timeout: float | None = None  # seconds
    backend: StepBackend | None = None  # None: a local subprocess (config/backends)


@dataclass(frozen=True)
class Regression:
    """How much worse a guard metric may get: `absolute` units or a `relative` fraction of the champion."""

    absolute: float | None = None
    relative: float | None = None


@dataclass(frozen=True)
class Criterion:
    metric: str
    greater_is_better: bool = True
    threshold: float | None = None
    min_absolute_change: float | None = None
    min_relative_change: float | None = None
    max_regression: Regression | None = None
    significant: bool = False  # its improvement must also be significant (joins Significance.metrics)


@dataclass(frozen=True)
class Significance:
    """`compare.significance`: which metrics must improve beyond noise, and how that is tested (decide/significance)."""

    metrics: tuple[str, ...]  # `metric: x` is the one-metric form; criteria with `significant: true` add theirs
    test: str = "auto"  # "auto" (exact/asymptotic McNemar for 0/1 correctness, else the bootstrap), "mcnemar",
    #                     "paired_bootstrap"
    alpha: float = 0.05  # one-sided: the challenger is better (alternative "better"), or two-sided ("two-sided")
    alternative: str = "better"
    greater_is_better: bool | None = None  # the direction when no criterion names the metric (else exit 2)
    correction: str = "holm"  # with several metrics: "holm" or "none"
    resamples: int = 10_000
    seed: int = 0

    @property
    def metric(self) -> str:
        return self.metrics[0]


@dataclass(frozen=True)
class ChampionSelector:
    alias: str = "champion"


@dataclass(frozen=True)
class Compare:
    champion: ChampionSelector = field(default_factory=ChampionSelector)
    rescore_champion: bool = False
    criteria: tuple[Criterion, ...] = ()
    significance: Significance | None = None


ROLES = ("read", "triage", "write", "maintain", "admin")  # repository roles, least to most (forges map theirs)


def role_at_least(role: str, wanted: str) -> bool:
    """`role` (from the forge; "none" or unknown counts as nothing) is `wanted` or above it."""
    return role in ROLES and ROLES.index(role) >= ROLES.index(wanted)


@dataclass(frozen=True)
class ApprovalRule:
    """`promote.stages[].approval`: who must approve before a version reaches the stage, and how it may be given."""

    permission: str = "maintain"  # the least repository role (ROLES) an approver holds, checked through the API
    via: tuple[str, ...] = ("environment", "review", "comment")  # the forge mechanisms that count
    environment: str | None = None  # the GitHub deployment environment whose reviewers approve; None: the alias


@dataclass(frozen=True)
class Stage:
    """One `promote.stages` entry: the alias a version reaches, and what it must pass first."""

    alias: str
    previous_alias: str  # kept on the version it replaces, for rollback; default previous-<alias>
    requires: str | None = None  # the alias of the stage a version must have reached first
    criteria: tuple[Criterion, ...] | None = None  # None: compare.criteria
    deploy: tuple[str, ...] | None = None  # names of deploy targets run when it moves; None: every target
    approval: ApprovalRule | None = None


@dataclass(frozen=True)
class ChatOps:
    """`chatops:`: who may command the bot from a pull/merge request comment."""

    permission: str = "write"  # the least repository role (ROLES) of a commenter the bot obeys
    commands: tuple[str, ...] = ("rerun", "compare", "promote", "rollback", "approve")


@dataclass(frozen=True)
class Promote:
    alias: str = "champion"  # with stages: the first stage's alias (the one a merge moves)
    previous_alias: str = "previous-champion"
    on: tuple[str, ...] = ("push",)
    stages: tuple[Stage, ...] = ()  # (): one stage, `alias`, as before stages existed
    protected: tuple[str, ...] = ()  # aliases only the bot's promotion path may move (status and gate flag others)

    @property
    def all_stages(self) -> tuple[Stage, ...]:
        return self.stages or (Stage(alias=self.alias, previous_alias=self.previous_alias),)

    def stage(self, alias: str) -> Stage | None:
        return next((s for s in self.all_stages if s.alias == alias), None)


@dataclass(frozen=True)
class Report:
    sticky: bool = True
    history: int = 10
    chart: str | None = "mermaid"
    summary: bool = True
    file: str = state_relpath(REPORT_FILE)


@dataclass(frozen=True)
class DriftTest:
    """One test of `monitor.tests`: ks and chi2 flag drift when the p-value is below `threshold`; wasserstein,
    jensen_shannon and psi when the statistic is at or above it."""

    name: str  # ks | wasserstein | psi (numeric); chi2 | jensen_shannon | psi (categorical)
    threshold: float

    @property
    def is_p_value(self) -> bool:
        return self.name in ("ks", "chi2")


@dataclass(frozen=True)
class CurrentData:
    """`monitor.current`: one of a path or glob, a URL, or a command that writes `path`."""

    path: str | None = None
    url: str | None = None
    cmd: str | tuple[str, ...] | None = None
    pass_env: tuple[str, ...] = ()
    timeout: float | None = None


@dataclass(frozen=True)
class Monitor:
    """`monitor:`: what `mlops-bot drift` compares, with which tests, and when the dataset has drifted."""

    current: CurrentData
    reference: str | None = None  # None: the training data of the champion's run, from its lineage
    features: tuple[str, ...] = ()  # (): every shared column
    categorical: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()
    # A feature drifts when its change is both significant (the test's p-value) and large (the distance): either
    # alone false-alarms, the p-value on large samples, the distance on small ones (tests/drift/test_false_alarms).
    numeric_tests: tuple[DriftTest, ...] = (DriftTest("ks", 0.01), DriftTest("wasserstein", 0.1))
    categorical_tests: tuple[DriftTest, ...] = (DriftTest("chi2", 0.01), DriftTest("jensen_shannon", 0.1))
    require_all: bool = True  # monitor.tests.require: all (default) or any of a feature's tests
    min_features: int | None = None  # the dataset drifts when at least this many features drift...
    min_share: float | None = 0.5  # ...or at least this share of them (exactly one of the two is set)
    null_rate_change: float = 0.1
    sample_rows: int | None = None  # None: every row (inputs above max_mb are refused)
    seed: int = 0
    max_mb: float = 512.0
    report: str = state_relpath(DRIFT_REPORT_FILE)


@dataclass(frozen=True)
class Rule:
    event: str
    where: Mapping[str, str] = field(default_factory=dict)
    do: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    path: Path  # the ml.yaml file
    root: Path  # its directory: step commands run here and relative paths start here
    digest: str  # sha256 of the file's bytes, recorded as lineage
    version: int
    model: Model
    tracking: Tracking
    params_file: str | None
    pipeline: Mapping[str, Step]  # in file order
    compare: Compare
    promote: Promote
    deploy: tuple[DeployTarget, ...]
    report: Report
    rules: tuple[Rule, ...]
    monitor: Monitor | None = None
    chatops: ChatOps = field(default_factory=ChatOps)

    def metric_steps(self) -> list[Step]:
        return [s for s in self.pipeline.values() if s.metrics]

    @property
    def secret_names(self) -> frozenset[str]:
        """The variables ml.yaml names as secrets: no child process sees them (support/environment)."""
        return frozenset(t.secret_env for t in self.deploy if t.secret_env)


def file_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)
