"""The whole user journey on an mlflow server that does NOT proxy artifacts (issue #14): the bot reads and writes
the run's artifacts in the store itself, S3 (moto), Azure Blob (Azurite), GCS (gcp-storage-emulator) or a shared
directory, with the real quickstart and the real CLI. Also the S3 and GCS setups behind a proxy that answers 503
for a seeded share of the requests: the SDKs' retries must bring the journey to the state of a clean one. (Not
Azure: its SDK waits 15 s before the first retry, so each fault would cost that much.)

The setups come from tests/plugins/stores.py (tests/servers/stores.py starts them); nothing of the store is
mocked. What is in the store is read back with the store's own SDK, straight from the emulator.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.git import git
from tests.servers.mlflow_server import MlflowServer
from tests.servers.stores import FaultPlan, FaultProxy, StoreSetup, behind_faults

pytestmark = pytest.mark.mlflow

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "examples" / "quickstart"
BOT_TIMEOUT = 240  # one command, on a busy 2-core runner
_DROP = ("GITHUB_", "GITLAB_", "CI_", "RUNNER_", "MLOPS_BOT_", "MLFLOW_", "AWS_", "AZURE_", "GOOGLE_",
         "STORAGE_EMULATOR_HOST")


@dataclass
class Journey:
    """A quickstart project (a git repository) under a model and experiment name of its own, and the bot run on it
    as a subprocess with the setup's environment; `timings` records each command's wall time."""

    setup: StoreSetup
    path: Path
    model: str
    timings: list[tuple[str, float]] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_DROP) and k != "CI"}
        # the quickstart's steps run `python`, which must be the one with scikit-learn
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env.update(self.setup.env, MLFLOW_TRACKING_URI=self.setup.tracking_uri)
        return env

    def bot(self, *args: str, expect: int = 0, where: Path | None = None) -> dict[str, Any]:
        """`mlops-bot -C DIR ARGS --json`; asserts the exit code and returns the JSON document."""
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "mlops_bot", "-C", str(where or self.path), *args, "--json"],
                              env=self.env(), capture_output=True, text=True, timeout=BOT_TIMEOUT)
        self.timings.append((args[0], time.monotonic() - started))
        assert done.returncode == expect, (
            f"`mlops-bot {' '.join(args)}` on {self.setup.name} exited {done.returncode}, not {expect}:\n"
            f"{done.stderr[-4000:]}\n{done.stdout[-2000:]}")
        document: dict[str, Any] = json.loads(done.stdout)
        return document

    def commit(self, message: str) -> None:
        git(self.path, "add", "--all")
        git(self.path, "commit", "--quiet", "--message", message)

    def set_c(self, value: str) -> None:
        params = self.path / "params.yaml"
        text, count = re.subn(r"^  C: .*$", f"  C: {value}", params.read_text(), flags=re.M)
        assert count == 1, "the quickstart's params.yaml changed shape"
        params.write_text(text)
        self.commit(f"train with C={value}")

    def fresh_clone(self, path: Path) -> Path:
        """A new checkout of the repository elsewhere: what a CI runner gets (no build/, no .mlops-bot/)."""
        subprocess.run(["git", "clone", "--quiet", str(self.path), str(path)], check=True, capture_output=True,
                       timeout=60)
        assert not (path / "build").exists() and not (path / ".mlops-bot").exists()
        return path


def new_journey(setup: StoreSetup, path: Path) -> Journey:
    model = f"stores-{setup.name}-{uuid.uuid4().hex[:8]}"
    shutil.copytree(QUICKSTART, path, ignore=shutil.ignore_patterns("build", ".mlops-bot", "deployed", "__pycache__"))
    config = path / "ml.yaml"
    text, renamed = re.subn(r"^model: \{name: [\w.-]+,", f"model: {{name: {model},", config.read_text(), flags=re.M)
    text, moved = re.subn(r"experiment: digits\}", f"experiment: {model}}}", text)
    assert renamed == moved == 1, "the quickstart's ml.yaml changed shape; update new_journey"
    assert "${MLFLOW_TRACKING_URI:-local}" in text, "the quickstart no longer reads the tracking URI from the env"
    config.write_text(text)
    git(path, "init", "--quiet", "--initial-branch", "main")
    journey = Journey(setup, path, model)
    journey.commit("quickstart")
    return journey


def model_files(project: Path) -> dict[str, bytes]:
    model = project / "build" / "model"
    return {p.relative_to(model).as_posix(): p.read_bytes() for p in sorted(model.rglob("*")) if p.is_file()}


def client(setup: StoreSetup) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=setup.tracking_uri, registry_uri=setup.tracking_uri)


def assert_in_store(setup: StoreSetup, run_id: str, project: Path) -> None:
    """The run's artifact URI is under the setup's root, and the store itself holds its model, byte for byte."""
    run = client(setup).get_run(run_id)
    assert run.info.artifact_uri.startswith(setup.artifact_root.rstrip("/") + "/"), run.info.artifact_uri
    objects = setup.list_objects()
    for name, data in model_files(project).items():
        found = [o for o in objects if o.endswith(f"{run_id}/artifacts/model/{name}")]
        assert len(found) == 1, f"model/{name} of run {run_id} is not in the {setup.name} store: {objects}"
        assert setup.read_object(found[0]) == data
    assert any(o.endswith(f"{run_id}/artifacts/outs/build/metrics.json") for o in objects), objects


def assert_nothing_running(setup: StoreSetup, experiment: str) -> list[Any]:
    mlflow = client(setup)
    found = mlflow.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment} on the server"
    runs = mlflow.search_runs([found.experiment_id], max_results=100)
    assert runs, "the experiment has no run"
    assert [r.info.run_id for r in runs if r.info.status == "RUNNING"] == []
    return list(runs)


def assert_rescored(decision: dict[str, Any], report: str) -> None:
    """The champion was scored again, and the criteria compared against those values, not the logged ones."""
    champion = decision["champion"]
    rescored = champion["rescored_metrics"]
    assert rescored, decision
    assert decision["criteria"]
    for criterion in decision["criteria"]:
        assert criterion["baseline"] == "rescored", criterion
        assert criterion["champion"] == pytest.approx(rescored[criterion["metric"]]), criterion
    assert "rescored" in report and "champion rescored" in report


# --- the stores themselves, with MLflow's own client (no bot): proves the infrastructure ---------------------


def test_mlflow_writes_lists_and_reads_back_through_each_store(store_setup: StoreSetup, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in store_setup.env.items():
        monkeypatch.setenv(name, value)
    mlflow = client(store_setup)
    run = mlflow.create_run(mlflow.create_experiment(f"probe-{uuid.uuid4().hex[:8]}"))
    run_id = run.info.run_id
    assert run.info.artifact_uri.startswith(store_setup.artifact_root.rstrip("/") + "/"), run.info.artifact_uri
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    payload = os.urandom(300_000)
    (model / "model.pkl").write_bytes(payload)
    (model / "sub" / "meta.json").write_text('{"kind": "probe"}')
    mlflow.log_artifacts(run_id, str(model), "model")
    mlflow.set_terminated(run_id)

    assert sorted(a.path for a in mlflow.list_artifacts(run_id, "model")) == ["model/model.pkl", "model/sub"]
    back = Path(mlflow.download_artifacts(run_id, "model", str(tmp_path / "back")))
    assert (back / "model.pkl").read_bytes() == payload
    assert (back / "sub" / "meta.json").read_text() == '{"kind": "probe"}'
    stored = [o for o in store_setup.list_objects() if f"/{run_id}/artifacts/model/" in f"/{o}"]
    assert sorted(o.split("/artifacts/")[1] for o in stored) == ["model/model.pkl", "model/sub/meta.json"]


# --- the journey --------------------------------------------------------------------------------------------


def test_the_whole_journey_on_a_server_that_does_not_proxy_artifacts(store_setup: StoreSetup, tmp_path: Path,
                                                                     record_property: Any) -> None:
    journey = new_journey(store_setup, tmp_path / "project")
    first = journey.bot("run")
    assert first["reused"] is False and first["run_id"]
    assert_in_store(store_setup, first["run_id"], journey.path)
    promoted = journey.bot("promote")
    assert promoted["promoted"] is True and promoted["version"] == "1", promoted

    journey.set_c("1")  # the demo's better change: a significant improvement
    second = journey.bot("run")
    assert second["reused"] is False and second["run_id"] not in ("", first["run_id"])
    assert_in_store(store_setup, second["run_id"], journey.path)
    decision = journey.bot("compare", "--out", "report.md")  # rescoring downloads the champion's model
    assert decision["verdict"] == "pass" and decision["champion"]["version"] == "1", decision["summary"]
    assert decision["challenger"]["run_id"] == second["run_id"]
    assert_rescored(decision, (journey.path / "report.md").read_text())
    promoted = journey.bot("promote")
    assert promoted["promoted"] is True and promoted["version"] == "2", promoted

    clone = journey.fresh_clone(tmp_path / "fresh")
    again = journey.bot("run", where=clone)
    assert again["reused"] is True and again["run_id"] == second["run_id"], again
    assert all(step["status"] != "ran" for step in again["steps"]), again["steps"]
    assert model_files(clone) == model_files(journey.path)
    gate = journey.bot("gate", where=clone)
    assert gate["open"] is True and gate["version"] == "2", gate

    champion = client(store_setup).get_model_version_by_alias(journey.model, "champion")
    assert (champion.version, champion.run_id) == ("2", second["run_id"])
    assert_nothing_running(store_setup, journey.model)
    record_property("timings", journey.timings)
    print(f"\n{store_setup.name}: " + ", ".join(f"{name} {s:.1f}s" for name, s in journey.timings)
          + f"; total {sum(s for _, s in journey.timings):.1f}s")


# --- S3 and GCS behind a fault proxy ---------------------------------------------------------------------

# Seed 28 faults the very first request (and 5 of the first 10): some faults whatever the bot's request pattern.
FAULTS = FaultPlan(fault_share=0.2, delay_share=0.2, delay_s=0.3, max_faults=8, max_per_request=2, seed=28)


@pytest.fixture(params=["s3", "gcs"])
def faulty_store(request: pytest.FixtureRequest) -> Iterator[tuple[StoreSetup, FaultProxy]]:
    setup, proxy = behind_faults(request.getfixturevalue(f"{request.param}_setup"), FAULTS)
    try:
        yield setup, proxy
    finally:
        proxy.stop()


def test_a_store_answering_503_for_a_share_of_requests_ends_in_the_state_of_a_clean_run(
        faulty_store: tuple[StoreSetup, FaultProxy], tmp_path: Path) -> None:
    setup, proxy = faulty_store
    journey = new_journey(setup, tmp_path / "project")
    run_id = journey.bot("run")["run_id"]
    promoted = journey.bot("promote")
    assert promoted["promoted"] is True and promoted["version"] == "1", promoted
    assert proxy.faulted > 0, f"the proxy faulted nothing in {proxy.requests} requests"

    versions = client(setup).search_model_versions(f"name='{journey.model}'")
    assert [(v.version, v.run_id) for v in versions] == [("1", run_id)]
    assert client(setup).get_model_version_by_alias(journey.model, "champion").version == "1"
    assert_in_store(setup, run_id, journey.path)  # read straight from the emulator: every object whole
    runs = assert_nothing_running(setup, journey.model)
    assert [r.info.run_id for r in runs if r.info.status == "FINISHED"] == [run_id]

    faulted = proxy.faulted
    clone = journey.fresh_clone(tmp_path / "fresh")
    again = journey.bot("run", where=clone)  # the downloads go through the proxy as well
    assert again["reused"] is True and again["run_id"] == run_id
    assert model_files(clone) == model_files(journey.path)
    print(f"\n{setup.name} proxy: {proxy.requests} requests, {proxy.faulted} answered 503 ({faulted} before the fresh "
          f"clone's run), {proxy.delayed} delayed: {proxy.faults}")


# --- a server switched to --serve-artifacts after an experiment kept its s3:// location ------------------------


def test_a_champion_from_before_the_proxy_is_rescored_from_its_store(mlflow_server: MlflowServer,
                                                                     s3_setup: StoreSetup, tmp_path: Path) -> None:
    """The champion's run keeps its s3:// artifact URI (MLflow never moves it); the new experiment's runs are
    proxied. With the store's extra and credentials the bot reads each run where it is: the old champion is
    rescored from S3, the challenger uploaded through the proxy."""
    switched = replace(s3_setup, name="switched", tracking_uri=mlflow_server.uri, owner=False)
    journey = new_journey(switched, tmp_path / "project")
    client(switched).create_experiment(journey.model, artifact_location=f"{s3_setup.artifact_root}{journey.model}")
    old = journey.bot("run")
    assert client(switched).get_run(old["run_id"]).info.artifact_uri.startswith("s3://")
    assert journey.bot("promote")["version"] == "1"

    config = journey.path / "ml.yaml"
    config.write_text(config.read_text().replace(f"experiment: {journey.model}}}",
                                                 f"experiment: {journey.model}-proxied}}"))
    journey.set_c("1")
    new = journey.bot("run")
    assert client(switched).get_run(new["run_id"]).info.artifact_uri.startswith("mlflow-artifacts:")
    decision = journey.bot("compare", "--out", "report.md")
    assert decision["verdict"] == "pass" and decision["champion"]["version"] == "1", decision["summary"]
    assert_rescored(decision, (journey.path / "report.md").read_text())
    assert journey.bot("promote")["version"] == "2"
    assert journey.bot("gate")["open"] is True
