"""`mlops-bot watch --drift-every`: the drift check runs beside the polling, on its own interval, for a bounded
number of rounds; its events are spooled and meet the `on:` rules (a notify rule here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_bot import cli
from mlops_bot.events.audit import EventLog, events_dir
from mlops_bot.events.event import Event
from mlops_bot.flows.watch import Schedule, _loop
from mlops_bot.registry import open_registry
from tests.helpers.drift_project import table, train_champion, write_project
from tests.helpers.receivers import RecordingReceiver


def test_watch_checks_for_drift_on_an_interval_and_the_rules_fire(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_project(tmp_path / "p", "demo")
    (root / "ml.yaml").write_text((root / "ml.yaml").read_text() + "on:\n  - {event: drift.detected, do: [notify]}\n")
    registry = open_registry("local", root)
    try:
        train_champion(root, registry)
    finally:
        registry.close()
    (root / "data" / "current.csv").write_text(table(200, shift=1.5))
    receiver = RecordingReceiver()
    monkeypatch.setenv("MLOPS_BOT_NOTIFY_URL", receiver.url)
    try:
        assert cli.main(["-C", str(root), "watch", "--interval", "0.05", "--drift-every", "100", "--cycles", "3"]) == 0
    finally:
        receiver.close()
    drift = [e for e in EventLog(events_dir(root)).snapshot()[0] if e.type == "drift.detected"]
    assert len(drift) == 1  # at the start; the next is due in 100 s, after the 3 rounds
    notified = [json.loads(body)["event"]["id"] for _, body in receiver.seen]
    assert notified == [e.id for e in drift]


def test_watch_once_with_drift_every_checks_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_project(tmp_path / "p", "demo")
    registry = open_registry("local", root)
    try:
        train_champion(root, registry)
    finally:
        registry.close()
    (root / "data" / "current.csv").write_text(table(200, offset=0.25))
    capsys.readouterr()
    assert cli.main(["-C", str(root), "watch", "--once", "--drift-every", "60", "--json"]) == 0
    assert [e["type"] for e in json.loads(capsys.readouterr().out)] == ["drift.checked"]


def test_drift_every_needs_a_monitor_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_project(tmp_path / "p", "demo")
    text = (root / "ml.yaml").read_text()
    (root / "ml.yaml").write_text(text[:text.index("monitor:")])
    assert cli.main(["-C", str(root), "watch", "--once", "--drift-every", "5"]) == 2
    assert "--drift-every needs a `monitor:` section" in capsys.readouterr().err


class FakeWatcher:
    """Records when the loop polled and checked, on a clock only the loop's sleeps move."""

    def __init__(self) -> None:
        self.now, self.calls = 0.0, list[tuple[str, float]]()

    def poll(self) -> list[Event]:
        self.calls.append(("poll", self.now))
        return []

    def check_drift(self) -> list[Event]:
        self.calls.append(("drift", self.now))
        self.now += 0.3  # a check takes time
        return []

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_the_loop_keeps_both_intervals_for_a_bounded_number_of_rounds() -> None:
    watcher = FakeWatcher()
    _loop(watcher, Schedule(1.0, 2.5, cycles=6, clock=lambda: watcher.now, sleep=watcher.sleep))  # type: ignore[arg-type]
    assert [(what, round(at, 2)) for what, at in watcher.calls] == [
        ("poll", 0.0), ("drift", 0.0), ("poll", 1.0), ("poll", 2.0), ("drift", 2.5), ("poll", 3.0), ("poll", 4.0)]
