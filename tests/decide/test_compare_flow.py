"""`mlops-bot compare` end to end: a real ml.yaml, real files, the real command-line entry."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from mlops_bot import cli
from mlops_bot.lifecycle.champion import PROMOTED_TAG
from mlops_bot.registry.local.store import LocalRegistry
from tests.helpers.decisions import DECISION_VALIDATOR

ML_YAML = """\
version: 1
model: {name: iris-classifier, artifact: build/model}
tracking: {uri: local, experiment: iris}
pipeline:
  evaluate:
    cmd: python evaluate.py
    deps: [evaluate.py]
    outs: [build/model]
    metrics: build/metrics.json
    predictions: build/predictions.csv
compare:
  criteria:
    - {metric: accuracy, threshold: 0.9, min_absolute_change: 0.005}
    - {metric: latency_ms, greater_is_better: false, max_regression: {relative: 0.1}}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "ml.yaml").write_text(ML_YAML, encoding="utf-8")
    (tmp_path / "evaluate.py").write_text("", encoding="utf-8")
    return tmp_path


def put(root: Path, name: str, text: str) -> str:
    (root / name).write_text(text, encoding="utf-8")
    return name


def compare(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["-C", str(root), "compare", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_offline_pass_writes_the_report_atomically(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = put(project, "a.json", '{"accuracy": 0.951, "latency_ms": 110}')
    b = put(project, "b.yaml", "accuracy: 0.939\nlatency_ms: 105\n")
    code, out, err = compare(project, capsys, "--challenger-metrics", a, "--champion-metrics", b,
                             "--out", "reports/compare.md")
    assert code == 0
    report = (project / "reports" / "compare.md").read_text(encoding="utf-8")
    assert out == report
    assert report.startswith("<!-- mlops-bot:report model=iris-classifier -->\n\n### ✅ Pass: iris-classifier")
    assert sorted(p.name for p in (project / "reports").iterdir()) == ["compare.md"]  # no temp file left
    assert "mlops-bot: pass: The challenger passes all 2 criteria against the champion." in err


def test_offline_fail_json_validates(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = put(project, "a.csv", "metric,value\naccuracy,0.941\nlatency_ms,120\n")
    b = put(project, "b.json", '{"accuracy": 0.939, "latency_ms": 105}')
    code, out, _ = compare(project, capsys, "--json", "--challenger-metrics", a, "--champion-metrics", b)
    assert code == 1
    doc = json.loads(out)
    DECISION_VALIDATOR.validate(doc)
    assert doc["verdict"] == "fail"
    assert [c["reason"] for c in doc["criteria"]] == [
        "accuracy 0.941 >= threshold 0.9; +0.002 vs the champion (0.939), needs +0.005",
        "latency_ms 120 is 14.3% worse than the champion (105); at most 10% allowed",
    ]


def test_offline_nan_challenger_fails_with_a_reason(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = put(project, "a.json", '{"accuracy": NaN, "latency_ms": 100}')
    b = put(project, "b.json", '{"accuracy": 0.939, "latency_ms": 105}')
    code, out, _ = compare(project, capsys, "--json", "--challenger-metrics", a, "--champion-metrics", b)
    assert code == 1
    assert json.loads(out)["criteria"][0]["reason"] == "accuracy: the challenger logged NaN, which cannot pass"


@pytest.mark.parametrize(("files", "code", "message"), [
    ({"a.json": '{"accuracy": 0.95, "latency_ms": 1}'}, 3, "b.json: metrics file not found"),
    ({"a.json": '{"accuracy": 0.95}', "b.json": '{"acc": 0.9}'}, 3,
     "compare.criteria: metric 'latency_ms' was logged by neither the challenger nor the champion"),
    ({"a.json": '["x"]', "b.json": "{}"}, 3, "a.json: holds a list, not a mapping of metric names to numbers."),
])
def test_offline_bad_input(project: Path, capsys: pytest.CaptureFixture[str], files: dict[str, str], code: int,
                           message: str) -> None:
    for name, text in files.items():
        put(project, name, text)
    result, out, err = compare(project, capsys, "--challenger-metrics", "a.json", "--champion-metrics", "b.json")
    assert (result, out) == (code, "")
    assert message in err


def test_a_champion_file_needs_a_challenger_file(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = compare(project, capsys, "--champion-metrics", "b.json")
    assert code == 2
    assert "--champion-metrics needs --challenger-metrics" in err


def test_a_challenger_file_alone_is_judged_against_the_registrys_champion(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = put(project, "a.json", '{"accuracy": 0.951, "latency_ms": 110}')
    code, out, _ = compare(project, capsys, "--json", "--challenger-metrics", a)
    assert (code, json.loads(out)["bootstrap"]) == (0, True)  # no champion yet: thresholds only, as online
    store = LocalRegistry(project / ".mlops-bot")
    try:
        exp = store.get_or_create_experiment("iris")
        r = store.create_run(exp.experiment_id)
        store.log_batch(r.run_id, metrics={"accuracy": 0.95, "latency_ms": 100.0})
        store.update_run(r.run_id, "FINISHED", end_time=r.start_time + 1)
        store.get_or_create_registered_model("iris-classifier")
        version = store.create_model_version("iris-classifier", f"runs:/{r.run_id}/model", r.run_id)
        store.set_alias("iris-classifier", "champion", version.version)
    finally:
        store.close()
    code, out, _ = compare(project, capsys, "--json", "--challenger-metrics", a)
    doc = json.loads(out)
    assert (code, doc["bootstrap"], doc["champion"]["version"]) == (1, False, version.version)
    assert doc["criteria"][0]["reason"].endswith("+0.001 vs champion v1 (0.95), needs +0.005")


def predictions(root: Path, name: str, right: list[bool]) -> str:
    rows = "".join(f"{i},{'cat'},{'cat' if ok else 'dog'}\n" for i, ok in enumerate(right))
    return put(root, name, "row_id,y_true,y_pred\n" + rows)


@pytest.mark.parametrize(("better_rows", "code"), [(60, 0), (3, 1)])
def test_offline_significance(project: Path, capsys: pytest.CaptureFixture[str], better_rows: int, code: int) -> None:
    (project / "ml.yaml").write_text(ML_YAML + "  significance: {metric: accuracy, test: paired_bootstrap}\n",
                                     encoding="utf-8")
    rng = random.Random(0)
    base = [rng.random() < 0.9 for _ in range(1000)]
    wrong = [i for i, ok in enumerate(base) if not ok]
    ours = [ok or i in wrong[:better_rows] for i, ok in enumerate(base)]
    a = put(project, "a.json", json.dumps({"accuracy": sum(ours) / 1000, "latency_ms": 100}))
    b = put(project, "b.json", json.dumps({"accuracy": sum(base) / 1000, "latency_ms": 100}))
    args = ["--json", "--challenger-metrics", a, "--champion-metrics", b]
    result, _, err = compare(project, capsys, *args)
    assert result == 3
    assert "compare.significance is configured but --challenger-predictions and --champion-predictions were not " \
           "given" in err
    pa, pb = predictions(project, "pa.csv", ours), predictions(project, "pb.csv", base)
    result, out, _ = compare(project, capsys, *args, "--challenger-predictions", pa, "--champion-predictions", pb)
    doc = json.loads(out)
    DECISION_VALIDATOR.validate(doc)
    assert result == code
    (test,) = doc["significance"]
    assert test["significant"] is (code == 0)
    assert test["n"] == 1000


def test_registry_mode_with_the_embedded_store(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = LocalRegistry(project / ".mlops-bot")
    try:
        exp = store.get_or_create_experiment("iris")

        def run(metrics: dict[str, float]) -> str:
            r = store.create_run(exp.experiment_id, tags={"mlflow.source.git.commit": "0123abcd" * 5})
            store.log_batch(r.run_id, metrics=metrics, params={"C": str(metrics["accuracy"])})
            store.update_run(r.run_id, "FINISHED", end_time=r.start_time + 1)
            return r.run_id

        store.get_or_create_registered_model("iris-classifier")
        champion_run = run({"accuracy": 0.92, "latency_ms": 100.0})
        version = store.create_model_version("iris-classifier", f"runs:/{champion_run}/model", champion_run,
                                             tags={PROMOTED_TAG: "2025-01-01T00:00:00Z"})
        store.set_alias("iris-classifier", "champion", version.version)
        challenger_run = run({"accuracy": 0.95, "latency_ms": 104.0})
    finally:
        store.close()
    code, out, _ = compare(project, capsys, "--json", "--run", challenger_run)
    assert code == 0
    doc = json.loads(out)
    DECISION_VALIDATOR.validate(doc)
    assert (doc["champion"]["version"], doc["challenger"]["run_id"]) == (version.version, challenger_run)
    assert doc["challenger"]["lineage"]["commit"] == "0123abcd" * 5
    assert [h["version"] for h in doc["history"]] == [version.version]
    assert doc["params_diff"] == [{"name": "C", "champion": "0.92", "challenger": "0.95"}]


def test_several_metrics_are_tested_holm_corrected_and_noise_is_named(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "ml.yaml").write_text(ML_YAML.replace(
        "    - {metric: latency_ms, greater_is_better: false, max_regression: {relative: 0.1}}\n",
        "    - {metric: f1_macro, min_absolute_change: 0.0001, significant: true}\n"
    ) + "  significance: {metric: accuracy}\n", encoding="utf-8")
    rng = random.Random(1)
    labels = [rng.choice("abc") for _ in range(600)]
    base = [t if rng.random() < 0.8 else rng.choice("abc") for t in labels]
    ours = [t if rng.random() < 0.9 else p for t, p in zip(labels, base, strict=True)]
    for name, guess in (("pa.csv", ours), ("pb.csv", base)):
        put(project, name, "row_id,y_true,y_pred\n" + "".join(
            f"{i},{t},{g}\n" for i, (t, g) in enumerate(zip(labels, guess, strict=True))))
    a = put(project, "a.json", '{"accuracy": 0.95, "f1_macro": 0.95}')
    b = put(project, "b.json", '{"accuracy": 0.9, "f1_macro": 0.9}')
    args = ["--challenger-metrics", a, "--champion-metrics", b, "--challenger-predictions", "pa.csv",
            "--champion-predictions", "pb.csv"]
    code, out, _ = compare(project, capsys, "--json", *args)
    doc = json.loads(out)
    DECISION_VALIDATOR.validate(doc)
    assert [t["metric"] for t in doc["significance"]] == ["accuracy", "f1_macro"]
    assert all(t["adjusted_p"] >= t["p_value"] for t in doc["significance"])
    assert code == (0 if all(t["significant"] for t in doc["significance"]) else 1)
    assert any("min_absolute_change on f1_macro asks for 0.0001" in note for note in doc["notes"])
    code, report, _ = compare(project, capsys, *args)
    assert "**Significance** (Holm-corrected over 2 metrics)" in report and "**Noise**" in report
    shuffled = (project / "pb.csv").read_text().splitlines()
    header, rows = shuffled[0], [r.split(",") for r in shuffled[1:]]
    truths = [r[1] for r in rows]
    rng.shuffle(truths)
    put(project, "pb.csv", "\n".join([header] + [",".join((r[0], t, r[2])) for r, t in zip(rows, truths,
                                                                                          strict=True)]) + "\n")
    code, _, err = compare(project, capsys, *args)
    assert code == 3 and "give another y_true for" in err  # a champion file of other rows is refused, not paired
