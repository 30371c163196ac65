"""95% intervals by bootstrap over the test rows: one per metric, and one per delta.

Each resample weighs every test row by how often it was drawn, and each metric is recomputed with
those weights; the 2.5th and 97.5th percentiles of the resampled values bound the interval. The
weights are Poisson(1), one per row and resample (the Poisson bootstrap: the classic resampling's
large-sample twin, and the form that scales, since no row has to wait for the others' draws).

A delta is *paired* when both models scored the same test rows: each resample then weighs the same
rows for both, so the noise they share (an easy or a hard draw of rows) cancels. When the test sets
differ (the data changed), the two sides are resampled independently: an unpaired interval, wider,
and labelled as such. Every metric is a sum over rows, so a chunk of resamples is one sparse or
dense matrix product; the seed is fixed, so the same inputs give the same intervals, whatever the
number of threads that share the chunks.
"""

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse, stats

from ..metrics import ConfusionSums, ErrorSums, Predictions, weighted_scores

RESAMPLES = 1000
LEVEL = 0.95
# Cells (rows x resamples) held at once: bounds memory to ~20 MB of float32 weights.
CHUNK_CELLS = 5_000_000
# Sums (groups x resamples) written at once: adding each row's weights into groups scattered over
# more than a few MB misses the cache on every row (measured: 2-3x slower per row at 24 MB).
SUMS_CELLS = 2_000_000
# Above this many cells (weighed rows x resamples), the chunks are shared among threads.
PARALLEL_CELLS = 10_000_000
MAX_THREADS = 4
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


def rows_of(predictions: Predictions) -> Rows:
    """The registry's predictions as the bootstrap reads them."""
    classes = [str(label) for label in predictions.classes] or None
    return Rows(predictions.actual, predictions.predicted, classes, predictions.probabilities)


def baseline_rows(
    train_target: pd.Series, test_target: pd.Series, classes: list[str] | None
) -> Rows:
    """A trivial model's per-row outputs on the test rows, to bootstrap a model against: the
    training rows' mean (regression, `classes` None), or their most frequent label with the
    training shares as every row's probabilities (classification)."""
    if classes is None:
        mean = float(pd.to_numeric(train_target).mean())
        actual = pd.to_numeric(test_target).to_numpy(dtype=float)
        return Rows(actual, np.full(len(actual), mean))
    shares = train_target.astype(str).value_counts(normalize=True).reindex(classes, fill_value=0)
    actual = test_target.astype(str).to_numpy()
    majority = np.full(len(actual), str(shares.idxmax()), dtype=object)
    return Rows(actual, majority, list(classes), np.tile(shares.to_numpy(float), (len(actual), 1)))


def same_rows(base: Rows, new: Rows) -> bool:
    """Paired only when the test sets have the same rows in the same order (same targets)."""
    if len(base) != len(new) or (base.classes is None) != (new.classes is None):
        return False
    if base.classes is None:
        return bool(np.allclose(base.actual, new.actual, rtol=0, atol=1e-3))
    return bool(np.array_equal(base.actual, new.actual))


@dataclass
class Sums:
    """One side's metrics as functions of weighted sums over its test rows.

    `matrix` (sums x rows) turns row weights (rows x resamples) into sums, `finish` turns the sums
    into metrics. `codes` (rows x keys, classification only) place each row in one group per key
    (its confusion cell, its tied score on each ROC curve): rows alike in every code always add up
    alike, so they can be weighed as one.
    """

    matrix: sparse.csr_matrix | np.ndarray
    finish: Callable[[np.ndarray], dict[str, np.ndarray]]
    codes: np.ndarray | None = None


Scorer = Callable[[np.ndarray], dict[str, np.ndarray]]


def scorer(rows: Rows) -> Scorer:
    """The evaluate stage's metrics (the registry's, metrics.py) as one function of row weights
    (rows x resamples)."""
    sums = _sums(rows)
    return lambda weights: sums.finish(sums.matrix @ weights)


def _sums(rows: Rows) -> Sums:
    return _regression(rows) if rows.classes is None else _classification(rows)


