"""`on:` rules: matching (types, synonyms, where), the actions on the embedded registry, the Bus's order of
handling, and emit() never failing the flow that calls it."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from mlops_bot.config import load_config
from mlops_bot.config.model import Rule
from mlops_bot.deploy import deploy_all
from mlops_bot.errors import BotError
from mlops_bot.events.audit import EventLog, events_dir
from mlops_bot.events.bus import Bus, activate, emit
from mlops_bot.events.event import Event
from mlops_bot.events.rules import matches, plan
from mlops_bot.flows.actions import rule_handler
from mlops_bot.registry import tags
from mlops_bot.registry.local.store import LocalRegistry
from tests.helpers.event_projects import CHAMPION_DEPLOYS, write_project
from tests.helpers.projects import deployed
from tests.helpers.receivers import RecordingReceiver as Receiver
from tests.helpers.registries import add_version
from tests.servers.github_server import GitHubServer


def alias_set(version: str, alias: str = "champion", model: str = "demo", source: str = "mlflow") -> Event:
    return Event("model_version.alias_set", f"models/{model}/versions/{version}",
                 {"model": model, "alias": alias, "version": version}, source=source)


def test_matching_by_type_synonym_and_where() -> None:
    rule = Rule("model_version.alias_set", {"alias": "champion"}, ("deploy",))
    assert matches(rule, alias_set("3"))
    assert matches(rule, Event("alias.moved", "models/demo/versions/3", {"alias": "champion", "version": "3"}))
    assert not matches(rule, alias_set("3", alias="staging"))
    assert not matches(rule, Event("model_version.created", "models/demo/versions/3", {"alias": "champion"}))
    assert matches(Rule("model_version.registered", {}, ("gate",)), Event("model_version.created", "m"))
    merged = Rule("github.pull_request", {"merged": "true", "source": "github"}, ("retrain",))  # config/build writes so
    assert matches(merged, Event("github.pull_request", "r", {"merged": True}, source="github"))
    assert not matches(merged, Event("github.pull_request", "r", {"merged": False}, source="github"))
    rules = [Rule("model_version.alias_set", {}, ("gate", "deploy")), Rule("alias.moved", {}, ("notify",))]
    assert [(s.rule, s.action, s.rule_end) for s in plan(rules, alias_set("1"))] == [
        (0, "gate", 2), (0, "deploy", 2), (1, "notify", 3)]


def test_deploy_runs_once_and_never_for_a_stale_alias_event(tmp_path: Path) -> None:
    config = write_project(tmp_path / "p")
    registry = LocalRegistry(config.root / ".mlops-bot")
    one, two = add_version(registry, config, tmp_path), add_version(registry, config, tmp_path)
    registry.set_alias("demo", "champion", two)
    handler = rule_handler(config, {})
    handler(alias_set(two))
    handler(alias_set(two))  # a second delivery of the same fact
    handler(alias_set(one))  # late: the alias has moved on since
    handler(alias_set(two, model="someone-else"))
    assert deployed(config.root) == [two]
    registry.close()


def test_a_closed_gate_stops_its_rule_only(tmp_path: Path, receiver: Receiver) -> None:
    rules = ("  - {event: model_version.alias_set, do: [gate, deploy]}\n"
             "  - {event: model_version.alias_set, do: [notify]}")
    config = write_project(tmp_path / "p", rules=rules)
    registry = LocalRegistry(config.root / ".mlops-bot")
    version = add_version(registry, config, tmp_path)
    registry.set_alias("demo", "champion", version)
    registry.set_model_version_tag("demo", version, tags.ROLLED_BACK, "broke prod")
    rule_handler(config, {"MLOPS_BOT_NOTIFY_URL": receiver.url})(alias_set(version))
    assert deployed(config.root) == []  # the gate was closed: no deploy
    assert len(receiver.seen) == 1  # the other rule still ran
    registry.close()


def test_notify_posts_the_signed_event(tmp_path: Path, receiver: Receiver) -> None:
    config = write_project(tmp_path / "p", rules="  - {event: deployment.failed, do: [notify]}")
    event = Event("deployment.failed", "models/demo/versions/2", {"model": "demo", "version": "2", "target": "x"})
    secret = "notify-secret-1234"
    rule_handler(config, {"MLOPS_BOT_NOTIFY_URL": receiver.url, "MLOPS_BOT_NOTIFY_SECRET": secret})(event)
    (headers, body), = receiver.seen
    assert headers["x-mlops-bot-signature"] == "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["x-mlops-bot-delivery"] == headers["idempotency-key"] == event.id
    doc = json.loads(body)
    assert doc["delivery_id"] == event.id and doc["event"]["type"] == "deployment.failed"


def test_retrain_dispatches_the_workflow(tmp_path: Path) -> None:
    rule = "  - {event: model_version.tag_set, where: {key: drift}, do: [retrain]}"
    config = write_project(tmp_path / "p", rules=rule)
    github = GitHubServer("o/r").start()
    try:
        github.add_account("ghs_token_for_dispatch_0001", "bot[bot]", kind="installation")
        env = {"MLOPS_BOT_FORGE": "github", "GITHUB_REPOSITORY": "o/r", "GITHUB_API_URL": github.api_url,
               "GITHUB_TOKEN": "ghs_token_for_dispatch_0001", "MLOPS_BOT_RETRAIN_WORKFLOW": "train.yml",
               "MLOPS_BOT_WRITE_INTERVAL": "0"}
        handler = rule_handler(config, env)
        handler(Event("model_version.tag_set", "models/demo/versions/1", {"model": "demo", "key": "other"}))
        handler(Event("model_version.tag_set", "models/demo/versions/1", {"model": "demo", "key": "drift"}))
        assert github.dispatches == [{"workflow": "train.yml", "ref": "main", "inputs": {}}]
        assert github.violations == []
    finally:
        github.stop()


def test_the_bus_handles_caused_events_after_their_cause_and_stops_loops(tmp_path: Path) -> None:
    seen: list[str] = []
    bus = Bus(max_depth=3)

    def handler(event: Event) -> None:
        seen.append(f"start {event.subject}")
        emit(tmp_path, "loop.again", f"{event.subject}+")
        seen.append(f"end {event.subject}")

    bus.subscribe(handler)
    with activate(bus):
        emit(tmp_path, "loop.start", "e")
    assert seen == ["start e", "end e", "start e+", "end e+", "start e++", "end e++", "start e+++", "end e+++"]
    logged = EventLog(events_dir(tmp_path)).read()
    assert len(list(logged)) == 5  # every event is logged, the one past the depth too


def test_with_no_bus_active_an_emit_only_appends_to_the_audit_log(tmp_path: Path) -> None:
    config = write_project(tmp_path / "p", rules=CHAMPION_DEPLOYS)
    event = emit(config, "alias.moved", "models/demo/versions/1", {"model": "demo", "alias": "champion",
                                                                   "version": "1", "absent": None})
    assert [e.id for e in EventLog(events_dir(config.root)).read()] == [event.id]
    assert event.data == {"model": "demo", "alias": "champion", "version": "1"}
    assert deployed(config.root) == []  # no rule ran: nobody activated a Bus


def test_a_handler_bug_is_not_swallowed(tmp_path: Path) -> None:
    def broken(event: Event) -> None:
        raise KeyError("a bug")

    with activate(Bus([broken])), pytest.raises(KeyError):
        emit(tmp_path, "run.started", "runs/x")


def test_emit_never_fails_the_calling_flow(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_project(tmp_path / "p", rules=CHAMPION_DEPLOYS)
    registry = LocalRegistry(config.root / ".mlops-bot")
    version = add_version(registry, config, tmp_path)
    (config.root / ".mlops-bot" / "events").write_text("a file where the event directory should be")
    seen: list[str] = []
    with activate(Bus([lambda event: seen.append(event.type)])):
        assert emit(config, "run.started", "runs/x").type == "run.started"
        results = deploy_all(config, registry, version)
    assert seen == ["run.started", "deployment.started", "deployment.succeeded"]  # handlers still hear them
    assert [r.status for r in results] == ["succeeded"] and deployed(config.root) == [version]
    assert "event deployment.started not recorded" in capsys.readouterr().err
    registry.close()


def test_an_unknown_action_is_an_error_of_its_rule(tmp_path: Path) -> None:
    from mlops_bot.events.rules import PlannedAction, perform
    from mlops_bot.flows.actions import ProjectActions
    from mlops_bot.flows.project import Project

    runner = ProjectActions(Project.of(write_project(tmp_path / "p"), {}))
    with pytest.raises(BotError, match="unknown `on:` action 'dance'"):
        perform([PlannedAction(0, "dance", 1)], 0, alias_set("1"), runner)


def test_a_rule_deploy_that_fails_is_retried_and_still_tells_its_failure(tmp_path: Path, receiver: Receiver) -> None:
    from mlops_bot.service.spool import Spool
    from mlops_bot.service.workers import EventRunner

    rules = CHAMPION_DEPLOYS + "\n  - {event: deployment.failed, do: [notify]}"
    config = write_project(tmp_path / "p", rules=rules)
    (config.root / "ml.yaml").write_text((config.root / "ml.yaml").read_text().replace(
        "echo $MODEL_VERSION >> deployed.txt", "exit 7"))
    config = load_config(config.root / "ml.yaml", env={})
    registry = LocalRegistry(config.root / ".mlops-bot")
    version = add_version(registry, config, tmp_path)
    registry.set_alias("demo", "champion", version)
    registry.close()
    log = EventLog(config.root / ".mlops-bot" / "events")
    handler = rule_handler(config, {"MLOPS_BOT_NOTIFY_URL": receiver.url})
    bus = Bus([handler])
    spool = Spool(tmp_path / "spool.db")
    spool.insert([alias_set(version)])
    with activate(bus):
        retry = EventRunner(bus, handler, log, spool, set()).run(spool.pending())
    assert [(r.attempts, r.done) for r in retry] == [(1, 0)]  # the deploy step is tried again later
    assert spool.counts() == {"pending": 1, "handled": 0, "failed": 0}
    (_, body), = receiver.seen
    assert json.loads(body)["event"]["type"] == "deployment.failed"
    spool.close()
