"""The report's secondary sections. Pure.

One function a section, named for what it renders: `significance_line`, `noise_notes`, `trend_charts`, `params_table`,
`lineage_details`, `history_table`. markdown.py puts them in order under the verdict and the criteria table.

Params, tags, metric names and everything else not of the bot's own words are escaped by escape.py (as prose,
inline code or HTML text, whichever the place needs); links point only where support/urls.public_url allows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import quote

from ..decide.decision import Champion, Decision
from ..metrics.numbers import fmt, fmt_signed
from ..support.urls import public_url, redact_text
from .escape import cell, code, html, mermaid, paragraph
from .escape import text as escape

PASS, FAIL = "✅", "❌"


@dataclass(frozen=True)
class Links:
    """URL templates for links in the report; `{run_id}` / `{commit}` are replaced, else the id is appended.
    Only http(s) targets become links, without credentials or query (support/urls.public_url)."""

    run: str | None = None
    commit: str | None = None


def folded(summary: str, body: str) -> str:
    """`body` folded under `summary`, which is HTML (see escape.html): the line is an HTML block, not markdown."""
    return f"<details><summary>{summary}</summary>\n\n{body}\n\n</details>"


def omitted(count: int, what: str) -> str:
    return f"\n\n_{count} more {what} left out to keep the comment under the forge's size limit._" if count else ""


def significance_line(decision: Decision) -> str:
    """One line for one tested metric; a table (difference, interval, p, Holm-adjusted p, MDE) for several."""
    tests = decision.significance
    if not tests:
        return ""
    if len(tests) == 1:
        s = tests[0]
        return f"**Significance** ({escape(s.method)}): {PASS if s.significant else FAIL} {escape(s.reason)}"
    level = fmt(100 * tests[0].level)
    rows = [f"**Significance** (Holm-corrected over {len(tests)} metrics)", "",
            f"| | metric | difference | {level}% interval | p | adjusted p | detectable (80% power) |",
            "|---|---|---|---|---|---|---|"]
    for s in tests:
        interval = f"[{fmt_signed(s.ci_low)}, {fmt_signed(s.ci_high)}]" if s.ci_low is not None and \
            s.ci_high is not None else "n/a"
        rows.append(f"| {PASS if s.significant else FAIL} | {cell(s.metric)} | {fmt_signed(s.observed)} | {interval} "
                    f"| {fmt(s.p_value, 3)} | {fmt(s.adjusted_p, 3)} | {fmt(s.mde, 3)} |")
    return "\n".join(rows)


def noise_notes(decision: Decision) -> str:
    """Rules that ask for less than the evaluation rows can tell apart from chance (decide/noise.py)."""
    if not decision.notes:
        return ""
    # each list item starts a paragraph of its own: "1." or ">" at its start must not open a block
    return "**Noise**\n\n" + "\n".join(f"- {paragraph(note)}" for note in decision.notes)


def trend_charts(decision: Decision, history: int) -> str:
    """A Mermaid line chart per criterion metric across the last `history` champions and the challenger;
    the first metric's is shown, the others are folded."""
    if history <= 0:
        return ""
    drawn = [(r.metric, c) for r in decision.criteria if (c := _chart(decision, r.metric, history))]
    if not drawn:
        return ""
    first, rest = drawn[0][1], drawn[1:]
    if not rest:
        return first
    names = html(", ".join(metric for metric, _ in rest))
    return first + "\n\n" + folded(f"Trend of {names}", "\n\n".join(chart for _, chart in rest))


def _chart(decision: Decision, metric: str, history: int) -> str:
    points = [(f"v{h.version}", h.metrics.get(metric)) for h in decision.history[-history:]]
    champion = decision.champion
    if champion is not None and champion.version not in {h.version for h in decision.history[-history:]}:
        points.append((champion.label or "champion", champion.metrics.get(metric)))
    points.append(("challenger", decision.challenger.metrics.get(metric)))
    usable = [(label, v) for label, v in points if v is not None and math.isfinite(v)]
    if len(usable) < 2:
        return ""
    values = [v for _, v in usable]
    low, high = min(values), max(values)
    pad = (high - low) * 0.1 or abs(high) * 0.05 or 1.0
    name = _mermaid_text(metric)
    return "\n".join([
        "```mermaid", "xychart-beta", f'    title "{name} across champions"',
        "    x-axis [" + ", ".join(f'"{_mermaid_text(label)}"' for label, _ in usable) + "]",
        f'    y-axis "{name}" {_plain(low - pad)} --> {_plain(high + pad)}',
        "    line [" + ", ".join(_plain(v) for v in values) + "]", "```",
    ])


