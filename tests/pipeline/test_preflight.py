"""`run` learns, before any step runs, that it can write where the experiment keeps its artifacts: it writes a
small note there through the same store client the upload will use. Each location it cannot write stops the
run with exit 2 or 3, a message naming the location (credentials redacted) and what to do, no step run and no
run created. Against a real `mlflow server --no-serve-artifacts`; experiments are made with the real mlflow
client, as a user's notebook would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from mlops_bot.registry import open_registry
from mlops_bot.registry.mlflow.artifacts import WRITE_CHECK
from tests.helpers.pipeline_project import COUNTER_ENV, executions, make_project
from tests.servers.mlflow_server import MlflowServer, free_port, start
from tests.servers.stores import StoreSetup

pytestmark = pytest.mark.mlflow

# No credentials from the machine, and no instance-metadata lookup that would wait for a cloud that is not there.
NO_AWS = {"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent",
          "AWS_EC2_METADATA_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def unproxied_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    root = tmp_path_factory.mktemp("mlflow-unproxied")
    server = start(root, ["--no-serve-artifacts", "--default-artifact-root", (root / "files").as_uri()])
    try:
        yield server
    finally:
        server.stop()


def experiment_at(server: MlflowServer, name: str, location: str) -> None:
    from mlflow import MlflowClient

    MlflowClient(server.uri).create_experiment(name, artifact_location=location)


def run_bot(project: Path, counter: Path, env: Mapping[str, str] = (), *, python: list[str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    """`mlops-bot run` with the machine's AWS variables removed and `env` added."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_S3_"))}
    return subprocess.run([sys.executable, *(python or ["-m", "mlops_bot"]), "-C", str(project), "run"],
                          env={**base, **NO_AWS, COUNTER_ENV: str(counter), **dict(env)},
                          capture_output=True, text=True, timeout=120, check=False)


def refused(server: MlflowServer, project: Path, experiment: str, counter: Path, done: subprocess.CompletedProcess[str],
            code: int) -> str:
    """Asserts the run stopped before any step with `code` and no run; returns the message."""
    assert done.returncode == code, done.stderr
    assert executions(counter) == []  # nothing trained for nothing
    assert "Traceback" not in done.stderr and "nothing was run" in done.stderr
    registry = open_registry(server.uri, project)
    try:
        found = registry.get_or_create_experiment(experiment)
        assert registry.search_runs([found.experiment_id]) == []
    finally:
        registry.close()
    return done.stderr


def test_a_shared_disk_location_is_written_before_the_first_step(unproxied_server: MlflowServer, tmp_path: Path,
                                                                  counter: Path) -> None:
    shared = tmp_path / "shared"
    experiment = f"shared-disk-{tmp_path.name}"
    experiment_at(unproxied_server, experiment, shared.as_uri())
    project = make_project(tmp_path / "project", uri=unproxied_server.uri, experiment=experiment)
    done = run_bot(project, counter)
    assert done.returncode == 0, done.stderr
    assert executions(counter) == ["prepare", "train", "evaluate"]
    assert (shared / WRITE_CHECK).is_file()
    assert [p.name for p in shared.glob("*/artifacts/model/model.txt")] == ["model.txt"]


def test_an_unknown_scheme_is_refused_with_the_schemes_that_work(unproxied_server: MlflowServer, tmp_path: Path,
                                                                 counter: Path) -> None:
    experiment = f"unknown-scheme-{tmp_path.name}"
    experiment_at(unproxied_server, experiment, "ftps://user:hunter2@files.example/models")
    project = make_project(tmp_path / "project", uri=unproxied_server.uri, experiment=experiment)
    err = refused(unproxied_server, project, experiment, counter, run_bot(project, counter), 2)
    assert "ftps://files.example/models" in err and "hunter2" not in err and "user" not in err
    assert "scheme 'ftps:'" in err and "s3:," in err and "mlflow-artifacts:," in err


def test_missing_store_credentials_name_the_variables_the_sdk_reads(unproxied_server: MlflowServer, tmp_path: Path,
                                                                    counter: Path) -> None:
    experiment = f"no-credentials-{tmp_path.name}"
    experiment_at(unproxied_server, experiment, "s3://models-bucket/experiments")
    project = make_project(tmp_path / "project", uri=unproxied_server.uri, experiment=experiment)
    err = refused(unproxied_server, project, experiment, counter, run_bot(project, counter), 2)
    assert "s3://models-bucket/experiments" in err and "credentials" in err
    assert "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in err and "MLFLOW_S3_ENDPOINT_URL" in err


def test_a_missing_extra_names_the_extra_to_install(unproxied_server: MlflowServer, tmp_path: Path,
                                                    counter: Path) -> None:
    experiment = f"no-extra-{tmp_path.name}"
    experiment_at(unproxied_server, experiment, "gs://models-bucket/experiments")
    project = make_project(tmp_path / "project", uri=unproxied_server.uri, experiment=experiment)
    # google-cloud-storage as if it were not installed: importing it fails as a missing package does.
    blocked = ["-c", "import sys; sys.modules['google.cloud.storage'] = None; "
                     "from mlops_bot.cli import main; sys.exit(main(sys.argv[1:]))"]
    err = refused(unproxied_server, project, experiment, counter, run_bot(project, counter, python=blocked), 2)
    assert "gs://models-bucket/experiments" in err and "pip install 'mlops-bot[gcs]'" in err


def test_a_store_that_does_not_answer_is_a_remote_error(unproxied_server: MlflowServer, tmp_path: Path,
                                                        counter: Path) -> None:
    experiment = f"unreachable-{tmp_path.name}"
    experiment_at(unproxied_server, experiment, "s3://models-bucket/experiments")
    project = make_project(tmp_path / "project", uri=unproxied_server.uri, experiment=experiment)
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = {"MLFLOW_S3_ENDPOINT_URL": closed, "AWS_ACCESS_KEY_ID": "key", "AWS_SECRET_ACCESS_KEY": "secret",
           "AWS_MAX_ATTEMPTS": "2"}
    err = refused(unproxied_server, project, experiment, counter, run_bot(project, counter, env), 3)
    assert "S3" in err and "s3://models-bucket/experiments" in err and closed in err


def test_the_proxied_server_and_the_embedded_store_pass_the_check(mlflow_server: MlflowServer, tmp_path: Path,
                                                                  counter: Path) -> None:
    for uri in (mlflow_server.uri, "local"):
        project = make_project(tmp_path / uri.replace("/", "_").replace(":", "_"), uri=uri,
                               experiment=f"proxied-{tmp_path.name}")
        done = run_bot(project, counter)
        assert done.returncode == 0, done.stderr
    assert executions(counter) == ["prepare", "train", "evaluate"] * 2


def test_a_bucket_that_does_not_exist_is_named_before_any_step(s3_setup: StoreSetup, tmp_path: Path,
                                                               counter: Path) -> None:
    """Against a real S3 endpoint (moto): the credentials work, the bucket is not there."""
    experiment = f"no-bucket-{tmp_path.name}"
    server = s3_setup.mlflow
    experiment_at(server, experiment, "s3://no-such-bucket-here/experiments")
    project = make_project(tmp_path / "project", uri=server.uri, experiment=experiment)
    err = refused(server, project, experiment, counter, run_bot(project, counter, s3_setup.env), 2)
    assert "s3://no-such-bucket-here/experiments" in err and "bucket or container that does not exist" in err
