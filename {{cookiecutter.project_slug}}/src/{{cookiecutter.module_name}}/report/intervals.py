"""95% intervals by bootstrap over the test rows: one per metric, and one per delta.

Each resample weighs every test row by how often it was drawn, and each metric is recomputed with
those weights; the 2.5th and 97.5th percentiles of the resampled values bound the interval. The
weights are Poisson(1), one per row and resample (the Poisson bootstrap: the classic resampling's
large-sample twin, and the form that scales, since no row has to wait for the others' draws).

A delta is *paired* when both models scored the same test rows: each resample then weighs the same
rows for both, so the noise they share (an easy or a hard draw of rows) cancels. When the test sets
differ (the data changed), the two sides are resampled independently: an unpaired interval, wider,
and labelled as such. Every metric is a sum over rows, so a chunk of resamples is one sparse or
dense matrix product; the seed is fixed, so the same inputs give the same intervals.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse, stats

RESAMPLES = 1000
LEVEL = 0.95
# Cells (rows x resamples) held at once: bounds memory to ~20 MB of float32 weights.
CHUNK_CELLS = 5_000_000
# Poisson(1) weights from 16 random bits: the inverse CDF, tabulated once.
_POISSON = stats.poisson.ppf((np.arange(2**16) + 0.5) / 2**16, 1.0).astype(np.float32)
PROBABILITY_PREFIX = "proba_"


@dataclass
class Rows:
    """One model's per-row outputs on its test split."""

    actual: np.ndarray
    predicted: np.ndarray
    classes: list[str] | None = None  # classification: label order of the probability columns
    probabilities: np.ndarray | None = None  # (rows, classes)

    def __len__(self) -> int:
        return len(self.actual)


@dataclass
class Interval:
    low: float
    high: float

    def spans_zero(self) -> bool:
        return self.low <= 0.0 <= self.high


@dataclass
class Intervals:
    """Every interval the report shows; `paired` says how the deltas were resampled."""

    base: dict[str, Interval]
    new: dict[str, Interval]
    delta: dict[str, Interval]
    paired: bool | None  # None: no delta intervals (one side lacks per-row data)
    rows: tuple[int, int]  # test rows of base and this change (0: no per-row data)
    resamples: int = RESAMPLES


def rows_from_plots(plots: dict[str, pd.DataFrame], labels: list[str] | None) -> Rows | None:
    """Per-row outputs from the evaluate stage's plot files, if that revision wrote them."""
    if "predictions" in plots and {"actual", "predicted"} <= set(plots["predictions"]):
        frame = plots["predictions"]
        return Rows(frame["actual"].to_numpy(dtype=float), frame["predicted"].to_numpy(dtype=float))
    frame = plots.get("confusion")
    if frame is None or not {"actual", "predicted"} <= set(frame):
        return None
    actual, predicted = frame["actual"].astype(str), frame["predicted"].astype(str)
    columns = [c for c in frame.columns if str(c).startswith(PROBABILITY_PREFIX)]
    classes = [str(c).removeprefix(PROBABILITY_PREFIX) for c in columns]
    if not classes:
        classes = list(labels or sorted(set(actual) | set(predicted)))
    return Rows(
        actual.to_numpy(),
        predicted.to_numpy(),
        classes,
        frame[columns].to_numpy(dtype=float) if columns else None,
    )


def same_rows(base: Rows, new: Rows) -> bool:
    """Paired only when the test sets have the same rows in the same order (same targets)."""
    if len(base) != len(new) or (base.classes is None) != (new.classes is None):
        return False
    if base.classes is None:
        return bool(np.allclose(base.actual, new.actual, rtol=0, atol=1e-3))
    return bool(np.array_equal(base.actual, new.actual))


Scorer = Callable[[np.ndarray], dict[str, np.ndarray]]


def scorer(rows: Rows) -> Scorer:
    """The evaluate stage's metrics as one function of row weights (rows x resamples)."""
    return _regression(rows) if rows.classes is None else _classification(rows)


def _regression(rows: Rows) -> Scorer:
    error = rows.actual - rows.predicted
    centred = rows.actual - rows.actual.mean()  # the spread of the target, without cancellation
    columns = np.column_stack([np.ones(len(rows)), error**2, np.abs(error), centred, centred**2])
    # float32 sums, like the weights: ample for four-decimal intervals, twice the speed.
    columns = columns.T.astype(np.float32)

    def score(weights: np.ndarray) -> dict[str, np.ndarray]:
        count, squared, absolute, total, total_sq = (columns @ weights).astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            return {
                "rmse": np.sqrt(squared / count),
                "mae": absolute / count,
                "r2": 1 - squared / (total_sq - total**2 / count),
            }

    return score


