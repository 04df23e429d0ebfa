"""Which Ray cluster a `backend: ray` step goes to, and what the bot says when it cannot get there (no cluster
needed: these run in the fast tier)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mlops_bot.config.backends import StepBackend
from mlops_bot.config.model import Step
from mlops_bot.errors import EXIT_CONFIG, EXIT_RUNTIME, StepFailed, UsageError
from mlops_bot.pipeline.backends import ray as ray_backend
from mlops_bot.pipeline.backends import ray_watch
from mlops_bot.pipeline.backends.base import RemoteStep
from tests.servers.mlflow_server import free_port


class NoRun:
    run_id = "0123456789abcdef"

    def upload_file(self, path: Path, artifact_dir: str) -> None:
        raise AssertionError("nothing is uploaded before a cluster is found")

    def fetch_outs(self, outs: list[str]) -> list[str]:
        return outs


def job(address: str | None, tmp_path: Path) -> RemoteStep:
    step = Step("train", "python train.py", backend=StepBackend(type="ray", address=address))
    return RemoteStep(step, tmp_path, {}, NoRun(), "step 1/1 train", lambda line: None)


@pytest.mark.parametrize(("given", "used"), [
    ("http://ray-head:8265", "http://ray-head:8265"),
    ("https://ray.example.com/", "https://ray.example.com"),
    ("ray-head:8265", "http://ray-head:8265"),
])
def test_the_address_is_the_dashboards_url(tmp_path: Path, given: str, used: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_ADDRESS", "http://elsewhere:8265")
    assert ray_backend.cluster_address(job(given, tmp_path)) == used  # ml.yaml wins over the environment


def test_ray_address_from_the_environment_when_ml_yaml_names_none(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:8265")
    assert ray_backend.cluster_address(job(None, tmp_path)) == "http://10.0.0.5:8265"


def test_no_address_says_where_to_set_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(UsageError) as caught:
        ray_backend.run(job(None, tmp_path))
    assert caught.value.exit_code == EXIT_CONFIG
    assert "pipeline.train.backend.address" in str(caught.value) and "RAY_ADDRESS" in str(caught.value)


def test_a_client_address_is_refused_with_the_one_to_use(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"ray://user@ray-head:10001|dashboard's HTTP address") as caught:
        ray_backend.cluster_address(job("ray://user:secret@ray-head:10001", tmp_path))
    assert "secret" not in str(caught.value) and "http://ray-head:8265" in str(caught.value)


def test_an_unreachable_cluster_fails_after_bounded_attempts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ray_backend, "CONNECT_BACKOFF_S", 0.05)
    address = f"http://user:secret@127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(StepFailed) as caught:
        ray_backend.run(job(address, tmp_path))
    assert time.monotonic() - started < 5
    assert caught.value.exit_code == EXIT_RUNTIME and caught.value.step == "train"
    message = str(caught.value)
    assert f"cannot reach the Ray cluster at {address.replace('user:secret@', '')}" in message
    assert "secret" not in message and "3 attempts" in message and "Connection refused" in message
    assert not (tmp_path / ".mlops-bot").exists()  # nothing staged for a cluster that is not there


def test_a_runtime_env_failure_keeps_rays_first_line_and_the_tools_errors() -> None:
    message = "runtime_env setup failed: Failed to set up runtime environment.\n" + \
        "".join(f"  File \"x.py\", line {i}\n" for i in range(40)) + \
        "    ERROR: Could not find a version that satisfies the requirement nope\n" \
        "    ERROR: No matching distribution found for nope\n"
    assert ray_watch._essence(message).splitlines() == [
        "runtime_env setup failed: Failed to set up runtime environment.",
        "ERROR: Could not find a version that satisfies the requirement nope",
        "ERROR: No matching distribution found for nope"]
    other = "\n".join(f"line {i}" for i in range(30))
    assert ray_watch._essence(other).splitlines() == [f"line {i}" for i in range(30 - ray_watch.MESSAGE_LINES, 30)]
