"""CI mode: the events of a plain command go to the audit log at once, and ml.yaml's `on:` rules handle them
when the command's own work is done. A rule deploying the new champion after `promote` (which deploys it
itself) changes nothing: deploy_all finds the target up to date."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import pytest

from mlops_bot import cli
from mlops_bot.ci.context import read_context
from mlops_bot.events import bus as events
from mlops_bot.flows.actions import run_held_rules
from mlops_bot.flows.compare import compare_registry
from mlops_bot.flows.project import Project
from mlops_bot.flows.promote import promote_flow
from mlops_bot.registry.local.store import LocalRegistry
from tests.helpers.event_projects import CHAMPION_DEPLOYS, audit_lines, write_project
from tests.helpers.projects import deployed
from tests.helpers.receivers import RecordingReceiver as Receiver
from tests.helpers.registries import add_version


def make_run(registry: LocalRegistry, experiment: str, accuracy: float, workdir: Path) -> str:
    run = registry.create_run(registry.get_or_create_experiment(experiment).experiment_id, f"acc-{accuracy}")
    registry.log_batch(run.run_id, metrics={"accuracy": accuracy})
    model = workdir / f"model-{run.run_id}"
    model.mkdir(parents=True)
    (model / "model.txt").write_text(str(accuracy))
    registry.upload_artifacts(run.run_id, model, "model")
    registry.update_run(run.run_id, "FINISHED")
    return run.run_id


def test_promote_then_the_champion_rule_deploys_nothing_twice(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    config = write_project(tmp_path / "p", rules=CHAMPION_DEPLOYS)
    registry = LocalRegistry(config.root / ".mlops-bot")
    run_id = make_run(registry, config.tracking.experiment, 0.9, tmp_path)
    bus = events.Bus(deferred=True)  # CI mode, as cli runs a command
    with events.activate(bus):
        decision = compare_registry(config, registry, run_id)
        promotion, results = promote_flow(config, registry, decision, read_context({}), run_given=True)
        assert promotion.promoted and [r.status for r in results] == ["succeeded"]
        logged = [e["type"] for e in audit_lines(config.root)]
        assert logged == ["decision.made", "model_version.registered", "alias.moved", "deployment.started",
                          "deployment.succeeded"]
        assert "on[0]" not in capsys.readouterr().err  # the rule waits until the command is done
        run_held_rules(bus, Project.of(config, {}))
    assert "on[0] alias.moved (models/demo/versions/1): deploy" in capsys.readouterr().err
    assert deployed(config.root) == ["1"]  # once: promote's own deploy; the rule found it up to date
    assert [e["type"] for e in audit_lines(config.root)] == logged  # and the rule's deploy did nothing at all
    moved = next(e for e in audit_lines(config.root) if e["type"] == "alias.moved")
    assert moved["data"] == {"model": "demo", "alias": "champion", "version": "1", "reason": "promote",
                             "by": getpass.getuser()}  # who moved it: at a terminal, its user
    registry.close()


def test_rollback_records_why_and_redeploys_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_project(tmp_path / "p", rules=CHAMPION_DEPLOYS)
    registry = LocalRegistry(config.root / ".mlops-bot")
    for accuracy in (0.8, 0.9):
        run_id = make_run(registry, config.tracking.experiment, accuracy, tmp_path)
        promote_flow(config, registry, compare_registry(config, registry, run_id), read_context({}), run_given=True)
    registry.close()
    assert cli.main(["-C", str(config.root), "rollback", "--reason", "latency doubled"]) == 0
    assert deployed(config.root) == ["1", "2", "1"]  # v1, v2, then v1 again by the rollback, not by the rule too
    moves = [e["data"] for e in audit_lines(config.root) if e["type"] == "alias.moved"]
    assert moves[-2]["alias"] == "champion" and moves[-2]["version"] == "1" and moves[-2]["previous_version"] == "2"
    assert moves[-2]["reason"].startswith("rollback: latency doubled")
    assert moves[-1] == {"model": "demo", "alias": "previous-champion", "version": "2",
                         "reason": moves[-2]["reason"]}


def test_the_events_command_filters_and_prints_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    config = write_project(tmp_path / "p", rules="")
    for n in range(3):
        events.emit(config, "deployment.succeeded", f"models/demo/versions/{n}", {"model": "demo", "version": str(n)})
    events.emit(config, "alias.moved", "models/demo/versions/2", {"model": "demo", "alias": "champion"})
    events.emit(config, "run.finished", "runs/r1", {"run_id": "r1", "status": "FINISHED"})
    capsys.readouterr()
    assert cli.main(["-C", str(config.root), "events", "--type", "deployment", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert [e["data"]["version"] for e in found] == ["0", "1", "2"]
    assert cli.main(["-C", str(config.root), "events", "--type", "model_version.alias_set", "--json"]) == 0
    assert [e["type"] for e in json.loads(capsys.readouterr().out)] == ["alias.moved"]  # a synonym
    assert cli.main(["-C", str(config.root), "events", "--last", "2"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["TIME", "TYPE", "SUBJECT", "DETAILS"] and len(table) == 3
    assert "run.finished" in table[2] and "status=FINISHED" in table[2]


def test_events_follow_prints_new_events_as_json_lines(tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys
    import threading
    import time

    config = write_project(tmp_path / "p", rules="")
    events.emit(config, "run.started", "runs/before", {"run_id": "before"})
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-m", "mlops_bot", "-C", str(config.root), "events", "--follow", "--json",
                             "--type", "run"], stdout=subprocess.PIPE, env=env, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        deadline = time.monotonic() + 20
        while not lines and time.monotonic() < deadline:
            time.sleep(0.05)
        events.emit(config, "deployment.started", "models/demo/versions/1")  # filtered out by --type run
        events.emit(config, "run.finished", "runs/after", {"run_id": "after"})
        while len(lines) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(10)
    assert [json.loads(line)["subject"] for line in lines[:2]] == ["runs/before", "runs/after"]


def test_a_plain_command_runs_the_rules_when_its_own_work_is_done(tmp_path: Path, receiver: Receiver) -> None:
    import json
    import os
    import subprocess
    import sys

    config = write_project(tmp_path / "p", rules="  - {event: deployment.succeeded, do: [notify]}")
    registry = LocalRegistry(config.root / ".mlops-bot")
    version = add_version(registry, config, tmp_path)
    registry.close()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "MLOPS_BOT_NOTIFY_URL": receiver.url}
    done = subprocess.run([sys.executable, "-m", "mlops_bot", "-C", str(config.root), "deploy", "--version", version],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    (_, body), = receiver.seen
    assert json.loads(body)["event"]["type"] == "deployment.succeeded"
    assert done.stderr.index("v1: succeeded") < done.stderr.index("on[0] deployment.succeeded")


def test_rules_can_be_left_to_the_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MLOPS_BOT_RULES", "off")
    config = write_project(tmp_path / "p", rules=CHAMPION_DEPLOYS)
    registry = LocalRegistry(config.root / ".mlops-bot")
    run_id = make_run(registry, config.tracking.experiment, 0.9, tmp_path)
    bus = events.Bus(deferred=True)
    with events.activate(bus):
        promote_flow(config, registry, compare_registry(config, registry, run_id), read_context({}), run_given=True,
                     deploy=False)
        assert bus.held
        run_held_rules(bus, Project.of(config))
    assert deployed(config.root) == [] and "on[0]" not in capsys.readouterr().err
    assert "alias.moved" in [e["type"] for e in audit_lines(config.root)]  # still recorded
    registry.close()


def test_the_rules_come_from_the_ml_yaml_the_command_was_given(tmp_path: Path, receiver: Receiver,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.helpers.decisions import make_decision, write_decision

    config = write_project(tmp_path / "p", rules="  - {event: report.posted, do: [notify]}")
    config.path.rename(config.root / "other.yaml")
    (config.root / "ml.yaml").write_text("version: 1\nmodel: [a broken default that must not be read\n")
    write_decision(config.root, make_decision(model="demo"))
    for name in ("GITHUB_ACTIONS", "GITLAB_CI", "CI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLOPS_BOT_NOTIFY_URL", receiver.url)
    assert cli.main(["-C", str(config.root), "-c", "other.yaml", "report", "--decision", "decision.json"]) == 0
    (_, body), = receiver.seen
    assert json.loads(body)["event"]["type"] == "report.posted"


def test_rules_that_cannot_be_loaded_are_a_warning_not_silence(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "ml.yaml").write_text("version: 1\nmodel: [broken\n")
    bus = events.Bus(deferred=True)
    with events.activate(bus):
        events.emit(tmp_path, "deployment.failed", "models/demo/versions/1")
        run_held_rules(bus, Project(tmp_path))
    err = capsys.readouterr().err
    assert "the `on:` rules did not run for 1 event(s)" in err and str(tmp_path / "ml.yaml") in err
