"""The champion's rescoring runs where its evaluation step runs: a step with `backend: kubernetes` is rescored by a
Job (on the Kubernetes API stand-in, whose kubelet runs it here), one with `backend: ray` by a job on a real Ray
head; either fetches the champion's model from its run and returns its results through the rescoring record, with
what the step logs kept off the tracking server."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from mlops_bot.config import load_config
from mlops_bot.config.model import Config
from mlops_bot.flows.compare import compare_registry
from mlops_bot.flows.promote import promote_flow
from mlops_bot.pipeline.execute import run_pipeline
from mlops_bot.pipeline.result import PipelineResult
from mlops_bot.registry import open_registry
from mlops_bot.registry.base import Registry
from tests.helpers.projects import LOCAL
from tests.helpers.ray_cluster import RayCluster
from tests.helpers.ray_project import jobs_of
from tests.lifecycle.test_rescore import EVALUATE, ML_YAML, TRAIN
from tests.plugins.kubernetes_api import write_kubeconfig
from tests.servers.kubernetes_api import KubernetesApiServer
from tests.servers.mlflow_server import MlflowServer

pytestmark = [pytest.mark.mlflow, pytest.mark.slow]

# what a rescoring logs must not become a run on the server (a local rescoring gives it a scratch store too)
LOGS = """\
if "MLOPS_BOT_MODEL_DIR" in os.environ:
    import mlflow
    mlflow.set_experiment("stray-rescoring")
    with mlflow.start_run():
        mlflow.log_metric("stray", 1)
"""


def project(root: Path, uri: str, experiment: str, backend: str) -> Path:
    root.mkdir()
    ml_yaml = ML_YAML.replace("version: 1\n", f"version: 1\ntracking: {{uri: '{uri}', experiment: {experiment}}}\n")
    ml_yaml = ml_yaml.replace("name: fair,", f"name: {experiment},")  # the server is shared: a champion of its own
    ml_yaml = ml_yaml.replace("metrics: build/metrics.json}", f"metrics: build/metrics.json, backend: {backend}}}")
    for name, text in (("train.py", TRAIN), ("evaluate.py", EVALUATE + LOGS), ("ml.yaml", ml_yaml),
                       ("w.txt", "0.5"), ("data.txt", "0.5")):
        (root / name).write_text(textwrap.dedent(text))
    return root


def test_the_champion_is_rescored_on_the_steps_cluster(mlflow_server: MlflowServer, tmp_path: Path,
                                                       kubernetes_api: KubernetesApiServer,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kubeconfig", kubernetes_api.origin)))
    backend = f'{{type: kubernetes, image: "python:3.12-slim", address: "{kubernetes_api.origin}"}}'
    root = project(tmp_path / "p", mlflow_server.uri, f"rescore-k8s-{tmp_path.name}", backend)
    config, registry, first, run = champion_and_challenger(root, mlflow_server)
    assert len(kubernetes_api.calls("createBatchV1NamespacedJob")) == 2  # the evaluate steps, on the cluster
    decision = compare_registry(config, registry, run.run_id)
    assert decision.champion is not None and decision.champion.rescored_metrics == {"score": 0.6}
    assert decision.passed, decision.summary

    jobs = kubernetes_api.calls("createBatchV1NamespacedJob")
    assert len(jobs) == 3  # the challenger's evaluate, then the champion's
    rescoring = kubernetes_api.started[-1]
    assert rescoring["env"]["MLOPS_BOT_MODEL_DIR"] == "mlops-bot-rescore/model"
    assert "--scratch-tracking" in rescoring["argv"] and "MLFLOW_RUN_ID" not in rescoring["env"]
    assert first.run_id in rescoring["argv"]  # fetches the model from the champion's run, records there
    assert MlflowClient(mlflow_server.uri).get_experiment_by_name("stray-rescoring") is None  # logged on the cluster
    recorded_once(config, registry, run.run_id)
    assert len(kubernetes_api.calls("createBatchV1NamespacedJob")) == 3
    registry.close()


def test_the_champion_is_rescored_on_ray(mlflow_server: MlflowServer, tmp_path: Path,
                                         ray_cluster: RayCluster) -> None:
    experiment = f"rescore-ray-{tmp_path.name}"
    root = project(tmp_path / "p", mlflow_server.uri, experiment, f'{{type: ray, address: "{ray_cluster.address}"}}')
    config, registry, first, run = champion_and_challenger(root, mlflow_server)
    decision = compare_registry(config, registry, run.run_id)
    assert decision.champion is not None and decision.champion.rescored_metrics == {"score": 0.6}
    assert len(jobs_of(ray_cluster.address, experiment)) == 2  # the evaluate steps, on the cluster
    rescorings = rescorings_of(ray_cluster, first.run_id)
    assert len(rescorings) == 1 and rescorings[0].status == "SUCCEEDED"
    assert MlflowClient(mlflow_server.uri).get_experiment_by_name("stray-rescoring") is None
    recorded_once(config, registry, run.run_id)
    assert len(rescorings_of(ray_cluster, first.run_id)) == 1
    registry.close()


def rescorings_of(cluster: RayCluster, champion_run: str) -> list[Any]:
    """The jobs that rescored the champion: recording to its run, the step's own logging kept off the server."""
    from ray.job_submission import JobSubmissionClient

    return [j for j in JobSubmissionClient(cluster.address).list_jobs()
            if (j.metadata or {}).get("mlops-bot/run-id") == champion_run and "--scratch-tracking" in j.entrypoint]


def champion_and_challenger(root: Path, server: MlflowServer) -> tuple[Config, Registry, PipelineResult,
                                                                        PipelineResult]:
    """The first run becomes the champion (w=0.5, scoring 1.0 on data 0.5); then the world moves (data 0.9: the
    champion now scores 0.6) and a challenger (w=0.8) runs."""
    config = load_config(root / "ml.yaml", env={})
    registry = open_registry(server.uri, root)
    first = run_pipeline(config, registry)
    promote_flow(config, registry, compare_registry(config, registry, first.run_id), LOCAL, run_given=True)
    (root / "data.txt").write_text("0.9")
    (root / "w.txt").write_text("0.8")
    return config, registry, first, run_pipeline(config, registry)


def recorded_once(config: Config, registry: Registry, run_id: str) -> None:
    """A second comparison reads the record the rescoring left on the champion's run: nothing runs again."""
    again = compare_registry(config, registry, run_id)
    assert again.champion is not None and again.champion.rescored_metrics == {"score": 0.6}
    assert again.champion.rescore_reused
