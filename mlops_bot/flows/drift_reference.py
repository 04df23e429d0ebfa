"""The champion `mlops-bot drift` watches and its reference data: `monitor.reference` (a path under the project)
or, by default, the data the champion was trained on, found from its lineage.

The lineage: the step whose outs hold `model.artifact` trained the model; its tabular deps (.csv, .tsv, .parquet,
.pq) are the training data. A dep some step writes was uploaded with the champion's run (`outs/<path>`, as
pipeline/tracking uploads outs) and is downloaded from it; a dep no step writes is a file of the repository, read
from git at the commit the champion's run records (`git cat-file --filters`, so LFS files come out whole).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..config.model import Config, Step
from ..errors import DataError, NotFound
from ..registry import alias_holder, tags
from ..registry.base import Registry, Run
from ..support.paths import normalise, overlaps
from .drift_inputs import TABULAR, Source, project_files

OUTS_ARTIFACT = "outs"  # where pipeline/tracking uploads a run's outs
GIT_TIMEOUT_S = 120.0
_COMMIT = re.compile(r"^[0-9a-fA-F]{7,64}$")
SET_REFERENCE = "or set monitor.reference in ml.yaml to the reference data"


@dataclass(frozen=True)
class ChampionRun:
    """The version behind compare.champion.alias and its training run; both None when there is no champion and
    monitor.reference names the reference data."""

    version: str | None
    run: Run | None


def find_champion(config: Config, registry: Registry) -> ChampionRun:
    """The champion and its run; DataError when there is none and the reference has to come from it."""
    assert config.monitor is not None
    model, alias = config.model.name, config.compare.champion.alias
    holder = alias_holder(registry, model, alias)
    if holder is None:
        if config.monitor.reference:
            return ChampionRun(None, None)
        raise DataError(f"no version of {model} holds the alias '{alias}', so there is no champion whose training "
                        f"data to compare with; promote a model first, {SET_REFERENCE}.")
    run = None
    if holder.run_id:
        try:
            run = registry.get_run(holder.run_id)
        except NotFound:
            run = None
    if run is None and not config.monitor.reference:
        raise DataError(f"the champion {model} v{holder.version} has no tracking run (it was deleted, or the version "
                        f"was registered without one) to find its training data in; {SET_REFERENCE}.")
    return ChampionRun(holder.version, run)


def reference_data(config: Config, registry: Registry, champion: ChampionRun, workdir: Path) -> Source:
    """The reference files: monitor.reference, or the champion's training data (downloaded into `workdir`)."""
    assert config.monitor is not None
    if config.monitor.reference:
        return Source(project_files(config.root, config.monitor.reference, "monitor.reference"),
                      config.monitor.reference)
    assert champion.run is not None
    _, deps = training_data(config)
    writers = [o for s in config.pipeline.values() for o in s.outs]
    paths, labels = [], []
    for dep in deps:
        if any(overlaps(dep, out) for out in writers):
            paths.append(_from_run(registry, champion.run, dep, workdir))
            labels.append(f"{OUTS_ARTIFACT}/{normalise(dep)} of run {champion.run.run_id}")
        else:
            commit = _commit_of(champion.run, dep)
            paths.append(_from_git(config.root, commit, dep, workdir))
            labels.append(f"{normalise(dep)} at commit {commit[:12]}")
    return Source(tuple(paths), "; ".join(labels), fetched=True)


def training_data(config: Config) -> tuple[Step, list[str]]:
    """The step that writes model.artifact and its tabular deps; DataError when there are none."""
    artifact = normalise(config.model.artifact)
    trainer = next((s for s in config.pipeline.values() if any(overlaps(o, artifact) for o in s.outs)), None)
    if trainer is None:
        raise DataError(f"no pipeline step writes model.artifact ({artifact}), so the champion's training data "
                        f"cannot be found from the pipeline; {SET_REFERENCE}.")
    deps = [d for d in trainer.deps if Path(d).suffix.lower() in TABULAR]
    if not deps:
        raise DataError(f"step '{trainer.name}' (which writes {artifact}) has no .csv, .tsv or .parquet dep to "
                        f"take as the training data; {SET_REFERENCE}.")
    return trainer, deps


def _from_run(registry: Registry, run: Run, dep: str, workdir: Path) -> Path:
    artifact = f"{OUTS_ARTIFACT}/{normalise(dep)}"
    try:
        found = registry.download_artifacts(run.run_id, artifact, workdir / "run")
    except NotFound:
        raise DataError(f"the champion's run {run.run_id} has no artifact {artifact} (its training data: was the "
                        f"run made by `mlops-bot run`?); {SET_REFERENCE}.") from None
    if not found.is_file():
        raise DataError(f"{artifact} of the champion's run {run.run_id} is a directory, not a data file; "
                        f"{SET_REFERENCE}.")
    return found


def _commit_of(run: Run, dep: str) -> str:
    commit = run.tags.get(tags.MLFLOW_GIT_COMMIT) or run.tags.get(tags.COMMIT) or ""
    if not _COMMIT.match(commit):
        raise DataError(f"{dep} (the champion's training data) is no step's out, so it is read from git at the "
                        f"commit of the champion's run {run.run_id}, but the run records no commit "
                        f"({tags.MLFLOW_GIT_COMMIT}); {SET_REFERENCE}.")
    return commit


def _from_git(root: Path, commit: str, dep: str, workdir: Path) -> Path:
    """`dep` as it was at `commit` (a path relative to the project, which may lie below the repository's top)."""
    target = workdir.joinpath("git", *normalise(dep).split("/"))
    target.parent.mkdir(parents=True, exist_ok=True)
    argv = ["git", "-C", str(root), "cat-file", "--filters", f"{commit}:./{normalise(dep)}"]
    try:
        with open(target, "wb") as out:
            done = subprocess.run(argv, stdout=out, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                  timeout=GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise DataError(f"cannot read {dep} from git at {commit[:12]} ({exc}); {SET_REFERENCE}.") from None
    if done.returncode != 0:
        why = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise DataError(f"cannot read {dep} (the champion's training data) from git at commit {commit[:12]}: "
                        f"{why[-1] if why else 'git failed'}; fetch that commit (a shallow CI checkout lacks it: "
                        f"fetch-depth: 0), {SET_REFERENCE}.")
    return target
