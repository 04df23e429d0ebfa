"""What every remote backend is given and shares: the job (`RemoteStep`), the environment that travels with it,
and the command the cluster runs: `python -m mlops_bot.pipeline.remote_entry` around the step's own command,
which runs it in the shipped working directory and uploads its outs to the tracking run's artifacts
(`outs/<path>`, the model directory under `model/`: where `Tracker.upload` would put them). The bot then
downloads them (`Tracker.fetch_outs`), so cache, ml.lock and reuse see the same files as after a local run."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Protocol

from ...config.model import Step
from ...support.environment import RUNTIME, RUNTIME_PATTERNS

ENTRY_MODULE = "mlops_bot.pipeline.remote_entry"
WORKDIR_ARTIFACT = "mlops-bot/steps"  # <step>/workdir.tar.gz: the working directory, for backends that need it
BACKENDS = {"ray": "mlops_bot.pipeline.backends.ray", "kubernetes": "mlops_bot.pipeline.backends.kubernetes"}
Echo = Callable[[str], None]


class RunArtifacts(Protocol):
    """The tracking run a remote step logs to, as the backends see it (pipeline/tracking.Tracker does it)."""

    run_id: str

    def upload_file(self, path: Path, artifact_dir: str) -> None: ...

    def fetch_outs(self, outs: list[str]) -> list[str]:
        """Downloads the outs a remote step uploaded into the project; returns those the run lacks."""
        ...


@dataclass(frozen=True)
class RemoteStep:
    """One step to run on a cluster."""

    step: Step
    root: Path  # the project (ml.yaml's directory)
    env: Mapping[str, str]  # what travels: the step's env, pass_env values, the tracking run's variables
    run: RunArtifacts
    progress: str  # "step 2/3 train", for heartbeat lines
    echo: Echo  # one line of the step's output or of the bot's progress
    model: str | None = None  # config.model.artifact when this step writes it: uploaded under model/
    outs: tuple[str, ...] | None = None  # what comes back, when not the step's outs (the champion's rescoring)
    options: tuple[str, ...] = ()  # more of remote_entry's options (lifecycle/rescore_remote)

    @property
    def backend_type(self) -> str:
        return self.step.backend.type if self.step.backend else "local"

    def entrypoint(self, workdir_artifact: str | None = None) -> list[str]:
        """The argv the cluster runs: the wrapper, then the step's command (a string through /bin/sh -c)."""
        argv = ["python", "-m", ENTRY_MODULE, "--run-id", self.run.run_id, "--step", self.step.name]
        for out in self._outs():
            argv += ["--out", out]
        if self.model is not None:
            argv += ["--model", self.model]
        if workdir_artifact is not None:
            argv += ["--workdir-artifact", workdir_artifact]
        argv += self.options
        command = ["/bin/sh", "-c", self.step.cmd] if isinstance(self.step.cmd, str) else list(self.step.cmd)
        return [*argv, "--", *command]

    def _outs(self) -> list[str]:
        from ..dag import step_outs

        return list(step_outs(self.step) if self.outs is None else self.outs)


def portable_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The part of a step's environment that means the same on another machine: not this runner's PATH, HOME,
    virtualenv or temp dir (support/environment's RUNTIME), which the cluster's image sets for itself."""
    kept = {k: v for k, v in env.items()
            if k not in RUNTIME and not any(fnmatchcase(k, p) for p in RUNTIME_PATTERNS)}
    return {**kept, "PYTHONUNBUFFERED": "1"}


def run_remote(job: RemoteStep) -> float:
    """Runs the job on its backend, then brings its outs back; StepFailed (exit 3) when they did not come."""
    from ...errors import StepFailed

    module = importlib.import_module(BACKENDS[job.backend_type])
    duration: float = module.run(job)
    missing = job.run.fetch_outs(job._outs())
    if missing:
        raise StepFailed(job.step.name, 0, f"step '{job.step.name}' finished on {job.backend_type} but "
                         f"{', '.join(missing)} did not reach run {job.run.run_id}'s artifacts; see the step's log "
                         "above for the upload's error (the cluster must reach the tracking server and its store).")
    return duration
