"""THE counted test of issue 21: 2,000 signed deliveries for 8 models spread over 3 `mlops-bot serve` replicas
(real subprocesses) on one real PostgreSQL spool, while replicas are killed with -9 at random and started again.
Senders behave as GitHub's or MLflow's would: one model's deliveries one after the other, and a delivery that got
no 2xx (the replica died, or answered 503) is sent again, to a live replica, until it is answered 202 or 409
(409: held since an attempt whose answer was lost). Each event's `on:` rule notifies a local receiver, which
counts event ids in arrival order.

At the end: every accepted delivery is one handled row; every one reached the receiver, and more than once only
where a kill cut its action short (at most one event per worker thread per kill: the one mid-action); each has
exactly one audit line across the replicas; and each model's events reached the receiver in the order sent."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import pytest

from tests.helpers.event_projects import audit_lines, write_project
from tests.helpers.postgres import CountingReceiver, PostgresServer
from tests.helpers.serve import Served, start_serve
from tests.helpers.webhooks import mlflow_request

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
MODELS = 8
PER_MODEL = 250  # 2,000 deliveries
REPLICAS = 3
WORKERS = 2
KILLS = 5
LEASE_S = 2
LIMIT_S = 150  # the whole stream, kills and drain included


class Fleet:
    """The replicas; the killer replaces one while senders pick among the live ones."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root, self.env = root, env
        self.lock = threading.Lock()
        self.replicas: list[Served] = [self.start() for _ in range(REPLICAS)]
        self.retired: list[Served] = []
        self.kills = 0

    def start(self) -> Served:
        return start_serve(self.root, env=self.env, workers=WORKERS, extra=("--max-per-client", "0"))

    def pick(self, rng: random.Random) -> Served:
        with self.lock:
            return rng.choice(self.replicas)

    def kill_one(self, rng: random.Random) -> None:
        with self.lock:
            victim = self.replicas.pop(rng.randrange(len(self.replicas)))
        victim.kill()  # SIGKILL: mid-request, mid-event
        self.kills += 1
        self.retired.append(victim)
        fresh = self.start()
        with self.lock:
            self.replicas.append(fresh)

    def close(self) -> None:
        for served in [*self.replicas, *self.retired]:
            if served.process.poll() is None:
                served.kill()
            served.client.close()


def send_model(fleet: Fleet, model: int, answers: dict[str, int], deadline: float) -> None:
    rng = random.Random(model)
    with httpx.Client(timeout=10) as client:
        for n in range(PER_MODEL):
            delivery = f"{model:02d}-{n:04d}-{rng.getrandbits(48):012x}"
            body, headers = mlflow_request({"name": f"model-{model}", "version": "1", "key": "note", "value": str(n)},
                                           "model_version_tag", "set", delivery=delivery)
            while time.monotonic() < deadline:  # the same delivery again until it is answered
                status = 0
                with contextlib.suppress(httpx.HTTPError):
                    status = client.post(fleet.pick(rng).url + "/webhooks/mlflow", content=body,
                                         headers=headers).status_code
                if status in (202, 409):
                    answers[f"mlflow-{delivery}"] = status
                    break
                time.sleep(0.05)


def test_two_thousand_deliveries_over_three_replicas_with_kills_each_handled_exactly_once(
        tmp_path: Path, spool_url: str, postgres_server: PostgresServer) -> None:
    config = write_project(tmp_path / "p", rules="  - {event: model_version.tag_set, do: [notify]}")
    receiver = CountingReceiver()
    fleet = Fleet(config.root, {"MLOPS_BOT_SPOOL_URL": spool_url, "MLOPS_BOT_NOTIFY_URL": receiver.url,
                                "MLOPS_BOT_SPOOL_LEASE_S": str(LEASE_S)})
    deadline = time.monotonic() + LIMIT_S
    answers: dict[str, int] = {}
    try:
        senders = [threading.Thread(target=send_model, args=(fleet, m, answers, deadline)) for m in range(MODELS)]
        for thread in senders:
            thread.start()
        rng = random.Random(21)
        for k in range(KILLS):  # spread over the stream, each at a random moment of its stretch
            mark = (k + rng.uniform(0.5, 1.0)) * MODELS * PER_MODEL / (KILLS + 1)
            while len(answers) < mark and time.monotonic() < deadline:
                time.sleep(0.01)
            fleet.kill_one(rng)
        for thread in senders:
            thread.join(max(deadline - time.monotonic(), 1))
        assert len(answers) == MODELS * PER_MODEL, "the senders ran out of time"
        database = spool_url.rsplit("/", 1)[1]

        def states() -> dict[str, int]:
            return {str(s): int(str(n)) for s, n in postgres_server.sql(
                "SELECT state, count(*) FROM mlops_bot_events GROUP BY state", database)}

        while states().get("pending", 0) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert fleet.kills == KILLS
        assert states() == {"handled": MODELS * PER_MODEL}  # every accepted delivery: one row, handled
        handled = {str(r[0]) for r in postgres_server.sql("SELECT id FROM mlops_bot_events", database)}
        assert handled == set(answers)

        again = int(str(postgres_server.sql("SELECT count(*) FROM mlops_bot_events WHERE lease > 1", database)[0][0]))
        assert again > 0  # some events were in a killed replica's hands and claimed anew
        notified = Counter(receiver.ids())
        assert set(notified) == set(answers)  # none lost
        repeats = sum(n - 1 for n in notified.values())
        assert repeats <= KILLS * WORKERS  # only an action a kill cut short ran again

        logged = Counter(e["id"] for e in audit_lines(config.root) if e["source"] == "mlflow")
        assert set(logged) == set(answers) and set(logged.values()) == {1}  # one audit line each

        first_seen: dict[str, list[int]] = defaultdict(list)
        seen: set[str] = set()
        for event_id, model, value in receiver.posts:
            if event_id not in seen:
                seen.add(event_id)
                first_seen[model].append(value)
        assert {m: v == sorted(v) for m, v in first_seen.items()} == {f"model-{m}": True for m in range(MODELS)}
    finally:
        fleet.close()
        receiver.close()
