"""The drift report: verdict, table, findings, a Mermaid chart per drifted feature; and no name or value from
the data can break the table or inject HTML (rendered with GitHub's cmark-gfm, raw HTML let through as both
forges do before their sanitizers)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import cmarkgfm
import numpy as np
from cmarkgfm.cmark import Options

from mlops_bot.drift.check import check
from mlops_bot.drift.render import render_markdown
from tests.helpers.drift_tables import monitor, table

HOSTILE = '<script>alert(1)</script>|x`y`<img src=x onerror=alert(1)> @octocat #1 [l](javascript:1) "'
SAFE_TAGS = {"h2", "p", "strong", "code", "table", "thead", "tbody", "tr", "th", "td", "ul", "li", "pre", "details",
             "summary", "sub"}


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.rows: list[int] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "tr":
            self.rows.append(0)
        if tag in ("td", "th"):
            self.rows[-1] += 1


def drifted_report(name: str, category: str) -> str:
    rng = np.random.default_rng(0)
    reference = table("reference", **{name: rng.normal(0, 1, 800), "c" + name: ["a", "b"] * 400})
    current = table("current", **{name: rng.normal(1, 1, 800), "c" + name: [category, "b"] * 400})
    return render_markdown(check(reference, current, monitor()), "Drift of " + name)


def test_the_report_shows_the_verdict_the_table_the_findings_and_a_chart_per_drifted_feature() -> None:
    text = drifted_report("age", "z")
    assert "**Drift detected**: 2 of 2 feature(s) drifted (the dataset drifts when at least 1 feature drifts)." \
        in text
    assert "| `age` | numeric | 0.0% → 0.0% | **ks p = " in text
    assert "- 'cage': 1 value(s) the reference never holds, 50.0% of the current rows: 'z'" in text
    assert text.count("```mermaid\nxychart-beta") == 2
    chart = text.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert re.search(r'^    bar \[(10(\.\d+)?, ){9}10(\.\d+)?\]$', chart, re.M)
    assert re.search(r'^    line \[[0-9., ]+\]$', chart, re.M) and 'x-axis ["below ' in chart


def test_no_name_or_value_from_the_data_breaks_the_table_or_injects_html() -> None:
    text = drifted_report(HOSTILE, HOSTILE)
    for extensions in (["table", "autolink", "strikethrough", "tagfilter"], ["table", "autolink", "strikethrough"]):
        rendered = cmarkgfm.cmark.markdown_to_html_with_extensions(text, options=Options.CMARK_OPT_UNSAFE,
                                                                    extensions=extensions)
        tags = Tags()
        tags.feed(rendered)
        assert set(tags.tags) <= SAFE_TAGS, set(tags.tags) - SAFE_TAGS
        assert tags.rows and set(tags.rows) == {5}  # every row keeps its five cells
        assert "<a " not in rendered and "<script" not in rendered and "<img" not in rendered
    for chart in re.findall(r"```mermaid\n(.*?)```", text, re.S):
        for quoted in re.findall(r'"([^"\n]*)"', chart):
            assert not set(quoted) & set("<>`|[]\"#&;{}"), quoted
