"""The embedded store exported into MLflow's own store, for MLflow's UI and tools (`mlops-bot ui`, issue #15).

The embedded store keeps its own SQLite layout (safe for two bots at once, no mlflow needed to run the bot);
MLflow reads only its own. So `export_store` regenerates `<state>/mlflow/` from scratch through MLflow's own
client (imported here only): `mlflow.db` (a fresh MLflow store) and `artifacts/`, holding every experiment, run
(same run ids, start and end times, status, params, tags and full metric histories), run artifact, registered
model, version (same numbers, tags and descriptions, sources pointing at the exported artifacts) and alias.
Regenerated each time: the export is a view, and whatever is done to it in MLflow's UI is not read back.
"""

from __future__ import annotations

import shutil
import uuid
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest.mock import patch

from ...console import log
from ...errors import UsageError
from ..base import Run
from .store import LocalRegistry

EXPORT_DIR = "mlflow"  # <state>/mlflow/: mlflow.db and artifacts/
EXPORT_DB = "mlflow.db"
EXPORT_ARTIFACTS = "artifacts"
_METRICS_BATCH, _PARAMS_BATCH = 1000, 100  # the most MLflow's log_batch takes


@dataclass(frozen=True)
class Exported:
    directory: Path
    runs: int
    models: int

    @property
    def backend_store_uri(self) -> str:
        return f"sqlite:///{self.directory / EXPORT_DB}"

    @property
    def artifact_root(self) -> Path:
        return self.directory / EXPORT_ARTIFACTS

    def ui_command(self, host: str = "127.0.0.1", port: int = 5000) -> list[str]:
        return ["mlflow", "ui", "--backend-store-uri", self.backend_store_uri, "--default-artifact-root",
                str(self.artifact_root), "--host", host, "--port", str(port)]


def export_store(registry: LocalRegistry) -> Exported:
    """Writes <state>/mlflow/ anew from the embedded store at `registry.root`."""
    try:
        from mlflow import MlflowClient
    except ImportError:
        raise UsageError("showing the embedded store in MLflow's UI needs mlflow: pip install 'mlops-bot[ui]' "
                         "(or mlflow).") from None
    directory = registry.root / EXPORT_DIR
    shutil.rmtree(directory / EXPORT_ARTIFACTS, ignore_errors=True)
    (directory / EXPORT_ARTIFACTS).mkdir(parents=True)
    # Built under a name of its own, then moved into place: mlflow caches stores and engines by URI, so a second
    # export in one process must not reuse the first one's (of a file deleted since).
    build = directory / f".build-{uuid.uuid4().hex}"
    build.mkdir()
    try:
        exported = _fill(MlflowClient, registry, directory, f"sqlite:///{build / EXPORT_DB}")
        (build / EXPORT_DB).replace(directory / EXPORT_DB)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return exported


def _fill(client_class: Any, registry: LocalRegistry, directory: Path, uri: str) -> Exported:
    client = client_class(tracking_uri=uri, registry_uri=uri)
    run_uris: dict[str, str] = {}
    experiment_ids = registry.poll_experiment_ids()
    runs = registry.search_runs(experiment_ids)
    names = _experiment_names(registry)
    for experiment_id in experiment_ids:
        location = (directory / EXPORT_ARTIFACTS / experiment_id).as_uri()
        new_id = client.create_experiment(names[experiment_id], artifact_location=location)
        for run in sorted((r for r in runs if r.experiment_id == experiment_id), key=lambda r: (r.start_time,
                                                                                                   r.run_id)):
            run_uris[run.run_id] = _export_run(client, registry, run, new_id)
    models = registry.registered_model_names()
    for name in models:
        _export_model(client, registry, name, run_uris)
    for store in (client._tracking_client.store, client._get_registry_client().store):  # closes the file
        engine = getattr(store, "engine", None)
        if engine is not None:
            engine.dispose()
    return Exported(directory, len(run_uris), len(models))


def _experiment_names(registry: LocalRegistry) -> dict[str, str]:
    with registry._db.read() as conn:
        return {str(i): name for i, name in conn.execute("SELECT experiment_id, name FROM experiments")}


def _run_id(run_id: str) -> AbstractContextManager[Any]:
    """MLflow's sqlite store makes its run ids with uuid.uuid4(): for this call, the embedded run's id."""
    import mlflow.store.tracking.sqlalchemy_store as sql_store

    class _Fixed:
        def __getattr__(self, name: str) -> Any:
            return getattr(uuid, name)

        @staticmethod
        def uuid4() -> uuid.UUID:
            return uuid.UUID(hex=run_id)

    return patch.object(sql_store, "uuid", _Fixed())


def _export_run(client: Any, registry: LocalRegistry, run: Run, experiment_id: str) -> str:
    """The run in MLflow's store (same id where it is a uuid, as the bot makes them); returns its artifact URI."""
    from mlflow.entities import Metric, Param

    try:
        fixed = _run_id(run.run_id) if uuid.UUID(hex=run.run_id).hex == run.run_id else nullcontext()
    except ValueError:
        fixed = nullcontext()
    with fixed:
        created = client.create_run(experiment_id, start_time=run.start_time, tags=dict(run.tags),
                                    run_name=run.name or None)
    new_id = created.info.run_id
    points = [Metric(p.key, p.value, p.timestamp, p.step) for key in sorted(run.metrics)
              for p in registry.metric_history(run.run_id, key)]
    params = [Param(k, v) for k, v in sorted(run.params.items())]
    for start in range(0, len(points), _METRICS_BATCH):
        client.log_batch(new_id, metrics=points[start:start + _METRICS_BATCH])
    for start in range(0, len(params), _PARAMS_BATCH):
        client.log_batch(new_id, params=params[start:start + _PARAMS_BATCH])
    artifacts = registry.artifact_root / run.run_id
    if artifacts.is_dir() and any(artifacts.iterdir()):
        client.log_artifacts(new_id, str(artifacts))
    if run.status != "RUNNING":
        client.set_terminated(new_id, run.status, end_time=run.end_time)
    if new_id != run.run_id:
        log(f"mlops-bot: run {run.run_id} is run {new_id} in MLflow's UI.")
    return str(created.info.artifact_uri)


def _export_model(client: Any, registry: LocalRegistry, name: str, run_uris: dict[str, str]) -> None:
    model = registry.get_registered_model(name)
    client.create_registered_model(name, description=model.description or None)
    numbers: dict[str, str] = {}
    for version in sorted(registry.search_model_versions(name), key=lambda v: int(v.version)):
        source, run_id = version.source, version.run_id
        own = (registry.artifact_root / run_id).as_uri()
        if run_id in run_uris and source.startswith(own):
            source = run_uris[run_id] + source[len(own):]
        made = client.create_model_version(name, source, run_id=run_id if run_id in run_uris else None,
                                           tags=dict(version.tags), description=version.description or None)
        numbers[version.version] = str(made.version)
        if str(made.version) != version.version:
            log(f"mlops-bot: version {version.version} of {name} is version {made.version} in MLflow's UI.")
    for alias, number in model.aliases.items():
        client.set_registered_model_alias(name, alias, numbers.get(number, number))
