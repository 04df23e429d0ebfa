"""The did-you-mean for a metric name nobody logged: a nested file's dotted name is found whatever its prefix, and
the challenger's file and the champion's get the same hint (issue #16)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_bot.config.model import Criterion
from mlops_bot.decide.verdict import decide
from mlops_bot.errors import DataError
from mlops_bot.metrics.files import read_metrics
from mlops_bot.metrics.names import closest, did_you_mean
from tests.helpers.decisions import NOW, challenger, champion, compare_of

ACCURACY = Criterion("accuracy", threshold=0.9, min_absolute_change=0.005)


@pytest.mark.parametrize(("name", "names", "found"), [
    ("accuracy", ["evaluation.holdout.accuracy", "evaluation.holdout.f1"], "evaluation.holdout.accuracy"),
    ("accuracy", ["a.b.accuracy", "b.accuracy", "accuracy_top5"], "b.accuracy"),
    ("test.accuracy", ["accuracy", "f1"], "accuracy"),
    ("acuracy", ["accuracy", "f1"], "accuracy"),
    ("accuracy", ["latency_ms"], None),
])
def test_closest_prefers_the_same_name_nested(name: str, names: list[str], found: str | None) -> None:
    assert closest(name, names) == found
    assert did_you_mean(name, names) == ("" if found is None else f"did you mean {found!r}?")


def metrics(tmp_path: Path, name: str, text: str) -> dict[str, float]:
    path = tmp_path / name
    path.write_text(text)
    return read_metrics(path)


def test_a_nested_challenger_file_gets_the_hint_a_nested_champion_file_gets(tmp_path: Path) -> None:
    nested = metrics(tmp_path, "nested.json", '{"evaluation": {"holdout": {"accuracy": 0.95}}}')
    flat = metrics(tmp_path, "flat.yaml", "accuracy: 0.93\n")
    ours = decide("m", compare_of(ACCURACY), challenger(nested), champion(flat), now=NOW).criteria[0].reason
    theirs = decide("m", compare_of(ACCURACY), challenger(flat), champion(nested), now=NOW).criteria[0].reason
    assert ours == ("accuracy: the challenger logged no value for it (did you mean 'evaluation.holdout.accuracy'?), "
                    "which cannot pass")
    assert theirs.endswith("accuracy: champion v3 logged no value for it (did you mean "
                           "'evaluation.holdout.accuracy'?), so the challenger cannot be compared with it")
    with pytest.raises(DataError, match=r"\(did you mean 'evaluation\.holdout\.accuracy'\?\)$"):
        decide("m", compare_of(ACCURACY), challenger(nested), champion(nested), now=NOW)
