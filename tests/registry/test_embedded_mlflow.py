"""The embedded store and MLflow's own tools (issue #15): `mlops-bot ui`'s export read with the real MlflowClient
and served by `mlflow ui`; MLflow's CLI pointed at files under .mlops-bot/ changes none of them; a step's own
mlflow logging (autolog) lands in the bot's run and nothing in mlruns/."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from mlops_bot import cli
from mlops_bot.registry.local.export import export_store
from mlops_bot.registry.local.store import LocalRegistry

ROOT = Path(__file__).resolve().parents[2]
MLFLOW = [sys.executable, "-m", "mlflow"]


def _filled(root: Path) -> tuple[LocalRegistry, str]:
    registry = LocalRegistry(root / ".mlops-bot")
    experiment = registry.get_or_create_experiment("exp")
    run = registry.create_run(experiment.experiment_id, name="r1", tags={"team": "ml"})
    registry.log_batch(run.run_id, params={"C": "1.0"}, metrics={"accuracy": 0.5}, step=0)
    registry.log_batch(run.run_id, metrics={"accuracy": 0.9}, step=1)
    model_dir = root / "model"
    model_dir.mkdir()
    (model_dir / "weights.txt").write_text("w")
    registry.upload_artifacts(run.run_id, model_dir, "model")
    registry.update_run(run.run_id, "FINISHED")
    registry.get_or_create_registered_model("m")
    for _ in range(2):
        registry.create_model_version("m", f"{run.artifact_uri}/model", run.run_id, tags={"verdict": "pass"})
        other = registry.create_run(experiment.experiment_id)
        registry.update_run(other.run_id, "FINISHED")
        run = other
    registry.set_alias("m", "champion", "1")
    return registry, registry.search_runs([experiment.experiment_id], "attributes.run_name = 'r1'")[0].run_id


def test_the_export_holds_runs_metrics_params_artifacts_versions_and_aliases(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    registry, run_id = _filled(tmp_path)
    exported = export_store(registry)
    export_store(registry)  # regenerated, not appended to
    client = MlflowClient(exported.backend_store_uri, exported.backend_store_uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "r1"
    assert run.data.params == {"C": "1.0"} and run.data.metrics == {"accuracy": 0.9}
    assert run.data.tags["team"] == "ml"
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "accuracy")] == [(0, 0.5), (1, 0.9)]
    assert [a.path for a in client.list_artifacts(run_id, "model")] == ["model/weights.txt"]
    assert len(client.search_runs([run.info.experiment_id])) == 3
    versions = client.search_model_versions("name = 'm'")
    assert sorted(v.version for v in versions) == [1, 2]
    champion = client.get_model_version_by_alias("m", "champion")
    assert champion.version == 1 and champion.run_id == run_id and champion.tags == {"verdict": "pass"}
    assert Path(champion.source.removeprefix("file://"), "weights.txt").read_text() == "w"
    registry.close()


def test_ui_export_only_prints_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    registry, _ = _filled(tmp_path)
    registry.close()
    (tmp_path / "ml.yaml").write_text("version: 1\nmodel: {name: m, artifact: model}\ntracking: {uri: local, "
                                      "experiment: exp}\npipeline:\n  s: {cmd: 'true'}\n")
    assert cli.main(["-C", str(tmp_path), "ui", "--export-only", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["runs"] == 3 and shown["models"] == 1
    assert shown["command"][:4] == ["mlflow", "ui", "--backend-store-uri",
                                    f"sqlite:///{tmp_path.resolve()}/.mlops-bot/mlflow/mlflow.db"]


def _every_state_file(state: Path) -> None:
    """The other files the bot keeps under .mlops-bot/, made by their own code: the run lock, the spool and the
    watch spool (SQLite), the serve lock and the audit log's lock."""
    import os

    from mlops_bot.events.audit import EventLog
    from mlops_bot.events.event import Event
    from mlops_bot.pipeline.execute import _exclusive
    from mlops_bot.service.spool import connect, hold_exclusive

    with _exclusive(state):
        pass
    events = state / "events"
    for database in ("spool.db", "watch.db"):
        connect(events / database).close()
    os.close(hold_exclusive(events / "serve.lock", "serve"))
    EventLog(events).append(Event("run.started", "runs/x", {"run_id": "x"}))


def _digests(state: Path) -> dict[str, str]:
    return {p.relative_to(state).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(state.rglob("*")) if p.is_file()}


