"""Where the kubernetes backend sends its requests and credentials, how its calls retry and fail, and the stand-in
API server's own contract (a 404 `Status` for anything it does not serve, the Job's default orphaning delete,
`$(VAR)` expansion), all against tests/servers/kubernetes_api.py without a tracking server."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from mlops_bot.config.backends import StepBackend
from mlops_bot.errors import StepFailed
from mlops_bot.pipeline.backends import kubernetes_client, kubernetes_watch
from mlops_bot.pipeline.backends.kubernetes_client import connect
from tests.plugins.kubernetes_api import write_kubeconfig
from tests.servers.kubernetes_api import TOKEN, KubernetesApiServer, start


def backend(**fields: Any) -> StepBackend:
    return StepBackend(type="kubernetes", image="img:1", **fields)


def read_jobs(server: KubernetesApiServer, cluster: Any) -> None:  # server: whose log the test reads
    cluster.call("list jobs", cluster.batch.list_namespaced_job, cluster.namespace)


def test_the_kubeconfig_token_goes_only_to_its_own_server(kubernetes_api: KubernetesApiServer, tmp_path: Path) -> None:
    config = write_kubeconfig(tmp_path / "config", kubernetes_api.origin, namespace="ml")
    other = start(tmp_path / "other")
    try:
        same = connect(backend(address=kubernetes_api.origin + "/"), "train", {"KUBECONFIG": str(config)})
        read_jobs(kubernetes_api, same)
        assert kubernetes_api.seen[-1].headers["authorization"] == f"Bearer {TOKEN}"
        assert (same.namespace, same.credentials) == ("ml", "kubeconfig context standin")
        elsewhere = connect(backend(address=other.origin, namespace="default"), "train", {"KUBECONFIG": str(config)})
        with pytest.raises(StepFailed) as refused:  # anonymous, as a real API server sees a request without a token
            read_jobs(other, elsewhere)
    finally:
        other.stop()
    assert "403 Forbidden" in str(refused.value) and 'User "system:anonymous"' in str(refused.value)
    assert "(no credentials)" in str(refused.value)
    assert all("authorization" not in seen.headers for seen in other.seen)  # the token never left for `other`


def test_without_an_address_the_current_context_decides(kubernetes_api: KubernetesApiServer, tmp_path: Path) -> None:
    config = write_kubeconfig(tmp_path / "config", kubernetes_api.origin, namespace="ml")
    cluster = connect(backend(), "train", {"KUBECONFIG": f"{tmp_path / 'absent'}:{config}"})
    assert cluster.url == kubernetes_api.origin and cluster.namespace == "ml"
    assert connect(backend(namespace="default"), "train", {"KUBECONFIG": str(config)}).namespace == "default"
    read_jobs(kubernetes_api, cluster)


def test_no_address_no_kubeconfig_and_no_pod_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StepFailed, match=r"no backend\.address in ml\.yaml, no kubeconfig"):
        connect(backend(), "train", {"KUBECONFIG": str(tmp_path / "absent")})


def test_passing_errors_are_retried_and_lasting_ones_reported(kubernetes_api: KubernetesApiServer,
                                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_kubeconfig(tmp_path / "config", kubernetes_api.origin)
    cluster = connect(backend(), "train", {"KUBECONFIG": str(config)})
    kubernetes_api.fail("listBatchV1NamespacedJob", 503, "etcdserver: leader changed", times=2)
    started = time.monotonic()
    read_jobs(kubernetes_api, cluster)
    assert [s.status for s in kubernetes_api.calls("listBatchV1NamespacedJob")] == [503, 503, 200]
    assert time.monotonic() - started < 5
    monkeypatch.setattr(kubernetes_client, "BACKOFF_S", (0.01,))
    kubernetes_api.fail("listBatchV1NamespacedJob", 500, times=4, body={"kind": "Status", "message": "boom"})
    with pytest.raises(StepFailed, match="answered 500 to 'list jobs' in namespace ml: boom"):
        read_jobs(kubernetes_api, cluster)
    assert cluster.call("delete jobs", cluster.batch.delete_namespaced_job, "absent", "ml", missing_ok=True) is None
    missing_ns = connect(backend(namespace="nope"), "train", {"KUBECONFIG": str(config)})
    with pytest.raises(StepFailed, match=r'"nope" not found; create the namespace or set backend\.namespace'):
        read_jobs(kubernetes_api, missing_ns)


def http(server: KubernetesApiServer, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any], Any]:
    request = urllib.request.Request(server.origin + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def test_the_standin_answers_what_it_does_not_serve_as_kubernetes_does(kubernetes_api: KubernetesApiServer) -> None:
    for path in ("/apis/apps/v1/namespaces/ml/deployments", "/api/v1/namespaces/ml/jobs", "/healthz/nothing"):
        assert http(kubernetes_api, "GET", path)[::2] == (404, {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "the server could not find the requested resource", "reason": "NotFound", "details": {},
            "code": 404})
    code, _, doc = http(kubernetes_api, "POST", "/apis/batch/v1/namespaces/ml/jobs/x")
    assert (code, doc["reason"]) == (405, "MethodNotAllowed")
    code, _, doc = http(kubernetes_api, "GET", "/apis/batch/v1/namespaces/ml/jobs/absent")
    assert (code, doc["message"], doc["details"]) == (404, 'jobs.batch "absent" not found',
                                                       {"name": "absent", "group": "batch", "kind": "jobs"})


def test_the_standin_job_runs_orphans_and_expands_as_kubernetes_does(kubernetes_api: KubernetesApiServer) -> None:
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "echo"}, "spec": {"backoffLimit": 0,
           "template": {"spec": {"restartPolicy": "Never", "containers": [{
               "name": "step", "image": "busybox", "command": ["sh", "-c", "echo $(GREETING) $$(X) $(NONE); sleep 30"],
               "env": [{"name": "WHO", "value": "world"}, {"name": "GREETING", "value": "hello-$(WHO)"}]}]}}}}
    assert http(kubernetes_api, "POST", "/apis/batch/v1/namespaces/ml/jobs", job)[0] == 201
    assert http(kubernetes_api, "POST", "/apis/batch/v1/namespaces/ml/jobs", job)[2]["reason"] == "AlreadyExists"
    deadline = time.monotonic() + 10
    while not kubernetes_api.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert kubernetes_api.started[0]["argv"][2] == "echo hello-world $(X) $(NONE); sleep 30"
    code, headers, doc = http(kubernetes_api, "DELETE", "/apis/batch/v1/namespaces/ml/jobs/echo")
    assert code == 200 and doc["status"] == "Success" and "child pods are preserved" in headers["Warning"]
    assert kubernetes_api.names("jobs") == [] and len(kubernetes_api.names("pods")) == 1  # orphaned, as batch/v1
    pod = kubernetes_api.names("pods")[0]
    assert http(kubernetes_api, "DELETE", f"/api/v1/namespaces/ml/pods/{pod}")[0] == 200
    assert all(k.finished.wait(10) for k in kubernetes_api.kubelets.values())


def test_follow_streams_the_log_beats_and_reports_the_exit_code(kubernetes_api: KubernetesApiServer, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kubernetes_watch, "HEARTBEAT_S", 0.3)
    cluster = connect(backend(), "train", {"KUBECONFIG": str(write_kubeconfig(tmp_path / "c", kubernetes_api.origin))})
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "beats"}, "spec": {"backoffLimit": 0,
           "template": {"spec": {"restartPolicy": "Never", "containers": [{
               "name": "step", "image": "busybox", "command": ["sh", "-c", "echo one; sleep 1.2; echo two; exit 4"],
           }]}}}}
    cluster.call("create jobs", cluster.batch.create_namespaced_job, "ml", job)
    lines: list[str] = []
    outcome = kubernetes_watch.follow(cluster, "beats", "step 1/1 train", lines.append)
    assert (outcome.condition, outcome.reason, outcome.exit_code) == ("Failed", "BackoffLimitExceeded", 4)
    assert outcome.tail == ["one", "two"]
    assert [line for line in lines if line.startswith("[train]")] == ["[train] one", "[train] two"]
    assert any(re.fullmatch(r"step 1/1 train: still running \(\d+s\)", line) for line in lines), lines
