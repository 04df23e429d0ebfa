"""The `mlflow_serve` target: the version served locally by MLflow's scoring server behind a stable nginx front.

Deploying version N: its MLflow Model is downloaded from its run (the `model` artifact the pipeline uploads,
found through the registry), `mlflow models serve` starts it on a free port in its own process group, the bot
waits (bounded) for its /health, verifies it on the evaluation rows (deploy/verify.py) and only then points the
front (deploy/front.py, the target's `port`) at it. The previous version serves until that switch and is
stopped afterwards. A failed start or verification leaves the front and the previous version as they were, stops
the new server and fails the target (exit 3) with the evidence recorded on the version by deploy/base.py.
State: `.mlops-bot/serving/<target>/state.json` (deploy/serving.py).
"""

from __future__ import annotations

import contextlib
import shutil
import uuid
from dataclasses import replace
from pathlib import Path

from ..config.model import DeployTarget
from ..errors import BotError, DataError, NotFound, UsageError
from ..registry.base import Registry
from . import verify as smoke
from .base import DeployRequest, DeployResult, DeploySession
from .front import Front
from .serving import (
    SHADOW_FILE,
    Server,
    ServingState,
    alive,
    read_state,
    serving_dir,
    start_server,
    stop_server,
    target_lock,
    wait_healthy,
    write_state,
)

MODEL_ARTIFACT = "model"  # where the pipeline uploads config.model.artifact in the run (pipeline/tracking.py)
DEFAULT_START_S = 120.0
PID_FILE = "server.pid"


def deploy(target: DeployTarget, request: DeployRequest, session: DeploySession) -> DeployResult:
    if target.port is None:
        raise UsageError(f"deploy target '{target.name}' (mlflow_serve) has no port; add port: to it in ml.yaml.")
    if session.registry is None:
        raise UsageError(f"deploy target '{target.name}' (mlflow_serve) needs the registry to download the model.")
    directory = serving_dir(session.root, target.name)
    with target_lock(directory):
        state = read_state(directory, target.name)
        sweep(directory, state.servers())
        front = Front(target.name, directory / "front", target.host, target.port)
        server, evidence, started = start_verified(target, request, session, directory)
        try:
            front.switch(server.port, request.version)
            write_state(directory, ServingState(target.name, server, target.port))
        except BaseException:
            retire(server)
            _point_back(front, state.live)
            raise
        for old in state.servers():  # the version that was live, and a rollout's canary left behind
            if old.pid != server.pid:
                retire(old)
    checked = f"verified: {evidence.line()}" if evidence else "not verified (the target has no verify.rows)"
    return DeployResult(target.name, target.type, "succeeded",
                        f"v{request.version} serving at {front.url} (server pid {server.pid}, port {server.port}, "
                        f"up in {started:.1f}s); {checked}",
                        evidence=evidence.as_tags() if evidence else {"verify": '{"skipped": true}'})


def up_to_date(target: DeployTarget, request: DeployRequest, session: DeploySession) -> str | None:
    """A detail when `request.version` is live, its server alive and the front answering from it; else None."""
    if target.port is None:
        return None
    directory = serving_dir(session.root, target.name)
    try:
        state = read_state(directory, target.name)
    except BotError:
        return None
    live, front = state.live, Front(target.name, directory / "front", target.host, target.port)
    if live is None or live.version != request.version or state.front_port != target.port or not alive(live.pid):
        return None
    if not front.running() or not front.answers(request.version):
        return None
    return f"up to date: v{live.version} serving at {front.url} (server pid {live.pid}, port {live.port})"


def stop(root: Path, target: DeployTarget) -> str:
    """Stops the target's live server and its front and forgets them; says what it stopped."""
    directory = serving_dir(root, target.name)
    with target_lock(directory):
        state = read_state(directory, target.name)
        front = Front(target.name, directory / "front", target.host, state.front_port or target.port or 0)
        front.stop()
        for server in state.servers():
            retire(server)
        write_state(directory, ServingState(target.name, None, None))
    return f"stopped v{state.live.version}" if state.live else "nothing was serving"


def sweep(directory: Path, keep: list[Server]) -> None:
    """Stops and removes what a deployment killed half-way left behind: servers of working directories other
    than those of `keep` (the live version, a rollout's canary; each records its server's pid in server.pid)."""
    kept = {server.directory for server in keep}
    for workdir in directory.glob("v*-*"):
        if not workdir.is_dir() or str(workdir) in kept:
            continue
        with contextlib.suppress(OSError, ValueError):
            stop_server(Server("", int((workdir / PID_FILE).read_text()), 0))
        shutil.rmtree(workdir, ignore_errors=True)


def retire(server: Server) -> None:
    """Stops a version's server for good and removes its downloaded model."""
    stop_server(server)
    if server.directory:
        shutil.rmtree(server.directory, ignore_errors=True)


def start_verified(target: DeployTarget, request: DeployRequest, session: DeploySession,
                    directory: Path) -> tuple[Server, smoke.Evidence | None, float]:
    """A new server of the version, healthy and verified, or none at all (stopped and removed on any failure)."""
    assert session.registry is not None
    workdir = directory / f"v{request.version}-{uuid.uuid4().hex[:8]}"
    workdir.mkdir()
    try:
        run_id = session.registry.get_model_version(request.model_name, request.version).run_id
        model_dir = _download_model(session.registry, run_id, request, workdir)
        recorded, rows = smoke.evaluation(target, session, run_id, workdir)
        log_file = directory / "logs" / f"{workdir.name}.log"  # kept when the version is stopped or fails
        log_file.parent.mkdir(exist_ok=True)
        session.echo(f"mlops-bot: deploy {target.name}: starting v{request.version} (log: {log_file})")
        started_server = start_server(model_dir, request.version, target.workers, log_file, target.name,
                                      workdir / SHADOW_FILE)
        server = replace(started_server, directory=str(workdir))
        (workdir / PID_FILE).write_text(f"{server.pid}\n")  # for `sweep`, should this command be killed
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    try:
        started = wait_healthy(server, target.timeout or DEFAULT_START_S, log_file)
        evidence = None
        if rows is not None and recorded is not None:
            evidence = smoke.smoke_test(server.url, rows, recorded, target.verify, smoke.tensor_signature(model_dir))
            if not evidence.passed:
                raise smoke.VerificationFailed(request.version, evidence)
        return server, evidence, started
    except BaseException:
        retire(server)
        raise


def _download_model(registry: Registry, run_id: str, request: DeployRequest, workdir: Path) -> Path:
    if not run_id:
        raise DataError(f"{request.model_name} v{request.version} has no tracking run, so there is no model to serve.")
    try:
        model_dir = registry.download_artifacts(run_id, MODEL_ARTIFACT, workdir / "download")
    except NotFound:
        model_dir = workdir / "missing"
    if not (model_dir / "MLmodel").is_file():
        raise DataError(f"{request.model_name} v{request.version}: its run {run_id} holds no MLflow Model under "
                        f"'{MODEL_ARTIFACT}' (no MLmodel file); save the model with mlflow.<flavor>.save_model.")
    return model_dir


def _point_back(front: Front, live: Server | None) -> None:
    """After a failed switch the front goes back to the version that was live (best effort, bounded)."""
    if live is not None and alive(live.pid):
        with contextlib.suppress(BotError):
            front.switch(live.port, live.version)