def _classification(rows: Rows) -> Scorer:
    classes = list(rows.classes or [])
    k = len(classes)
    index = {label: i for i, label in enumerate(classes)}
    actual = np.array([index.get(label, -1) for label in rows.actual], dtype=int)
    predicted = np.array([index.get(label, -1) for label in rows.predicted], dtype=int)
    keys = [np.where((actual >= 0) & (predicted >= 0), actual * k + predicted, k * k)]
    if rows.probabilities is not None and k >= 2:
        # Binary: the positive label is the last; more classes: one-vs-rest, macro-averaged, as
        # scikit-learn's roc_auc_score(multi_class="ovr").
        targets = [k - 1] if k == 2 else list(range(k))
        keys += [np.unique(rows.probabilities[:, i], return_inverse=True)[1] for i in targets]
    else:
        targets = []
    # Rows alike in every key (confusion cell, score of each curve) share one column, so a chunk
    # of resamples costs one sparse product over the rows, then small ones over the kinds.
    kinds, kind = np.unique(np.column_stack(keys), axis=0, return_inverse=True)
    kind = kind.ravel()
    # Mostly distinct rows (several probability columns): summing by kind would not pay.
    weigh = _indicator(kind, len(kinds)) if len(kinds) <= len(rows) // 2 else None
    if weigh is None:
        kinds = np.column_stack(keys)
    cells = _indicator(kinds[:, 0], k * k + 1)[: k * k]
    curves = []
    for column, target in enumerate(targets, start=1):
        group = kinds[:, column]
        is_positive = kinds[:, 0] // k == target
        groups = int(group.max()) + 1
        curves.append(_indicator(np.where(is_positive, group, groups + group), 2 * groups))

    def score(weights: np.ndarray) -> dict[str, np.ndarray]:
        by_kind = weights if weigh is None else weigh @ weights
        matrix = np.asarray(cells @ by_kind, dtype=float).T.reshape(-1, k, k)
        hits = np.diagonal(matrix, axis1=1, axis2=2)
        with np.errstate(divide="ignore", invalid="ignore"):
            recall = hits / matrix.sum(axis=2)
            f1 = 2 * hits / (matrix.sum(axis=1) + matrix.sum(axis=2))
            values = {
                "accuracy": hits.sum(axis=1) / matrix.sum(axis=(1, 2)),
                "balanced_accuracy": _nanmean(recall),
                "f1": f1[:, -1] if k == 2 else _nanmean(f1),
            }
        if curves:
            aucs = [_auc(np.asarray(curve @ by_kind, dtype=float)) for curve in curves]
            values["roc_auc"] = _nanmean(np.column_stack(aucs))
        return values

    return score


def _indicator(column: np.ndarray, size: int) -> sparse.csr_matrix:
    """A (size x len(column)) matrix of ones that sums what shares a column value."""
    count = len(column)
    return sparse.csr_matrix(
        (np.ones(count, np.float32), (column, np.arange(count))), shape=(size, count)
    )


def _auc(totals: np.ndarray) -> np.ndarray:
    """Weighted ROC AUC from the positive (first half) and negative (second half) weight of each
    group of tied scores, in score order: the chance a positive outscores a negative, ties half."""
    groups = len(totals) // 2
    positives, negatives = totals[:groups], totals[groups:]
    below = np.cumsum(negatives, axis=0) - negatives
    wins = (positives * (below + 0.5 * negatives)).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return wins / (positives.sum(axis=0) * negatives.sum(axis=0))


def _nanmean(values: np.ndarray) -> np.ndarray:
    present = ~np.isnan(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(present, values, 0).sum(axis=1) / present.sum(axis=1)


def resampled_weights(rows: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Poisson(1) weights (rows x resamples), chunk by chunk, from one seeded generator."""
    rng = np.random.default_rng(seed)
    chunk = max(1, min(resamples, CHUNK_CELLS // max(rows, 1)))
    done = 0
    while done < resamples:
        size = min(chunk, resamples - done)
        yield _POISSON[rng.integers(0, 2**16, size=(rows, size), dtype=np.uint16)]
        done += size


def _collect(parts: list[dict[str, np.ndarray]], names: list[str]) -> dict[str, np.ndarray]:
    return {
        name: np.concatenate([part[name] for part in parts])
        for name in names
        if parts and name in parts[0]
    }


def _interval(values: np.ndarray) -> Interval | None:
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return None
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return Interval(float(low), float(high))


def _intervals(distributions: dict[str, np.ndarray]) -> dict[str, Interval]:
    found = {name: _interval(values) for name, values in distributions.items()}
    return {name: interval for name, interval in found.items() if interval is not None}


def bootstrap(
    base: Rows | None,
    new: Rows | None,
    names: list[str],
    seed: int = 0,
    resamples: int = RESAMPLES,
) -> Intervals:
    """Intervals of each side's metrics and of their deltas (new - base)."""
    sizes = (len(base) if base else 0, len(new) if new else 0)
    if new is None or len(new) == 0:
        return Intervals({}, {}, {}, None, sizes, resamples)
    if base is None or len(base) == 0:
        parts = [scorer(new)(w) for w in resampled_weights(len(new), resamples, seed)]
        return Intervals({}, _intervals(_collect(parts, names)), {}, None, sizes, resamples)
    paired = same_rows(base, new)
    score_base, score_new = scorer(base), scorer(new)
    base_parts, new_parts = [], []
    if paired:
        # The same resampled rows for both models: each chunk is drawn once and scores both.
        for weights in resampled_weights(len(new), resamples, seed):
            base_parts.append(score_base(weights))
            new_parts.append(score_new(weights))
    else:
        base_parts = [score_base(w) for w in resampled_weights(len(base), resamples, seed + 1)]
        new_parts = [score_new(w) for w in resampled_weights(len(new), resamples, seed)]
    base_values, new_values = _collect(base_parts, names), _collect(new_parts, names)
    deltas = {
        name: new_values[name] - base_values[name] for name in new_values if name in base_values
    }
    return Intervals(
        _intervals(base_values),
        _intervals(new_values),
        _intervals(deltas),
        paired,
        sizes,
        resamples,
    )
