"""Bad input to `mlops-bot drift`: each one exits with its code and a message naming the file, column or URL, and
records nothing (no monitoring run, no event)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlops_bot import cli
from mlops_bot.events.audit import EventLog, events_dir
from mlops_bot.registry import open_registry
from tests.helpers.drift_project import DataServer, table, train_champion, write_project


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_project(tmp_path_factory.mktemp("drift-bad") / "p", "demo")
    registry = open_registry("local", root)
    try:
        train_champion(root, registry)
    finally:
        registry.close()
    return root


@pytest.fixture
def root(trained: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "p"
    shutil.copytree(trained, copy, symlinks=True)
    return copy


def runs(root: Path) -> int:
    registry = open_registry("local", root)
    try:
        return len(registry.search_runs([registry.get_or_create_experiment("demo").experiment_id]))
    finally:
        registry.close()


def refused(root: Path, capsys: pytest.CaptureFixture[str], code: int, *args: str) -> str:
    """Runs drift, expects `code`, nothing recorded; returns stderr."""
    before = runs(root) if (root / ".mlops-bot" / "registry.db").exists() else 0
    capsys.readouterr()
    assert cli.main(["-C", str(root), "drift", *args]) == code
    err = capsys.readouterr().err
    assert (runs(root) if before else 0) == before, "a monitoring run was recorded"
    assert not [e for e in EventLog(events_dir(root)).snapshot()[0] if e.type.startswith("drift.")]
    assert not (root / ".mlops-bot" / "drift.md").exists()
    return err


def set_monitor(root: Path, lines: str) -> None:
    text = (root / "ml.yaml").read_text()
    (root / "ml.yaml").write_text(text[:text.index("monitor:\n")] + f"monitor:\n{lines}")


def test_no_shared_column(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (root / "data" / "current.csv").write_text("a,b\n1,2\n3,4\n")
    err = refused(root, capsys, 3)
    assert "no column in common" in err and "data/current.csv" in err


def test_an_empty_current_batch(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (root / "data" / "current.csv").write_text("x,y,color\n")
    err = refused(root, capsys, 3)
    assert "no rows" in err and "current.csv" in err


def test_a_non_number_in_a_numeric_column(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    set_monitor(root, "  current: data/current.csv\n  numeric: [x]\n")
    (root / "data" / "current.csv").write_text(table(50) + "oops,0.1,red\n")
    err = refused(root, capsys, 3)
    assert "'x'" in err and "oops" in err and "current.csv" in err


def test_a_glob_that_matches_nothing(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    set_monitor(root, "  current: data/batches/*.csv\n")
    err = refused(root, capsys, 3)
    assert "monitor.current.path: no data file matches 'data/batches/*.csv'" in err


def test_a_url_answering_404(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server = DataServer({"/batch.csv": table(100)})
    try:
        set_monitor(root, f"  current: {{url: \"{server.url('/missing.csv')}?token=s3cr3t\"}}\n")
        err = refused(root, capsys, 3)
        assert f"HTTP 404 from {server.url('/missing.csv')}:" in err and "monitor.current.url" in err
        assert "s3cr3t" not in err
        assert server.requests == ["/missing.csv?token=s3cr3t"]  # 404 is not retried

        set_monitor(root, f"  current: {{url: \"{server.url('/batch.csv')}\"}}\n")
        assert cli.main(["-C", str(root), "drift"]) == 0  # the same server's file: no drift
    finally:
        server.close()


def test_no_champion(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_project(tmp_path / "p", "demo")
    (root / "data" / "current.csv").write_text(table(100))
    err = refused(root, capsys, 3)
    assert "no version of demo holds the alias 'champion'" in err and "monitor.reference" in err


def test_no_monitor_section(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (root / "ml.yaml").read_text()
    (root / "ml.yaml").write_text(text[:text.index("monitor:")])
    err = refused(root, capsys, 2)
    assert "has no `monitor:` section" in err


def test_a_current_path_that_does_not_exist(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = refused(root, capsys, 2, "--current", "nowhere.csv")
    assert "--current: no data file matches 'nowhere.csv'" in err
