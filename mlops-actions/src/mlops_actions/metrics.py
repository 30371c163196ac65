"""The metrics: one registry of every metric the evaluate stage writes, with the tasks it applies
to and which way is better.

Each metric carries its two computations: `exact`, scikit-learn's value on a model's predictions
(what the evaluate stage writes to metrics/scores.json), and `weighted`, the same metric under row
weights, from the weighted sums the report's bootstrap adds up (report/intervals.py). With every
weight at 1 the two agree. The report's deltas (✅/🔻) and the regression gate (the PR's and the
release's) read the direction from here: params.yaml names the gate's metric, not its direction.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn import metrics as sk

CLASSIFICATION = frozenset({"binary_classification", "multiclass_classification"})
REGRESSION = frozenset({"regression"})


@dataclass(frozen=True)
class Predictions:
    """One model's predictions on labelled rows."""

    actual: np.ndarray
    predicted: np.ndarray
    probabilities: np.ndarray | None = None  # classification: (rows, classes)
    classes: tuple[Any, ...] = ()  # classification: the probability columns' labels
    positive: Any = None  # binary: the positive label (the schema's last)

    @property
    def binary(self) -> bool:
        return len(self.classes) == 2


@dataclass(frozen=True)
class ErrorSums:
    """Regression's weighted sums, one value per resample: the weights, and the weighted sums of
    the squared and absolute errors, of the centred target and of its square."""

    count: np.ndarray
    squared: np.ndarray
    absolute: np.ndarray
    total: np.ndarray
    total_sq: np.ndarray


@dataclass(frozen=True)
class ConfusionSums:
    """Classification's weighted sums: the confusion matrix of each resample (resamples x actual
    x predicted, in the order of the classes) and, with probabilities, the ROC AUC of each curve
    (resamples x curves: the positive label's, or one per label, one-vs-rest)."""

    matrix: np.ndarray
    auc: np.ndarray | None = None

    @property
    def hits(self) -> np.ndarray:
        return np.diagonal(self.matrix, axis1=1, axis2=2)

    @property
    def f1(self) -> np.ndarray:
        """Each label's F1, per resample."""
        return 2 * self.hits / (self.matrix.sum(axis=1) + self.matrix.sum(axis=2))


@dataclass(frozen=True)
class Metric:
    name: str
    tasks: frozenset[str]
    higher_is_better: bool
    exact: Callable[[Predictions], float]
    weighted: Callable[[Any], np.ndarray]  # ErrorSums or ConfusionSums -> one value per resample
    uses_probabilities: bool = False

    @property
    def direction(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"

    def improvement(self, base: float, new: float) -> float:
        """How much better `new` is than `base`, in the metric's units (negative: a drop)."""
        return new - base if self.higher_is_better else base - new


def _nanmean(values: np.ndarray) -> np.ndarray:
    """The mean of each row, leaving out NaNs (a label no row of a resample holds)."""
    present = ~np.isnan(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(present, values, 0).sum(axis=1) / present.sum(axis=1)


def _f1(rows: Predictions) -> float:
    if rows.binary:
        return sk.f1_score(rows.actual, rows.predicted, pos_label=rows.positive)
    return sk.f1_score(rows.actual, rows.predicted, average="macro")


def _roc_auc(rows: Predictions) -> float:
    """Binary: the positive label's curve; more labels: one-vs-rest, macro-averaged."""
    probabilities = rows.probabilities
    if probabilities is None:
        raise ValueError("roc_auc needs the predicted probabilities")
    if rows.binary:
        column = list(rows.classes).index(rows.positive)
        return sk.roc_auc_score(rows.actual == rows.positive, probabilities[:, column])
    return sk.roc_auc_score(
        rows.actual, probabilities, multi_class="ovr", labels=list(rows.classes)
    )


# The order of each task's metrics is the order of metrics/scores.json.
REGISTRY = (
    Metric(
        "accuracy",
        CLASSIFICATION,
        True,
        lambda rows: sk.accuracy_score(rows.actual, rows.predicted),
        lambda sums: sums.hits.sum(axis=1) / sums.matrix.sum(axis=(1, 2)),
    ),
    Metric(
        "balanced_accuracy",
        CLASSIFICATION,
        True,
        lambda rows: sk.balanced_accuracy_score(rows.actual, rows.predicted),
        lambda sums: _nanmean(sums.hits / sums.matrix.sum(axis=2)),
    ),
    Metric(
        "f1",
        CLASSIFICATION,
        True,
        _f1,  # binary: the positive label's; more labels: macro-averaged
        lambda sums: sums.f1[:, -1] if sums.matrix.shape[-1] == 2 else _nanmean(sums.f1),
    ),
    Metric(
        "roc_auc",
        CLASSIFICATION,
        True,
        _roc_auc,
        lambda sums: _nanmean(sums.auc),
        uses_probabilities=True,
    ),
    Metric(
        "rmse",
        REGRESSION,
        False,
        lambda rows: sk.root_mean_squared_error(rows.actual, rows.predicted),
        lambda sums: np.sqrt(sums.squared / sums.count),
    ),
    Metric(
        "mae",
        REGRESSION,
        False,
        lambda rows: sk.mean_absolute_error(rows.actual, rows.predicted),
        lambda sums: sums.absolute / sums.count,
    ),
    Metric(
        "r2",
        REGRESSION,
        True,
        lambda rows: sk.r2_score(rows.actual, rows.predicted),
        lambda sums: 1 - sums.squared / (sums.total_sq - sums.total**2 / sums.count),
    ),
)
METRICS = {metric.name: metric for metric in REGISTRY}


def for_task(task: str) -> list[Metric]:
    """The metrics the evaluate stage computes for a task, in the order it writes them."""
    return [metric for metric in REGISTRY if task in metric.tasks]


def exact_scores(rows: Predictions, task: str) -> dict[str, float]:
    """Every metric of the task on one set of predictions (scikit-learn's values, unrounded)."""
    return {metric.name: metric.exact(rows) for metric in for_task(task)}


def weighted_scores(sums: ErrorSums | ConfusionSums, task: str) -> dict[str, np.ndarray]:
    """Every metric of the task under row weights, one value per resample; without
    probabilities, the metrics that need them are left out."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            metric.name: metric.weighted(sums)
            for metric in for_task(task)
            if not (metric.uses_probabilities and getattr(sums, "auc", None) is None)
        }
