"""`mlops-bot drift` on the embedded store: the champion trained by the real `mlops-bot run`, its training data
found from its lineage (the run's outs, or git at the run's commit), batches that drift and batches that do not;
the exit code, the report, the monitoring run read back from the registry, the events in the audit log."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_bot import cli
from mlops_bot.events.audit import EventLog, events_dir
from mlops_bot.registry import open_registry, tags
from mlops_bot.registry.base import Registry
from tests.helpers.drift_project import drift_json as drift
from tests.helpers.drift_project import table, train_champion, write_project


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One project per lineage, trained and made champion once; tests work on copies (store and git included)."""
    made = {}
    for source in ("outs", "git"):
        root = write_project(tmp_path_factory.mktemp("drift") / source, "demo", source=source)
        registry = open_registry("local", root)
        try:
            train_champion(root, registry)
        finally:
            registry.close()
        made[source] = root
    return made


@pytest.fixture
def copy(trained: dict[str, Path], tmp_path: Path) -> Iterator[tuple[Path, Registry]]:
    root = tmp_path / "p"
    shutil.copytree(trained["outs"], root, symlinks=True)
    registry = open_registry("local", root)
    yield root, registry
    registry.close()


def events_of(root: Path) -> list[dict[str, object]]:
    events, _ = EventLog(events_dir(root)).snapshot()
    return [{"type": e.type, **e.data} for e in events if e.type.startswith("drift.")]


def test_no_drift_then_drift_from_the_champions_run_outs(copy: tuple[Path, Registry]) -> None:
    root, registry = copy
    (root / "build" / "train.csv").write_text(table(400, shift=3.0))  # the workspace's copy is not the reference
    champion = registry.get_version_by_alias("demo", "champion")
    assert champion is not None
    (root / "data" / "current.csv").write_text(table(200, offset=0.25))

    code, doc = drift(root)
    assert code == 0 and doc["drifted"] is False and doc["version"] == champion.version
    assert doc["reference"] == f"outs/build/train.csv of run {champion.run_id}"
    run = registry.get_run(str(doc["run_id"]))
    assert run.status == "FINISHED" and run.experiment_id == registry.get_run(champion.run_id).experiment_id
    assert {k: run.tags.get(k) for k in (tags.ROLE, tags.MONITOR_MODEL, tags.MONITOR_VERSION,
                                         tags.MONITOR_CHAMPION_RUN, tags.DRIFT_FINDING, tags.DRIFT_DETECTED)} == {
        tags.ROLE: "monitor", tags.MONITOR_MODEL: "demo", tags.MONITOR_VERSION: champion.version,
        tags.MONITOR_CHAMPION_RUN: champion.run_id, tags.DRIFT_FINDING: doc["finding_id"],
        tags.DRIFT_DETECTED: "false"}
    assert run.metrics["drift.drifted"] == 0.0 and run.metrics["drift.x.wasserstein"] < 0.1
    assert run.params["current"] == "data/current.csv" and run.params["sample_rows"] == "all"
    assert registry.list_artifacts(run.run_id, "drift") == ["drift.json", "drift.md"]
    report = (root / ".mlops-bot" / "drift.md").read_text()
    assert report.startswith(f"## Data drift of demo v{champion.version}")

    (root / "data" / "current.csv").write_text(table(200, shift=1.5))
    code, drifted = drift(root)
    assert code == 1 and drifted["drifted"] is True
    run = registry.get_run(str(drifted["run_id"]))
    assert run.tags[tags.DRIFT_DETECTED] == "true" and run.metrics["drift.x.wasserstein"] >= 1.0
    assert "Drift detected" in (root / ".mlops-bot" / "drift.md").read_text()
    assert events_of(root) == [
        {"type": "drift.checked", "model": "demo", "version": champion.version, "finding_id": doc["finding_id"],
         "drifted_features": [], "findings": 0, "report_file": ".mlops-bot/drift.md", "run_id": doc["run_id"],
         "summary": doc["summary"]},
        {"type": "drift.detected", "model": "demo", "version": champion.version, "finding_id": drifted["finding_id"],
         "drifted_features": ["x"], "findings": 1, "report_file": ".mlops-bot/drift.md",
         "run_id": drifted["run_id"], "summary": drifted["summary"]}]


def test_the_same_drift_on_two_batches_has_the_same_finding_id(copy: tuple[Path, Registry],
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = copy
    (root / "monday.csv").write_text(table(200, shift=1.5))
    (root / "tuesday.csv").write_text(table(300, shift=2.0, offset=0.3))
    (root / "new-drift.csv").write_text(table(200, shift=1.5, color=False))  # also a missing column
    first, second, other = (drift(root, "--current", name) for name in ("monday.csv", "tuesday.csv", "new-drift.csv"))
    assert first[0] == second[0] == other[0] == 1
    assert first[1]["finding_id"] == second[1]["finding_id"] != other[1]["finding_id"]
    assert first[1]["run_id"] != second[1]["run_id"]

    capsys.readouterr()
    assert cli.main(["-C", str(root), "drift", "--current", "monday.csv"]) == 1  # the table on stdout
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["FEATURE", "KIND", "TESTS", "VERDICT"]
    assert any(line.startswith("x ") and line.endswith("DRIFT") for line in out.splitlines())


def test_the_reference_is_read_from_git_at_the_champions_commit(trained: dict[str, Path], tmp_path: Path) -> None:
    root = tmp_path / "p"
    shutil.copytree(trained["git"], root, symlinks=True)
    (root / "data" / "train.csv").write_text(table(400, shift=3.0))  # uncommitted: not what the champion saw
    (root / "data" / "current.csv").write_text(table(200, offset=0.25))
    code, doc = drift(root)
    assert code == 0, doc
    assert str(doc["reference"]).startswith("data/train.csv at commit ")
    (root / "data" / "current.csv").write_text(table(200, shift=1.5))
    assert drift(root)[0] == 1


def test_monitor_reference_and_a_fetching_command(copy: tuple[Path, Registry],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    root, registry = copy
    text = (root / "ml.yaml").read_text().replace("  current: data/current.csv\n", (
        "  reference: data/raw.csv\n"
        "  current:\n"
        "    cmd: [python3, -c, \"import os, sys; sys.path.insert(0, 'lib'); import make; make.main()\"]\n"
        "    path: incoming/*.csv\n"
        "    pass_env: [DRIFT_SHIFT]\n"))
    (root / "ml.yaml").write_text(text)
    (root / "lib").mkdir()
    (root / "lib" / "make.py").write_text(
        "import json, os, pathlib\n"
        "from statistics import NormalDist\n"
        "def main():\n"
        "    pathlib.Path('incoming').mkdir(exist_ok=True)\n"
        "    json.dump(dict(os.environ), open('seen-env.json', 'w'))\n"
        "    shift = float(os.environ.get('DRIFT_SHIFT', '0'))\n"
        "    rows = ['x,y,color'] + [f'{NormalDist().inv_cdf((i + .5) / 100) + shift},0.1,red' for i in range(100)]\n"
        "    pathlib.Path('incoming/batch.csv').write_text('\\n'.join(rows) + '\\n')\n")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_secret")
    monkeypatch.setenv("DRIFT_SHIFT", "2.5")
    code, doc = drift(root)
    assert code == 1 and doc["reference"] == "data/raw.csv" and doc["current"] == "incoming/*.csv"
    seen = (root / "seen-env.json").read_text()
    assert "DRIFT_SHIFT" in seen and "GITHUB_TOKEN" not in seen and "ghp_secret" not in seen
    assert registry.get_run(str(doc["run_id"])).params["reference"] == "data/raw.csv"