def _regression(rows: Rows) -> Sums:
    error = rows.actual - rows.predicted
    centred = rows.actual - rows.actual.mean()  # the spread of the target, without cancellation
    columns = np.column_stack([np.ones(len(rows)), error**2, np.abs(error), centred, centred**2])

    def finish(sums: np.ndarray) -> dict[str, np.ndarray]:
        return weighted_scores(ErrorSums(*np.asarray(sums, dtype=float)), "regression")

    # float32 sums, like the weights: ample for four-decimal intervals, twice the speed.
    return Sums(columns.T.astype(np.float32), finish)


def _classification(rows: Rows) -> Sums:
    classes = list(rows.classes or [])
    k = len(classes)
    task = "binary_classification" if k == 2 else "multiclass_classification"
    # Each label's place in `classes`; -1 for a label outside them.
    actual = pd.Categorical(rows.actual, categories=classes).codes.astype(int)
    predicted = pd.Categorical(rows.predicted, categories=classes).codes.astype(int)
    cell = np.where((actual >= 0) & (predicted >= 0), actual * k + predicted, k * k)
    codes, sizes = [cell], [k * k + 1]
    if rows.probabilities is not None and k >= 2:
        # Binary: the positive label is the last; more classes: one-vs-rest, macro-averaged, as
        # scikit-learn's roc_auc_score(multi_class="ovr"). A curve's groups: its runs of scores
        # (below), first for the positives, then for the negatives, in score order.
        for target in [k - 1] if k == 2 else range(k):
            positive = actual == target
            run = _runs(rows.probabilities[:, target], positive)
            runs = int(run.max()) + 1
            codes.append(np.where(positive, run, runs + run))
            sizes.append(2 * runs)
    offsets = np.cumsum([0, *sizes])
    blocks = [_indicator(code, size) for code, size in zip(codes, sizes, strict=True)]
    matrix = sparse.vstack(blocks, format="csr")

    def finish(sums: np.ndarray) -> dict[str, np.ndarray]:
        matrix = np.asarray(sums[: k * k], dtype=float).T.reshape(-1, k, k)
        auc = None
        if len(sizes) > 1:
            curves = [sums[offsets[i] : offsets[i + 1]] for i in range(1, len(sizes))]
            auc = np.column_stack([_auc(curve) for curve in curves])
        return weighted_scores(ConfusionSums(matrix, auc), task)

    return Sums(matrix, finish, np.column_stack(codes))


