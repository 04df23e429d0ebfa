"""Every free-text field of a Decision set to a markdown/HTML payload, rendered by GitHub's own renderer
(cmark-gfm through cmarkgfm, with the GFM extensions): the HTML has the same elements and attributes as the
report of a harmless decision of the same shape, the value shows as the text it is, and links go only where
the report's link templates point. Raw HTML is let through (CMARK_OPT_UNSAFE), as both forges do before their
sanitizers, so anything the report failed to escape shows; once with the tagfilter extension (GitHub) and once
without (GitLab has none)."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import cmarkgfm
import pytest
from cmarkgfm.cmark import Options

from mlops_bot.decide.decision import (
    Challenger,
    Champion,
    CriterionResult,
    Decision,
    HistoryPoint,
    ParamChange,
    SignificanceResult,
)
from mlops_bot.forges.base import has_marker
from mlops_bot.report.markdown import Links, marker, render_markdown

RUN, COMMIT = "http://127.0.0.1:5000/#/experiments/1/runs/", "https://github.example/o/r/commit/"
LINKS = Links(run=RUN + "{run_id}", commit=COMMIT + "{commit}")
EXTENSIONS = (["table", "autolink", "strikethrough", "tagfilter", "tasklist"],
              ["table", "autolink", "strikethrough", "tasklist"])
# a mention or reference that GitHub or GitLab would expand after rendering, in the text of the page
REFERENCE = re.compile(r"(?:[@#!~%&$]|GH-)[\w\"]|\{[+-]")

PAYLOADS = {
    "backtick runs 1..5": "x`a``b```c````d`````e``<img src=https://evil.example/p.png>``y",
    "backtick at both ends": "`<img src=https://evil.example/a.png>`",
    "backslash at the end": "tail\\",
    "html": '<img src="https://evil.example/p.png" onerror="alert(1)"><b>bold</b>',
    "script": "<script>alert(1)</script><style>*{}</style>",
    "closing our html": "</summary></details><details open><summary>spoof</sub>",
    "javascript link": "[click](javascript:alert(1)) [ref][r]\n\n[r]: javascript:alert(2)",
    "image": "![x](http://evil.example/i.png)",
    "autolinks": "<https://evil.example> <a@evil.example> https://evil.example www.evil.example a@evil.example",
    "pipes": "a | b | c || d |",
    "blocks": "1. one\n\n# heading\n\n- item\n> quote\n---\n|a|b|\n|-|-|\n\n    code\n```\nfence",
    "comments": "<!-- mlops-bot:report model=other --> --> <!--",
    "emphasis": "**b** __u__ _i_ *e* ~~s~~ ~t~",
    "math": "$x^2$ $$\\frac{1}{2}$$ $`y`$",
    "entities": "&lt;img src=x&gt; &#60;script&#62; &amp; &copy;",
    "references": "@octocat @org/team #1 GH-2 owner/repo#3 !4 ~bug ~\"a label\" %m &5 {+ins+} {-del-}",
    "tasks and footnotes": "[ ] [x] [^1]\n\n[^1]: note",
    "line endings": "a\r\nb\rc\td\x00e",
    "starts with a quote": "> quoted",
    "ends in markup": "**a** _b_ c*_",
}


def hostile(v: str) -> Decision:
    """A failing decision with a champion, significance, params, lineage and history: every string is `v`."""
    first = CriterionResult(metric=v, greater_is_better=True, passed=True, reason=v, criterion=v, challenger=0.9,
                            champion=0.8, baseline="rescored", change=0.1, change_pct=12.5)
    second = CriterionResult(metric=v + "2", greater_is_better=False, passed=False, reason=v, criterion=v,
                             challenger=0.5, champion=0.4, baseline="logged", change=0.1, change_pct=25.0)
    return Decision(
        model=v, verdict="fail", bootstrap=False, summary=v, created_at=v,
        challenger=Challenger(run_id=v, metrics={v: 0.9, v + "2": 0.5}, params={v: v, "p": v},
                              lineage={"experiment": v, "commit": v, "repository": v, v: v}, source=v),
        champion=Champion(version=v, run_id=v, metrics={v: 0.85, v + "2": 0.4}, rescored_metrics={v: 0.8},
                          params={v: v + "!"}, source=v),
        criteria=(first, second),
        significance=(SignificanceResult(metric=v, test="paired_bootstrap", method=v, alpha=0.05, n=10,
                                         observed=0.1, significant=True, reason=v),
                      SignificanceResult(metric=v + "2", test="mcnemar", method=v, alpha=0.05, n=10, observed=0.1,
                                         significant=False, reason=v, ci_low=-0.1, ci_high=0.2, p_value=0.3,
                                         adjusted_p=0.6, mde=0.05)),
        notes=(v, v + " and " + v),
        params_diff=(ParamChange(v, v + "!", v), ParamChange("p", None, v)),
        history=(HistoryPoint(v + "1", v, {v: 0.7, v + "2": 0.3}, created_at=1_735_689_600_000),
                 HistoryPoint(v + "2", None, {v: 0.75}, created_at=None)),
    )


class Page(HTMLParser):
    """What a rendered page is made of: its elements with their attribute names, comments, links, the text of
    its code elements and of everything else, and the heading."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, tuple[str, ...]]] = []
        self.comments: list[str] = []
        self.hrefs: list[str] = []
        self.codes: list[str] = []
        self.prose: list[str] = []
        self.heading = ""
        self._open: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, tuple(sorted(name for name, _ in attrs))))
        self.hrefs += [value or "" for name, value in attrs if tag == "a" and name == "href"]
        self._open.append(tag)
        if tag == "code":
            self.codes.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._open:
            del self._open[len(self._open) - 1 - self._open[::-1].index(tag):]

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)

    def handle_data(self, data: str) -> None:
        if "code" in self._open:
            self.codes[-1] += data
        else:
            self.prose.append(data)
        if "h3" in self._open:
            self.heading += data


