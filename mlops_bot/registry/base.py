"""The Registry protocol: what the bot needs from a tracking server and model registry.

Two implementations keep the same semantics: `mlflow.MlflowRegistry` (REST over httpx) and
`local.LocalRegistry` (the embedded SQLite store). The rest of the bot sees only this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, get_args, runtime_checkable

RunStatus = Literal["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"]  # MLflow's RunStatus
RUN_STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)


@dataclass(frozen=True)
class Capabilities:
    """What the server supports; missing parts get a fallback inside the adapter."""

    aliases: bool = True  # False: aliases are emulated with model-version tags
    version_search: bool = True  # False: versions are listed another way (GitLab)
    artifacts: bool = True
    version_tags: bool = True  # False: the bot's version records live in the version's description (GitLab)
    run_filters: bool = True  # False: run search ignores filters; results are filtered by the bot (GitLab)


@dataclass(frozen=True)
class Experiment:
    experiment_id: str
    name: str
    artifact_location: str = ""


@dataclass(frozen=True)
class Run:
    run_id: str
    experiment_id: str
    status: str
    start_time: int  # ms since the epoch
    end_time: int | None
    artifact_uri: str
    name: str = ""
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)  # latest value per key
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricPoint:
    key: str
    value: float
    timestamp: int
    step: int


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    description: str = ""
    aliases: Mapping[str, str] = field(default_factory=dict)  # alias -> version
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    source: str
    run_id: str
    status: str
    creation_timestamp: int
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class RegistryEvent:
    """A change seen by polling: `type` is one of run.finished, model_version.created,
    model_version.tag_set, alias.set, alias.deleted."""

    type: str
    timestamp: int
    model: str = ""
    version: str = ""
    alias: str = ""
    run_id: str = ""
    data: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class Registry(Protocol):
    """Tracking and registry operations. Errors are BotErrors (NotFound, AlreadyExists, RemoteError...).

    Every create is idempotent under retries: repeating a call with the same arguments never
    duplicates anything.
    """

    @property
    def capabilities(self) -> Capabilities: ...

    @property
    def tracking_uri(self) -> str:
        """What steps get as MLFLOW_TRACKING_URI so their own mlflow logging lands in the same run."""
        ...

    # experiments and runs
    def get_or_create_experiment(self, name: str) -> Experiment: ...
    def create_run(self, experiment_id: str, name: str = "", tags: Mapping[str, str] | None = None) -> Run: ...
    def update_run(self, run_id: str, status: RunStatus, end_time: int | None = None) -> None: ...
    def log_batch(
        self,
        run_id: str,
        params: Mapping[str, str] | None = None,
        metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, str] | None = None,
        step: int = 0,
    ) -> None: ...
    def get_run(self, run_id: str) -> Run: ...
    def get_runs(self, run_ids: Sequence[str], experiment_ids: Sequence[str]) -> dict[str, Run]:
        """Several runs at once, by id (searched in `experiment_ids` where the server can); runs that no longer
        exist are left out."""
        ...
    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str = "",
        order_by: Sequence[str] = (),
        max_results: int | None = None,
    ) -> list[Run]:
        """MLflow search syntax (`tags.x = 'y' and attributes.status = 'FINISHED'`); follows every page."""
        ...
    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]: ...

    # artifacts
    def upload_artifacts(self, run_id: str, local_dir: Path, artifact_path: str = "") -> None: ...
    def download_artifacts(self, run_id: str, artifact_path: str, dest: Path) -> Path:
        """Copies the run's artifact file or directory under `dest`; returns the local path."""
        ...
    def list_artifacts(self, run_id: str, artifact_path: str = "") -> list[str]:
        """Every file below the run's artifact directory `artifact_path`, as paths relative to it ('/'-separated,
        sorted); [] when that is no directory or holds no file. An unknown run is NotFound."""
        ...
    def log_model(self, run_id: str, artifact_path: str, name: str) -> str | None:
        """Records the run's artifact directory `artifact_path` (an MLflow Model) as an MLflow 3 Logged Model of
        the run, once (a re-run finds it); returns its model_id, None where the store has no Logged Models."""
        ...
    def list_logged_model_artifacts(self, model_id: str) -> list[str]:
        """Every file of a logged model, as list_artifacts does for a run; NotFound when there is none."""
        ...
    def check_artifact_location(self, location: str) -> None:
        """Writes a small note at an experiment's artifact location: UsageError (what to install or set) or
        RemoteError when the run's artifacts could not be uploaded there."""
        ...

    # registry
    def get_or_create_registered_model(self, name: str, description: str = "") -> RegisteredModel: ...
    def get_registered_model(self, name: str) -> RegisteredModel: ...
    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str,
        tags: Mapping[str, str] | None = None,
        description: str = "",
        model_id: str = "",
    ) -> ModelVersion:
        """Idempotent: a version of `name` from the same run_id and source is returned, not duplicated.
        `model_id` links it to a Logged Model (MLflow 3; then `source` is `models:/<model_id>`)."""
        ...
    def get_model_version(self, name: str, version: str) -> ModelVersion: ...
    def search_model_versions(self, name: str, max_results: int | None = None) -> list[ModelVersion]:
        """All versions of `name`, newest first."""
        ...
    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None: ...
    def set_alias(self, name: str, alias: str, version: str) -> None: ...
    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion | None:
        """None when the alias is not set (MLflow answers 400 INVALID_PARAMETER_VALUE for that)."""
        ...
    def delete_alias(self, name: str, alias: str) -> None:
        """Deleting an alias that is not set is not an error."""
        ...

    # mutual exclusion between bots promoting the same model (see registry/lock.py)
    def try_lock(self, name: str, owner: str, ttl_ms: int) -> str:
        """Takes lock `name` for `owner` unless another owner holds it unexpired; returns the holder (== owner
        on success). An expired lock is taken over. Repeating a call that succeeded returns owner again."""
        ...
    def unlock(self, name: str, owner: str) -> None:
        """Releases the lock if `owner` holds it; otherwise does nothing."""
        ...

    # polling
    def events_since(self, cursor: str | None, model_names: Sequence[str]) -> tuple[list[RegistryEvent], str]:
        """Changes after `cursor` (opaque; None = from now, returning no history) and the next cursor."""
        ...

    def close(self) -> None: ...
