"""DriftResult -> markdown: the verdict, a table of the features and their tests, the findings, and a Mermaid
chart per drifted feature (reference vs current share per decile bin or category), drawn as the PR report's
trend charts are, so it renders on GitHub and GitLab without hosting an image. Pure.

Every name and value that comes from the data (columns, categories, file names, the findings' words) goes
through report/escape; the numbers are formatted here.
"""

from __future__ import annotations

from ..report.escape import code, mermaid, paragraph
from ..report.escape import text as escape
from .result import DriftResult, FeatureResult, TableInfo
from .stats import TestResult

CHARTS_SHOWN = 3  # charts beyond these are folded, so a wide drift does not bury the table
NOT_COMPARED_SHOWN = 10


def render_markdown(result: DriftResult, title: str) -> str:
    parts = [f"## {escape(title)}", _verdict(result), _rows(result.reference, result.current), _table(result)]
    findings = [f for f in result.findings if f.kind != "feature_drift"]
    if findings:
        parts.append("**Findings**\n\n" + "\n".join(f"- {paragraph(f.description)}" for f in findings))
    if result.not_compared:
        parts.append(_not_compared(result.not_compared))
    charts = [c for f in result.drifted_features if (c := _chart(f))]
    if charts:
        parts.append("\n\n".join(charts[:CHARTS_SHOWN]))
        if len(charts) > CHARTS_SHOWN:
            parts.append(f"<details><summary>{len(charts) - CHARTS_SHOWN} more drifted feature(s)</summary>\n\n"
                         + "\n\n".join(charts[CHARTS_SHOWN:]) + "\n\n</details>")
    parts.append(f"<sub>drift signature {code(result.signature())}</sub>")
    return "\n\n".join(parts) + "\n"


def _verdict(result: DriftResult) -> str:
    drifted, compared = len(result.drifted_features), len(result.features)
    head = "**Drift detected**" if result.drifted else "**No drift**"
    return f"{head}: {drifted} of {compared} feature(s) drifted (the dataset drifts when {result.rule})."


def _rows(reference: TableInfo, current: TableInfo) -> str:
    def side(info: TableInfo) -> str:
        files = ", ".join(code(f) for f in info.files[:3]) + (f" and {len(info.files) - 3} more"
                                                                if len(info.files) > 3 else "")
        rows = (f"a seeded sample of {info.rows_kept:,} of {info.rows_read:,} rows" if info.sampled
                else f"{info.rows_read:,} rows")
        return f"{info.label} {files} ({rows})"

    return f"Compared {side(reference)} with {side(current)}."


def _table(result: DriftResult) -> str:
    if not result.features:
        return "No feature was compared."
    lines = ["| feature | kind | empty (ref → cur) | tests | drifted |", "|---|---|---:|---|:-:|"]
    for feature in result.features:
        tests = "; ".join(_test(t) for t in feature.tests) or ("changed kind" if feature.changed else "no values")
        empty = f"{feature.null_shares[0]:.1%} → {feature.null_shares[1]:.1%}"
        mark = "**yes**" if feature.drifted else "no"
        lines.append(f"| {code(feature.name, table=True)} | {escape(feature.kind)} | {empty} | {tests} | {mark} |")
    return "\n".join(lines)


def _not_compared(columns: tuple[str, ...]) -> str:
    listed = ", ".join(code(c) for c in columns[:NOT_COMPARED_SHOWN])
    more = f" and {len(columns) - NOT_COMPARED_SHOWN} more" if len(columns) > NOT_COMPARED_SHOWN else ""
    return (f"<sub>Not compared, in the reference data only: {listed}{more} (a label or an id, or a feature the "
            "current data lacks: name the model's features in `monitor.features` to have a missing one reported)."
            "</sub>")


def _test(test: TestResult) -> str:
    if test.p_value is not None:
        shown = f"{test.name} p = {_number(test.p_value)} (drift < {test.threshold:g})"
    else:
        shown = f"{test.name} {_number(test.statistic)} (drift ≥ {test.threshold:g})"
    return f"**{shown}**" if test.drifted else shown


def _chart(feature: FeatureResult) -> str:
    """Bars: the reference's share of rows per bin or category; line: the current data's, in percent."""
    bins = feature.bins
    if bins is None or not bins.labels:
        return ""
    ref = [round(100 * v, 2) for v in bins.reference]
    cur = [round(100 * v, 2) for v in bins.current]
    top = max([*ref, *cur, 1.0]) * 1.1
    what = "decile of the reference" if feature.kind == "numeric" else "category"
    name = mermaid(feature.name) or "feature"
    return "\n".join([
        "```mermaid", "xychart-beta",
        f'    title "{name}: % of rows per {what}, reference (bars) vs current (line)"',
        "    x-axis [" + ", ".join(f'"{mermaid(label) or "(empty)"}"' for label in bins.labels) + "]",
        f'    y-axis "% of rows" 0 --> {top:.1f}',
        "    bar [" + ", ".join(f"{v:g}" for v in ref) + "]",
        "    line [" + ", ".join(f"{v:g}" for v in cur) + "]", "```",
    ])


def _number(value: float) -> str:
    return format(value, ".3g") if value == value else "n/a"