def render(markdown: str, extensions: list[str]) -> Page:
    return Page(cmarkgfm.cmark.markdown_to_html_with_extensions(
        markdown, options=Options.CMARK_OPT_UNSAFE | Options.CMARK_OPT_GITHUB_PRE_LANG, extensions=extensions))


def shown(value: str) -> str:
    """How the report shows a value: on one line, without leading or trailing space."""
    return re.sub(r"[\x00-\x1f\x7f]", " ", value.replace("\r\n", "\n")).strip()


@pytest.mark.parametrize("extensions", EXTENSIONS, ids=["github", "no-tagfilter"])
@pytest.mark.parametrize("payload", PAYLOADS.values(), ids=PAYLOADS.keys())
def test_a_hostile_value_renders_as_text_and_nothing_else(payload: str, extensions: list[str]) -> None:
    text = render_markdown(hostile(payload), links=LINKS)
    page, harmless = render(text, extensions), render(render_markdown(hostile("plain"), links=LINKS), extensions)
    assert page.elements == harmless.elements  # no element, attribute, list item or table cell of the value's
    assert page.comments == [marker(payload)[4:-3]] and text.startswith(marker(payload) + "\n")
    for href in page.hrefs:
        prefix = RUN if href.startswith(RUN) else COMMIT
        assert href.startswith(prefix) and re.fullmatch(r"[A-Za-z0-9%._~-]*", href[len(prefix):]), href
    # the value is shown whole: as the heading's text and as a code element (the param's value)
    assert page.heading.replace("\u2060", "").endswith(f"Fail: {shown(payload)}")
    assert shown(payload) in [code.strip() for code in page.codes] or payload.strip() != payload
    assert not REFERENCE.search("".join(page.prose)), "a forge would expand a mention or reference"


def test_a_code_span_outlasts_any_backtick_run_in_a_table_cell() -> None:
    for run in range(1, 6):
        value = "`" * run + "a|b" + "`" * run
        page = render(render_markdown(hostile(value)), EXTENSIONS[0])
        assert value in page.codes


def test_links_are_http_only_and_carry_no_credentials() -> None:
    decision = hostile("abc123")
    unsafe = Links(run="javascript:alert(1)//{run_id}", commit="data:text/html,<script>{commit}")
    assert render(render_markdown(decision, links=unsafe), EXTENSIONS[0]).hrefs == []
    secret = Links(run="http://mlflow:CANARY-PASS@127.0.0.1:5000/?token=CANARY-TOKEN#/runs/{run_id}")
    text = render_markdown(decision, links=secret)
    assert "CANARY" not in text
    assert render(text, EXTENSIONS[0]).hrefs == ["http://127.0.0.1:5000/#/runs/abc123"] * 2


def test_urls_in_values_show_without_credentials_or_query() -> None:
    remote = "https://gitlab-ci-token:CANARY-JOB@gitlab.example/group/project.git"
    data = "https://data.example/train.csv?sig=CANARY-SIG&se=2030"
    decision = hostile(f"see {remote} and {data}")
    text = render_markdown(decision, links=LINKS)
    assert "CANARY" not in text
    assert "gitlab.example/group/project.git" in html.unescape(text) and "data.example/train.csv" in text


def test_a_marker_quoted_in_another_models_report_does_not_make_it_that_models_comment() -> None:
    theirs = marker("iris-classifier")
    text = render_markdown(hostile(theirs))
    assert theirs in text  # in a code span, where it shows as text
    assert not has_marker(text, theirs) and has_marker(text, marker(theirs))