def _mlflow(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MLFLOW, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.slow
def test_mlflow_tools_pointed_at_the_embedded_store_change_nothing(tmp_path: Path) -> None:
    registry, run_id = _filled(tmp_path)
    registry.close()
    state = tmp_path / ".mlops-bot"
    _every_state_file(state)
    before = _digests(state)
    databases = [p for p in before if not p.startswith("artifacts/")]
    for name in databases:
        uri = f"sqlite:///{state / name}"
        server = _mlflow("server", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", "1", cwd=tmp_path)
        assert server.returncode != 0, server.stderr[-2000:]
        upgrade = _mlflow("db", "upgrade", uri, cwd=tmp_path)
        assert upgrade.returncode != 0
        assert _digests(state) == before, name
    assert "already an index named tags" in server.stderr or "not a database" in server.stderr
    again = LocalRegistry(state)
    assert again.get_run(run_id).metrics == {"accuracy": 0.9}
    again.get_or_create_experiment("still works")
    again.close()


def test_a_store_mlflow_already_changed_is_repaired(tmp_path: Path) -> None:
    registry, run_id = _filled(tmp_path)
    registry.close()
    import sqlite3

    conn = sqlite3.connect(tmp_path / ".mlops-bot" / "registry.db")
    for name in ("tags", "alembic_version"):
        conn.execute(f"DROP INDEX {name}")
    conn.execute("CREATE TABLE tags (key TEXT, value TEXT, run_uuid TEXT)")
    conn.execute("CREATE TABLE alembic_version (version_num TEXT)")
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()
    again = LocalRegistry(tmp_path / ".mlops-bot")
    assert again.get_run(run_id).params == {"C": "1.0"}
    with again._db.read() as db:
        kinds = dict(db.execute("SELECT name, type FROM sqlite_master WHERE name IN ('tags', 'alembic_version')"))
    assert kinds == {"tags": "index", "alembic_version": "index"}
    again.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_mlflow_ui_serves_the_export(tmp_path: Path) -> None:
    registry, run_id = _filled(tmp_path)
    exported = export_store(registry)
    registry.close()
    port = _free_port()
    server = subprocess.Popen([*MLFLOW, *exported.ui_command("127.0.0.1", port)[1:]], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline, body = time.monotonic() + 90, None
        while body is None and time.monotonic() < deadline:
            try:
                url = f"http://127.0.0.1:{port}/api/2.0/mlflow/runs/get?run_id={run_id}"
                with urllib.request.urlopen(url, timeout=5) as answer:
                    body = json.load(answer)
            except OSError:
                assert server.poll() is None, "mlflow ui exited"
                time.sleep(0.5)
        assert body is not None and body["run"]["info"]["run_name"] == "r1"
        url = f"http://127.0.0.1:{port}/api/2.0/mlflow/registered-models/alias?name=m&alias=champion"
        with urllib.request.urlopen(url, timeout=5) as answer:
            assert json.load(answer)["model_version"]["version"] == "1"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)


TRAIN = """import json, mlflow, mlflow.sklearn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
mlflow.sklearn.autolog()
x, y = load_iris(return_X_y=True)
LogisticRegression(C=0.5, max_iter=300).fit(x, y)
mlflow.log_metric("rows", len(y))
json.dump({"accuracy": 0.9}, open("metrics.json", "w"))
"""


@pytest.mark.slow
def test_a_steps_own_autolog_lands_in_the_bots_run_and_nothing_in_mlruns(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(TRAIN)
    (tmp_path / "ml.yaml").write_text(
        "version: 1\nmodel: {name: iris, artifact: metrics.json}\ntracking: {uri: local, experiment: iris}\n"
        "pipeline:\n  train: {cmd: [python, train.py], deps: [train.py], metrics: metrics.json}\n")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run([sys.executable, "-m", "mlops_bot", "-C", str(tmp_path), "run", "--json"], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    run_id = json.loads(done.stdout)["run_id"]
    registry = LocalRegistry(tmp_path / ".mlops-bot")
    run = registry.get_run(run_id)
    assert run.params["C"] == "0.5" and run.params["max_iter"] == "300"  # autolog's params
    assert run.metrics["rows"] == 150 and "training_accuracy_score" in run.metrics and run.metrics["accuracy"] == 0.9
    assert "training_confusion_matrix.png" in registry.list_artifacts(run_id)  # autolog's run artifacts
    registry.close()
    assert not [p for p in tmp_path.rglob("mlruns")]
    assert {p.name for p in tmp_path.iterdir()} == {".mlops-bot", "ml.yaml", "ml.lock", "train.py", "metrics.json"}


def test_the_ui_command_is_documented() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "mlops-bot ui" in readme and "'mlops-bot[ui]'" in readme
    assert '"mlflow>=' in (ROOT / "pyproject.toml").read_text().split("ui = [", 1)[1].split("]", 1)[0]
