"""The deploy targets of ml.yaml as frozen dataclasses: `DeployTarget`, its smoke test (`Verify`) and its rollout
(`Rollout` with its steps, analysis queries and shadow). Re-exported by config/model.py."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Verify:
    """`deploy[].verify` of an mlflow_serve or azureml_endpoint target: the smoke test before traffic
    (deploy/verify.py)."""

    rows: str | None = None  # CSV or Parquet of evaluation inputs, relative to ml.yaml; None: skipped (a warning)
    id_column: str = "row_id"
    drop: tuple[str, ...] = ()  # columns that are not features (the label)
    agreement: float = 0.99  # share of rows whose prediction equals the recorded one
    p95_ms: float | None = None  # bound on the p95 latency of a request
    sample: int = 200  # rows sent at most
    predictions: str | None = None  # the evaluation step's predictions file (from pipeline:), read from the run


@dataclass(frozen=True)
class RolloutStep:
    traffic: int  # percent of requests the new version answers
    hold_s: float = 0.0


@dataclass(frozen=True)
class Analysis:
    """One query of `rollout.analysis`: a PromQL instant query returning one number, and its bounds."""

    name: str
    query: str  # $version, $previous, $target, $model are filled in
    max: float | None = None
    min: float | None = None
    no_data: str = "hold"  # hold | pass | fail


@dataclass(frozen=True)
class Shadow:
    share: int  # percent of requests mirrored to the new version
    hold_s: float
    min_agreement: float | None = None


@dataclass(frozen=True)
class Rollout:
    """`deploy[].rollout`: traffic steps with holds, analysed against Prometheus between them (deploy/rollout/)."""

    steps: tuple[RolloutStep, ...] = (RolloutStep(100),)
    analysis: tuple[Analysis, ...] = ()
    shadow: Shadow | None = None
    metrics: str | None = None  # Prometheus base URL
    interval_s: float = 30.0
    hand_off: bool = False


@dataclass(frozen=True)
class DeployTarget:
    """One `deploy:` entry; the fields used depend on `type` (command, webhook, gitops or mlflow_serve)."""

    name: str
    type: str
    cmd: str | tuple[str, ...] | None = None
    url: str | None = None
    secret_env: str | None = None
    file: str | None = None
    repo: str | None = None
    branch: str | None = None
    pull_request: bool = False
    set: Mapping[str, str] = field(default_factory=dict)
    canary_percent: int | None = None
    timeout: float | None = None
    pass_env: tuple[str, ...] = ()  # for type command: names or globs of the job's variables it may see
    port: int | None = None  # for type mlflow_serve: the stable front port clients use
    host: str = "127.0.0.1"  # for type mlflow_serve: where the front listens
    workers: int = 1  # for type mlflow_serve: the model server's workers
    verify: Verify = field(default_factory=Verify)  # for types mlflow_serve and azureml_endpoint
    rollout: Rollout | None = None  # for types mlflow_serve, gitops and azureml_endpoint
    workspace: str | None = None  # for type azureml_endpoint: the workspace's Azure resource id
    endpoint: str | None = None  # for type azureml_endpoint: the managed online endpoint
    instance_type: str = "Standard_DS3_v2"
    instance_count: int = 1
    management_url: str = "https://management.azure.com"
