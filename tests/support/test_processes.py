"""One way to run the user's commands (support/processes.py), for pipeline steps and the command deploy
target alike: a timeout stops the whole process group, grandchildren included, even one that ignores
SIGTERM (SIGKILL follows after the grace, also when the child itself exited at once)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_bot.config.model import DeployTarget, Step
from mlops_bot.deploy import command
from mlops_bot.deploy.base import DeployRequest, DeploySession
from mlops_bot.errors import StepFailed
from mlops_bot.pipeline.runner import run_step
from mlops_bot.support import processes
from mlops_bot.support.processes import Launch

REQUEST = DeployRequest("iris", "3", "models:/iris/3", idempotency_key="k")
# The grandchild writes its own pid, then sleeps; the child waits for it.
PLAIN = "sh -c 'echo $$ > grandchild.pid; exec sleep 60' & wait"
STUBBORN = "sh -c 'trap \"\" TERM; echo $$ > grandchild.pid; exec sleep 60' & wait"


def alive(pid: int) -> bool:
    """Running, that is: a zombie waiting for its reaper counts as gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def gone_soon(pid: int, limit: float = 5.0) -> bool:
    end = time.monotonic() + limit
    while alive(pid):
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


def pipeline_step(root: Path, cmd: str) -> None:
    run_step(Step("slow", cmd, timeout=1), root, dict(os.environ), "step 1/1 slow", lambda _: None)


def deploy_command(root: Path, cmd: str) -> None:
    session = DeploySession(root=root, delivery="d", echo=lambda _: None, env=dict(os.environ))
    command.deploy(DeployTarget("slow", "command", cmd=cmd, timeout=1), REQUEST, session)


CALLERS: dict[str, Callable[[Path, str], None]] = {"pipeline step": pipeline_step, "deploy command": deploy_command}


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("cmd", [PLAIN, STUBBORN], ids=["plain", "ignores-sigterm"])
@pytest.mark.slow
def test_a_timeout_kills_the_grandchildren_of_both_callers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           caller: str, cmd: str) -> None:
    monkeypatch.setattr(processes, "TERM_GRACE_S", 0.5)
    with pytest.raises(StepFailed, match="timed out after 1s"):
        CALLERS[caller](tmp_path, cmd)
    grandchild = int((tmp_path / "grandchild.pid").read_text())
    assert gone_soon(grandchild), f"grandchild {grandchild} survived the timeout"


def test_output_is_pumped_with_its_prefix_and_the_tail_kept(tmp_path: Path) -> None:
    lines: list[str] = []
    script = "import sys\nfor i in range(30): print(i)\nsys.exit(3)"
    launch = Launch([sys.executable, "-c", script], tmp_path, dict(os.environ), "[x] ",
                    lines.append, tail_lines=5)
    done = processes.run(launch, timeout=30)
    assert done.code == 3 and done.tail == ["25", "26", "27", "28", "29"]
    assert lines[0] == "[x] 0" and len(lines) == 30


def test_a_silent_child_gets_heartbeats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(processes, "HEARTBEAT_S", 0.1)
    beats: list[float] = []
    done = processes.run(Launch(["sleep", "0.5"], tmp_path, dict(os.environ), "", print), None, beats.append)
    assert done.code == 0 and len(beats) >= 2 and beats == sorted(beats)
