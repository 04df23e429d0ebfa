"""The Event record, its schema, and the audit log: rotation, concurrent writers, torn lines, following."""

from __future__ import annotations

import json
import multiprocessing
import threading
from pathlib import Path

import jsonschema

from mlops_bot.events.audit import EventLog
from mlops_bot.events.event import Event, model_subject

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "event.schema.json").read_text())


def test_an_event_round_trips_and_matches_its_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    event = Event("alias.moved", model_subject("iris", 3), {"model": "iris", "version": "3", "alias": "champion"})
    doc = json.loads(event.to_json())
    jsonschema.validate(doc, SCHEMA)
    assert doc["specversion"] == "1.0" and doc["subject"] == "models/iris/versions/3"
    assert Event.from_dict(doc) == event
    assert event.get("alias") == "champion" and event.get("type") == "alias.moved" and event.get("nope") is None
    bad = dict(doc, type="Alias Moved")
    try:
        jsonschema.validate(bad, SCHEMA)
    except jsonschema.ValidationError:
        pass
    else:
        raise AssertionError("a type outside the pattern must not validate")


def test_rotation_keeps_the_newest_files(tmp_path: Path) -> None:
    log = EventLog(tmp_path, max_bytes=2000, keep=3)
    events = [Event("run.started", f"runs/r{n}", {"n": n}) for n in range(60)]
    for event in events:
        log.append(event)
    files = log.files()
    assert [p.name for p in files] == ["audit.jsonl.3", "audit.jsonl.2", "audit.jsonl.1", "audit.jsonl"]
    assert all(p.stat().st_size <= 2000 for p in files)
    kept = [e.data["n"] for e in log.read()]
    assert kept == list(range(60 - len(kept), 60)) and len(kept) < 60  # oldest dropped, order kept


def _writer(directory: str, worker: int, count: int) -> None:
    log = EventLog(Path(directory), max_bytes=20_000, keep=50)
    for n in range(count):
        log.append(Event("step.cached", f"steps/w{worker}", {"worker": worker, "n": n, "pad": "x" * (n % 50)}))


def test_concurrent_writers_lose_and_tear_nothing_across_rotations(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    procs = [context.Process(target=_writer, args=(str(tmp_path), w, 150)) for w in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    log = EventLog(tmp_path, max_bytes=20_000, keep=50)
    assert len(log.files()) > 3  # it did rotate while four processes wrote
    raw = [line for p in log.files() for line in p.read_bytes().splitlines()]
    assert all(json.loads(line) for line in raw)  # no torn or interleaved line
    seen = [(e.data["worker"], e.data["n"]) for e in log.read()]
    assert sorted(seen) == [(w, n) for w in range(4) for n in range(150)]
    for worker in range(4):  # each writer's lines keep their order
        mine = [n for w, n in seen if w == worker]
        assert mine == sorted(mine)


def test_a_torn_last_line_is_skipped_and_does_not_swallow_the_next(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    log.append(Event("run.started", "runs/a"))
    with log.path.open("ab") as handle:
        handle.write(b'{"id": "torn", "type": "run.fin')  # a write cut short by a crash
    log.append(Event("run.finished", "runs/a", id="after"))
    assert [e.type for e in log.read()] == ["run.started", "run.finished"]
    assert "after" in log.ids_in_tail() and "torn" not in log.ids_in_tail()


def test_follow_sees_new_events_across_a_rotation(tmp_path: Path) -> None:
    log = EventLog(tmp_path, max_bytes=1000, keep=5)
    log.append(Event("run.started", "runs/old"))
    _, position = log.snapshot()
    got: list[str] = []
    done = threading.Event()

    def follow() -> None:
        for event in log.follow(position, poll_s=0.02, stop=done.is_set):
            got.append(event.subject)
            if len(got) == 8:
                done.set()

    thread = threading.Thread(target=follow)
    thread.start()
    for n in range(8):
        log.append(Event("run.started", f"runs/new{n}", {"pad": "y" * 150}))
    thread.join(10)
    done.set()
    assert len(log.files()) > 1
    assert got == [f"runs/new{n}" for n in range(8)]
