"""What a metric reads from the paired predictions files, as numpy arrays (for decide/measures.py). Pure.

- labels: y_true and each model's y_pred, encoded as integer codes into the sorted union of the labels;
- numbers: the same columns read as numbers (regression);
- probabilities: per model, its `proba_<class>` columns, or its `y_score` (the probability or score of the
  positive class of a binary problem);
- the positive label of a binary problem, when it is obvious (`positive_label`).

Every missing column or unusable value is a DataError naming the metric, the column and what to write.
numpy is imported inside the functions, so importing mlops_bot.decide does not load it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import DataError
from ..metrics.predictions import ModelRows, PairedRows

if TYPE_CHECKING:
    from numpy.typing import NDArray

POSITIVE = frozenset({"1", "true", "yes", "positive", "pos"})
NEGATIVE = frozenset({"0", "-1", "false", "no", "negative", "neg"})


def labels(rows: PairedRows, metric: str) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any], list[str]]:
    """(y_true, challenger's y_pred, champion's y_pred) as codes into `classes`, the sorted union of all labels."""
    import numpy as np

    truth = _truth(rows, metric)
    preds = [_predicted(model, metric) for model in (rows.challenger, rows.champion)]
    n = len(truth)
    classes, codes = np.unique(np.array([*truth, *preds[0], *preds[1]], dtype=str), return_inverse=True)
    codes = codes.astype(np.int64)
    return codes[:n], codes[n:2 * n], codes[2 * n:], [str(c) for c in classes]


def numbers(rows: PairedRows, metric: str) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any]]:
    """(y_true, challenger's y_pred, champion's y_pred) as finite numbers."""
    truth = _truth(rows, metric)
    ours, theirs = (_predicted(model, metric) for model in (rows.challenger, rows.champion))
    return (_as_numbers(truth, rows.ids, metric, "y_true of the challenger's file"),
            _as_numbers(ours, rows.ids, metric, f"y_pred of {rows.challenger.path}"),
            _as_numbers(theirs, rows.ids, metric, f"y_pred of {rows.champion.path}"))


def probabilities(model: ModelRows, ids: Sequence[str], metric: str) -> dict[str, NDArray[Any]]:
    """The model's `proba_<class>` columns by class; {} when it has none (then see `y_score`)."""
    import numpy as np

    found = {name[len("proba_"):]: np.asarray(values, dtype=np.float64)
             for name, values in model.columns.items() if name.startswith("proba_")}
    for name, values in found.items():
        _check_finite(values, f"proba_{name} of {model.path}", metric, ids)
    return found


def y_score(model: ModelRows, ids: Sequence[str], metric: str) -> NDArray[Any]:
    import numpy as np

    if "y_score" not in model.columns:
        raise DataError(f"significance: {metric} needs each model's probabilities: {model.path} has neither a "
                        "y_score column (binary: the probability of the positive class) nor proba_<class> columns.")
    values = np.asarray(model.columns["y_score"], dtype=np.float64)
    _check_finite(values, f"y_score of {model.path}", metric, ids)
    return values


def positive_label(classes: Sequence[str], metric: str) -> int | None:
    """Index in `classes` of the positive label of a binary problem: the one label of the two (or fewer) that
    reads as positive (1, 1.0, true, yes, positive, pos; case-insensitive) beside one that reads as negative (0,
    -1, false, no, negative, neg). None when only negative labels occur. Otherwise a DataError: any other pair
    (cat/dog) has no obvious positive, and more than two labels are not a binary problem."""
    if len(classes) <= 2:
        kinds = [_kind(label) for label in classes]
        if kinds.count("positive") == 1 and kinds.count("negative") == len(classes) - 1:
            return kinds.index("positive")
        if kinds and kinds.count("negative") == len(kinds):
            return None
    shown = ", ".join(repr(c) for c in classes[:6]) + (", ..." if len(classes) > 6 else "")
    raise DataError(f"significance: {metric} is a binary metric, but the labels ({shown}) have no obvious positive "
                    "label (1, true, yes or positive beside 0, -1, false, no or negative); name an average "
                    "instead (e.g. f1_macro, f1_weighted, precision_macro, recall_macro).")


def column_pair(rows: PairedRows, name: str) -> tuple[NDArray[Any], NDArray[Any]] | None:
    """Both models' per-row values of column `name`, when both files have it."""
    import numpy as np

    if name not in rows.challenger.columns or name not in rows.champion.columns:
        return None
    pair = tuple(np.asarray(model.columns[name], dtype=np.float64) for model in (rows.challenger, rows.champion))
    for values, model in zip(pair, (rows.challenger, rows.champion), strict=True):
        _check_finite(values, f"{name} of {model.path}", name, rows.ids)
    return pair[0], pair[1]


def _kind(label: str) -> str:
    text = label.strip().lower()
    if text in POSITIVE:
        return "positive"
    if text in NEGATIVE:
        return "negative"
    try:
        value = float(text)
    except ValueError:
        return "other"
    return "positive" if value == 1 else "negative" if value in (0, -1) else "other"


def _truth(rows: PairedRows, metric: str) -> tuple[str, ...]:
    if rows.y_true is None:
        raise DataError(f"significance: {metric} needs the true values: add a y_true column to both predictions "
                        f"files ({rows.challenger.path}, {rows.champion.path}).")
    return rows.y_true


def _predicted(model: ModelRows, metric: str) -> tuple[str, ...]:
    if model.y_pred is None:
        raise DataError(f"significance: {metric} needs each model's predictions: {model.path} has no y_pred "
                        "column.")
    return model.y_pred


def _as_numbers(values: Sequence[str], ids: Sequence[str], metric: str, where: str) -> NDArray[Any]:
    import numpy as np

    try:
        array = np.array(values, dtype=np.float64)
    except ValueError:
        array = np.array([_number(v) for v in values], dtype=np.float64)
    _check_finite(array, where, metric, ids, values)
    return array


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def _check_finite(values: NDArray[Any], where: str, metric: str, ids: Sequence[str],
                  shown: Sequence[str] | None = None) -> None:
    import numpy as np

    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        first = int(bad[0])
        value = repr(shown[first]) if shown is not None else repr(float(values[first]))
        raise DataError(f"significance: {metric} needs finite numbers, but {where} has {value} on row "
                        f"{ids[first]!r}.")
