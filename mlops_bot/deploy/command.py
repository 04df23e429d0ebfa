"""The `command` target: runs the user's deploy command with the model in its environment.

A string runs through `/bin/sh -c` (it comes from ml.yaml itself, like a pipeline step's); a list runs as an
argument vector. Nothing from the registry is put on the command line: the command reads
MODEL_NAME, MODEL_VERSION, MODEL_URI (and MLOPS_BOT_DEPLOY_TARGET, MLOPS_BOT_IDEMPOTENCY_KEY,
MLOPS_BOT_DECISION) from its environment. It runs in the directory of ml.yaml, in its own process group
(a timeout stops its children too), with its output shown line by line behind `[deploy:NAME]`.
"""

from __future__ import annotations

import collections
import subprocess
import threading
from collections.abc import Callable
from typing import IO

from ..config.model import DeployTarget
from ..errors import StepFailed, UsageError
from ..pipeline.runner import kill_group
from .base import DeployContext, DeployRequest, DeployResult

DEFAULT_TIMEOUT_S = 900.0
TAIL_LINES = 20


def environment(target: DeployTarget, request: DeployRequest, context: DeployContext) -> dict[str, str]:
    return {
        **context.env,
        "MODEL_NAME": request.model_name,
        "MODEL_VERSION": request.version,
        "MODEL_URI": request.model_uri,
        "MLOPS_BOT_DEPLOY_TARGET": target.name,
        "MLOPS_BOT_IDEMPOTENCY_KEY": request.idempotency_key,
        "MLOPS_BOT_DECISION": request.verdict,
    }


def _pump(stream: IO[bytes], prefix: str, tail: collections.deque[str], echo: Callable[[str], None]) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        tail.append(line)
        echo(prefix + line)
    stream.close()


def _start(target: DeployTarget, request: DeployRequest, context: DeployContext) -> subprocess.Popen[bytes]:
    if not target.cmd:
        raise UsageError(f"deploy target '{target.name}' (command) has no cmd; add cmd: to it in ml.yaml.")
    argv = ["/bin/sh", "-c", target.cmd] if isinstance(target.cmd, str) else list(target.cmd)
    try:
        return subprocess.Popen(argv, cwd=context.root, env=environment(target, request, context),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
    except OSError as exc:
        raise StepFailed(f"deploy:{target.name}", None, f"deploy target '{target.name}': cannot start "
                         f"'{argv[0]}' ({exc.strerror}); fix its cmd in ml.yaml.") from None


def _wait(proc: subprocess.Popen[bytes], target: DeployTarget, timeout: float) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        raise StepFailed(f"deploy:{target.name}", None, f"deploy target '{target.name}' timed out after "
                         f"{timeout:g}s and was stopped; raise its timeout in ml.yaml or make it faster.") from None
    except KeyboardInterrupt:
        kill_group(proc)
        raise


def deploy(target: DeployTarget, request: DeployRequest, context: DeployContext) -> DeployResult:
    """Runs the command to completion; raises StepFailed, with its last output lines, when it fails."""
    proc = _start(target, request, context)
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    assert proc.stdout is not None
    reader = threading.Thread(target=_pump, args=(proc.stdout, f"[deploy:{target.name}] ", tail, context.echo),
                              daemon=True)
    reader.start()
    try:
        code = _wait(proc, target, target.timeout or DEFAULT_TIMEOUT_S)
    finally:
        reader.join(timeout=2.0)
        if reader.is_alive():  # a background child still holds the pipe open
            kill_group(proc)
            reader.join(timeout=2.0)
    if code != 0:
        how = f"was killed by signal {-code}" if code < 0 else f"exited with {code}"
        last = " | ".join(line for line in list(tail)[-5:] if line.strip())
        raise StepFailed(f"deploy:{target.name}", code, f"deploy command {how}; last output: {last or '(none)'}")
    return DeployResult(target.name, target.type, "succeeded",
                        f"command exited 0 for {request.model_name} v{request.version}")
