"""The `command` target: runs the user's deploy command with the model in its environment.

A string runs through `/bin/sh -c` (it comes from ml.yaml itself, like a pipeline step's); a list runs as an
argument vector. Nothing from the registry is put on the command line: the command reads
MODEL_NAME, MODEL_VERSION, MODEL_URI (and MLOPS_BOT_DEPLOY_TARGET, MLOPS_BOT_IDEMPOTENCY_KEY,
MLOPS_BOT_DECISION) from its environment, which holds none of the job's secrets (support/environment): what
else it needs, ml.yaml names in the target's `pass_env`. It runs in the directory of ml.yaml, in its own process group
(a timeout stops its children too), with its output shown line by line behind `[deploy:NAME]`.
"""

from __future__ import annotations

from ..config.model import DeployTarget
from ..errors import StepFailed, UsageError
from ..support import processes
from ..support.environment import child_environment
from ..support.processes import Launch
from .base import DeployRequest, DeployResult, DeploySession

DEFAULT_TIMEOUT_S = 900.0
TAIL_LINES = 20


def environment(target: DeployTarget, request: DeployRequest, session: DeploySession) -> dict[str, str]:
    """The job's environment as support/environment lets a child see it (MLflow's client settings included:
    MODEL_URI names the registry), and the model."""
    return {
        **child_environment(session.env, target.pass_env, tracking=True, secrets=session.secrets),
        "MODEL_NAME": request.model_name,
        "MODEL_VERSION": request.version,
        "MODEL_URI": request.model_uri,
        "MLOPS_BOT_DEPLOY_TARGET": target.name,
        "MLOPS_BOT_IDEMPOTENCY_KEY": request.idempotency_key,
        "MLOPS_BOT_DECISION": request.verdict,
    }


def _argv(target: DeployTarget) -> list[str]:
    if not target.cmd:
        raise UsageError(f"deploy target '{target.name}' (command) has no cmd; add cmd: to it in ml.yaml.")
    return ["/bin/sh", "-c", target.cmd] if isinstance(target.cmd, str) else list(target.cmd)


def deploy(target: DeployTarget, request: DeployRequest, session: DeploySession) -> DeployResult:
    """Runs the command to completion; raises StepFailed, with its last output lines, when it fails."""
    argv, step, timeout = _argv(target), f"deploy:{target.name}", target.timeout or DEFAULT_TIMEOUT_S
    launch = Launch(argv, session.root, environment(target, request, session), f"[{step}] ", session.echo,
                    TAIL_LINES)
    try:
        done = processes.run(launch, timeout)
    except OSError as exc:
        raise StepFailed(step, None, f"deploy target '{target.name}': cannot start '{argv[0]}' ({exc.strerror}); "
                         "fix its cmd in ml.yaml.") from None
    if done.code is None:
        raise StepFailed(step, None, f"deploy target '{target.name}' timed out after {timeout:g}s and was "
                         "stopped; raise its timeout in ml.yaml or make it faster.")
    if done.code != 0:
        how = f"was killed by signal {-done.code}" if done.code < 0 else f"exited with {done.code}"
        last = " | ".join(line for line in done.tail[-5:] if line.strip())
        raise StepFailed(step, done.code, f"deploy command {how}; last output: {last or '(none)'}")
    return DeployResult(target.name, target.type, "succeeded",
                        f"command exited 0 for {request.model_name} v{request.version}")
