"""The webhook target against a real HTTP receiver on 127.0.0.1 that verifies every signature."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from mlops_bot.config.model import DeployTarget
from mlops_bot.deploy import DeployOptions, deploy_all, webhook
from mlops_bot.errors import RemoteError
from mlops_bot.registry.local.store import LocalRegistry
from mlops_bot.registry.tags import deploy_tag as tag
from tests.helpers.deploy import MODEL, SECRET, SUMMARY, make_config
from tests.helpers.receivers import ScriptedReceiver as Receiver


@pytest.fixture(autouse=True)
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", SECRET)


def hook(receiver: Receiver, **fields: object) -> DeployTarget:
    return DeployTarget(**{"name": "hook", "type": "webhook", "url": receiver.url, "secret_env": "HOOK_SECRET",
                           **fields})  # type: ignore[arg-type]


def test_the_delivery_is_signed_and_describes_the_version(tmp_path: Path, store: LocalRegistry,
                                                          receiver: Receiver) -> None:
    [result] = deploy_all(make_config(tmp_path, hook(receiver)), store, "3", DeployOptions(echo=lambda _: None))
    assert result.status == "succeeded"
    [delivery] = receiver.deliveries
    assert delivery.signature_ok
    body = json.loads(delivery.body)
    assert body["model"] == {"name": MODEL, "version": "3", "uri": f"models:/{MODEL}/3"}
    assert body["decision"] == {"verdict": "pass", "summary": SUMMARY}
    assert body["idempotency_key"] == delivery.headers["Idempotency-Key"] == result.key
    assert str(body["timestamp"]) == delivery.headers["X-MLOps-Bot-Timestamp"]
    assert body["delivery_id"] == delivery.headers["X-MLOps-Bot-Delivery"]
    assert delivery.headers["Content-Type"] == "application/json"


def test_a_400_is_not_retried_and_a_rerun_keeps_the_idempotency_key(tmp_path: Path, store: LocalRegistry,
                                                                     receiver: Receiver) -> None:
    config = make_config(tmp_path, hook(receiver))
    receiver.answer((400, {}))
    [first] = deploy_all(config, store, "3", DeployOptions(echo=lambda _: None))
    assert first.status == "failed" and "HTTP 400" in first.detail
    assert len(receiver.deliveries) == 1
    [second] = deploy_all(config, store, "3", DeployOptions(echo=lambda _: None))
    assert second.status == "succeeded"
    [third] = deploy_all(config, store, "3", DeployOptions(echo=lambda _: None))
    assert third.status == "skipped"
    assert len(receiver.deliveries) == 2
    assert receiver.keys()[0] == receiver.keys()[1] == first.key == second.key
    ids = [d.headers["X-MLOps-Bot-Delivery"] for d in receiver.deliveries]
    assert ids[0] != ids[1]  # a new delivery of the same deployment


def test_503_with_retry_after_is_retried_with_the_same_signed_bytes(tmp_path: Path, store: LocalRegistry,
                                                                   receiver: Receiver) -> None:
    receiver.answer((503, {"Retry-After": "0"}), (429, {"Retry-After": "0"}))
    lines: list[str] = []
    [result] = deploy_all(make_config(tmp_path, hook(receiver)), store, "3", DeployOptions(echo=lines.append))
    assert result.status == "succeeded"
    assert len(receiver.deliveries) == 3
    assert all(d.signature_ok for d in receiver.deliveries)
    assert len({d.body for d in receiver.deliveries}) == 1
    assert sum("retry" in line for line in lines) == 2


def test_the_secret_appears_in_no_log_result_or_tag(tmp_path: Path, store: LocalRegistry, receiver: Receiver,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    receiver.answer(*[(500, {"Retry-After": "0"})] * webhook.ATTEMPTS)
    bad_url = f"{receiver.url}?token={SECRET}"
    lines: list[str] = []
    config = make_config(tmp_path, hook(receiver), hook(receiver, name="hook2", url=bad_url))
    results = deploy_all(config, store, "3", DeployOptions(echo=lines.append))
    assert [r.status for r in results] == ["failed", "succeeded"]
    assert "still after 5 attempts" in results[0].detail
    tags = store.get_model_version(MODEL, "3").tags
    captured = capsys.readouterr()
    everything = "\n".join([*lines, *(json.dumps(r.as_json()) for r in results), *tags.values(), captured.err,
                            captured.out])
    assert SECRET not in everything
    assert tags[tag("hook", "status")] == "failed" and tags[tag("hook2", "status")] == "succeeded"


def test_a_missing_secret_names_the_variable(tmp_path: Path, store: LocalRegistry, receiver: Receiver,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOOK_SECRET")
    [result] = deploy_all(make_config(tmp_path, hook(receiver)), store, "3", DeployOptions(echo=lambda _: None))
    assert result.status == "failed" and "HOOK_SECRET" in result.detail
    assert receiver.deliveries == []


def test_connection_errors_are_retried_then_reported() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    lines: list[str] = []
    with pytest.raises(RemoteError, match="ConnectError, still after 3 attempts") as caught:
        webhook.deliver(f"http://user:pw@127.0.0.1:{port}/x?sig=abc", b"{}", {},
                        webhook.DeliveryOptions(attempts=3, backoff=0.01, echo=lines.append))
    assert len(lines) == 2
    assert "pw" not in str(caught.value) and "sig=abc" not in str(caught.value)
