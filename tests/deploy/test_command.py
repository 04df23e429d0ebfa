"""The command target, with real subprocesses."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mlops_bot.config.model import DeployTarget
from mlops_bot.deploy import command
from mlops_bot.deploy.base import DeployRequest, DeploySession
from mlops_bot.errors import StepFailed

REQUEST = DeployRequest("iris-classifier", "3", "models:/iris-classifier/3", "pass", "ok", "abc",
                        idempotency_key="k3")


def context(root: Path, lines: list[str]) -> DeploySession:
    return DeploySession(root=root, delivery="d1", echo=lines.append, env={"PATH": "/usr/bin:/bin", "KEEP": "1"})


def test_a_command_sees_no_secret_of_the_job(tmp_path: Path) -> None:
    job = {"PATH": "/usr/bin:/bin", "GITHUB_TOKEN": "canary-1", "MLOPS_BOT_NOTIFY_SECRET": "canary-2",
           "HMAC_KEY": "canary-3", "UNDECLARED": "canary-4", "MLFLOW_TRACKING_TOKEN": "for-the-registry"}
    session = DeploySession(root=tmp_path, delivery="d1", echo=[].append, env=job, secrets=frozenset({"HMAC_KEY"}))
    target = DeployTarget("ship", "command", cmd="env > seen.txt", pass_env=("HMAC_*", "GITHUB_*"))
    command.deploy(target, REQUEST, session)
    seen = (tmp_path / "seen.txt").read_text()
    assert "canary" not in seen
    assert "MLFLOW_TRACKING_TOKEN=for-the-registry" in seen  # MODEL_URI names the registry: it may read it


def test_a_shell_command_gets_the_model_in_its_environment(tmp_path: Path) -> None:
    lines: list[str] = []
    script = ('echo "$MODEL_NAME $MODEL_VERSION $MODEL_URI $KEEP" > out.txt; '
              'echo "key=$MLOPS_BOT_IDEMPOTENCY_KEY target=$MLOPS_BOT_DEPLOY_TARGET"')
    target = DeployTarget("ship", "command", cmd=script, pass_env=("KEEP",))
    result = command.deploy(target, REQUEST, context(tmp_path, lines))
    assert result.status == "succeeded"
    assert (tmp_path / "out.txt").read_text() == "iris-classifier 3 models:/iris-classifier/3 1\n"
    assert lines == ["[deploy:ship] key=k3 target=ship"]


def test_an_argument_vector_is_not_interpreted_by_a_shell(tmp_path: Path) -> None:
    lines: list[str] = []
    script = "import os, sys; print(sys.argv[1], os.environ['MODEL_URI'])"
    target = DeployTarget("argv", "command", cmd=(sys.executable, "-c", script, "$MODEL_URI;rm -rf x"))
    command.deploy(target, REQUEST, context(tmp_path, lines))
    assert lines == ["[deploy:argv] $MODEL_URI;rm -rf x models:/iris-classifier/3"]


def test_a_failing_command_reports_its_exit_code_and_last_lines(tmp_path: Path) -> None:
    target = DeployTarget("bad", "command", cmd="echo starting; echo 'kubectl: forbidden' >&2; exit 7")
    with pytest.raises(StepFailed) as caught:
        command.deploy(target, REQUEST, context(tmp_path, []))
    assert caught.value.returncode == 7
    assert "exited with 7" in str(caught.value) and "kubectl: forbidden" in str(caught.value)


def test_a_command_past_its_timeout_is_stopped_with_its_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    target = DeployTarget("slow", "command", cmd=f"sleep 60 & echo $! > {pid_file}; wait", timeout=0.5)
    with pytest.raises(StepFailed, match=r"timed out after 0\.5s"):
        command.deploy(target, REQUEST, context(tmp_path, []))
    child = int(pid_file.read_text())
    assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]


def test_a_missing_program_fails_clearly(tmp_path: Path) -> None:
    target = DeployTarget("none", "command", cmd=("no-such-program-xyz",))
    with pytest.raises(StepFailed, match="cannot start 'no-such-program-xyz'"):
        command.deploy(target, REQUEST, context(tmp_path, []))