def params_table(decision: Decision, rows: int | None) -> str:
    diff = decision.params_diff
    if not diff or decision.champion is None:
        return ""
    shown = diff if rows is None else diff[:rows]
    lines = [f"| param | {cell(decision.champion.title)} | challenger |", "|---|---|---|"]
    lines += [f"| {code(p.name, table=True)} | {code(p.champion, table=True)} | {code(p.challenger, table=True)} |"
              for p in shown]
    body = "\n".join(lines) + omitted(len(diff) - len(shown), "params")
    return folded(f"Params that differ ({len(diff)})", body)


def lineage_details(decision: Decision, links: Links) -> str:
    ch = decision.challenger
    items = [f"run {_run(ch.run_id, links)}"] if ch.run_id else []
    items += [f"{escape(k)} {_commit(v, links) if k == 'commit' else code(v)}" for k, v in ch.lineage.items()]
    items += [f"metrics from {code(ch.source)}"] if ch.source and ch.source != "run" else []
    lines = [f"- **challenger**: {' · '.join(items) or 'no lineage recorded'}"]
    champion = decision.champion
    if champion is not None:
        parts = [f"run {_run(champion.run_id, links)}"] if champion.run_id else []
        parts += [code(champion.source)] if champion.source else []
        lines.append(f"- **{cell(champion.title)}**: {' · '.join(parts) or 'no lineage recorded'}")
    if champion is not None and champion.rescored_metrics is not None:
        lines.append("\n" + _rescored(champion.metrics, champion.rescored_metrics, rescore_note(champion)))
    return folded("Lineage", "\n".join(lines))


def rescore_note(champion: Champion, *, inline: bool = False) -> str:
    """"rescored now" (evaluated by this check) or "rescored (reused from <when>)" (the record an earlier check
    left for the same champion and evaluation inputs; `inline`: "rescored, reused from <when>", for a place
    already in parentheses); "rescored" for a decision that does not say."""
    if not champion.rescored_at:
        return "rescored"
    if not champion.rescore_reused:
        return "rescored now"
    try:
        when = datetime.fromisoformat(champion.rescored_at.replace("Z", "+00:00")).astimezone(timezone.utc)
        shown = when.strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        shown = champion.rescored_at
    return f"rescored, reused from {shown}" if inline else f"rescored (reused from {shown})"


def _rescored(logged: Mapping[str, float], rescored: Mapping[str, float], note: str) -> str:
    said = f", {escape(note)}" if note != "rescored" else ""
    rows = [f"The champion was re-evaluated on today's data{said}; the table compares against the rescored values.",
            "", "| metric | champion as logged | champion rescored |", "|---|---:|---:|"]
    for name in sorted(set(logged) | set(rescored)):
        rows.append(f"| {cell(name)} | {fmt(logged.get(name))} | {fmt(rescored.get(name))} |")
    return "\n".join(rows)


def history_table(decision: Decision, wanted: int, cap: int) -> str:
    """The last `wanted` earlier champions as a table, at most `cap` rows of them (the size budget)."""
    history = decision.history[-wanted:] if wanted > 0 else ()
    if not history:
        return ""
    shown = history[-cap:] if cap > 0 else ()
    metrics = [r.metric for r in decision.criteria]
    lines = ["| version | registered | " + " | ".join(cell(m) for m in metrics) + " |",
             "|---|---|" + "---:|" * len(metrics)]
    for h in reversed(shown):
        when = datetime.fromtimestamp(h.created_at / 1000, tz=timezone.utc).date().isoformat() if h.created_at else "—"
        values = " | ".join(fmt(h.metrics.get(m)) for m in metrics)
        lines.append(f"| {cell('v' + h.version)} | {when} | {values} |")
    body = "\n".join(lines) + omitted(len(history) - len(shown), "champions")
    return folded(f"Champion history ({len(history)})", body)


def _run(run_id: str | None, links: Links) -> str:
    return _link(run_id, links.run, "{run_id}") if run_id else "—"


def _commit(sha: str, links: Links) -> str:
    return _link(sha, links.commit, "{commit}")


def _link(value: str, template: str | None, slot: str) -> str:
    """The id's first 12 characters as code, linked to `template` with the whole id in `slot` when that makes
    an http(s) link. Redacted before it is cut, so no part of a credential can show."""
    value = redact_text(value)
    shown = code(value[:12])
    if not template:
        return shown
    target = template.replace(slot, quote(value, safe="")) if slot in template else template + quote(value, safe="")
    href = public_url(target)
    return f"[{shown}]({href})" if href else shown


def _mermaid_text(text: str) -> str:
    return mermaid(text)


def _plain(value: float) -> str:
    text = format(value, ".6g")
    return format(value, ".12f").rstrip("0").rstrip(".") if "e" in text else text
