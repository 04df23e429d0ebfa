"""A token that expires while the bot works (Azure ML's Entra tokens last about an hour; a training step can
take two): with MLFLOW_TRACKING_TOKEN_COMMAND the bot gets a fresh token after a 401 and repeats the request,
so the run is recorded at the end. A gateway in front of the real `mlflow server` accepts only the token in
its token file, as Azure's front end accepts only an unexpired one; the "command" prints that file, as
`az account get-access-token` prints a valid token."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from mlops_bot.errors import AuthError, UsageError
from mlops_bot.registry.mlflow.client import MlflowRegistry
from mlops_bot.registry.mlflow.http import RetryPolicy
from tests.helpers.pipeline_project import make_project
from tests.servers.forwarding import ForwardingProxy
from tests.servers.mlflow_server import MlflowServer

pytestmark = pytest.mark.mlflow
FAST = RetryPolicy(total_seconds=2.0, initial_wait=0.01, max_wait=0.1, retry_after_cap=0.1, timeout=30.0)


class Gateway:
    """Forwards to the mlflow server what carries `Bearer <the token file's content>`; 401 for the rest."""

    def __init__(self, upstream: str, token_file: Path) -> None:
        self.token_file = token_file
        self.refused = 0
        self.proxy = ForwardingProxy(upstream, self._intercept, drop_headers=("host", "authorization"))
        self.uri = self.proxy.uri

    def _intercept(self, method: str, path: str, headers: Mapping[str, str]) -> tuple[int, bytes, str] | None:
        if headers.get("Authorization") != f"Bearer {self.token_file.read_text().strip()}":
            self.refused += 1
            return 401, b'{"error": {"code": "InvalidAuthenticationToken", "message": "expired"}}', "application/json"
        return None

    def rotate(self, token: str) -> None:
        self.token_file.write_text(token)

    def stop(self) -> None:
        self.proxy.stop()


@pytest.fixture
def gateway(mlflow_server: MlflowServer, tmp_path: Path) -> Iterator[Gateway]:
    token_file = tmp_path / "valid-token"
    token_file.write_text("token-1")
    started = Gateway(mlflow_server.uri, token_file)
    yield started
    started.stop()


def token_command(gateway: Gateway, tmp_path: Path) -> str:
    """A command that prints a valid token and counts how often it ran."""
    script = tmp_path / "get-token.py"
    script.write_text(f"import pathlib\nc = pathlib.Path({str(tmp_path / 'calls')!r})\n"
                      "c.write_text(str(int(c.read_text() or 0) + 1) if c.exists() else '1')\n"
                      f"print(pathlib.Path({str(gateway.token_file)!r}).read_text())\n")
    return f"{sys.executable} {script}"


def calls(tmp_path: Path) -> int:
    return int((tmp_path / "calls").read_text())


def test_a_refused_token_is_renewed_by_the_command_and_the_request_repeated(gateway: Gateway,
                                                                           tmp_path: Path) -> None:
    registry = MlflowRegistry(gateway.uri, {"MLFLOW_TRACKING_TOKEN_COMMAND": token_command(gateway, tmp_path)},
                              retry=FAST)
    try:
        experiment = registry.get_or_create_experiment(f"tokens-{tmp_path.name}")
        run = registry.create_run(experiment.experiment_id)
        assert calls(tmp_path) == 1  # the first token, at first use
        gateway.rotate("token-2")  # the hour is over
        registry.log_batch(run.run_id, metrics={"accuracy": 0.9})
        gateway.rotate("token-3")
        model = tmp_path / "model"
        model.mkdir()
        (model / "weights.bin").write_bytes(os.urandom(100_000))
        registry.upload_artifacts(run.run_id, model, "model")  # a streamed upload is sent again from the start
        assert registry.list_artifacts(run.run_id, "model") == ["weights.bin"]
        assert registry.get_run(run.run_id).metrics == {"accuracy": 0.9}
    finally:
        registry.close()
    assert calls(tmp_path) == 3 and gateway.refused == 2


def test_without_a_command_a_refused_token_says_how_to_renew_it(gateway: Gateway, tmp_path: Path) -> None:
    registry = MlflowRegistry(gateway.uri, {"MLFLOW_TRACKING_TOKEN": "token-1"}, retry=FAST)
    try:
        registry.get_or_create_experiment(f"tokens-{tmp_path.name}")
        gateway.rotate("token-2")
        with pytest.raises(AuthError, match="MLFLOW_TRACKING_TOKEN_COMMAND") as caught:
            registry.get_or_create_experiment(f"tokens-{tmp_path.name}")
        assert "token-1" not in str(caught.value)
    finally:
        registry.close()


def test_a_command_that_prints_no_token_is_a_clear_error(gateway: Gateway, tmp_path: Path) -> None:
    registry = MlflowRegistry(gateway.uri, {"MLFLOW_TRACKING_TOKEN_COMMAND": f"{sys.executable} -c "
                                            "'import sys; sys.exit(\"login expired\")'"}, retry=FAST)
    try:
        with pytest.raises(UsageError, match=r"MLFLOW_TRACKING_TOKEN_COMMAND .* exited 1 .*login expired"):
            registry.get_or_create_experiment(f"tokens-{tmp_path.name}")
    finally:
        registry.close()


ROTATING_TRAIN = """\
import pathlib
pathlib.Path("build/model").mkdir(parents=True, exist_ok=True)
pathlib.Path("build/model/model.txt").write_text("trained\\n")
pathlib.Path({token_file!r}).write_text("token-after-training")  # the step outlived the token
"""


def test_a_step_that_outlives_its_token_still_ends_in_a_recorded_run(gateway: Gateway, tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", uri=gateway.uri, experiment=f"long-step-{tmp_path.name}")
    (project / "train.py").write_text(ROTATING_TRAIN.format(token_file=str(gateway.token_file)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_TRACKING_TOKEN_COMMAND"] = token_command(gateway, tmp_path)
    done = subprocess.run([sys.executable, "-m", "mlops_bot", "-C", str(project), "run"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert gateway.refused >= 1 and calls(tmp_path) == 2
    registry = MlflowRegistry(gateway.uri, {"MLFLOW_TRACKING_TOKEN": "token-after-training"}, retry=FAST)
    try:
        (run,) = registry.search_runs([registry.get_or_create_experiment(f"long-step-{tmp_path.name}").experiment_id])
        assert run.status == "FINISHED" and registry.list_artifacts(run.run_id, "model") == ["model.txt"]
    finally:
        registry.close()
