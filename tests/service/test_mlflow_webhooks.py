"""The real mlflow server's own webhooks, delivered to `serve` on 127.0.0.1: setting the champion alias in
the registry leads to the configured deploy, once, although MLflow retries the delivery and it is posted
again by hand. Between MLflow and `serve` sits a relay that records each delivery and answers MLflow 500 the
first time, so MLflow retries it (same delivery id, as MLflow does on 5xx)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlops_bot.registry.base import Registry
from tests.helpers.event_projects import audit_lines, write_project
from tests.helpers.projects import deployed
from tests.helpers.registries import add_version
from tests.helpers.serve import Served
from tests.helpers.webhooks import SECRET
from tests.servers.mlflow_server import MlflowServer

pytestmark = pytest.mark.mlflow


class Relay:
    """Forwards each POST to `serve` unchanged; keeps (headers, body, serve's status); answers MLflow 500 to the
    first champion delivery (after `serve` took it)."""

    def __init__(self, target: str) -> None:
        self.seen: list[tuple[dict[str, str], bytes, int]] = []
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k: v for k, v in self.headers.items() if k.lower().startswith(("x-mlflow", "content-type"))}
                status = httpx.post(target, content=body, headers=headers, timeout=10).status_code
                first = b'"champion"' in body and not any(b'"champion"' in b for _, b, _ in relay.seen)
                relay.seen.append((headers, body, status))
                self.send_response(500 if first else status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/relay"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook(mlflow_server: MlflowServer) -> Iterator[Callable[[str, list[dict[str, str]]], str]]:
    """Creates webhooks on the server through its REST API (deleted at teardown)."""
    made: list[str] = []

    def create(url: str, events: list[dict[str, str]]) -> str:
        answer = httpx.post(f"{mlflow_server.uri}/api/2.0/mlflow/webhooks", timeout=10, json={
            "name": f"mlops-bot-test-{len(made)}", "url": url, "events": events, "secret": SECRET})
        assert answer.status_code == 200, answer.text
        webhook_id: str = answer.json()["webhook"]["webhook_id"]
        made.append(webhook_id)
        return webhook_id

    yield create
    for webhook_id in made:
        httpx.delete(f"{mlflow_server.uri}/api/2.0/mlflow/webhooks/{webhook_id}", timeout=10)


def wait_for(check: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def test_champion_alias_set_in_mlflow_deploys_once(tmp_path: Path, mlflow_server: MlflowServer,
                                                   registry_factory: Callable[..., Registry], serve: Any,
                                                   webhook: Callable[..., str], unique: Callable[[str], str]) -> None:
    config = write_project(tmp_path / "p", model=unique("hooked"), uri=mlflow_server.uri)
    registry = registry_factory("mlflow")
    version = add_version(registry, config, tmp_path)
    served: Served = serve(config.root)
    relay = Relay(served.url + "/webhooks/mlflow")
    try:
        webhook(relay.url, [{"entity": "MODEL_VERSION_ALIAS", "action": "CREATED"}])
        registry.set_alias(config.model.name, "staging", version)  # another alias: no rule matches it
        registry.set_alias(config.model.name, "champion", version)
        assert wait_for(lambda: deployed(config.root) == [version]), served.log()
        assert wait_for(lambda: sum(1 for _, b, _ in relay.seen if b'"champion"' in b) >= 2, 20), relay.seen
    finally:
        relay.close()
    champion = [(h, b, s) for h, b, s in relay.seen if b'"champion"' in b]
    ids = {h["X-MLflow-Delivery-Id"] for h, _, _ in champion}
    assert len(ids) == 1  # MLflow's retry carried the same delivery id...
    assert [s for _, _, s in champion][:2] == [202, 409]  # ...and was refused as a replay: already held
    headers, body, _ = champion[0]
    assert served.post("/webhooks/mlflow", body, headers).status_code == 409  # posted again by hand
    health = served.wait_idle()
    time.sleep(0.5)
    assert deployed(config.root) == [version]  # once
    assert health["spool"]["failed"] == 0 and health["rejected"].get("bad_signature", 0) == 0
    alias_events = [e for e in audit_lines(config.root) if e["type"] == "model_version.alias_set"]
    assert {(e["source"], e["data"]["alias"]) for e in alias_events} == {("mlflow", "staging"), ("mlflow", "champion")}
    assert [e["data"]["target"] for e in audit_lines(config.root) if e["type"] == "deployment.succeeded"] == ["record"]
