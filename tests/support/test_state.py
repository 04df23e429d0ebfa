"""The state directory and its names live in support/state.py alone. Their values are on users' disks (and
in their CI artifacts and .gitignore files): a test pins each one."""

from __future__ import annotations

import ast
from pathlib import Path

import mlops_bot
from mlops_bot.support import state

PINNED = {
    "STATE_DIR": ".mlops-bot", "DECISION_FILE": "decision.json", "REPORT_FILE": "report.md",
    "COMMENT_FILE": "comment.md", "RUN_LOCK_FILE": "run.lock", "HASHES_FILE": "hashes.json",
    "NOOP_FILE": "noop.json", "LAST_RUN_FILE": "last-run.json", "VALIDATED_FILE": "validated.json",
    "RUN_METRICS_FILE": "run-metrics.json",
    "DRIFT_REPORT_FILE": "drift.md",
    "PIPELINE_REQUESTS_FILE": "pipeline-requests.jsonl",
    "STORE_DB": "registry.db",
    "STORE_ARTIFACTS_DIR": "artifacts", "STEPS_MLFLOW_DB": "mlflow-steps.db", "EVENTS_DIR": "events",
    "AUDIT_FILE": "audit.jsonl", "AUDIT_LOCK_FILE": "audit.lock", "SPOOL_FILE": "spool.db",
    "SERVE_LOCK_FILE": "serve.lock", "WATCH_SPOOL_FILE": "watch.db", "WATCH_LOCK_FILE": "watch.lock",
    "WATCH_CURSOR_FILE": "watch.cursor",
}
PACKAGE = Path(mlops_bot.__file__).parent
# Packages whose spellings of the state names have not moved to support/state.py yet; empty this set as
# they do (see the issue on the house).
NOT_YET: set[str] = set()


def test_every_name_keeps_its_value() -> None:
    names = {k: v for k, v in vars(state).items() if k.isupper() and isinstance(v, str)}
    assert names == PINNED


def test_paths_in_the_state_directory() -> None:
    assert state.state_path(Path("/p")) == Path("/p/.mlops-bot")
    assert state.state_path(Path("/p"), state.EVENTS_DIR, state.AUDIT_FILE) == Path("/p/.mlops-bot/events/audit.jsonl")
    assert state.state_relpath(state.REPORT_FILE) == ".mlops-bot/report.md"


def _string_constants(path: Path) -> list[tuple[int, str]]:
    """String literals outside docstrings and comments."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_no_other_module_spells_the_state_directory_or_its_files() -> None:
    spelled = [name for name, value in PINNED.items() if "." in value and name != "STORE_ARTIFACTS_DIR"]
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel == Path("support/state.py") or rel.parts[0] in NOT_YET:
            continue
        for line, text in _string_constants(path):
            if ".mlops-bot" in text or any(text == PINNED[name] for name in spelled):
                found.append(f"{rel}:{line}: {text!r}")
    assert found == [], "use the names in mlops_bot/support/state.py"
