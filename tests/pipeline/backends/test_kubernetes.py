"""`backend: kubernetes` end to end: `mlops-bot run` against the real mlflow server and the Kubernetes API stand-in
(tests/servers/kubernetes_api.py, whose kubelet runs the pod's container here). The train step runs as a Job;
its outs come back through the run's artifacts, equal to a local run's, and every fault ends in exit 3 with the
run FAILED (KILLED on SIGTERM) and the Job, its Secret and its ConfigMap deleted."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers.pipeline_project import SCRIPTS, cli, executions, make_project, run_until
from tests.pipeline.test_run_states import statuses
from tests.plugins.kubernetes_api import write_kubeconfig
from tests.servers.kubernetes_api import USER, KubernetesApiServer
from tests.servers.mlflow_server import MlflowServer, free_port

pytestmark = [pytest.mark.mlflow, pytest.mark.slow]

IMAGE = "python:3.12-slim"
SECRET = "s3cr3t-api-token"
TRAIN = SCRIPTS["train.py"] + (
    "import os\nfrom mlflow.tracking import MlflowClient\n"
    "MlflowClient().log_metric(os.environ['MLFLOW_RUN_ID'], 'k8s_rows', len(rows))\n")
SLOW = ("import os, pathlib, time\npathlib.Path({marker!r}).write_text(str(os.getpid()))\n"
        "print('working', flush=True)\ntime.sleep(60)\n")
FAILING = ("import sys\nfor i in range(30):\n    print('line', i)\n"
           "print('bad data in row 7', file=sys.stderr)\nsys.exit(7)\n")


def project_at(root: Path, uri: str, experiment: str, backend: str | None, train: str = TRAIN,
               timeout: float | None = None) -> Path:
    """The pipeline project with `train` on `backend` (a flow mapping) or local, logging a metric with mlflow."""
    project = make_project(root, uri=uri, experiment=experiment)
    (project / "train.py").write_text(train)
    extra = f"    env: {{STEP_API_TOKEN: {SECRET}}}\n"
    extra += f"    backend: {backend}\n" if backend else ""
    extra += f"    timeout: {timeout}\n" if timeout else ""
    text = (project / "ml.yaml").read_text().replace("    outs: [build/model]\n", "    outs: [build/model]\n" + extra)
    (project / "ml.yaml").write_text(text)
    return project


def on_standin(server: KubernetesApiServer, image: str = IMAGE) -> str:
    return f'{{type: kubernetes, image: "{image}", address: "{server.origin}", num_cpus: 1, memory: 1GiB}}'


def nothing_left(server: KubernetesApiServer) -> None:
    """The Job, its pod, Secret and ConfigMap are gone, the Job deleted with its pods (Background)."""
    deadline = time.monotonic() + 10
    while server.names("pods") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert {r: server.names(r) for r in ("jobs", "pods", "secrets", "configmaps")} == {
        "jobs": [], "pods": [], "secrets": [], "configmaps": []}
    assert [opts.get("propagationPolicy") for res, _, opts in server.deleted if res == "jobs"] == ["Background"]
    assert all(k.finished.wait(10) for k in server.kubelets.values())


@pytest.fixture
def kubeconfig(tmp_path: Path, kubernetes_api: KubernetesApiServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = write_kubeconfig(tmp_path / "kubeconfig", kubernetes_api.origin)
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path


def test_a_step_on_kubernetes_returns_the_outs_of_a_local_run(mlflow_server: MlflowServer, tmp_path: Path,
                                                              kubernetes_api: KubernetesApiServer, kubeconfig: Path,
                                                              counter: Path) -> None:
    local = project_at(tmp_path / "local", mlflow_server.uri, f"k8s-local-{tmp_path.name}", None)
    assert cli(local, counter=counter).returncode == 0
    experiment = f"k8s-{tmp_path.name}"
    project = project_at(tmp_path / "remote", mlflow_server.uri, experiment, on_standin(kubernetes_api))
    first = cli(project, "--json", counter=counter)
    assert first.returncode == 0, first.stderr
    run_id = json.loads(first.stdout)["run_id"]
    assert "[train] trained with C 0.5" in first.stderr and "mlops-bot-remote: outs uploaded" in first.stderr
    assert (project / "ml.lock").read_text() == (local / "ml.lock").read_text()  # same keys, same outs
    for out in ("build/model/model.txt", "build/model/MLmodel", "build/metrics.json"):
        assert (project / out).read_bytes() == (local / out).read_bytes(), out
    assert MlflowClient(mlflow_server.uri).get_run(run_id).data.metrics["k8s_rows"] == 10
    nothing_left(kubernetes_api)

    created = kubernetes_api.calls("createBatchV1NamespacedJob")
    assert len(created) == 1 and created[0].path == "/apis/batch/v1/namespaces/ml/jobs"  # the context's namespace
    assert SECRET not in json.dumps(created[0].body)
    secret = kubernetes_api.calls("createCoreV1NamespacedSecret")[0].body
    assert secret["stringData"]["STEP_API_TOKEN"] == SECRET
    job, container = created[0].body, created[0].body["spec"]["template"]["spec"]["containers"][0]
    assert job["spec"]["suspend"] is True and job["spec"]["backoffLimit"] == 0  # as sent, nothing dropped
    assert container["command"][:2] == ["python", "/opt/mlops-bot/remote_entry.py"]
    assert container["resources"] == {"requests": {"cpu": "1", "memory": str(1024 ** 3)},
                                      "limits": {"cpu": "1", "memory": str(1024 ** 3)}}
    assert {"name": "STEP_API_TOKEN", "valueFrom": {"secretKeyRef": {"name": job["metadata"]["name"],
                                                                     "key": "STEP_API_TOKEN"}}} in container["env"]
    made = {o["kind"]: o for o in kubernetes_api.history}
    for kind in ("Secret", "ConfigMap"):
        assert [o["uid"] for o in made[kind]["metadata"]["ownerReferences"]] == [made["Job"]["metadata"]["uid"]]
    order = [s.operation for s in kubernetes_api.seen if s.method in ("POST", "PATCH")]
    assert order == ["createBatchV1NamespacedJob", "createCoreV1NamespacedSecret", "createCoreV1NamespacedConfigMap",
                     "patchBatchV1NamespacedJob"]  # the pod starts only once what it reads exists
    pod = kubernetes_api.started[0]
    assert pod["env"]["STEP_API_TOKEN"] == SECRET and pod["env"]["MLFLOW_RUN_ID"] == run_id
    assert pod["env"]["MLFLOW_TRACKING_URI"] == mlflow_server.uri
    assert pod["argv"][1].endswith("/remote_entry.py") and "/opt/" not in pod["argv"][1]  # the mounted ConfigMap

    again = cli(project, "--json", counter=counter)
    assert [s["status"] for s in json.loads(again.stdout)["steps"]] == ["cached"] * 3
    fresh = project_at(tmp_path / "fresh", mlflow_server.uri, experiment, on_standin(kubernetes_api))
    reused = cli(fresh, "--json", counter=counter)
    assert [s["status"] for s in json.loads(reused.stdout)["steps"]] == ["reused"] * 3
    assert (fresh / "build/model/model.txt").read_bytes() == (local / "build/model/model.txt").read_bytes()
    assert len(kubernetes_api.calls("createBatchV1NamespacedJob")) == 1
    assert executions(counter).count("train") == 2  # the local run and the one Job


def failing_run(server: KubernetesApiServer, tmp_path: Path, mlflow_server: MlflowServer, backend: str,
                **options: Any) -> tuple[str, Path, str]:
    experiment = f"k8s-fault-{tmp_path.name}"
    project = project_at(tmp_path / "project", mlflow_server.uri, experiment, backend, **options)
    started = time.monotonic()
    done = cli(project)
    assert done.returncode == 3, done.stderr
    assert time.monotonic() - started < 60
    assert statuses(mlflow_server.uri, project, experiment) == ["FAILED"]
    return done.stderr, project, experiment


def test_an_unreachable_api_server_fails_the_step_naming_it(mlflow_server: MlflowServer, tmp_path: Path,
                                                            kubernetes_api: KubernetesApiServer,
                                                            kubeconfig: Path) -> None:
    address = f"http://user:pw@127.0.0.1:{free_port()}/"
    backend = f'{{type: kubernetes, image: "{IMAGE}", address: "{address}"}}'
    stderr, _, _ = failing_run(kubernetes_api, tmp_path, mlflow_server, backend)
    assert f"the Kubernetes API server at http://127.0.0.1:{address.rsplit(':', 1)[1].rstrip('/')}" in stderr
    assert "cannot be reached" in stderr and "after 4 attempts" in stderr and "pw@" not in stderr


def test_a_token_the_cluster_refuses_is_a_401(mlflow_server: MlflowServer, tmp_path: Path,
                                              kubernetes_api: KubernetesApiServer, kubeconfig: Path) -> None:
    write_kubeconfig(kubeconfig, kubernetes_api.origin, token="expired-token")
    stderr, _, _ = failing_run(kubernetes_api, tmp_path, mlflow_server, on_standin(kubernetes_api))
    assert "did not accept the credentials (kubeconfig context standin): 401 Unauthorized" in stderr
    assert kubernetes_api.names("jobs") == [] and "could not be deleted" not in stderr  # nothing was made


def test_a_missing_permission_is_named(mlflow_server: MlflowServer, tmp_path: Path,
                                       kubernetes_api: KubernetesApiServer, kubeconfig: Path) -> None:
    kubernetes_api.grants[USER] = {"get jobs", "list pods", "get pods/log"}
    stderr, _, _ = failing_run(kubernetes_api, tmp_path, mlflow_server, on_standin(kubernetes_api))
    assert "refused to let us create jobs in namespace ml: 403 Forbidden" in stderr
    assert f'User "{USER}" cannot create resource "jobs" in API group "batch"' in stderr
    assert "a Role granting create on jobs.batch" in stderr
    assert kubernetes_api.calls("deleteBatchV1NamespacedJob") == [] and "could not be deleted" not in stderr


def test_an_image_that_cannot_be_pulled_fails_fast(mlflow_server: MlflowServer, tmp_path: Path,
                                                   kubernetes_api: KubernetesApiServer, kubeconfig: Path) -> None:
    image = "registry.example/team/trainer:missing"
    kubernetes_api.image_failures[image] = (f'failed to pull and unpack image "{image}": '
                                            "registry.example/team/trainer:missing: not found")
    stderr, _, _ = failing_run(kubernetes_api, tmp_path, mlflow_server, on_standin(kubernetes_api, image))
    assert "cannot start: ErrImagePull: failed to pull and unpack image" in stderr and "check backend.image" in stderr
    assert kubernetes_api.started == []
    nothing_left(kubernetes_api)


def test_a_step_over_its_timeout_is_stopped(mlflow_server: MlflowServer, tmp_path: Path,
                                            kubernetes_api: KubernetesApiServer, kubeconfig: Path) -> None:
    marker = tmp_path / "step.pid"
    stderr, _, _ = failing_run(kubernetes_api, tmp_path, mlflow_server, on_standin(kubernetes_api),
                               train=SLOW.format(marker=str(marker)), timeout=12)
    assert "step 'train' timed out after 12s on Kubernetes" in stderr and "activeDeadlineSeconds" in stderr
    assert "[train] working" in stderr
    nothing_left(kubernetes_api)
    assert not Path(f"/proc/{marker.read_text()}").exists()


def test_a_failing_step_reports_its_exit_code_and_last_lines(mlflow_server: MlflowServer, tmp_path: Path,
                                                             kubernetes_api: KubernetesApiServer,
                                                             kubeconfig: Path) -> None:
    stderr, _, _ = failing_run(kubernetes_api, tmp_path, mlflow_server, on_standin(kubernetes_api), train=FAILING)
    assert "step 'train' failed with exit code 7 on Kubernetes" in stderr
    last = stderr[stderr.index("failed with exit code 7"):]
    assert "bad data in row 7" in last and "line 29" in last and "line 5\n" not in last  # the last 20 lines
    nothing_left(kubernetes_api)


def test_an_api_server_gone_mid_step_fails_it_and_says_what_is_left(mlflow_server: MlflowServer, tmp_path: Path,
                                                                    kubernetes_api: KubernetesApiServer,
                                                                    kubeconfig: Path) -> None:
    marker = tmp_path / "step.pid"
    experiment = f"k8s-gone-{tmp_path.name}"
    project = project_at(tmp_path / "project", mlflow_server.uri, experiment, on_standin(kubernetes_api),
                         train=SLOW.format(marker=str(marker)))
    proc = run_until(project, marker)
    kubernetes_api.stop()  # the cluster goes away (its kubelet stops the container too)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 3, stderr
    assert f"the Kubernetes API server at {kubernetes_api.origin} cannot be reached" in stderr
    assert "job, secret, configmap mlops-bot-" in stderr and "could not be deleted" in stderr
    assert "kubectl delete job,secret,configmap mlops-bot-" in stderr
    assert statuses(mlflow_server.uri, project, experiment) == ["FAILED"]


def test_sigterm_deletes_the_job_and_ends_the_run_killed(mlflow_server: MlflowServer, tmp_path: Path,
                                                         kubernetes_api: KubernetesApiServer,
                                                         kubeconfig: Path) -> None:
    marker = tmp_path / "step.pid"
    experiment = f"k8s-term-{tmp_path.name}"
    project = project_at(tmp_path / "project", mlflow_server.uri, experiment, on_standin(kubernetes_api),
                         train=SLOW.format(marker=str(marker)))
    proc = run_until(project, marker)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "cancelled; deleting Job mlops-bot-" in stderr
    nothing_left(kubernetes_api)
    assert not Path(f"/proc/{marker.read_text()}").exists()
    assert statuses(mlflow_server.uri, project, experiment) == ["KILLED"]
