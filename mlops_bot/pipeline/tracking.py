"""One tracking run per pipeline execution, and reuse of an earlier identical run from the tracking server.

A finished run carries the pipeline key (see cache.pipeline_key): the same sources, params, env and
commands give the same key on any machine, so a fresh CI runner finds the run a PR already trained and
downloads its outs instead of retraining. Outs are uploaded under `outs/<path>`; the model directory
(config.model.artifact) under `model`, where the registry and deploy steps expect it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path

from ..config.logged import record_metrics
from ..config.model import Config
from ..console import log
from ..errors import BotError, InvalidParameter, NotFound
from ..registry import tags as names
from ..registry.base import Experiment, Registry, Run, RunStatus
from ..support.paths import normalise
from .lastrun import LastRun, read_last_run, write_last_run
from .preflight import check_artifact_location
from .selflog import RUN_CONTEXT_ENV, SelfLogging, run_context

MODEL_ARTIFACT = "model"
OUTS_ARTIFACT = "outs"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _stage(root: Path, paths: Iterable[str], dest: Path) -> None:
    """Mirrors `paths` (files or dirs, relative to root) under `dest`, by hard links where possible."""
    for rel in paths:
        src, dst = root / rel, dest / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, copy_function=_link_or_copy)
        elif src.exists():
            _link_or_copy(str(src), str(dst))


def param_clash(key: str, logged: str, ours: str, source: str) -> str:
    """The one warning line for a param the run already holds with another value."""
    same = _same_number(logged, ours)
    return (f"mlops-bot: warning: param '{key}' kept as the run has it, {logged!r}; {source} says {ours!r}"
            + ("; equal as numbers, only the spelling differs." if same else
               "; a step logged it with another value: fix the step or the params file."))


def _same_number(a: str, b: str) -> bool:
    try:
        return Decimal(a.strip()) == Decimal(b.strip())
    except (InvalidOperation, ValueError):
        return False


def _param_text(value: object) -> str:
    # str() as mlflow.log_param does, so training code that logs the same param does not conflict.
    return value if isinstance(value, str) else json.dumps(value) if isinstance(value, (dict, list)) else str(value)


class Tracker:
    """Talks to the registry on behalf of one pipeline execution; `state_dir` remembers the last run."""

    def __init__(self, config: Config, registry: Registry | Callable[[], Registry], state_dir: Path) -> None:
        self.config = config
        self._registry = None if callable(registry) else registry
        self._open = registry if callable(registry) else None
        self.state_dir = state_dir
        self._experiment: Experiment | None = None

    @property
    def registry(self) -> Registry:
        """Opened on first use: a no-op run that knows its last run never needs the server."""
        if self._registry is None:
            assert self._open is not None
            self._registry = self._open()
        return self._registry

    @property
    def experiment(self) -> Experiment:
        if self._experiment is None:
            self._experiment = self.registry.get_or_create_experiment(self.config.tracking.experiment)
        return self._experiment

    @property
    def experiment_id(self) -> str:
        return self.experiment.experiment_id

    @property
    def embedded(self) -> bool:
        return self.config.tracking.uri.strip() in ("", "local")

    def check_artifacts(self) -> None:
        """Before the first step: UsageError when the run's artifacts could not be uploaded (pipeline/preflight)."""
        check_artifact_location(self.registry, self.experiment, self.embedded)

    def step_env(self, run_id: str, step: str = "") -> dict[str, str]:
        env = {"MLFLOW_TRACKING_URI": self.registry.tracking_uri,
               "MLFLOW_EXPERIMENT_NAME": self.config.tracking.experiment,
               RUN_CONTEXT_ENV: run_context(run_id, step)}  # a run the step's code creates: our child
        if self.embedded:  # MLflow's own store beside ours (registry/local/steps); our run id is not in it
            from ..registry.local.steps import steps_env

            env.update(steps_env(self.state_dir))
        else:
            env["MLFLOW_RUN_ID"] = run_id
        return env

    def self_logging(self, run_id: str) -> SelfLogging | None:
        """The runs the steps' own mlflow code made in `run_id` (pipeline/selflog); on the embedded store they
        are in MLflow's store beside it, seen through registry/local/steps.StepRuns."""
        if not self.embedded:
            return SelfLogging(self.registry, self.experiment_id, run_id)
        from ..registry.local.steps import StepRuns
        from ..registry.local.store import LocalRegistry

        registry = self.registry
        return SelfLogging(StepRuns(registry), self.experiment_id, run_id) \
            if isinstance(registry, LocalRegistry) else None

    def fold_children(self, run_id: str, params: Mapping[str, object], metrics: Mapping[str, float]) -> None:
        """Before `finish`: the children's params and metrics the run lacks, copied into it (selflog.fold), and on
        the embedded store their artifacts too."""
        children = self.self_logging(run_id)
        if children is not None:
            children.fold({k: _param_text(v) for k, v in params.items()}, metrics, param_clash)
            fold_artifacts = getattr(children.registry, "fold_artifacts", None)
            if fold_artifacts is not None:
                fold_artifacts(run_id)

    def end_children(self, run_id: str, status: RunStatus) -> None:
        """Ends the children of `run_id` still RUNNING, as the run ends (FAILED, KILLED)."""
        children = self.self_logging(run_id)
        if children is not None:
            children.end_children(status)

    def start(self, tags: Mapping[str, str]) -> str:
        # The pipeline key is tagged only in finish(): a step's own mlflow.end_run() may mark the run
        # FINISHED early, and a half-uploaded run must never be found for reuse.
        run = self.registry.create_run(self.experiment_id, name=f"{self.config.model.name}-pipeline", tags=tags)
        return run.run_id

    def end(self, run_id: str, status: RunStatus) -> None:
        self.registry.update_run(run_id, status, end_time=_now_ms())

    def finish(self, run_id: str, params: Mapping[str, object], metrics: Mapping[str, float],
               outs: Iterable[str], tags: Mapping[str, str]) -> None:
        """Logs params and metrics, uploads outs and the model, then tags and closes the run."""
        self._log_params(run_id, params)
        if metrics:
            self.registry.log_batch(run_id, metrics=metrics)
        self.upload(run_id, outs)
        self.registry.log_batch(run_id, tags=tags)
        self.end(run_id, "FINISHED")

    def _log_params(self, run_id: str, params: Mapping[str, object]) -> None:
        """A param the step's own mlflow code logged with another value makes MLflow refuse the whole batch:
        then the params the run lacks are logged, and each clash is reported once."""
        texts = {k: _param_text(v) for k, v in params.items()}
        if not texts:
            return
        try:
            self.registry.log_batch(run_id, params=texts)
            return
        except InvalidParameter:
            logged = self.registry.get_run(run_id).params
        for key in sorted(k for k in texts if k in logged and logged[k] != texts[k]):
            log(param_clash(key, logged[key], texts[key], self.config.params_file or "the params file"))
        missing = {k: v for k, v in texts.items() if k not in logged}
        try:
            if missing:
                self.registry.log_batch(run_id, params=missing)
        except InvalidParameter as exc:  # logged meanwhile by something else still running
            log(f"mlops-bot: warning: params {', '.join(sorted(missing))} not logged: {exc.detail}")

    def upload(self, run_id: str, outs: Iterable[str]) -> None:
        """Outs go under outs/<path>; a model directory goes only under model/ (no second copy)."""
        root, model = self.config.root, normalise(self.config.model.artifact)
        model_dir = (root / model).is_dir()
        others = [o for o in outs if not (model_dir and o == model) and (root / o).exists()]
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.state_dir, prefix="upload-") as tmp:
            if others:
                _stage(root, others, Path(tmp) / "outs")
                self.registry.upload_artifacts(run_id, Path(tmp) / "outs", OUTS_ARTIFACT)
            if model_dir:
                self.registry.upload_artifacts(run_id, root / model, MODEL_ARTIFACT)
            elif (root / model).exists():
                staged = Path(tmp) / "model"
                staged.mkdir()
                _link_or_copy(str(root / model), str(staged / Path(model).name))
                self.registry.upload_artifacts(run_id, staged, MODEL_ARTIFACT)

    def find_reusable(self, pipeline_key: str) -> Run | None:
        """The newest FINISHED run of this experiment with the same pipeline key, if any."""
        runs = self.registry.search_runs(
            [self.experiment_id],
            filter_string=f"tags.{names.PIPELINE_KEY} = '{pipeline_key}' and attributes.status = 'FINISHED'",
            order_by=["attributes.start_time DESC"], max_results=1)
        return runs[0] if runs else None

    def restore(self, run: Run, outs: Iterable[str]) -> list[str]:
        """Downloads `outs` from the run and moves them into place; returns the outs the run lacks
        (then nothing is moved)."""
        return self.fetch_outs(run.run_id, outs)

    def fetch_outs(self, run_id: str, outs: Iterable[str]) -> list[str]:
        """`restore` by run id: also how a step that ran on a cluster returns its outs (pipeline/backends)."""
        root, model = self.config.root, normalise(self.config.model.artifact)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.state_dir, prefix="restore-") as tmp:
            got: dict[str, Path] = {}
            missing: list[str] = []
            for i, out in enumerate(outs):
                path = self._download(run_id, out, out == model, Path(tmp) / str(i))
                if path is None:
                    missing.append(out)
                else:
                    got[out] = path
            if missing:
                return missing
            for out, path in got.items():
                _replace(path, root / out)
        return []

    def _download(self, run_id: str, out: str, is_model: bool, dest: Path) -> Path | None:
        for artifact in (f"{OUTS_ARTIFACT}/{out}", MODEL_ARTIFACT) if is_model else (f"{OUTS_ARTIFACT}/{out}",):
            try:
                path = self.registry.download_artifacts(run_id, artifact, dest / artifact.split("/")[0])
            except NotFound:
                continue
            if path.exists():
                return path
        return None

    def note_metrics(self, run_id: str, extra: Iterable[str] = (), run: Run | None = None) -> None:
        """Records the metric names the run holds, its steps' own mlflow logging included, for `validate`
        (config/logged); best effort: without it validate knows the metrics files' names only."""
        try:
            held = (run or self.registry.get_run(run_id)).metrics
        except BotError as exc:
            log(f"mlops-bot: warning: the metric names of run {run_id} were not recorded ({exc}).")
            return
        record_metrics(self.config.root, run_id, [*held, *extra])

    # the last run, so a no-op `run` can name it without asking the server
    def remembered(self, pipeline_key: str) -> str | None:
        last = read_last_run(self.state_dir)
        if last is None or last.pipeline_key != pipeline_key or not last.belongs_to(self.config):
            return None
        return last.run_id

    def remember(self, pipeline_key: str, run_id: str) -> None:
        write_last_run(self.state_dir, LastRun.of(self.config, pipeline_key, run_id))


def _replace(src: Path, dst: Path) -> None:
    if dst.is_dir() and not dst.is_symlink():
        shutil.rmtree(dst)
    elif dst.exists() or dst.is_symlink():
        dst.unlink()
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)

