"""Both models' metric on batches of resampled rows: the vectorised numpy kernels of decide/significance.py.

A kernel holds the paired rows in the form its metric needs and gives the difference challenger - champion
- `diffs(idx)` on a batch of resamples: `idx` is an integer array (b, n) of row indices, the same rows for both
  models and for y_true (a paired bootstrap), one resample per line;
- `levels()`: each model's value on all rows;
- `jackknife()`: leaving out each row in turn (the acceleration of BCa), in O(n) from the sufficient statistics
  (column sums, confusion counts, rank sums) instead of n recomputations on n - 1 rows.

`resample` draws the resamples: row indices (rng.integers(0, n, (batch, n)), as scipy.stats.bootstrap does), or,
when the rows are few kinds repeated (labels: one kind per (true, ours, theirs) triple; 0/1 scores), the count
of each kind in a resample, Multinomial(n, share of each kind): the same distribution, with one draw per kind
instead of per row (100,000 rows of 10 classes: ~2 s instead of ~15 s). Batches keep arrays near BUDGET elements.
numpy is imported inside the methods, so importing mlops_bot.decide does not load it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from numpy.typing import NDArray

    Array = NDArray[Any]

BUDGET = 1 << 21  # elements of one batch's largest array: 16 MB of int64 or float64


GROUP_BELOW = 0.1  # rows are resampled by kind when there are fewer kinds than this share of the rows


def resample(kernel: Kernel, rng: Any, total: int) -> Array:
    """`total` resampled differences, drawn with `rng` (a numpy Generator)."""
    import numpy as np

    n, parts = kernel.n, []
    if kernel.shares is not None:
        batch = max(1, BUDGET // max(len(kernel.shares), kernel.cells))
        for start in range(0, total, batch):
            parts.append(kernel.diffs_counts(rng.multinomial(n, kernel.shares, size=min(batch, total - start))))
    else:
        for start in range(0, total, kernel.batch):
            parts.append(kernel.diffs(rng.integers(0, n, (min(kernel.batch, total - start), n))))
    return np.concatenate(parts)


class Kernel:
    n: int
    batch: int
    per_row: tuple[Array, Array] | None = None  # set when the metric is the mean of these per-row values
    shares: Array | None = None  # the share of each kind of row, when rows are resampled by kind
    cells: int = 1  # per resample, the size of the array a count of kinds becomes

    def diffs(self, idx: Array) -> Array:
        raise NotImplementedError

    def diffs_counts(self, counts: Array) -> Array:
        """`diffs` for resamples given as counts (b, kinds) of each kind of row."""
        raise NotImplementedError

    def levels(self) -> tuple[float, float]:
        raise NotImplementedError

    def jackknife(self) -> Array:
        raise NotImplementedError


class Means(Kernel):
    """A function of column means: `features` (n, d) per row and `combine(means (..., d))` -> (challenger,
    champion). A mean metric is `combine` = the two columns themselves; RMSE is their square roots."""

    def __init__(self, features: Sequence[Array], combine: Callable[[Array], tuple[Array, Array]],
                 per_row: tuple[Array, Array] | None = None) -> None:
        import numpy as np

        self.columns = [np.ascontiguousarray(f, dtype=np.float64) for f in features]
        self.combine = combine
        self.n = len(self.columns[0])
        self.batch = max(1, BUDGET // self.n)
        self.per_row = per_row
        if per_row is not None:  # 0/1 scores: at most 4 kinds of rows
            self.kinds, counts = np.unique(np.stack(self.columns, axis=1), axis=0, return_counts=True)
            self.shares, self.cells = counts / self.n, len(self.columns)

    def diffs(self, idx: Array) -> Array:
        import numpy as np

        ours, theirs = self.combine(np.stack([column[idx].mean(axis=1) for column in self.columns], axis=-1))
        return ours - theirs

    def diffs_counts(self, counts: Array) -> Array:
        ours, theirs = self.combine(counts @ self.kinds / self.n)
        return ours - theirs

    def levels(self) -> tuple[float, float]:
        import numpy as np

        ours, theirs = self.combine(np.array([column.mean() for column in self.columns]))
        return float(ours), float(theirs)

    def jackknife(self) -> Array:
        import numpy as np

        left_out = np.stack([(column.sum() - column) / (self.n - 1) for column in self.columns], axis=-1)
        ours, theirs = self.combine(left_out)
        return ours - theirs


class Confusion(Kernel):
    """A function of the confusion matrix (true label x predicted label, counts) of each model."""

    def __init__(self, truth: Array, ours: Array, theirs: Array, k: int, metric: Callable[[Array], Array]) -> None:
        import numpy as np

        self.k, self.metric, self.n, self.cells = k, metric, len(truth), k * k
        self.codes = (truth * k + ours, truth * k + theirs)
        self.triples = (truth * k + ours) * k + theirs
        self.batch = max(1, BUDGET // max(self.n, k * k))
        kinds, counts = np.unique(self.triples, return_counts=True)
        if len(kinds) < GROUP_BELOW * self.n:
            self.shares = counts / self.n
            self.sums = [_summing(cells) for cells in (kinds // k, kinds // (k * k) * k + kinds % k)]

    def _counts(self, codes: Array, idx: Array) -> Array:
        import numpy as np

        b, cells = idx.shape[0], self.k * self.k
        flat = (codes[idx] + (np.arange(b, dtype=np.int64) * cells)[:, None]).ravel()
        return np.bincount(flat, minlength=b * cells).reshape(b, self.k, self.k)

    def diffs(self, idx: Array) -> Array:
        return self.metric(self._counts(self.codes[0], idx)) - self.metric(self._counts(self.codes[1], idx))

    def diffs_counts(self, counts: Array) -> Array:
        import numpy as np

        values = []
        for order, starts, cells in self.sums:
            matrices = np.zeros((len(counts), self.k * self.k), dtype=np.int64)
            matrices[:, cells] = np.add.reduceat(counts[:, order], starts, axis=1)
            values.append(self.metric(matrices.reshape(-1, self.k, self.k)))
        return values[0] - values[1]

    def levels(self) -> tuple[float, float]:
        import numpy as np

        every = np.arange(self.n)[None, :]
        return float(self.metric(self._counts(self.codes[0], every))[0]), \
            float(self.metric(self._counts(self.codes[1], every))[0])

    def jackknife(self) -> Array:
        """Rows with the same (true, ours, theirs) labels leave the same matrices behind: one value per kind."""
        import numpy as np

        every = np.arange(self.n)[None, :]
        full = [self._counts(codes, every)[0] for codes in self.codes]
        kinds, inverse = np.unique(self.triples, return_inverse=True)
        truth, ours, theirs = kinds // (self.k * self.k), kinds // self.k % self.k, kinds % self.k
        values = np.empty(len(kinds))
        step = max(1, BUDGET // (self.k * self.k))
        for start in range(0, len(kinds), step):
            part = slice(start, start + step)
            size = len(kinds[part])
            mats = [np.repeat(m[None], size, axis=0) for m in full]
            mats[0][np.arange(size), truth[part], ours[part]] -= 1
            mats[1][np.arange(size), truth[part], theirs[part]] -= 1
            values[part] = self.metric(mats[0]) - self.metric(mats[1])
        return values[inverse.ravel()]


class Ranks(Kernel):
    """The mean over one-vs-rest problems of the ROC AUC. A problem is (scores, is_positive) per row: one for a
    binary problem, one per class for the multi-class macro average. A problem whose resample lacks positives or
    negatives has no AUC and is left out of that resample's mean (NaN when none is left)."""

    def __init__(self, ours: Sequence[tuple[Array, Array]], theirs: Sequence[tuple[Array, Array]]) -> None:
        self.models = [[_ranked(scores, positive) for scores, positive in problems] for problems in (ours, theirs)]
        self.n = len(ours[0][0])
        self.batch = max(1, (1 << 16) // self.n)  # small: each problem makes several passes over the batch

    def diffs(self, idx: Array) -> Array:
        import numpy as np

        b = idx.shape[0]
        flat = (idx + (np.arange(b, dtype=np.int64) * self.n)[:, None]).ravel()
        weights = np.bincount(flat, minlength=b * self.n).reshape(b, self.n).astype(np.float64)
        ours, theirs = (_nanmean(np.stack([_auc(p, weights, idx.shape[1]) for p in problems], axis=-1))
                        for problems in self.models)
        return ours - theirs

    def levels(self) -> tuple[float, float]:
        import numpy as np

        weights = np.ones((1, self.n))
        ours, theirs = (_nanmean(np.stack([_auc(p, weights, self.n) for p in problems], axis=-1))
                        for problems in self.models)
        return float(ours[0]), float(theirs[0])

    def jackknife(self) -> Array:
        import numpy as np

        ours, theirs = (_nanmean(np.stack([_auc_left_out(p) for p in problems], axis=-1)) for problems in self.models)
        return ours - theirs


def _summing(cells: Array) -> tuple[Array, Array, Array]:
    """(order, group starts, cell of each group) to add counts of kinds into the confusion cells they belong to."""
    import numpy as np

    order = np.argsort(cells, kind="stable")
    ordered = cells[order]
    starts = np.concatenate(([0], np.flatnonzero(ordered[1:] != ordered[:-1]) + 1))
    return order, starts, ordered[starts]


def _ranked(scores: Array, positive: Array) -> tuple[Array, ...]:
    """(order, starts of the tie groups in sorted order, positives in sorted order, group of each sorted row,
    sorted positions of the positives)."""
    import numpy as np

    order = np.argsort(scores, kind="stable")
    ordered = scores[order]
    starts = np.concatenate(([0], np.flatnonzero(ordered[1:] != ordered[:-1]) + 1))
    group = np.cumsum(np.concatenate(([0], (ordered[1:] != ordered[:-1]).astype(np.int64))))
    sorted_positive = positive[order].astype(np.float64)
    return order, starts, sorted_positive, group, np.flatnonzero(sorted_positive)


def _auc(problem: tuple[Array, ...], weights: Array, total: int) -> Array:
    """AUC with each row counted `weights` times (each line sums to `total`): P(a positive's score > a negative's)
    + half the ties."""
    import numpy as np

    order, starts, positive, _, positives = problem
    ordered = weights[:, order]
    if len(starts) < len(order):  # ties: add up each group of equal scores first
        pos = np.add.reduceat(ordered * positive, starts, axis=1)
        neg = np.add.reduceat(ordered, starts, axis=1) - pos
        negatives = neg.sum(axis=1)
        wins = (pos * (np.cumsum(neg, axis=1) - 0.5 * neg)).sum(axis=1)
    else:  # no ties: the negatives at or below a positive's place are those below it
        below = np.cumsum(ordered * (1.0 - positive), axis=1)
        negatives = below[:, -1]
        wins = np.einsum("bn,bn->b", ordered[:, positives], below[:, positives])
    pairs = (total - negatives) * negatives
    return np.where(pairs > 0, wins / np.where(pairs > 0, pairs, 1.0), np.nan)


def _auc_left_out(problem: tuple[Array, ...]) -> Array:
    """The AUC without row i, for every row i (in the rows' own order)."""
    import numpy as np

    order, starts, positive, group, _ = problem
    pos = np.add.reduceat(positive, starts)
    neg = np.add.reduceat(1.0 - positive, starts)
    below = np.cumsum(neg) - neg
    above = pos.sum() - np.cumsum(pos)
    wins = (pos * (below + 0.5 * neg)).sum()
    p, q = pos.sum(), neg.sum()
    is_pos = positive == 1.0
    lost = np.where(is_pos, below[group] + 0.5 * neg[group], above[group] + 0.5 * pos[group])
    pairs = np.where(is_pos, (p - 1) * q, p * (q - 1))
    left = np.where(pairs > 0, (wins - lost) / np.where(pairs > 0, pairs, 1.0), np.nan)
    values = np.empty_like(left)
    values[order] = left
    return values


def _nanmean(values: Array) -> Array:
    """Mean over the last axis of the finite values; NaN where there are none (without numpy's warning)."""
    import numpy as np

    finite = np.isfinite(values)
    count = finite.sum(axis=-1)
    total = np.where(finite, values, 0.0).sum(axis=-1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)
