from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from mlops_bot.config.model import Step
from mlops_bot.errors import StepFailed
from mlops_bot.pipeline.runner import run_step

PY = sys.executable


def run(step: Step, root: Path, env: dict[str, str] | None = None) -> list[str]:
    lines: list[str] = []
    run_step(step, root, {**os.environ, **(env or {})}, f"step 1/1 {step.name}", lines.append)
    return lines


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (not reaped by its vanished parent yet) counts as dead
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def wait_dead(pid: int, limit: float = 10.0) -> bool:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_output_is_prefixed_and_env_and_cwd_are_the_steps(tmp_path: Path) -> None:
    step = Step("train", "echo out; echo err >&2; echo $GREETING; pwd")
    assert run(step, tmp_path, {"GREETING": "hi"}) == ["[train] out", "[train] err", "[train] hi",
                                                       f"[train] {tmp_path}"]


def test_argv_commands_never_go_through_a_shell(tmp_path: Path) -> None:
    step = Step("s", ("echo", "$(touch pwned)", ";", "rm", "-rf", "x"))
    assert run(step, tmp_path) == ["[s] $(touch pwned) ; rm -rf x"]
    assert not (tmp_path / "pwned").exists()


def test_failure_carries_exit_code_and_last_lines(tmp_path: Path) -> None:
    step = Step("train", (PY, "-c", "import sys\nfor i in range(50): print('line', i)\nsys.exit(7)"))
    with pytest.raises(StepFailed) as info:
        run(step, tmp_path)
    assert info.value.returncode == 7 and info.value.step == "train"
    assert "failed with exit code 7" in str(info.value)
    assert info.value.tail.splitlines() == [f"line {i}" for i in range(30, 50)]


def test_argv_command_not_found(tmp_path: Path) -> None:
    with pytest.raises(StepFailed, match=r"command 'no-such-tool-xyz' not found") as info:
        run(Step("s", ("no-such-tool-xyz", "--x")), tmp_path)
    assert info.value.returncode is None


def test_shell_command_not_found(tmp_path: Path) -> None:
    with pytest.raises(StepFailed, match=r"exit code 127 \(command not found\)") as info:
        run(Step("s", "no-such-tool-xyz --x"), tmp_path)
    assert "not found" in info.value.tail


GRANDCHILD = "sleep 60 & echo $! > child.pid; echo started; wait"


@pytest.mark.slow  # waits out the step's 1 s timeout
def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    with pytest.raises(StepFailed, match=r"timed out after 1s") as info:
        run(Step("slow", GRANDCHILD, timeout=1), tmp_path)
    assert info.value.returncode is None and info.value.tail == "started"
    assert wait_dead(int((tmp_path / "child.pid").read_text()))


def test_ctrl_c_kills_the_process_group_and_propagates(tmp_path: Path) -> None:
    def interrupt_when_started() -> None:
        while not (tmp_path / "child.pid").exists():
            time.sleep(0.02)
        time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_when_started, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        run(Step("slow", GRANDCHILD), tmp_path)
    assert wait_dead(int((tmp_path / "child.pid").read_text()))


@pytest.mark.slow  # waits out READER_JOIN_S (2 s)
def test_a_background_leftover_does_not_hang_the_runner(tmp_path: Path) -> None:
    # The step exits but leaves a child holding its output pipe open.
    lines = run(Step("s", "sleep 60 & echo $! > child.pid; echo bye"), tmp_path)
    assert lines == ["[s] bye"]
    assert wait_dead(int((tmp_path / "child.pid").read_text()))
