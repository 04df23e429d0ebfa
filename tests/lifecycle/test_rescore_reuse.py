"""Rescoring done once per (champion, evaluation inputs): recorded with the champion's run and read back by any
later check, PR push or merge; evaluated afresh when the evaluation's code, data or params, or the champion,
change."""

from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_bot.config import load_config
from mlops_bot.config.model import Config
from mlops_bot.decide.decision import Decision
from mlops_bot.flows.compare import compare_registry
from mlops_bot.flows.promote import promote_flow
from mlops_bot.lifecycle.rescore_record import RECORD_DIR
from mlops_bot.pipeline.execute import run_pipeline
from mlops_bot.registry import open_registry, tags
from mlops_bot.registry.base import Registry
from mlops_bot.report.markdown import render_markdown
from tests.helpers.projects import LOCAL
from tests.lifecycle.test_rescore import EVALUATE, TRAIN

ML_YAML = """\
version: 1
model: {name: MODEL, artifact: build/model}
tracking: {uri: "URI", experiment: MODEL}
params: params.yaml
pipeline:
  train: {cmd: [python, train.py], deps: [train.py, w.txt], outs: [build/model]}
  evaluate: {cmd: [python, evaluate.py], deps: [evaluate.py, build/model, data.txt], params: [evaluate.round],
             metrics: build/metrics.json, predictions: build/predictions.csv}
compare:
  rescore_champion: true
  criteria:
    - {metric: score, threshold: 0.1}
"""


def project(root: Path, counter: Path, where: tuple[str, str]) -> Path:
    """EVALUATE that counts its runs on the champion (MLOPS_BOT_MODEL_DIR set) in `counter`, and writes
    per-row predictions."""
    count = (f"\nif 'MLOPS_BOT_MODEL_DIR' in os.environ: open({str(counter)!r}, 'a').write('x')\n"
             "rows = os.environ.get('MLOPS_BOT_PREDICTIONS_FILE', 'build/predictions.csv')\n"
             "open(rows, 'w').write('row_id,y_true,y_pred\\n1,1,1\\n2,0,1\\n')\n")
    root.mkdir()
    files = {"train.py": TRAIN, "evaluate.py": EVALUATE + count,
             "ml.yaml": ML_YAML.replace("URI", where[0]).replace("MODEL", where[1]), "w.txt": "0.5",
             "data.txt": "0.9", "params.yaml": "evaluate: {round: 6}\n"}
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text))
    return root


EMBEDDED = ("local", "fair")


@pytest.fixture(params=["local", pytest.param("mlflow", marks=pytest.mark.mlflow)])
def where(request: pytest.FixtureRequest, unique: Callable[[str], str]) -> tuple[str, str]:
    """(tracking URI, model name): the embedded store, or the real mlflow server with a model of the test's own."""
    if request.param == "mlflow":
        return request.getfixturevalue("mlflow_server").uri, unique("fair")
    return EMBEDDED


def opened(root: Path) -> tuple[Config, Registry]:
    config = load_config(root / "ml.yaml", env={})
    return config, open_registry(config.tracking.uri, root)


def check(root: Path) -> Decision:
    """A PR check: run the pipeline, compare with the champion."""
    config, registry = opened(root)
    return compare_registry(config, registry, run_pipeline(config, registry).run_id)


def merge(root: Path) -> Decision:
    """What the default branch's job does after the merge: run (reused), compare, promote."""
    config, registry = opened(root)
    decision = compare_registry(config, registry, run_pipeline(config, registry).run_id)
    promotion, _ = promote_flow(config, registry, decision, LOCAL, run_given=True)
    assert promotion.promoted, promotion.reason
    return promotion.decision


def evaluations(counter: Path) -> int:
    return len(counter.read_text()) if counter.exists() else 0


def test_pr_check_second_push_and_merge_rescore_once(tmp_path: Path, where: tuple[str, str]) -> None:
    counter = tmp_path / "evaluations"
    root = project(tmp_path / "p", counter, where)
    merge(root)  # v1 becomes the champion; no champion to rescore yet
    assert evaluations(counter) == 0
    (root / "w.txt").write_text("0.7")
    first = check(root)
    assert evaluations(counter) == 1
    assert first.champion is not None and not first.champion.rescore_reused and first.champion.rescored_at
    assert "rescored now" in render_markdown(first)
    (root / "w.txt").write_text("0.6")  # a second push: another challenger, the same evaluation inputs
    second = check(root)
    assert second.champion is not None and second.champion.rescore_reused
    assert second.champion.rescored_metrics == first.champion.rescored_metrics
    assert second.champion.rescored_at == first.champion.rescored_at
    when = first.champion.rescored_at.replace("T", " ")[:16]
    assert f"rescored (reused from {when} UTC)" in render_markdown(second)
    merged = merge(root)
    assert evaluations(counter) == 1  # PR check -> second push -> merge: one rescoring
    assert merged.champion is not None and merged.champion.rescore_reused


