"""Bad input and hostile answers: each ends in one clear line naming service, status and URL, after the
retry budget where retrying makes sense. A tiny HTTP server on 127.0.0.1 plays the misbehaving server."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from mlops_bot.errors import AuthError, NotFound, RemoteError, UsageError
from mlops_bot.registry import open_registry
from mlops_bot.registry.base import Registry
from mlops_bot.registry.local.store import LocalRegistry
from mlops_bot.registry.mlflow.client import MlflowRegistry
from mlops_bot.registry.mlflow.errors import EndpointMissing
from mlops_bot.registry.mlflow.http import MlflowHttp, RetryPolicy

FAST = RetryPolicy(total_seconds=0.5, initial_wait=0.01, max_wait=0.05, retry_after_cap=0.1, timeout=2.0)


@dataclass
class Answer:
    status: int
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class StubServer:
    """Answers every request from `answers` in turn (the last one repeats) and records what it got."""

    answers: list[Answer]
    uri: str = ""
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def next_answer(self) -> Answer:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


@pytest.fixture
def stub() -> Iterator[Callable[..., StubServer]]:
    servers: list[ThreadingHTTPServer] = []

    def make(*answers: Answer) -> StubServer:
        state = StubServer(list(answers))

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                state.seen.append((self.command, self.path, dict(self.headers.items())))
                answer = state.next_answer()
                payload = answer.body.encode()
                self.send_response(answer.status)
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        state.uri = f"http://127.0.0.1:{server.server_address[1]}"
        return state

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()


def json_answer(status: int, code: str, message: str, **headers: str) -> Answer:
    return Answer(status, json.dumps({"error_code": code, "message": message}),
                  {"Content-Type": "application/json", **headers})


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def assert_one_line(error: Exception, *parts: str) -> None:
    message = str(error)
    assert "\n" not in message
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"


def test_unreachable_server_after_the_retry_budget() -> None:
    port = closed_port()
    registry = MlflowRegistry(f"http://user:hunter2@127.0.0.1:{port}", {}, retry=FAST)
    with pytest.raises(RemoteError) as caught:
        registry.get_run("abc")
    assert caught.value.status is None
    assert_one_line(caught.value, "MLflow", "no answer", f"http://127.0.0.1:{port}/api/2.0/mlflow/runs/get",
                    "gave up")
    assert "hunter2" not in str(caught.value)


def test_wrong_token_is_an_auth_error_at_once(stub: Callable[..., StubServer]) -> None:
    server = stub(json_answer(401, "UNAUTHENTICATED", "Invalid token"))
    registry = MlflowRegistry(server.uri, {"MLFLOW_TRACKING_TOKEN": "s3cret-token"}, retry=FAST)
    with pytest.raises(AuthError) as caught:
        registry.get_or_create_experiment("iris")
    assert_one_line(caught.value, "MLflow: HTTP 401 from", server.uri + "/api/2.0/mlflow/experiments/get-by-name",
                    "Invalid token", "MLFLOW_TRACKING_TOKEN")
    assert "s3cret" not in str(caught.value)
    assert len(server.seen) == 1  # refused credentials are not retried
    assert server.seen[0][2]["Authorization"] == "Bearer s3cret-token"


def test_forbidden_html_page_with_basic_auth(stub: Callable[..., StubServer]) -> None:
    server = stub(Answer(403, "<html><head><title>403 Forbidden</title></head><body>nope</body></html>",
                         {"Content-Type": "text/html"}))
    env = {"MLFLOW_TRACKING_USERNAME": "ada", "MLFLOW_TRACKING_PASSWORD": "pa55"}
    with pytest.raises(AuthError) as caught:
        MlflowRegistry(server.uri, env, retry=FAST).get_registered_model("iris")
    assert_one_line(caught.value, "MLflow: HTTP 403 from", "/api/2.0/mlflow/registered-models/get?name=iris",
                    "403 Forbidden")
    assert "pa55" not in str(caught.value)
    assert server.seen[0][2]["Authorization"] == "Basic " + base64.b64encode(b"ada:pa55").decode()


def test_non_json_5xx_page_is_retried_then_one_line(stub: Callable[..., StubServer]) -> None:
    server = stub(Answer(502, "<html>\n<title>502 Bad Gateway</title>\n<body>\n<h1>oops</h1></body></html>",
                         {"Content-Type": "text/html"}))
    with pytest.raises(RemoteError) as caught:
        MlflowRegistry(server.uri, {}, retry=FAST).get_run("abc")
    assert caught.value.status == 502
    assert_one_line(caught.value, "MLflow: HTTP 502 from", "/runs/get?run_id=abc", "502 Bad Gateway", "gave up")
    assert len(server.seen) > 1


def test_non_json_4xx_page_is_not_retried(stub: Callable[..., StubServer]) -> None:
    server = stub(Answer(400, "bad things happened\nand more lines\n", {"Content-Type": "text/plain"}))
    with pytest.raises(RemoteError) as caught:
        MlflowRegistry(server.uri, {}, retry=FAST).get_run("abc")
    assert_one_line(caught.value, "MLflow: HTTP 400 from", "non-JSON error page: bad things happened")
    assert len(server.seen) == 1


def test_login_page_with_200_is_refused(stub: Callable[..., StubServer]) -> None:
    server = stub(Answer(200, "<html><title>Sign in</title></html>", {"Content-Type": "text/html"}))
    with pytest.raises(RemoteError) as caught:
        MlflowRegistry(server.uri, {}, retry=FAST).get_run("abc")
    assert_one_line(caught.value, "MLflow: HTTP 200 from", "not JSON")


def test_a_bare_404_is_a_missing_endpoint_not_a_missing_object(stub: Callable[..., StubServer]) -> None:
    server = stub(Answer(404, '{"error": "404 Not Found"}', {"Content-Type": "application/json"}),
                  json_answer(404, "RESOURCE_DOES_NOT_EXIST", "Registered Model with name=iris not found"))
    registry = MlflowRegistry(server.uri + "/api/v4/projects/7/ml/mlflow", {}, retry=FAST)
    with pytest.raises(EndpointMissing) as caught:
        registry.get_registered_model("iris")
    assert_one_line(caught.value, "HTTP 404", "/api/v4/projects/7/ml/mlflow/api/2.0/mlflow/registered-models/get",
                    "no such endpoint")
    with pytest.raises(NotFound) as missing:
        registry.get_registered_model("iris")
    assert not isinstance(missing.value, EndpointMissing)
    assert_one_line(missing.value, "name=iris not found")


def test_transient_errors_then_success(stub: Callable[..., StubServer]) -> None:
    run = {"info": {"run_id": "abc", "experiment_id": "1", "status": "RUNNING", "start_time": 1,
                    "artifact_uri": "mlflow-artifacts:/1/abc/artifacts"}, "data": {}}
    server = stub(json_answer(503, "TEMPORARILY_UNAVAILABLE", "busy"), Answer(500, "boom"),
                  Answer(200, json.dumps({"run": run}), {"Content-Type": "application/json"}))
    assert MlflowRegistry(server.uri, {}, retry=FAST).get_run("abc").run_id == "abc"
    assert len(server.seen) == 3


@pytest.mark.parametrize(("retry_after", "cap", "expected"), [("0.25", 1.0, 0.25), ("3600", 0.1, 0.1)])
def test_retry_after_is_honoured_and_capped(stub: Callable[..., StubServer], retry_after: str, cap: float,
                                            expected: float) -> None:
    server = stub(json_answer(429, "REQUEST_LIMIT_EXCEEDED", "slow down", **{"Retry-After": retry_after}),
                  Answer(200, "{}", {"Content-Type": "application/json"}))
    slept: list[float] = []
    http = MlflowHttp(server.uri, {}, retry=RetryPolicy(total_seconds=5.0, retry_after_cap=cap), sleep=slept.append)
    assert http.json("GET", "runs/get", params={"run_id": "x"}) == {}
    assert slept == [pytest.approx(expected)]
    assert len(server.seen) == 2


def test_total_budget_bounds_the_waits(stub: Callable[..., StubServer]) -> None:
    server = stub(Answer(503, "down"))
    slept: list[float] = []
    http = MlflowHttp(server.uri, {}, retry=RetryPolicy(total_seconds=0.3, initial_wait=0.05, max_wait=1.0),
                      sleep=slept.append)
    with pytest.raises(RemoteError, match="gave up"):
        http.json("GET", "runs/get")
    assert len(slept) >= 2
    assert 0.025 <= slept[0] <= 0.05 <= slept[1] <= 0.1  # exponential, with jitter in the upper half
    assert max(slept) <= 0.3


@pytest.mark.mlflow
def test_unknown_run_on_the_real_server_is_not_found_at_once(registry_factory: Callable[..., Registry]) -> None:
    calls: list[str] = []
    transport = httpx.HTTPTransport()

    class Counting(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            calls.append(request.url.path)
            return transport.handle_request(request)

    registry = registry_factory("mlflow", transport=Counting())
    with pytest.raises(NotFound) as caught:
        registry.get_run("f" * 32)
    assert_one_line(caught.value, "MLflow: HTTP 404 from", f"/api/2.0/mlflow/runs/get?run_id={'f' * 32}",
                    "not found")
    assert len(calls) == 1


@pytest.mark.mlflow
def test_model_names_with_spaces_and_slashes_on_the_real_server(registry_factory: Callable[..., Registry],
                                                                 unique: Callable[[str], str]) -> None:
    registry = registry_factory("mlflow")
    spaced = unique("my model & co")
    assert registry.get_or_create_registered_model(spaced).name == spaced
    assert registry.get_registered_model(spaced).name == spaced
    with pytest.raises(RemoteError) as caught:
        registry.get_or_create_registered_model(unique("team/model"))
    assert_one_line(caught.value, "MLflow: HTTP 400 from", "registered-models/get?name=team%2Fmodel",
                    "cannot contain '/'")


def test_open_registry_picks_the_implementation(tmp_path: Path) -> None:
    local = open_registry("local", tmp_path)
    assert isinstance(local, LocalRegistry) and local.root == (tmp_path / ".mlops-bot").resolve()
    assert isinstance(open_registry("", tmp_path), LocalRegistry)
    remote = open_registry("http://127.0.0.1:1", tmp_path, env={})
    assert isinstance(remote, MlflowRegistry) and remote.tracking_uri == "http://127.0.0.1:1"
    remote.close()
    with pytest.raises(UsageError, match="databricks://x"):
        open_registry("databricks://x", tmp_path)


@pytest.mark.parametrize(("env", "words"), [
    ({"MLFLOW_TRACKING_USERNAME": "ada"}, "MLFLOW_TRACKING_PASSWORD"),
    ({"MLFLOW_TRACKING_INSECURE_TLS": "true", "MLFLOW_TRACKING_SERVER_CERT_PATH": "/x.pem"}, "cannot both"),
    ({"MLFLOW_TRACKING_SERVER_CERT_PATH": "/nonexistent/ca.pem"}, "is not a file"),
])
def test_bad_auth_settings_are_usage_errors(env: dict[str, str], words: str) -> None:
    with pytest.raises(UsageError, match=words):
        MlflowRegistry("https://127.0.0.1:1", env)


def test_importing_the_registry_package_does_not_import_httpx() -> None:
    code = "import sys, mlops_bot.registry, mlops_bot.registry.local; print('httpx' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(("uri", "hint"), [
    ("ftp://user:hunter2@files.example/mlflow", "an http(s):// URL of an MLflow tracking server"),
    ("databricks", "https://<workspace>.cloud.databricks.com"),
    ("azureml://westeurope.api.azureml.ms/mlflow/v1.0/subscriptions/x", "https:// instead of azureml://"),
    ("sqlite:///mlflow.db", "mlflow server --backend-store-uri"),
    ("postgresql://user:hunter2@db/mlflow", "mlflow server --backend-store-uri"),
])
def test_a_tracking_uri_of_another_kind_says_what_to_use_instead(tmp_path: Path, uri: str, hint: str) -> None:
    (tmp_path / "ml.yaml").write_text("version: 1\nmodel: {name: m, artifact: model}\n"
                                      f"tracking: {{uri: '{uri}', experiment: e}}\n"
                                      "pipeline: {train: {cmd: [python, train.py], outs: [model]}}\n")
    done = subprocess.run([sys.executable, "-m", "mlops_bot", "-C", str(tmp_path), "status"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("mlops-bot: error: ml.yaml: tracking.uri: tracking URI")
    assert hint in done.stderr and "hunter2" not in done.stderr and "Traceback" not in done.stderr
