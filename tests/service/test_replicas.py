"""`serve` and `watch` replicas (real subprocesses) sharing one spool on a real PostgreSQL server: a delivery sent
to two replicas at the same moment is accepted once; a replica killed with -9 mid-event has its event taken over
by another when the lease expires, resumed at the action that was running; two `watch` replicas polling the same
registry handle each change once; a PostgreSQL that stops answers 503 (never 202) and a start against one that
refuses connections ends in exit 3 naming the redacted URL."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlops_bot.registry.local.store import LocalRegistry
from tests.helpers import postgres
from tests.helpers.event_projects import audit_lines, write_project
from tests.helpers.postgres import CountingReceiver
from tests.helpers.registries import add_version
from tests.helpers.serve import ROOT, Served
from tests.helpers.webhooks import SECRETS_ENV, github_fixture, github_signed, mlflow_request
from tests.servers.mlflow_server import free_port

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
NOTIFIED = "  - {event: model_version.tag_set, do: [notify]}"
TWICE = "  - {event: model_version.tag_set, do: [notify, notify]}"


@pytest.fixture
def receiver() -> Iterator[CountingReceiver]:
    made = CountingReceiver()
    yield made
    made.close()


def replica_env(url: str, receiver: CountingReceiver, lease: float = 30) -> dict[str, str]:
    return {"MLOPS_BOT_SPOOL_URL": url, "MLOPS_BOT_NOTIFY_URL": receiver.url, "MLOPS_BOT_SPOOL_LEASE_S": str(lease)}


def delivery(model: str = "demo", value: int = 0) -> tuple[str, bytes, dict[str, str]]:
    key = str(uuid.uuid4())
    body, headers = mlflow_request({"name": model, "version": "1", "key": "note", "value": str(value)},
                                   "model_version_tag", "set", delivery=key)
    return f"mlflow-{key}", body, headers


def wait_for(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def rows(server: postgres.PostgresServer, url: str, spool: str = "serve") -> list[tuple[Any, ...]]:
    return server.sql(f"SELECT id, state, done, attempts FROM mlops_bot_events WHERE spool = '{spool}' ORDER BY seq",
                      url.rsplit("/", 1)[1])


def race(replicas: list[Served], body: bytes, *headers: dict[str, str], source: str = "mlflow") -> list[int]:
    """One delivery posted to each replica at the same moment (headers[i] to replica i, or the same to all);
    the statuses, sorted."""
    statuses = [0] * len(replicas)
    barrier = threading.Barrier(len(replicas))

    def post(i: int) -> None:
        barrier.wait(10)
        statuses[i] = replicas[i].post(f"/webhooks/{source}", body, headers[i % len(headers)]).status_code

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(replicas))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return sorted(statuses)


def test_a_github_replay_sent_to_two_replicas_at_once_under_two_ids_is_accepted_once(
        tmp_path: Path, serve: Any, spool_url: str, receiver: CountingReceiver) -> None:
    config = write_project(tmp_path / "p", rules=NOTIFIED)
    env = replica_env(spool_url, receiver)
    replicas: list[Served] = [serve(config.root, env=env), serve(config.root, env=env)]
    fixture = json.loads(github_fixture("pull_request-opened.payload.json"))
    for n in range(10):
        fixture["pull_request"]["updated_at"] = f"2025-01-01T00:00:{n:02d}Z"  # a new event each round
        body, headers = github_signed("pull_request", json.dumps(fixture).encode())
        fresh_id = {**headers, "X-GitHub-Delivery": str(uuid.uuid4())}  # the replay: same body, another id
        assert race(replicas, body, headers, fresh_id, source="github") == [202, 409]
    assert replicas[0].wait_idle()["spool"] == {"pending": 0, "handled": 10, "failed": 0}
    assert [r.stop() for r in replicas] == [0, 0]


def test_one_delivery_sent_to_two_replicas_at_once_is_accepted_once_and_handled_once(
        tmp_path: Path, serve: Any, spool_url: str, receiver: CountingReceiver) -> None:
    config = write_project(tmp_path / "p", rules=NOTIFIED)
    env = replica_env(spool_url, receiver)
    replicas: list[Served] = [serve(config.root, env=env), serve(config.root, env=env)]
    answers = [race(replicas, *delivery(value=n)[1:]) for n in range(25)]
    assert answers == [[202, 409]] * 25
    assert wait_for(lambda: len(receiver.posts) >= 25, 30)
    assert replicas[0].wait_idle()["spool"] == {"pending": 0, "handled": 25, "failed": 0}
    assert sorted(Counter(receiver.ids()).values()) == [1] * 25
    assert [p[2] for p in receiver.posts] == list(range(25))  # one model: in the order accepted
    logged = Counter(e["id"] for e in audit_lines(config.root) if e["source"] == "mlflow")
    assert sorted(logged.values()) == [1] * 25
    assert all(r.process.poll() is None for r in replicas)  # one checkout, two replicas: no exclusive lock
    assert [r.stop() for r in replicas] == [0, 0]


def test_a_replica_killed_mid_event_has_it_taken_over_at_the_action_that_was_running(
        tmp_path: Path, serve: Any, spool_url: str, receiver: CountingReceiver,
        postgres_server: postgres.PostgresServer) -> None:
    config = write_project(tmp_path / "p", rules=TWICE)
    env = replica_env(spool_url, receiver, lease=2)
    first = serve(config.root, env=env)
    receiver.hold(2)  # the event's second action hangs: the replica is mid-event
    event_id, body, headers = delivery()
    assert first.post("/webhooks/mlflow", body, headers).status_code == 202
    assert receiver.holding.wait(30)
    assert rows(postgres_server, spool_url) == [(event_id, "pending", 1, 0)]  # action 0 done, recorded
    first.kill()  # SIGKILL: no release, no more renewals
    receiver.release()
    second = serve(config.root, env=env)
    assert wait_for(lambda: rows(postgres_server, spool_url)[0][1] == "handled", 30)
    assert receiver.ids() == [event_id] * 3  # action 0 once; action 1 cut by the kill, then again: not action 0
    assert rows(postgres_server, spool_url) == [(event_id, "handled", 1, 0)]
    assert [e["id"] for e in audit_lines(config.root)].count(event_id) == 1  # the audit line not written again
    assert second.stop() == 0


def test_two_watch_replicas_polling_one_registry_handle_each_change_once(
        tmp_path: Path, spool_url: str, receiver: CountingReceiver, postgres_server: postgres.PostgresServer) -> None:
    rules = ("  - {event: model_version.created, do: [notify]}\n"
             "  - {event: model_version.alias_set, do: [notify]}")
    config = write_project(tmp_path / "p", rules=rules)
    env = {**replica_env(spool_url, receiver), "PYTHONPATH": str(ROOT)}

    def watch_once() -> subprocess.Popen[bytes]:
        import os

        return subprocess.Popen([sys.executable, "-m", "mlops_bot", "-C", str(config.root), "watch", "--once"],
                                env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    assert watch_once().wait(60) == 0  # the first poll sets the (shared) cursor
    registry = LocalRegistry(config.root / ".mlops-bot")
    versions = [add_version(registry, config, tmp_path / f"w{n}") for n in range(3)]
    registry.set_alias("demo", "champion", versions[-1])
    registry.close()
    for _ in range(2):  # twice: the second round finds nothing new
        both = [watch_once(), watch_once()]
        outs = [p.communicate(timeout=120)[1].decode() for p in both]
        assert [p.returncode for p in both] == [0, 0], outs
        assert "another `mlops-bot watch`" not in "".join(outs)
    spooled = rows(postgres_server, spool_url, "watch")
    assert len(spooled) == 7 and {r[1] for r in spooled} == {"handled"}  # 3 runs, 3 versions, 1 alias set
    notified = Counter(receiver.ids())
    assert sorted(notified.values()) == [1] * 4  # created x3 and the alias: each handled once, by one of them
    assert set(notified) <= {r[0] for r in spooled}
    logged = Counter(e["id"] for e in audit_lines(config.root) if e["source"] == "watch")
    assert sorted(logged.values()) == [1] * 7


def test_serve_answers_503_while_postgresql_is_down_and_accepts_again_after(
        tmp_path: Path, serve: Any, receiver: CountingReceiver) -> None:
    own = postgres.start()  # a server of its own: this test stops it
    try:
        config = write_project(tmp_path / "p", rules=NOTIFIED)
        replica = serve(config.root, env=replica_env(own.fresh_database(), receiver))
        before = delivery(value=0)
        assert replica.post("/webhooks/mlflow", before[1], before[2]).status_code == 202
        own.stop()
        during = delivery(value=1)
        started = time.monotonic()
        answer = replica.post("/webhooks/mlflow", during[1], during[2])
        assert (answer.status_code, answer.json()["error"]) == (503, "spool_error")
        assert time.monotonic() - started < 10  # bounded retries, not a hang
        assert postgres.PASSWORD not in replica.log()
        own.start()
        assert replica.post("/webhooks/mlflow", during[1], during[2]).status_code == 202  # the sender's retry
        assert wait_for(lambda: len(receiver.posts) >= 2, 30)
        assert receiver.ids() == [before[0], during[0]]
        assert replica.stop() == 0
    finally:
        own.close()


def test_serve_started_against_a_postgresql_refusing_connections_exits_3_naming_the_redacted_url(
        tmp_path: Path) -> None:
    import os

    config = write_project(tmp_path / "p", rules=NOTIFIED)
    port = free_port()
    env = {**os.environ, **SECRETS_ENV, "PYTHONPATH": str(ROOT),
           "MLOPS_BOT_SPOOL_URL": f"postgresql://bot:{postgres.PASSWORD}@127.0.0.1:{port}/spool"}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "mlops_bot", "-C", str(config.root), "serve", "--port",
                           str(free_port())], env=env, capture_output=True, timeout=120)
    err = done.stderr.decode()
    assert done.returncode == 3, err
    assert time.monotonic() - started < 60
    assert f"postgresql://127.0.0.1:{port}/spool" in err and "MLOPS_BOT_SPOOL_URL" in err
    assert postgres.PASSWORD not in err and "//bot" not in err
    assert err.count("retry") >= 3  # bounded retries, each said


def test_a_failover_mid_stream_loses_nothing_and_handles_nothing_twice(
        tmp_path: Path, serve: Any, spool_url: str, receiver: CountingReceiver,
        postgres_server: postgres.PostgresServer) -> None:
    config = write_project(tmp_path / "p", rules=NOTIFIED)
    env = replica_env(spool_url, receiver)
    replicas: list[Served] = [serve(config.root, env=env), serve(config.root, env=env)]
    answers: dict[str, int] = {}
    total = 4 * 75

    def send(model: int) -> None:  # one model's deliveries in order, each again until answered 202 or 409
        deadline = time.monotonic() + 90
        for n in range(75):
            event_id, body, headers = delivery(f"m{model}", n)
            while time.monotonic() < deadline:
                status = 0
                with contextlib.suppress(httpx.HTTPError):
                    status = replicas[(n + model) % 2].post("/webhooks/mlflow", body, headers).status_code
                if status in (202, 409):
                    answers[event_id] = status
                    break
                time.sleep(0.05)

    senders = [threading.Thread(target=send, args=(m,)) for m in range(4)]
    for thread in senders:
        thread.start()
    assert wait_for(lambda: len(answers) >= total // 4, 60)
    database = spool_url.rsplit("/", 1)[1]
    assert postgres_server.terminate(database) >= 2  # pg_terminate_backend: every replica connection dies
    assert wait_for(lambda: len(answers) >= total // 2, 60)
    postgres_server.restart_immediate()  # pg_ctl restart -m immediate: mid-transaction for somebody
    for thread in senders:
        thread.join(120)
    assert len(answers) == total
    assert wait_for(lambda: len(receiver.posts) >= total, 60)
    assert rows(postgres_server, spool_url) and {r[1] for r in rows(postgres_server, spool_url)} == {"handled"}
    assert {r[0] for r in rows(postgres_server, spool_url)} == set(answers)
    assert sorted(Counter(receiver.ids()).values()) == [1] * total  # none lost, none twice
    by_model: dict[str, list[int]] = {}
    for _, model, value in receiver.posts:
        by_model.setdefault(model, []).append(value)
    assert by_model == {f"m{m}": list(range(75)) for m in range(4)}  # each model in order
    logs = "".join(r.log() for r in replicas)
    assert "PostgreSQL spool at postgresql://127.0.0.1" in logs and "retry 1" in logs  # reconnected, and said so
    assert postgres.PASSWORD not in logs
    assert [r.stop() for r in replicas] == [0, 0]