def test_the_record_carries_the_predictions_for_the_significance_test(tmp_path: Path, where: tuple[str, str]) -> None:
    counter = tmp_path / "evaluations"
    root = project(tmp_path / "p", counter, where)
    merge(root)
    (root / "w.txt").write_text("0.7")
    check(root)
    _, registry = opened(root)
    champion = registry.get_version_by_alias(where[1], "champion")
    assert champion is not None
    run = registry.get_run(champion.run_id)
    (key,) = [k.removeprefix(tags.RESCORE_PREFIX) for k in run.tags if k.startswith(tags.RESCORE_PREFIX)]
    files = sorted(registry.list_artifacts(run.run_id, f"{RECORD_DIR}/{key}"))
    assert [Path(f).name for f in files] == ["metrics.json", "predictions.csv"]
    assert json.loads(run.tags[tags.rescore_tag(key)])["at"]


def test_a_change_to_the_evaluation_inputs_or_a_new_champion_rescores_again(tmp_path: Path,
                                                                         where: tuple[str, str]) -> None:
    counter = tmp_path / "evaluations"
    root = project(tmp_path / "p", counter, where)
    merge(root)
    (root / "w.txt").write_text("0.7")
    check(root)
    assert evaluations(counter) == 1
    changes = [("data.txt", "0.6"),  # today's data
               ("params.yaml", "evaluate: {round: 5}\n"),  # the evaluation's params
               ("evaluate.py", (root / "evaluate.py").read_text() + "\n# a comment is a change of code\n")]
    for expected, (name, text) in enumerate(changes, start=2):
        (root / name).write_text(text)
        decision = check(root)
        assert evaluations(counter) == expected, name
        assert decision.champion is not None and not decision.champion.rescore_reused
    (root / "w.txt").write_text("0.55")
    merge(root)  # the challenger w=0.55 becomes the champion: a new model to rescore
    (root / "w.txt").write_text("0.6")
    decision = check(root)
    assert evaluations(counter) == len(changes) + 2
    assert decision.champion is not None and not decision.champion.rescore_reused


def test_a_champion_trained_before_records_gets_its_model_digest_and_record(tmp_path: Path) -> None:
    where = EMBEDDED  # the test edits the store's files
    counter = tmp_path / "evaluations"
    root = project(tmp_path / "p", counter, where)
    merge(root)
    _, registry = opened(root)
    champion = registry.get_version_by_alias(where[1], "champion")
    assert champion is not None
    digest = registry.get_run(champion.run_id).tags[tags.MODEL_DIGEST]
    _forget_digest(root, champion.run_id)
    (root / "w.txt").write_text("0.7")
    check(root)
    assert opened(root)[1].get_run(champion.run_id).tags[tags.MODEL_DIGEST] == digest
    check(root)
    assert evaluations(counter) == 1


def test_an_unreadable_record_is_evaluated_again(tmp_path: Path) -> None:
    where = EMBEDDED  # the test edits the store's files
    counter = tmp_path / "evaluations"
    root = project(tmp_path / "p", counter, where)
    merge(root)
    (root / "w.txt").write_text("0.7")
    first = check(root)
    for folder in (root / ".mlops-bot").rglob(RECORD_DIR):
        shutil.rmtree(folder)  # the tag says there is a record; its files are gone
    second = check(root)
    assert evaluations(counter) == 2
    assert first.champion is not None and second.champion is not None
    assert second.champion.rescored_metrics == first.champion.rescored_metrics
    assert not second.champion.rescore_reused


def _forget_digest(root: Path, run_id: str) -> None:
    """A run recorded by an earlier version of the bot: no model digest tag."""
    import sqlite3

    with sqlite3.connect(root / ".mlops-bot" / "registry.db") as db:
        tables = [r[0] for r in db.execute("select name from sqlite_master where type = 'table'")]
        table = next(t for t in tables if "tag" in t and "run" in t)
        deleted = db.execute(f"delete from {table} where run_id = ? and key = ?", (run_id, tags.MODEL_DIGEST))
        assert deleted.rowcount == 1
