"""Decision -> markdown for a PR/MR comment, a job summary or a file; and -> JSON. Pure.

The comment opens with a hidden marker (`<!-- mlops-bot:report model=NAME -->`) by which the forge adapters find
and edit their own comment. The verdict line, the criteria table and the reasons always appear whole; to stay
under GitHub's 65,536-character comment limit the folded details (params that differ, history) lose rows
first, with a note saying how many, then the charts go.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..decide.decision import CriterionResult, Decision
from ..decide.document import to_document
from ..metrics.numbers import fmt, fmt_pct, fmt_signed
from ..support.urls import redact_text
from .escape import cell, paragraph
from .escape import text as escape
from .sections import (
    FAIL,
    PASS,
    Links,
    history_table,
    lineage_details,
    noise_notes,
    params_table,
    rescore_note,
    significance_line,
    trend_charts,
)

__all__ = ["MAX_CHARS", "Links", "marker", "render_json", "render_markdown"]

MAX_CHARS = 65_536


@dataclass(frozen=True)
class _Budget:
    params: int | None  # rows shown; None = all
    history: int | None
    charts: bool


_BUDGETS = (_Budget(None, None, True), _Budget(50, 20, True), _Budget(20, 10, True), _Budget(10, 5, False),
            _Budget(0, 0, False))


def marker(model: str) -> str:
    return f"<!-- mlops-bot:report model={_marker_safe(model)} -->"


def render_json(decision: Decision) -> dict[str, Any]:
    return to_document(decision)


def render_markdown(decision: Decision, *, links: Links | None = None, history: int = 10, chart: bool = True,
                    limit: int = MAX_CHARS) -> str:
    """The report; `history` is how many earlier champions the chart and history table show."""
    links = links or Links()
    text = ""
    for budget in _BUDGETS:
        text = _render(decision, links, history, chart and budget.charts, budget)
        if len(text) <= limit:
            break
    return text


def _render(decision: Decision, links: Links, history: int, chart: bool, budget: _Budget) -> str:
    cap = history if budget.history is None else min(history, budget.history)
    blocks = [
        marker(decision.model), _verdict(decision), _table(decision), _reasons(decision.criteria),
        significance_line(decision), noise_notes(decision), trend_charts(decision, history) if chart else "",
        params_table(decision, budget.params), lineage_details(decision, links), history_table(decision, history, cap),
        f"<sub>mlops-bot · {escape(decision.created_at)}</sub>",
    ]
    return "\n\n".join(b for b in blocks if b) + "\n"


def _verdict(decision: Decision) -> str:
    mark = PASS if decision.passed else FAIL
    word = "Pass" if decision.passed else "Fail"
    boot = " (bootstrap)" if decision.bootstrap else ""
    return f"### {mark} {word}{boot}: {escape(decision.model)}\n\n{paragraph(decision.summary)}"


def _table(decision: Decision) -> str:
    champion = decision.champion
    rescored = any(r.baseline == "rescored" for r in decision.criteria)
    notes = [cell(champion.label)] if champion is not None and champion.label else []
    notes += [cell(rescore_note(champion, inline=True))] if rescored and champion is not None else []
    head = f"champion ({', '.join(notes)})" if notes else "champion"
    rows = [f"| metric | {head} | challenger | change | change % | criterion | |",
            "|---|---:|---:|---:|---:|---|:-:|"]
    rows += [_row(r, rescored) for r in decision.criteria]
    return "\n".join(rows)


def _row(r: CriterionResult, rescored: bool) -> str:
    change = "—" if r.change is None else fmt_signed(r.change)
    pct = "—" if r.change_pct is None else fmt_pct(r.change_pct)
    champion = _value(r.champion) + (" (logged)" if rescored and r.baseline == "logged" else "")
    return (f"| {cell(r.metric)} | {champion} | {_value(r.challenger)} | {change} | {pct} "
            f"| {cell(r.criterion)} | {PASS if r.passed else FAIL} |")


def _reasons(results: Sequence[CriterionResult]) -> str:
    return "\n".join(f"- {PASS if r.passed else FAIL} **{escape(r.metric)}**: {escape(r.reason)}" for r in results)


def _value(value: float | None) -> str:
    return "—" if value is None else fmt(value) if math.isfinite(value) else f"**{fmt(value)}**"


def _marker_safe(model: str) -> str:
    # A model name cannot end the HTML comment early ("--") or break the marker's single line.
    kept = "".join(ch for ch in redact_text(model) if ch.isalnum() or ch in "-_./@:")
    return re.sub("-{2,}", "-", kept)
