"""A kill at any point of promote/deploy, then a re-run, ends in the state of an uninterrupted run.

Each kill is shown to land mid-operation. The bot writes each step of a promotion to its audit log as it goes
(decision.made, model_version.registered, alias.moved, deployment.started/succeeded per target). A round waits
until the attempt has written its k-th event, lets it go on for a moment, freezes the whole process group
(SIGSTOP), reads what the attempt had written by then, and only then kills it (SIGKILL). The round fails unless
the attempt had started (it wrote at least one event, each the same as an uninterrupted attempt writes at that
point) and had not finished (its last event not written, the process still there and ended by the kill).
The moment between registering a version and moving the alias is too short to hit from outside: for that kill
point the test holds the promotion lock itself, as another bot would, so the attempt registers and then waits.

Not covered here: a kill while the attempt holds the promotion lock (between taking it and moving the alias).
The re-run then waits for the lock to expire (registry/lock.py, TTL_S = 120 s), which no bounded test can wait
for (and the lock would hold up the next promotion too); when a round freezes the bot there, it lets it go on
until it released the lock, and kills it then. That the lock expires is tested in test_race.py.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlops_bot.config.model import Config
from mlops_bot.registry import open_registry, tags
from mlops_bot.registry.base import Registry
from tests.helpers.registries import make_run

SLOW_DEPLOY = """\
  - name: first
    type: command
    cmd: "sleep 0.2 && echo $MODEL_VERSION >> first.txt"
  - name: second
    type: command
    cmd: "sleep 0.2 && echo $MODEL_VERSION >> second.txt"
