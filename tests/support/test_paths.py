"""One path normal form and one overlap rule (support/paths.py) for validation and run time. The DAG once
treated "." as covering everything while validation did not, and validation kept "x/../y" as written while
the DAG normalised it, so `validate` and `run` could disagree on which step feeds which."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_bot.config.model import Step
from mlops_bot.config.semantics import semantic_problems
from mlops_bot.config.source import read_document
from mlops_bot.pipeline import dag
from mlops_bot.support.paths import UnsafePath, confined, inside_project, name_problem, normalise, overlaps


@pytest.mark.parametrize(("path", "norm"), [
    (".", "."), ("./", "."), ("./x", "x"), ("x/", "x"), ("x//y/", "x/y"), ("x/../y", "y"), ("x\\y", "x/y"),
    ("../x", "../x"),
])
def test_normalise(path: str, norm: str) -> None:
    assert normalise(path) == norm


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("x", "x", True), ("x/a.csv", "x", True), ("x", "x/a.csv", True), ("x", "xy", False), ("x/a", "x/b", False),
    (".", "anything/at/all", True), ("./", "x", True), ("x", ".", True),  # the project covers every path in it
    ("./x", "x/", True), ("x/../y", "y", True), ("x/../y", "x", False),
])
def test_overlaps(a: str, b: str, expected: bool) -> None:
    assert overlaps(a, b) is expected and overlaps(b, a) is expected


def test_inside_project() -> None:
    assert [p for p in (".", "./", "..", "../x", "/abs", "a/../..", "x", "./x/") if inside_project(p)] == ["x", "./x/"]


# step `make` writes x/ and y; `use` reads the dep under test (which does not exist on disk)
@pytest.mark.parametrize(("dep", "fed"), [
    (".", True), ("./", True), ("./x", True), ("x/", True), ("x/../y", True), ("x/file.csv", True),
    ("z", False), ("./z", False), ("x/../z", False),
])
def test_validation_and_the_dag_agree_on_what_feeds_a_step(tmp_path: Path, dep: str, fed: bool) -> None:
    make = {"cmd": "true", "deps": ["src.txt"], "outs": ["x", "y"]}
    use = {"cmd": "true", "deps": [dep]}
    (tmp_path / "src.txt").write_text("data\n")
    (tmp_path / "ml.yaml").write_text(json.dumps({"version": 1, "model": {"name": "m", "artifact": "y"},
                                                  "pipeline": {"make": make, "use": use}}))
    problems = semantic_problems(read_document(tmp_path / "ml.yaml"))  # the schema alone refuses '..'
    validation_fed = not any("no step writes it" in p.message for p in problems)
    graph = dag.edges({"make": Step("make", "true", ("src.txt",), ("x", "y")), "use": Step("use", "true", (dep,))})
    assert validation_fed == ("make" in graph["use"]) == fed, problems


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "/etc", "a\\b", "nul\x00byte", 7, None])
def test_names_that_are_no_plain_file_name(name: object) -> None:
    assert name_problem(name)


def test_plain_names_pass() -> None:
    assert [n for n in ("a", ".hidden", "..x", "x..", "with space", "ünï", "a:b") if name_problem(n)] == []


@pytest.mark.parametrize("parts", [("..",), ("a", "..", ".."), ("/etc",), ("a/../../x",), ("",), ("x\x00",)])
def test_confined_refuses_names_that_leave_the_root(tmp_path: Path, parts: tuple[str, ...]) -> None:
    with pytest.raises(UnsafePath):
        confined(tmp_path / "root", parts)


def test_confined_refuses_a_symlink_that_leads_out(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside)
    (root / "file-link").symlink_to(outside / "f")
    (root / "inner").mkdir()
    (root / "inner-link").symlink_to(root / "inner")
    with pytest.raises(UnsafePath, match="lead out of"):
        confined(root, ("link", "x"))
    with pytest.raises(UnsafePath, match="lead out of"):
        confined(root, ("file-link",))  # dangling, and outside
    with pytest.raises(UnsafePath, match="symbolic link"):
        confined(root, ("inner-link",))  # inside, but a write would replace or follow it
    assert confined(root, ("inner-link", "x")) == root / "inner-link" / "x"  # resolves inside the root
    assert confined(root, ("a", "b")) == root / "a" / "b"
    assert confined(root, ()) == root


def test_confined_accepts_a_root_reached_through_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    assert confined(tmp_path / "alias", ("x",)) == tmp_path / "alias" / "x"
