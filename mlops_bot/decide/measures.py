"""The metrics a significance test can recompute on resampled rows, as their libraries define them. Pure.

`MEASURES` maps a name to its `Measure`: what it reads from the predictions files, which way is better by
definition, and how to build its kernel (decide/kernels.py). `ALIASES` adds the names scikit-learn and mlflow
print (`accuracy_score`, `f1_score`, `root_mean_squared_error`, `r2_score`...), and `neg_<name>` is any
lower-is-better measure negated, as scikit-learn's scorers report it (`neg_log_loss`: higher is better).

- From labels (y_true, y_pred): accuracy, error_rate; balanced_accuracy; f1, precision, recall with the averages
  macro, micro, weighted (scikit-learn's, zero_division=0: a macro average runs over the labels that occur in
  y_true or in that model's y_pred on the rows at hand, as scikit-learn's does on each resample) and plain `f1`,
  `precision`, `recall` (= `f1_score`...) for a binary problem, of its obvious positive label
  (decide/inputs.positive_label; another pair of labels, or more than two, is refused: name an average). For
  single-label data the micro averages equal accuracy, so they are computed as accuracy.
- From numbers (y_true, y_pred): mse, rmse (the root of the mean square, not its mean), mae, r2.
- From probabilities: log_loss (the probability of the true label, from proba_<class> columns or a binary
  y_score, clipped to [eps, 1 - eps] as scikit-learn does); roc_auc (binary: y_score of the positive label;
  proba_<class> columns: the one-vs-rest macro average, over the classes with both positives and negatives).

Adding a metric: write its per-row value in a column named after it (or `score`) in both predictions files: a
name not in the registry is the mean of that column (a per-row loss, a 0/1 hit...). Other metrics need an entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from ..errors import DataError
from ..metrics.predictions import PairedRows
from . import inputs
from .kernels import Confusion, Kernel, Means, Ranks

if TYPE_CHECKING:
    from numpy.typing import NDArray

    Array = NDArray[Any]


@dataclass(frozen=True)
class Measure:
    name: str
    needs: str  # what the files must hold: "labels", "numbers", "probabilities" or "column"
    greater_is_better: bool | None  # by definition; None for a user's column (the caller's direction)
    build: Callable[[PairedRows, str], Kernel]  # (rows, the name asked for) -> the kernel
    accuracy_like: bool = False  # the mean of 0/1 per-row correctness: McNemar applies, resolution 1/n


def lookup(name: str) -> Measure | None:
    """The measure `name` stands for (registry name, alias or neg_<lower-is-better name>), or None."""
    key = name.strip().lower()
    measure = MEASURES.get(ALIASES.get(key, key))
    if measure is not None:
        return measure
    if key.startswith("neg_"):
        inner = lookup(key[len("neg_"):])
        if inner is not None and inner.greater_is_better is False:
            return Measure(key, inner.needs, True, partial(_negated, inner.build))
    return None


def prepare(name: str, rows: PairedRows) -> tuple[Measure, Kernel]:
    """The measure and its kernel for `name`: a registry measure, else the mean of a per-row column `name` (or
    `score`) present in both files, else a DataError that says what to add."""
    if not rows.ids:
        raise DataError("significance: the predictions files hold no rows to compare.")
    measure = lookup(name)
    if measure is not None:
        return measure, measure.build(rows, name)
    for column in (name, "score"):
        pair = inputs.column_pair(rows, column)
        if pair is not None:
            zero_one = all(set(values.tolist()) <= {0.0, 1.0} for values in pair)
            kernel = Means(pair, _both, pair if zero_one else None)
            return Measure(name, "column", None, partial(_built, kernel)), kernel
    raise DataError(f"significance: cannot compute {name!r} from the predictions files: it is not a metric the "
                    f"bot knows ({', '.join(sorted(MEASURES))}; also {', '.join(sorted(ALIASES))} and neg_<loss>), "
                    f"and the files have no per-row column {name!r} (or 'score') in both. To test a metric of "
                    f"your own, write each row's value in a column named {name!r} in both files: its mean is the "
                    "metric.")


def _negated(build: Callable[[PairedRows, str], Kernel], rows: PairedRows, name: str) -> Kernel:
    return _Negated(build(rows, name))


class _Negated(Kernel):
    def __init__(self, inner: Kernel) -> None:
        self.inner, self.n, self.batch = inner, inner.n, inner.batch
        self.shares, self.cells = inner.shares, inner.cells

    def diffs(self, idx: Array) -> Array:
        return -self.inner.diffs(idx)

    def diffs_counts(self, counts: Array) -> Array:
        return -self.inner.diffs_counts(counts)

    def levels(self) -> tuple[float, float]:
        ours, theirs = self.inner.levels()
        return -ours, -theirs

    def jackknife(self) -> Array:
        return -self.inner.jackknife()


def _both(means: Array) -> tuple[Array, Array]:
    return means[..., 0], means[..., 1]


def _built(kernel: Kernel, rows: PairedRows, name: str) -> Kernel:
    return kernel


# -- from labels ---------------------------------------------------------------------------------------------------

def _correctness(rows: PairedRows, name: str, error: bool = False) -> Kernel:
    truth, ours, theirs, _ = inputs.labels(rows, name)
    pair = ((ours != truth).astype(float), (theirs != truth).astype(float)) if error else \
        ((ours == truth).astype(float), (theirs == truth).astype(float))
    return Means(pair, _both, pair)


def _confusion(metric: Callable[[Array, int | None], Array], binary: bool, rows: PairedRows, name: str) -> Kernel:
    truth, ours, theirs, classes = inputs.labels(rows, name)
    positive = inputs.positive_label(classes, name) if binary else None
    return Confusion(truth, ours, theirs, len(classes), partial(_with_positive, metric, positive))


def _with_positive(metric: Callable[[Array, int | None], Array], positive: int | None, counts: Array) -> Array:
    return metric(counts, positive)


def _parts(counts: Array) -> tuple[Array, Array, Array]:
    """(true positives, true count, predicted count) per class; rows of `counts` are true labels."""
    import numpy as np

    c = counts.astype(np.float64)
    return np.diagonal(c, axis1=-2, axis2=-1), c.sum(axis=-1), c.sum(axis=-2)


def _ratio(num: Array, den: Array) -> Array:
    import numpy as np

    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def _average(per_class: Array, support: Array, predicted: Array, average: str, positive: int | None) -> Array:
    import numpy as np

    if average == "binary":
        return per_class[..., positive] if positive is not None else np.zeros(per_class.shape[:-1])
    present = support if average == "weighted" else ((support + predicted) > 0).astype(np.float64)
    averaged: Array = (per_class * present).sum(axis=-1) / present.sum(axis=-1)
    return averaged


def _f1(average: str, counts: Array, positive: int | None) -> Array:
    tp, support, predicted = _parts(counts)
    return _average(_ratio(2 * tp, support + predicted), support, predicted, average, positive)


def _precision(average: str, counts: Array, positive: int | None) -> Array:
    tp, support, predicted = _parts(counts)
    return _average(_ratio(tp, predicted), support, predicted, average, positive)


def _recall(average: str, counts: Array, positive: int | None) -> Array:
    tp, support, predicted = _parts(counts)
    return _average(_ratio(tp, support), support, predicted, average, positive)


def _balanced_accuracy(counts: Array, positive: int | None) -> Array:
    """The mean recall over the labels that occur in y_true (scikit-learn's balanced_accuracy_score)."""
    tp, support, _ = _parts(counts)
    occurs = support > 0
    averaged: Array = (_ratio(tp, support) * occurs).sum(axis=-1) / occurs.sum(axis=-1)
    return averaged


# -- from numbers --------------------------------------------------------------------------------------------------

def _errors(rows: PairedRows, name: str, kind: str) -> Kernel:
    import numpy as np

    truth, ours, theirs = inputs.numbers(rows, name)
    if kind == "mae":
        return Means((np.abs(ours - truth), np.abs(theirs - truth)), _both)
    squares = ((ours - truth) ** 2, (theirs - truth) ** 2)
    if kind == "mse":
        return Means(squares, _both)
    if kind == "rmse":
        return Means(squares, _roots)
    centred = truth - truth.mean()
    return Means((centred, centred**2, *squares), _r2)


def _roots(means: Array) -> tuple[Array, Array]:
    import numpy as np

    return np.sqrt(means[..., 0]), np.sqrt(means[..., 1])


def _r2(means: Array) -> tuple[Array, Array]:
    """1 - SSE/SST; with no variance in y_true, 1 for perfect predictions and 0 otherwise (scikit-learn's)."""
    import numpy as np

    spread = means[..., 1] - means[..., 0] ** 2
    ours, theirs = (np.where(spread > 0, 1 - sse / np.where(spread > 0, spread, 1.0), np.where(sse == 0, 1.0, 0.0))
                    for sse in (means[..., 2], means[..., 3]))
    return ours, theirs


# -- from probabilities --------------------------------------------------------------------------------------------

def _log_loss(rows: PairedRows, name: str) -> Kernel:
    import numpy as np

    truth, classes = _truth_codes(rows, name)
    eps = float(np.finfo(np.float64).eps)
    losses = []
    for model in (rows.challenger, rows.champion):
        columns = inputs.probabilities(model, rows.ids, name)
        if columns:
            _cover(columns, classes, truth, model.path, name)
            stacked = np.stack([columns.get(c, np.zeros(len(truth))) for c in classes], axis=-1)
            chance = stacked[np.arange(len(truth)), truth]
        else:
            score = inputs.y_score(model, rows.ids, name)
            positive = inputs.positive_label(classes, name)
            chance = np.where(truth == positive, score, 1.0 - score)
        losses.append(-np.log(np.clip(chance, eps, 1 - eps)))
    return Means((losses[0], losses[1]), _both)


def _roc_auc(rows: PairedRows, name: str) -> Kernel:
    truth, classes = _truth_codes(rows, name)
    problems = []
    for model in (rows.challenger, rows.champion):
        columns = inputs.probabilities(model, rows.ids, name)
        if len(columns) >= 2:
            _cover(columns, classes, truth, model.path, name)
            problems.append([(columns[c], truth == i) for i, c in enumerate(classes) if c in columns])
        else:
            score = inputs.y_score(model, rows.ids, name)
            problems.append([(score, truth == inputs.positive_label(classes, name))])
    return Ranks(problems[0], problems[1])


def _truth_codes(rows: PairedRows, name: str) -> tuple[Array, list[str]]:
    """y_true as codes into its sorted labels (with y_pred's when both files have one)."""
    import numpy as np

    if rows.y_true is None:
        inputs.labels(rows, name)  # raises, naming the missing column
    seen = list(rows.y_true or ())
    for model in (rows.challenger, rows.champion):
        seen += list(model.y_pred or ())
    classes, codes = np.unique(np.array(seen, dtype=str), return_inverse=True)
    return codes[: len(rows.ids)].astype(np.int64), [str(c) for c in classes]


def _cover(columns: dict[str, Array], classes: list[str], truth: Array, path: object, name: str) -> None:
    import numpy as np

    missing = sorted({classes[int(i)] for i in np.unique(truth)} - set(columns))
    if missing:
        raise DataError(f"significance: {name} needs a probability for every true label, but {path} has no "
                        f"column {', '.join('proba_' + m for m in missing)}.")


MEASURES: dict[str, Measure] = {
    "accuracy": Measure("accuracy", "labels", True, _correctness, accuracy_like=True),
    "error_rate": Measure("error_rate", "labels", False, partial(_correctness, error=True), accuracy_like=True),
    "balanced_accuracy": Measure("balanced_accuracy", "labels", True, partial(_confusion, _balanced_accuracy, False)),
    **{f"{kind}_micro": Measure(f"{kind}_micro", "labels", True, _correctness, accuracy_like=True)
       for kind in ("f1", "precision", "recall")},
    **{f"{kind}_{average}": Measure(f"{kind}_{average}", "labels", True,
                                    partial(_confusion, partial(fn, average), False))
       for kind, fn in (("f1", _f1), ("precision", _precision), ("recall", _recall))
       for average in ("macro", "weighted")},
    **{kind: Measure(kind, "labels", True, partial(_confusion, partial(fn, "binary"), True))
       for kind, fn in (("f1", _f1), ("precision", _precision), ("recall", _recall))},
    "mse": Measure("mse", "numbers", False, partial(_errors, kind="mse")),
    "rmse": Measure("rmse", "numbers", False, partial(_errors, kind="rmse")),
    "mae": Measure("mae", "numbers", False, partial(_errors, kind="mae")),
    "r2": Measure("r2", "numbers", True, partial(_errors, kind="r2")),
    "log_loss": Measure("log_loss", "probabilities", False, _log_loss),
    "roc_auc": Measure("roc_auc", "probabilities", True, _roc_auc),
}

ALIASES: dict[str, str] = {
    "accuracy_score": "accuracy", "zero_one_loss": "error_rate",
    "balanced_accuracy_score": "balanced_accuracy", "f1_score": "f1", "precision_score": "precision",
    "recall_score": "recall", "mean_squared_error": "mse", "root_mean_squared_error": "rmse",
    "mean_absolute_error": "mae", "r2_score": "r2", "logloss": "log_loss", "cross_entropy": "log_loss",
    "roc_auc_score": "roc_auc", "roc_auc_ovr": "roc_auc",
    **{f"{kind}_score_{average}": f"{kind}_{average}" for kind in ("f1", "precision", "recall")
       for average in ("macro", "micro", "weighted")},
}
