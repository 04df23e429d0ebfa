"""`mlops-bot compare`: judge the challenger against the champion under ml.yaml's criteria.

Offline (what-if): `--challenger-metrics A --champion-metrics B` compares two metrics files with ml.yaml's
criteria (and significance, given both predictions files); no registry is opened. `--challenger-metrics A`
alone judges that file against the registry's champion (rescored if ml.yaml says so), as the online compare
does. Otherwise the challenger is `--run ID` (default: the run `mlops-bot run` last produced here). The
champion is the model version behind `compare.champion.alias`; no champion yet is a bootstrap. Exit 0 when
the verdict passes, 1 when it fails; `--json` prints the Decision, `--out FILE` writes the markdown report
(atomically).
"""

from __future__ import annotations

import argparse
import re
import shutil
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from ..config.model import Config
from ..console import emit_json, log
from ..decide.decision import Challenger, Champion, Decision
from ..decide.document import to_document
from ..decide.verdict import decide
from ..errors import EXIT_NEGATIVE, EXIT_OK, UsageError
from ..events.bus import emit
from ..events.event import model_subject
from ..lifecycle.champion import challenger_from_run, champion_and_run, earlier_champions, latest_run_id, shown
from ..lifecycle.rescore import rescore
from ..metrics.files import read_metrics
from ..registry.base import Registry
from ..report.markdown import Links, render_markdown
from .project import Project
from .significance import run_tests, with_noise_notes


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", metavar="ID", help="the challenger's tracking run (default: the last `run`)")
    parser.add_argument("--out", metavar="FILE", help="write the markdown report to FILE")
    parser.add_argument("--challenger-metrics", metavar="FILE", help="offline: the challenger's metrics file")
    parser.add_argument("--champion-metrics", metavar="FILE", help="offline: the champion's metrics file")
    parser.add_argument("--challenger-predictions", metavar="FILE",
                        help="per-row predictions of the challenger (CSV with a row_id column)")
    parser.add_argument("--champion-predictions", metavar="FILE",
                        help="per-row predictions of the champion on the same rows")
    parser.epilog = ("Metrics files are JSON, YAML or CSV. Exit 0 when all criteria pass (and the improvement is "
                     "significant, if ml.yaml asks), 1 when they do not, 3 when inputs are missing or unusable.")


def main(args: argparse.Namespace, project: Project) -> int:
    root, config = project.directory, project.config
    links = Links()
    predictions = Predictions(_path(root, args.challenger_predictions), _path(root, args.champion_predictions))
    if args.challenger_metrics and args.champion_metrics:
        decision = compare_files(config, root / args.challenger_metrics, root / args.champion_metrics,
                                 predictions.challenger, predictions.champion)
    elif args.champion_metrics:
        raise UsageError("--champion-metrics needs --challenger-metrics: give the challenger's metrics file too, "
                         "or neither to judge a tracking run.")
    elif args.challenger_metrics:
        path = root / args.challenger_metrics
        challenger = Challenger(run_id=None, metrics=read_metrics(path, allow_nonfinite=True), source=str(path))
        decision = judge(config, project.registry, challenger, predictions)
    else:
        registry = project.registry
        decision = compare_registry(config, registry, args.run, predictions)
        links = _links(registry.tracking_uri, decision)
    return finish(decision, config, args, links)


def compare_files(config: Config, challenger_metrics: Path, champion_metrics: Path,
                  challenger_predictions: Path | None = None, champion_predictions: Path | None = None,
                  now: datetime | None = None) -> Decision:
    """The offline decision from two metrics files (non-finite values fail their criterion with a reason)."""
    challenger = Challenger(run_id=None, metrics=read_metrics(challenger_metrics, allow_nonfinite=True),
                            source=str(challenger_metrics))
    champion = Champion(version=None, run_id=None, metrics=read_metrics(champion_metrics, allow_nonfinite=True),
                        source=str(champion_metrics))
    tested = run_tests(config.compare, champion, challenger_predictions, champion_predictions)
    decision = decide(config.model.name, config.compare, challenger, champion, significance=tested.gating, now=now)
    return with_noise_notes(decision, config.compare, tested.informational)


@dataclass(frozen=True)
class Predictions:
    """Per-row predictions files for the significance test; None: found by the comparison where it can."""

    challenger: Path | None = None
    champion: Path | None = None


def compare_registry(config: Config, registry: Registry, run_id: str | None,
                     predictions: Predictions = Predictions(), now: datetime | None = None) -> Decision:
    """The decision for a tracking run against the registered champion, with earlier champions for the chart.

    Without `run_id` the challenger is the run last produced in this workspace, and its predictions default
    to the file the pipeline wrote; for another run they must be given. With `compare.rescore_champion`,
    the champion's model is scored again by the evaluation step on today's data (lifecycle/rescore.py).
    """
    run = registry.get_run(run_id or latest_run_id(config, registry))
    if predictions.challenger is None and run_id is None:
        predictions = Predictions(workspace_predictions(config), predictions.champion)
    return judge(config, registry, challenger_from_run(run), predictions, now)


