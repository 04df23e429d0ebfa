"""The lines `run` prints about a pipeline result (its JSON document), from the full path and from the no-op
shortcut alike. No imports: the no-op prints them before anything else is loaded (mlops_bot/entry.py)."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def cached_lines(doc: dict[str, Any]) -> list[str]:
    """What the shortcut prints for each step of a replayed, fully cached result."""
    steps = doc["steps"]
    return [f"step {i}/{len(steps)} {step['name']}: cached" for i, step in enumerate(steps, 1)]


def summary(doc: dict[str, Any]) -> str:
    counts: dict[str, int] = {}
    for step in doc["steps"]:
        counts[step["status"]] = counts.get(step["status"], 0) + 1
    parts = ", ".join(f"{n} {status}" for status, n in counts.items())
    run = f"; run {doc['run_id']}" + (" (reused)" if doc["reused"] else "") if doc["run_id"] else ""
    return f"mlops-bot: pipeline done in {doc['duration_s']:.1f}s: {parts}{run}"
