"""The PostgreSQL spool on a real PostgreSQL server (tests/helpers/postgres.py): the schema created by many
starters at once, each delivery accepted once when two replicas race on it, claims that keep each model's order,
leases whose expiry hands an event over and fences the old holder out, and the faults: a server refusing
connections (bounded retries, a message naming the redacted URL), a connection killed mid-work (reconnected)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from mlops_bot.errors import RemoteError
from mlops_bot.events.event import Event
from mlops_bot.service.recording import LeaseLost
from mlops_bot.service.spool_claims import PgRecorder, claim
from mlops_bot.service.spool_pg import PgSpool
from mlops_bot.support.retry import RetryPolicy
from tests.helpers.postgres import PASSWORD, PostgresServer
from tests.servers.mlflow_server import free_port

pytestmark = pytest.mark.postgres


def event(model: str, n: int = 0, event_id: str | None = None) -> Event:
    return Event(type="model_version.tag_set", subject=f"models/{model}/versions/1",
                 data={"model": model, "version": "1", "n": n}, source="mlflow",
                 id=event_id or f"mlflow-{uuid.uuid4()}")


def spool_of(url: str, name: str = "serve") -> PgSpool:
    spool = PgSpool(url, name)
    spool.create_schema()
    return spool


def at_once(work: Callable[[int], Any], n: int) -> list[Any]:
    """`work(i)` in n threads released together; their results in order."""
    barrier, results = threading.Barrier(n), [None] * n

    def run(i: int) -> None:
        barrier.wait(10)
        results[i] = work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def insert_racing(replicas: list[PgSpool], events: list[Event], keys: Any) -> list[bool]:
    """events[i] inserted through replicas[i], all at the same moment; the answers, sorted."""
    return sorted(at_once(lambda i: replicas[i].transaction(lambda c: replicas[i].insert_in(c, events[i], keys)),
                          len(replicas)))


def test_the_schema_is_created_once_by_replicas_starting_together(spool_url: str) -> None:
    spools = [PgSpool(spool_url) for _ in range(4)]
    at_once(lambda i: spools[i].create_schema(), 4)  # no "relation already exists" from the losers
    spools[0].create_schema()  # and again, later: idempotent
    assert spools[0].counts() == {"pending": 0, "handled": 0, "failed": 0}
    for spool in spools:
        spool.close()


def test_two_replicas_racing_on_one_delivery_accept_it_once(spool_url: str) -> None:
    replicas = [spool_of(spool_url), spool_of(spool_url)]
    for _ in range(20):
        same = event("demo")
        assert insert_racing(replicas, [same, same], ()) == [False, True]
        key = f"github-body:{uuid.uuid4().hex}"  # a replay under a fresh id: the same body digest
        assert insert_racing(replicas, [event("demo"), event("demo")], [key]) == [False, True]
    assert replicas[0].counts()["pending"] == 40  # the refused ones left nothing behind
    assert replicas[0].insert([event("demo", event_id=same.id)]) == [False]  # a later duplicate too
    for spool in replicas:
        spool.close()


def test_a_group_commit_accepts_each_id_and_key_once_and_keeps_its_order(spool_url: str) -> None:
    spool = spool_of(spool_url)
    a, b, c, d = event("m", 1), event("m", 2), event("m", 3), event("m", 4)
    key = f"github-event:{uuid.uuid4().hex}"
    batch = [(a, ()), (a, ()), (b, [key]), (c, [key]), (d, ())]
    assert spool.transaction(lambda conn: spool.insert_many(conn, batch)) == [True, False, True, False, True]
    assert spool.transaction(lambda conn: spool.insert_many(conn, [(d, ()), (c, [key])])) == [False, False]
    ids = [r.event.id for r in claim(spool, "one", ttl=30, heads=1, more=10)]
    assert sorted(ids) == sorted([a.id, b.id, d.id]) and ids.index(a.id) < ids.index(d.id)
    spool.close()


def test_a_partition_is_claimed_in_order_and_never_by_two(spool_url: str) -> None:
    spool = spool_of(spool_url)
    first, second, other = event("a", 1), event("a", 2), event("b", 1)
    assert spool.insert([first, second, other]) == [True, True, True]
    heads = claim(spool, "one", ttl=30, heads=5, more=0)
    assert [s.event.id for s in heads] == [first.id, other.id]  # a's second waits for its first
    assert claim(spool, "two", ttl=30, heads=5, more=5) == []  # held, and blocked behind what is held
    PgRecorder(spool, "one").handled([h for h in heads if h.event.id == first.id])
    after = claim(spool, "two", ttl=30, heads=5, more=5)
    assert [s.event.id for s in after] == [second.id]
    run = [event("c", n) for n in range(5)]
    spool.insert(run)
    assert [s.event.id for s in claim(spool, "three", ttl=30, heads=1, more=10)] == [e.id for e in run]
    spool.close()


def test_a_lease_that_expired_hands_the_event_over_and_fences_the_old_holder(spool_url: str) -> None:
    spool = spool_of(spool_url)
    spool.insert([event("a", 1)])
    (held,) = claim(spool, "old", ttl=1, more=0)
    assert not held.taken_over
    PgRecorder(spool, "old").progress(held, 1)  # still the holder: recorded
    assert claim(spool, "new", ttl=30) == []  # the lease runs
    time.sleep(1.3)
    (taken,) = claim(spool, "new", ttl=30)
    assert (taken.taken_over, taken.done, taken.lease) == (True, 1, held.lease + 1)  # resumes at action 1
    with pytest.raises(LeaseLost, match="another replica took it over"):
        PgRecorder(spool, "old").progress(held, 2)
    with pytest.raises(LeaseLost):
        PgRecorder(spool, "old").handled([held])
    PgRecorder(spool, "new").handled([taken])
    assert spool.counts() == {"pending": 0, "handled": 1, "failed": 0}
    spool.close()


def test_a_server_refusing_connections_fails_within_bounds_naming_the_redacted_url() -> None:
    url = f"postgresql://bot:{PASSWORD}@127.0.0.1:{free_port()}/spool"
    started = time.monotonic()
    with pytest.raises(RemoteError) as caught:
        PgSpool(url, policy=RetryPolicy(initial_wait=0.1, max_wait=0.3, total_seconds=2)).create_schema()
    assert time.monotonic() - started < 10
    message = str(caught.value)
    assert f"127.0.0.1:{url.rsplit(':', 1)[1].split('/')[0]}/spool" in message
    assert PASSWORD not in message and "//bot" not in message
    assert "MLOPS_BOT_SPOOL_URL" in message and "Start the server" in message


def test_a_connection_killed_mid_work_is_reconnected_and_nothing_is_lost_or_doubled(
        postgres_server: PostgresServer, spool_url: str) -> None:
    spool = spool_of(spool_url)
    database = spool_url.rsplit("/", 1)[1]
    sent = [event(f"m{n % 3}", n) for n in range(60)]
    for n, item in enumerate(sent):
        if n % 10 == 5:
            assert postgres_server.terminate(database) >= 1  # pg_terminate_backend: the spool's connection dies
        assert spool.insert([item]) == [True]
    assert spool.insert(sent[:5]) == [False] * 5
    assert spool.counts()["pending"] == 60
    spool.close()


def test_a_server_restarted_mid_transaction_is_survived(spool_url: str, postgres_server: PostgresServer) -> None:
    spool = spool_of(spool_url)
    inside = threading.Event()

    def slow(conn: Any) -> bool:
        fresh = spool.insert_in(conn, item)
        if not inside.is_set():
            inside.set()
            conn.execute("SELECT pg_sleep(3)")  # the restart lands here: this transaction is rolled back
        return fresh

    item = event("a", 1)
    result: list[bool] = []
    worker = threading.Thread(target=lambda: result.append(spool.transaction(slow)))
    worker.start()
    assert inside.wait(10)
    postgres_server.restart_immediate()  # pg_ctl restart -m immediate
    worker.join(60)
    assert result == [True]  # retried whole on a new connection: inserted once
    assert spool.insert([item]) == [False]
    assert spool.counts()["pending"] == 1
    spool.close()
