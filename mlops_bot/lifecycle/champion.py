"""The registry side of `compare`: the challenger's run, the champion behind the alias, earlier champions.

The registry is passed in. Call count is bounded whatever the number of versions: one alias lookup, one run
per model (challenger, champion), one page of versions and one search for the runs of earlier champions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..config.model import Config
from ..decide.decision import Challenger, Champion, HistoryPoint
from ..errors import DataError, NotFound
from ..pipeline.lastrun import read_last_run, workspace_key
from ..registry import tags
from ..registry.base import ModelVersion, Registry, Run
from ..support import state
from ..support.urls import redact_text

# The promote flow tags every version it makes champion with the time; those (and the current champion,
# which may have been set by hand) are the earlier champions the chart shows.
PROMOTED_TAG = tags.PROMOTED_AT
_LINEAGE_TAGS = {
    tags.MLFLOW_GIT_COMMIT: "commit",
    tags.MLFLOW_GIT_BRANCH: "branch",
    tags.MLFLOW_GIT_REPO_URL: "repository",
    tags.GIT_DIRTY: "dirty",
    tags.CONFIG_DIGEST: "ml.yaml sha256",
    tags.DATA_HASH: "data hash",
    tags.PIPELINE_KEY: "pipeline key",
    tags.REUSED_FROM: "reused from run",
}


def resolve_champion(registry: Registry, model: str, alias: str) -> Champion | None:
    """The version behind `alias` with its run's metrics and params; None when no champion exists yet (the
    alias is not set, or the model was never registered)."""
    found = champion_and_run(registry, model, alias)
    return found[0] if found else None


def champion_and_run(registry: Registry, model: str, alias: str) -> tuple[Champion, Run | None] | None:
    """resolve_champion with the champion's run as read (None for a version without one), for a caller that
    needs more of it (lifecycle/rescore.py: its tags) without reading it again."""
    try:
        version = registry.get_version_by_alias(model, alias)
    except NotFound:
        return None
    if version is None:
        return None
    run = registry.get_run(version.run_id) if version.run_id else None
    return Champion(
        version=version.version,
        run_id=version.run_id or None,
        metrics=dict(run.metrics) if run else {},
        params=shown(run.params) if run else {},
        source=f"models:/{model}@{alias}",
    ), run


def earlier_champions(registry: Registry, model: str, limit: int, current: Champion | None,
                      experiment_ids: Sequence[str] = ()) -> list[HistoryPoint]:
    """Up to `limit` earlier champions, oldest first: versions the promote flow made champion, plus the current
    one. Reads one page of the newest versions (5 x limit, at least 50), so old history may be cut, and their
    runs in one search of `experiment_ids` where the server can (runs elsewhere are read one by one)."""
    if limit <= 0:
        return []
    versions = registry.search_model_versions(model, max_results=max(50, 5 * limit))
    current_version = current.version if current is not None else None
    picked = [v for v in versions if v.tags.get(PROMOTED_TAG) or v.version == current_version][:limit]
    earlier = [v.run_id for v in picked if v.run_id and v.version != current_version]
    runs = registry.get_runs(earlier, experiment_ids) if earlier else {}
    return [_point(v, runs, current) for v in reversed(picked)]


def challenger_from_run(run: Run) -> Challenger:
    lineage = {"experiment": run.experiment_id, **lineage_from_tags(run.tags)}
    return Challenger(run_id=run.run_id, metrics=dict(run.metrics), params=shown(run.params), lineage=lineage,
                      source="run")


def lineage_from_tags(tags: Mapping[str, str]) -> dict[str, str]:
    return shown({label: tags[key] for key, label in _LINEAGE_TAGS.items() if tags.get(key)})


def shown(values: Mapping[str, str]) -> dict[str, str]:
    """Run params and tags as a Decision carries them into reports, decision files and CI outputs: every URL in
    them redacted (a data URL's password or `?sig=`, the git remote mlflow records, with a CI job token)."""
    return {key: redact_text(value) for key, value in values.items()}


def latest_run_id(config: Config, registry: Registry) -> str:
    """The run `mlops-bot run` last produced in this workspace (its record, when made against this tracking
    store and experiment); else the newest FINISHED run the bot made of this workspace's pipeline (its pipeline
    key tag, written only when a whole pipeline run is complete), never a run made by other code."""
    state_dir = state.state_path(config.root)
    last = read_last_run(state_dir)
    if last is not None and last.belongs_to(config):
        return last.run_id
    key = workspace_key(config, state_dir)
    if key is None:
        raise DataError(f"no run of `mlops-bot run` is recorded in {config.root} and the pipeline key of the "
                        "workspace cannot be computed; run `mlops-bot run` first or pass --run ID.")
    experiment = registry.get_or_create_experiment(config.tracking.experiment)
    runs = registry.search_runs([experiment.experiment_id],
                                f"tags.{tags.PIPELINE_KEY} = '{key}' and attributes.status = 'FINISHED'",
                                ["attributes.start_time DESC"], max_results=1)
    if not runs:
        raise DataError(f"no finished run of mlops-bot with this workspace's pipeline key ({key[:12]}) in "
                        f"experiment {config.tracking.experiment!r} to compare; run `mlops-bot run` first or pass "
                        "--run ID.")
    return runs[0].run_id


def _point(version: ModelVersion, runs: Mapping[str, Run], current: Champion | None) -> HistoryPoint:
    if current is not None and version.version == current.version:
        metrics: Mapping[str, float] = current.metrics
    else:
        run = runs.get(version.run_id) if version.run_id else None
        metrics = run.metrics if run is not None else {}  # a deleted run only leaves a gap in the chart
    return HistoryPoint(version=version.version, run_id=version.run_id or None, metrics=dict(metrics),
                        created_at=version.creation_timestamp or None)