"""
ROUNDS = 7  # each kills both promotions of the history once; together they aim after every event but the last
AUDIT = Path(".mlops-bot", "events", "audit.jsonl")  # the audit log of the project's bot
STORE = Path(".mlops-bot", "registry.db")  # the embedded registry
INSIDE_THE_DEPLOY_COMMAND = 0.1  # how long after deployment.started a kill may land (the command sleeps 0.2 s)
TIMEOUT = 60.0
TEST_OWNER = "kill-test"


def labels(root: Path) -> list[str]:
    """The audit log as `type:alias` / `type:target` labels, complete lines only (the bot may be writing)."""
    try:
        text = (root / AUDIT).read_text()
    except FileNotFoundError:
        return []
    found = []
    for line in text.split("\n")[:-1]:
        if line.strip():
            event = json.loads(line)
            detail = event["data"].get("alias") or event["data"].get("target")
            found.append(f"{event['type']}:{detail}" if detail else event["type"])
    return found


def holds_the_promotion_lock(root: Path) -> bool:
    """Whether a bot holds the promotion lock of the embedded registry (read-only: the bot may be frozen)."""
    with contextlib.closing(sqlite3.connect(f"file:{root / STORE}?mode=ro", uri=True, timeout=5)) as db:
        query = "SELECT count(*) FROM locks WHERE name LIKE 'promote.%' AND owner != ?"
        return int(db.execute(query, (TEST_OWNER,)).fetchone()[0]) > 0


@contextlib.contextmanager
def another_bot_promoting(config: Config) -> Iterator[None]:
    """The promotion lock held by the test, as another bot would hold it: an attempt registers its version, then
    waits for the lock, so a kill lands between the two (the moment is otherwise too short to hit)."""
    registry = open_registry("local", config.root)
    name = f"promote.{config.model.name}"  # registry/lock.py's name of it
    assert registry.try_lock(name, TEST_OWNER, int(TIMEOUT * 1000)) == TEST_OWNER
    try:
        yield
    finally:
        registry.unlock(name, TEST_OWNER)
        registry.close()


def start(config: Config, run_id: str, log: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "mlops_bot", "-C", str(config.root), "promote", "--run", run_id]
    with log.open("ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=out, start_new_session=True)


def promote(config: Config, run_id: str, log: Path) -> tuple[int, list[str]]:
    """An attempt left alone: its exit code and the events it wrote."""
    before = len(labels(config.root))
    code = start(config, run_id, log).wait(timeout=TIMEOUT)
    return code, labels(config.root)[before:]


@dataclass(frozen=True)
class Landing:
    """Where a kill landed: the events the attempt had written, out of those of an uninterrupted attempt."""

    written: tuple[str, ...]
    total: int

    @property
    def phase(self) -> str:
        return f"after {self.written[-1]} ({len(self.written)}/{self.total})"


def promote_killed(config: Config, run_id: str, log: Path, full: list[str], after: int, delay: float) -> Landing:
    """Starts an attempt, freezes it once it wrote `after` events and `delay` more seconds passed, checks that it
    is mid-operation, and kills it with its deploy commands (no chance to clean up)."""
    root = config.root
    before = len(labels(root))
    proc = start(config, run_id, log)
    deadline = time.monotonic() + TIMEOUT
    try:
        while len(written := labels(root)[before:]) < after:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the attempt ended ({proc.poll()}) or stalled before writing event {after} of "
                            f"{full}; it wrote {written}:\n{log.read_text()}")
            time.sleep(0.0005)
        time.sleep(delay)
        while True:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGSTOP)
            alive = proc.poll() is None  # a stopped process is still there; one that exited is not
            written = labels(root)[before:]
            if not (alive and holds_the_promotion_lock(root)) or time.monotonic() > deadline:
                break
            # Frozen inside the promotion lock (see the module's docstring): a moment later, then.
            os.killpg(proc.pid, signal.SIGCONT)
            time.sleep(0.0002)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    landing = Landing(tuple(written), len(full))
    assert alive and proc.returncode == -signal.SIGKILL, \
        f"the attempt had finished (exit {proc.returncode}) before the kill; it wrote {written}"
    assert 1 <= len(written) < len(full) and list(written) == full[:len(written)], \
        f"the kill did not land mid-operation: the attempt wrote {written}; an uninterrupted one writes {full}"
    return landing


def state(registry: Registry, config: Config) -> dict[str, object]:
    keep = (tags.VERDICT, tags.COMPARED_WITH, tags.REPLACED_BY, tags.deploy_status("first"),
            tags.deploy_status("second"))
    versions = {v.version: (v.aliases, {k: v.tags.get(k) for k in keep}) for v in
                registry.search_model_versions(config.model.name)}
    last = {name: (config.root / f"{name}.txt").read_text().split()[-1:] for name in ("first", "second")
            if (config.root / f"{name}.txt").exists()}
    return {"versions": versions, "last_deployed": last}


Kill = Callable[[Config, str, Path, int], Landing]  # (config, run, log, which promotion of the history)


def history(config: Config, tmp_path: Path, kill: Kill | None, full: list[list[str]]) -> dict[str, object]:
    """Promotes a 0.8 run, then a 0.9 run; with `kill`, each promotion is killed once, then run again. `full`:
    the events of each uninterrupted promotion (filled in when empty)."""
    registry = open_registry("local", config.root)
    runs = [make_run(registry, config, accuracy, tmp_path / config.root.name) for accuracy in (0.8, 0.9)]
    log = config.root / "bot.log"
    for number, run_id in enumerate(runs):
        if kill is not None:
            kill(config, run_id, log, number)
        code, written = promote(config, run_id, log)
        assert code == 0, log.read_text()
        if kill is None:
            full.append(written)
    result = state(registry, config)
    registry.close()
    return result


@pytest.mark.slow  # about 30 real promotions, killed and run again
def test_kill_anywhere_then_rerun_converges(project: Callable[..., Config], tmp_path: Path) -> None:
    full: list[list[str]] = []
    expected = history(project(deploy=SLOW_DEPLOY, name="calm"), tmp_path, None, full)
    assert expected["last_deployed"] == {"first": ["2"], "second": ["2"]}
    # A kill point: how many events the attempt wrote, every one but the last (the attempt would be done).
    points = [list(range(1, len(events))) for events in full]
    assert max(len(p) for p in points) == ROUNDS, full
    chooser = random.Random(20261121)
    landings: collections.Counter[str] = collections.Counter()

    def kill_at(round_: int) -> Kill:
        def kill(config: Config, run_id: str, log: Path, number: int) -> Landing:
            events = full[number]
            after = points[number][round_ % len(points[number])]
            window = INSIDE_THE_DEPLOY_COMMAND if events[after - 1].startswith("deployment.started") else 0.0
            waits = another_bot_promoting(config) if events[after - 1] == "model_version.registered" \
                else contextlib.nullcontext()
            with waits:
                landing = promote_killed(config, run_id, log, events, after, chooser.uniform(0, window))
            landings[landing.phase] += 1
            return landing

        return kill

    for i in range(ROUNDS):
        got = history(project(deploy=SLOW_DEPLOY, name=f"killed-{i}"), tmp_path, kill_at(i), full)
        assert got == expected, f"round {i}: kills landed {dict(landings)}"
    print("kills per phase:", dict(sorted(landings.items())))
    assert sum(landings.values()) == 2 * ROUNDS
    # Where the kills can be steered (the other phases are as the timing falls): between registering and moving
    # the alias, and inside each deploy command.
    reached = {phase.split(" (")[0] for phase in landings}
    assert {"after model_version.registered", "after deployment.started:first",
            "after deployment.started:second"} <= reached, landings


@pytest.fixture(autouse=True)
def _no_mlflow_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
