"""The markdown report: snapshots of typical decisions, escaping, and the comment size limit."""

from __future__ import annotations

import math
import re
from dataclasses import replace

from mlops_bot.config.model import Criterion, Regression, Significance
from mlops_bot.decide.decision import HistoryPoint
from mlops_bot.decide.document import to_document
from mlops_bot.decide.significance import mcnemar
from mlops_bot.decide.verdict import decide
from mlops_bot.report.markdown import MAX_CHARS, Links, marker, render_json, render_markdown
from tests.helpers.decisions import ACCURACY, LATENCY, NOW, challenger, champion, compare_of, sample_decision
from tests.helpers.snapshots import check_snapshot

LINKS = Links(run="http://127.0.0.1:5000/#/experiments/1/runs/{run_id}",
              commit="https://github.com/acme/iris/commit/{commit}")


def test_passing_check_with_history_params_and_links() -> None:
    text = render_markdown(sample_decision(), links=LINKS)
    assert text.startswith("<!-- mlops-bot:report model=iris-classifier -->\n")
    check_snapshot("pass.md", text)


def test_failing_check_rescored_and_not_significant() -> None:
    sig = mcnemar([1.0] * 8 + [0.0] * 4 + [1.0] * 80, [0.0] * 8 + [1.0] * 4 + [1.0] * 80, metric="accuracy",
                  alpha=0.05)
    decision = decide(
        "iris-classifier",
        compare_of(ACCURACY, LATENCY, Criterion("f1", min_relative_change=0.01),
                   significance=Significance(("accuracy",), test="mcnemar")),
        challenger({"accuracy": 0.9565, "latency_ms": 140.0, "f1": math.nan}, params={"C": "0.5"}),
        replace(champion({"accuracy": 0.95, "latency_ms": 120.0, "f1": 0.9}, rescored={"accuracy": 0.913},
                         params={"C": "1.0"}, source="models:/iris-classifier@champion"),
                rescored_at="2025-03-01T09:30:00Z", rescore_reused=True),
        significance=(sig,), now=NOW,
    )
    assert decision.verdict == "fail"
    check_snapshot("fail.md", render_markdown(decision))


def test_bootstrap() -> None:
    decision = decide("iris-classifier", compare_of(ACCURACY, LATENCY),
                      challenger({"accuracy": 0.93, "latency_ms": 98.5}, lineage={"commit": "0123456789abcdef"}),
                      None, now=NOW)
    check_snapshot("bootstrap.md", render_markdown(decision))


def test_offline_files() -> None:
    from mlops_bot.decide.decision import Challenger, Champion

    decision = decide("iris-classifier", compare_of(ACCURACY),
                      Challenger(None, {"accuracy": 0.95}, source="a.json"),
                      Champion(None, None, {"accuracy": 0.90}, source="b.json"), now=NOW)
    text = render_markdown(decision)
    assert "| metric | champion | challenger |" in text
    check_snapshot("offline.md", text)


OUR_TAGS = re.compile(r"</?(details|summary|sub)>|<!-- mlops-bot:report model=[^ ]* -->")
CODE_SPANS = re.compile(r"``.*?``|`[^`]*`")


def test_untrusted_text_cannot_inject_markup() -> None:
    decision = decide(
        "evil<!-- -->model", compare_of(Criterion("acc|<img src=x>", threshold=0.5)),
        challenger({"acc|<img src=x>": 0.9}, params={"note": "a|b `c` <script>", "long": "x" * 500},
                   lineage={"branch": "</details><h1>hi"}),
        champion({"acc|<img src=x>": 0.8}), now=NOW)
    text = render_markdown(decision)
    assert text.splitlines()[0] == "<!-- mlops-bot:report model=evil-model -->"
    # outside code spans (where HTML is inert) no tag, comment or entity of the author's can start
    prose = OUR_TAGS.sub("", CODE_SPANS.sub("", text))
    assert re.search(r"<[A-Za-z/!?]", prose) is None
    assert "| acc\\|&lt;img src=x> | 0.8 | 0.9 |" in text  # a pipe cannot split the table row
    assert "| `note` | — | ``a\\|b `c` <script>`` |" in text  # fenced by a run longer than the value's
    assert "branch `</details><h1>hi`" in text
    assert "x" * 199 + "…" in text and "x" * 200 not in text
    assert "0.9 >= threshold 0.5" in text  # comparison signs stay readable
    assert 'title "accimg srcx across champions"' in text


def test_stays_under_the_comment_limit_without_touching_the_verdict_table() -> None:
    base = sample_decision()
    params = {f"param_{i:05d}": "v" * 150 for i in range(3000)}
    history = tuple(HistoryPoint(str(v), f"run{v}", {"accuracy": 0.9, "latency_ms": 100.0}) for v in range(1, 101))
    big = decide("iris-classifier", compare_of(ACCURACY, LATENCY),
                 challenger(base.challenger.metrics, params=params), base.champion, now=NOW).with_history(history)
    full = render_markdown(big, history=100, limit=10**9)
    assert len(full) > MAX_CHARS
    text = render_markdown(big, history=100)
    assert len(text) <= MAX_CHARS
    table = full.split("\n\n")[3]
    assert table.startswith("| metric |") and table in text
    assert "_2953 more params left out to keep the comment under the forge's size limit._" in text
    assert "<summary>Champion history (100)</summary>" in text
    assert "_80 more champions left out" in text


def test_history_is_limited_to_the_configured_count() -> None:
    text = render_markdown(sample_decision(), history=2)
    assert '    x-axis ["v2", "v3", "challenger"]' in text
    assert "<summary>Champion history (2)</summary>" in text
    assert "xychart-beta" not in render_markdown(sample_decision(), chart=False)
    assert "xychart-beta" not in render_markdown(sample_decision(), history=0)


def test_json_is_the_decision_dict() -> None:
    d = sample_decision()
    assert render_json(d) == to_document(d)
    assert marker("iris-classifier") == "<!-- mlops-bot:report model=iris-classifier -->"


def test_guard_metric_regression_shows_in_table() -> None:
    d = decide("m", compare_of(Criterion("latency_ms", greater_is_better=False,
                                         max_regression=Regression(absolute=5))),
               challenger({"latency_ms": 130.0}), champion({"latency_ms": 120.0}), now=NOW)
    row = next(line for line in render_markdown(d).splitlines() if line.startswith("| latency_ms"))
    assert row == "| latency_ms | 120 | 130 | +10 | +8.33% | at most 5 worse | ❌ |"