def _runs(scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Each row's run on a ROC curve: its group of tied scores, except that consecutive groups
    holding only positives, or only negatives, form one run. A positive then outscores the same
    negatives whichever group of its run it is in, so the weighted AUC is exactly the same under
    any weights, with fewer groups to sum (a good model's scores come in long one-label runs)."""
    group = np.unique(scores, return_inverse=True)[1].ravel()
    groups = int(group.max()) + 1
    has_positive = np.bincount(group[positive], minlength=groups) > 0
    has_negative = np.bincount(group[~positive], minlength=groups) > 0
    label = np.where(has_positive & has_negative, 2, has_positive.astype(int))  # 2: ties of both
    starts = np.ones(groups, dtype=bool)
    starts[1:] = (label[1:] != label[:-1]) | (label[1:] == 2)
    return (np.cumsum(starts) - 1)[group]


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
    # Sums of Poisson counts are whole numbers (and halves): exact in float32 below 2**23,
    # so only the final sums need float64.
    below = np.cumsum(negatives, axis=0)
    total_negatives = below[-1].astype(float)
    below -= 0.5 * negatives
    wins = np.einsum("gr,gr->r", positives, below, dtype=float)
    pairs = positives.sum(axis=0, dtype=float) * total_negatives
    with np.errstate(divide="ignore", invalid="ignore"):
        return wins / pairs


def _kinds(codes: np.ndarray, most: int) -> np.ndarray | None:
    """Each row's kind (rows alike in every code share one), or None past `most` kinds."""
    kind = np.zeros(len(codes), dtype=np.int64)
    for column in codes.T:
        kind = np.unique(kind * (int(column.max()) + 1) + column, return_inverse=True)[1].ravel()
        if kind.max() >= most:
            return None
    return kind


def _chunks(rows: int, sums: int, resamples: int) -> Iterator[int]:
    """Resamples per chunk: within both budgets, but never fewer than 8 (per-call costs)."""
    chunk = min(CHUNK_CELLS // max(rows, 1), max(8, SUMS_CELLS // max(sums, 1)))
    chunk = max(1, min(resamples, chunk))
    for done in range(0, resamples, chunk):
        yield min(chunk, resamples - done)


def _resample(
    sides: list[Sums], rows: int, resamples: int, seed: int
) -> list[list[dict[str, np.ndarray]]]:
    """Each side's metrics over the same resamples of the same rows (one side, or a pair).

    One matrix product per chunk sums every side's groups at once, reading the weights once. When
    the rows fall into a tenth as many kinds or fewer (rows alike in every side's codes), each kind
    is weighed by one Poisson(count) draw: the sum of its rows' Poisson(1) weights has exactly that
    distribution, so the intervals are the same in law. (A Poisson draw costs about ten table
    lookups, hence the tenth.) Each side's metrics come back chunk by chunk (`_collect` joins
    them).
    """
    dense = not sparse.issparse(sides[0].matrix)
    matrix = (np.vstack if dense else sparse.vstack)([side.matrix for side in sides])
    kind = None
    codes = [side.codes for side in sides if side.codes is not None]
    if not dense and len(codes) == len(sides):
        kind = _kinds(np.column_stack(codes), rows // 10)
    counts = None
    if kind is not None:
        _, first, counts = np.unique(kind, return_index=True, return_counts=True)
        matrix = matrix[:, first]  # one row of each kind stands for it
        counts = counts[:, None]
    if not isinstance(matrix, np.ndarray):  # sparse
        # Column by column: each row's weights are read once and added to its groups.
        matrix = matrix.tocsc()
    ends = np.cumsum([side.matrix.shape[0] for side in sides])
    weighed = rows if counts is None else len(counts)
    sizes = list(_chunks(weighed, matrix.shape[0], resamples))

    def chunk(seeds: np.random.SeedSequence, size: int) -> list[dict[str, np.ndarray]]:
        rng = np.random.default_rng(seeds)
        if counts is None:
            weights = _POISSON[rng.integers(0, 2**16, size=(rows, size), dtype=np.uint16)]
        else:
            weights = rng.poisson(counts, size=(len(counts), size)).astype(np.float32)
        sums = np.asarray(matrix @ weights)
        return [
            side.finish(sums[stop - side.matrix.shape[0] : stop])
            for side, stop in zip(sides, ends, strict=True)
        ]

    # Each chunk draws from its own child of the seed, so the intervals do not depend on how many
    # threads share the chunks (the matrix products and numpy's bulk work release the GIL).
    seeds = np.random.SeedSequence(seed).spawn(len(sizes))
    with ThreadPoolExecutor(_threads(weighed * resamples)) as pool:
        done = list(pool.map(chunk, seeds, sizes))
    return [list(part) for part in zip(*done, strict=True)]


def _threads(cells: int) -> int:
    """Threads for the resampling: one below PARALLEL_CELLS; else the cores this process may
    use, at most OMP_NUM_THREADS when set (the cap every native pool here honours; tests set 1)."""
    if cells < PARALLEL_CELLS:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    limit = os.environ.get("OMP_NUM_THREADS", "")
    return max(1, min(cores or 1, int(limit) if limit.isdigit() else MAX_THREADS, MAX_THREADS))


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
        (parts,) = _resample([_sums(new)], len(new), resamples, seed)
        return Intervals({}, _intervals(_collect(parts, names)), {}, None, sizes, resamples)
    paired = same_rows(base, new)
    if paired:
        base_parts, new_parts = _resample([_sums(base), _sums(new)], len(new), resamples, seed)
    else:
        (base_parts,) = _resample([_sums(base)], len(base), resamples, seed + 1)
        (new_parts,) = _resample([_sums(new)], len(new), resamples, seed)
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