def judge(config: Config, registry: Registry, challenger: Challenger, predictions: Predictions = Predictions(),
          now: datetime | None = None) -> Decision:
    """`challenger` against the registered champion (rescored on today's data when ml.yaml says so)."""
    found = champion_and_run(registry, config.model.name, config.compare.champion.alias)
    champion, champion_run = found if found else (None, None)  # its run read once, handed to the rescoring
    experiment = challenger.lineage.get("experiment")  # where earlier champions' runs usually are too
    history = earlier_champions(registry, config.model.name, config.report.history, champion,
                                [experiment] if experiment else [])
    champion_predictions = predictions.champion
    workdir = None
    try:
        if champion is not None and config.compare.rescore_champion:
            rescored = rescore(config, registry, champion, champion_run)
            champion, workdir = rescored.champion, rescored.workdir
            champion_predictions = champion_predictions or rescored.predictions
        tested = run_tests(config.compare, champion, predictions.challenger, champion_predictions)
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
    decision = decide(config.model.name, config.compare, challenger, champion, significance=tested.gating,
                      now=now).with_history(history)
    decision = with_noise_notes(decision, config.compare, tested.informational)
    emit(config, "decision.made", model_subject(config.model.name), {
        "model": config.model.name, "verdict": decision.verdict, "summary": decision.summary,
        "run_id": challenger.run_id, "champion_version": champion.version if champion else None,
        "bootstrap": decision.bootstrap})
    return decision


def finish(decision: Decision, config: Config, args: argparse.Namespace, links: Links) -> int:
    """Writes --out, prints the Decision (JSON) or the report (markdown), and returns the exit code."""
    markdown = render_markdown(decision, links=links, history=config.report.history,
                               chart=config.report.chart == "mermaid")
    if args.out:
        from ..support.files import write_atomic

        out = Path(args.directory) / args.out
        write_atomic(out, markdown)
    if args.json:
        emit_json(to_document(decision))
    else:
        print(markdown, end="", flush=True)
    log(f"mlops-bot: {decision.verdict}: {decision.summary}")
    return EXIT_OK if decision.passed else EXIT_NEGATIVE


def _path(root: Path, value: str | None) -> Path | None:
    return None if not value else root / value


def workspace_predictions(config: Config) -> Path | None:
    """The predictions file the last `run` wrote here, if any."""
    for step in config.pipeline.values():
        if step.predictions and (config.root / step.predictions).is_file():
            return config.root / step.predictions
    return None


def _links(tracking_uri: str, decision: Decision) -> Links:
    from .report import run_link  # the one place run links are built (no credentials or query in them)

    return Links(run=run_link(tracking_uri, decision))


def commit_run(config: Config, registry: Registry, sha: str) -> str | None:
    """The newest finished pipeline run of commit `sha` in ml.yaml's experiment (a PR check's run, found as the
    check finds a reusable one: by tags on the tracking server); None when the commit has none yet. Runs of a
    dirty tree, a step's own child runs and monitoring runs do not count."""
    from ..registry import tags

    if not re.fullmatch(r"[0-9a-f]{7,64}", sha):
        return None
    experiment = registry.get_or_create_experiment(config.tracking.experiment)
    runs = registry.search_runs([experiment.experiment_id],
                                f"tags.{tags.MLFLOW_GIT_COMMIT} = '{sha}' and attributes.status = 'FINISHED'",
                                ["attributes.start_time DESC"], max_results=20)
    for run in runs:
        if run.tags.get(tags.PIPELINE_KEY) and run.tags.get(tags.GIT_DIRTY) != "true" and not run.tags.get(tags.ROLE):
            return run.run_id
    return None


def compare_against(config: Config, registry: Registry, run_id: str, version: str) -> Decision:
    """The run judged against registered `version` instead of the champion (`/mlops-bot compare against vN`), on
    the metrics both runs recorded: nothing is rescored and no significance test runs, since either would run
    code. NotFound when the version does not exist."""
    name = config.model.name
    target = registry.get_model_version(name, version)
    run = registry.get_run(target.run_id) if target.run_id else None
    other = Champion(version=target.version, run_id=target.run_id or None,
                     metrics=dict(run.metrics) if run else {}, params=shown(run.params) if run else {},
                     source=f"models:/{name}/{target.version}")
    challenger = challenger_from_run(registry.get_run(run_id))
    decision = decide(name, replace(config.compare, significance=None), challenger, other)
    emit(config, "decision.made", model_subject(name), {
        "model": name, "verdict": decision.verdict, "summary": decision.summary, "run_id": run_id,
        "champion_version": target.version, "bootstrap": decision.bootstrap, "against": target.version})
    return decision
