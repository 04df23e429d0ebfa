"""Checks of the significance settings a schema cannot express: every tested metric has a direction (from its
criterion or declared), and something writes the per-row predictions the tests read."""

from __future__ import annotations

from typing import Any

from ..errors import Problem
from .source import Document


def significance_problems(doc: Document, steps: dict[str, dict[str, Any]]) -> list[Problem]:
    compare = doc.data.get("compare")
    if not isinstance(compare, dict):
        return []
    block = compare.get("significance") if isinstance(compare.get("significance"), dict) else None
    raw_criteria = compare.get("criteria")
    criteria = [c for c in raw_criteria if isinstance(c, dict)] if isinstance(raw_criteria, list) else []
    marked = [c.get("metric") for c in criteria if c.get("significant") is True]
    if block is None and not marked:
        return []
    problems = []
    if not any(isinstance(s.get("predictions"), str) for s in steps.values()):
        where = ("compare", "significance") if block is not None else ("compare", "criteria")
        problems.append(doc.problem(where, "a significance test needs per-row predictions; declare "
                                    "`predictions:` on the step that evaluates the model"))
    if block is None:
        return problems
    if "metric" not in block and "metrics" not in block and not marked:
        problems.append(doc.problem(("compare", "significance"), "names no metric to test; add metric: NAME (or "
                                    "metrics: [...]), or significant: true to a criterion"))
    if "metric" in block and "metrics" in block:
        problems.append(doc.problem(("compare", "significance", "metrics"), "give metric (one) or metrics "
                                    "(several), not both; move the metric into the metrics list", key=True))
    named = {c["metric"] for c in criteria if isinstance(c.get("metric"), str)}  # the schema reports the rest
    listed = block.get("metrics") if isinstance(block.get("metrics"), list) else [block.get("metric")]
    for i, metric in enumerate(listed):
        if isinstance(metric, str) and metric not in named and not isinstance(block.get("greater_is_better"), bool):
            at: tuple[str | int, ...] = ("compare", "significance", "metrics", i) if "metrics" in block else \
                ("compare", "significance", "metric")
            problems.append(doc.problem(at, f"'{metric}' is tested but no criterion names it, so nothing says "
                                        "which way is better; add greater_is_better: true or false to "
                                        "compare.significance (false for losses and errors), or a criterion"))
    return problems
