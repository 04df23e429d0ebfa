"""The house rules of ARCHITECTURE.md, each checked on the real tree (and the import contract also on a tree
with an upward import planted in it, to show that it would catch one)."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mlops_bot"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def sources() -> Iterator[Path]:
    yield from sorted(PACKAGE.rglob("*.py"))


def strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components of more than one module: each is an import cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while (top := stack.pop()) != node:
                component.append(top)
            if component:
                found.append(sorted([node, *component]))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles() -> None:
    graph = grimp.build_graph("mlops_bot")
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    assert len(edges) > 90
    assert strongly_connected(edges) == []
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([str(LINT_IMPORTS), "--config", str(tree / "pyproject.toml"), "--no-cache"], cwd=tree,
                          env=env, capture_output=True, text=True, timeout=120)


def test_the_layers_contract_holds_and_would_catch_an_upward_import(tmp_path: Path) -> None:
    assert lint_imports(ROOT).returncode == 0
    shutil.copytree(PACKAGE, tmp_path / "mlops_bot", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    planted = tmp_path / "mlops_bot" / "events" / "event.py"
    planted.write_text(planted.read_text() + "\nfrom ..flows import project  # noqa: E402\n")
    done = lint_imports(tmp_path)
    assert done.returncode == 1
    assert "mlops_bot.events is not allowed to import mlops_bot.flows" in done.stdout


def imported_modules(path: Path) -> set[str]:
    """Absolute names of the mlops_bot modules a file imports (relative imports resolved)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found |= {f"{module}.{a.name}" if not node.module else module for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {m for m in found if m.startswith("mlops_bot")}


def test_events_import_no_flow_adapter_or_config_loader() -> None:
    allowed = ("mlops_bot.events", "mlops_bot.config.model", "mlops_bot.support", "mlops_bot.console",
               "mlops_bot.errors")
    found = {m for path in (PACKAGE / "events").glob("*.py") for m in imported_modules(path)}
    assert "mlops_bot.config.model" in found
    assert sorted(m for m in found if not m.startswith(allowed)) == []


def test_only_the_project_loads_ml_yaml_and_opens_the_registry_for_a_command() -> None:
    calls = []
    for path in (PACKAGE / "flows").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in (
                    "load_config", "open_registry"):
                calls.append(f"{path.name}:{node.lineno}: {node.func.id}")
    assert calls and all(c.startswith("project.py:") for c in calls), calls


def test_no_function_takes_more_than_six_parameters_and_no_module_passes_300_lines() -> None:
    crowded, long = [], []
    for path in sources():
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > 300:
            long.append(path.name)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                names = [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
                count = len(names) - (names[:1] in (["self"], ["cls"])) + bool(a.vararg) + bool(a.kwarg)
                if count > 6:
                    crowded.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}")
    assert crowded == [] and long == []


def test_the_root_holds_only_the_entry_point_and_the_base() -> None:
    assert sorted(p.name for p in PACKAGE.glob("*.py")) == ["__init__.py", "__main__.py", "cli.py", "console.py",
                                                            "entry.py", "errors.py"]
    packages = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))
    assert packages == ["chatops", "ci", "config", "decide", "deploy", "drift", "events", "flows", "forges",
                        "lifecycle", "metrics", "pipeline", "registry", "report", "service", "support"]
