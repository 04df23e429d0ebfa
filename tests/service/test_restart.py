"""`kill -9` of `serve` in the middle of a stream of deliveries, then a restart: every delivery it answered
202 is handled, and none twice (spool before the answer; handled mark after the effects; the audit line
not written again on the restart)."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from mlops_bot.registry.local.store import LocalRegistry
from tests.helpers.event_projects import audit_lines, write_project
from tests.helpers.registries import add_version
from tests.helpers.serve import Served
from tests.helpers.webhooks import mlflow_request

EVENTS = 400
SENDERS = 6
GATED = "  - {event: model_version.tag_set, where: {key: check}, do: [gate]}"


def deliveries() -> list[tuple[str, bytes, dict[str, str]]]:
    made = []
    for n in range(EVENTS):
        delivery = str(uuid.uuid4())
        data = {"name": "demo", "version": "1", "key": "check" if n % 10 == 0 else "note", "value": str(n)}
        body, headers = mlflow_request(data, "model_version_tag", "set", delivery=delivery)
        made.append((f"mlflow-{delivery}", body, headers))
    return made


def send(served: Served, share: list[tuple[str, bytes, dict[str, str]]], answers: dict[str, int],
         stop: threading.Event) -> None:
    with httpx.Client(timeout=10) as client:
        for event_id, body, headers in share:
            if stop.is_set():
                return
            try:
                answers[event_id] = client.post(served.url + "/webhooks/mlflow", content=body,
                                                headers=headers).status_code
            except httpx.HTTPError:
                answers[event_id] = 0  # no answer: the sender will deliver it again


def test_kill_minus_nine_mid_stream_loses_and_repeats_nothing(tmp_path: Path, serve: Any) -> None:
    config = write_project(tmp_path / "p", rules=GATED)
    registry = LocalRegistry(config.root / ".mlops-bot")
    add_version(registry, config, tmp_path)
    registry.set_alias("demo", "champion", "1")
    registry.close()
    sent = deliveries()
    answers: dict[str, int] = {}
    served = serve(config.root, workers=3)
    stop = threading.Event()
    senders = [threading.Thread(target=send, args=(served, sent[n::SENDERS], answers, stop)) for n in range(SENDERS)]
    for thread in senders:
        thread.start()
    while sum(1 for s in answers.values() if s == 202) < EVENTS // 3 and any(t.is_alive() for t in senders):
        threading.Event().wait(0.005)
    served.kill()  # SIGKILL, mid-stream
    stop.set()
    for thread in senders:
        thread.join(30)
    accepted_before = {i for i, s in answers.items() if s == 202}
    assert EVENTS // 3 <= len(accepted_before) < EVENTS, "the kill did not land mid-stream"

    again = serve(config.root, workers=3)
    retried = [(i, b, h) for i, b, h in sent if answers.get(i) != 202]
    for event_id, body, headers in retried:  # the senders deliver what got no 202 again
        answers[event_id] = again.post("/webhooks/mlflow", body, headers).status_code
    assert all(answers[i] in (202, 409) for i, _, _ in retried)  # 409: stored before the kill, never answered
    health = again.wait_idle()
    logged = Counter(e["id"] for e in audit_lines(config.root) if e["source"] == "mlflow")
    lost = [i for i, _, _ in sent if logged[i] == 0]
    doubled = [i for i, n in logged.items() if n > 1]
    assert (lost, doubled) == ([], [])
    assert health["spool"] == {"pending": 0, "handled": EVENTS, "failed": 0}
    assert again.stop() == 0
