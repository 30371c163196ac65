"""Evaluation: the metrics and plot tables of a model on a test split (the evaluate stage's work).

The plot files keep one line per test row (regression: predictions.csv; classification:
confusion.csv with each label's probability), so `make report` can bootstrap intervals from them.
With `evaluate.cv_folds` >= 2, the metrics also hold k-fold cross-validated scores of the same
settings on the train and test rows: steadier than one small test split. The holdout (split.py)
gets the same metrics alone (`score`), and takes part in nothing else."""

import numpy as np
import pandas as pd
from sklearn import metrics
from sklearn.base import clone
from sklearn.inspection import permutation_importance
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import label_binarize

from .features import model_inputs
from .metrics import Predictions, exact_scores
from .schema import Schema

DIGITS = 6
IMPORTANCE_REPEATS = 5
# Per-row probabilities in confusion.csv: the report's bootstrap reads them (roc_auc intervals).
PROBABILITY_PREFIX = "proba_"


def importance(
    model: Pipeline, inputs: pd.DataFrame, actual: np.ndarray, seed: int
) -> pd.DataFrame:
    """Permutation importance: how much the model's score (accuracy, or R² for regression) drops
    when one feature's values are shuffled. Works for every family, unlike impurity importance."""
    result = permutation_importance(
        model, inputs, actual, n_repeats=IMPORTANCE_REPEATS, random_state=seed
    )
    table = pd.DataFrame(
        {
            "feature": inputs.columns,
            "importance": result.importances_mean,
            "std": result.importances_std,
        }
    )
    return table.sort_values("importance", ascending=False, kind="stable").round(4)


def scores_of(
    actual: np.ndarray,
    predicted: np.ndarray,
    schema: Schema,
    probabilities: np.ndarray | None = None,
    classes: list | None = None,
) -> dict[str, float]:
    """The metrics of one set of predictions (the registry's, metrics.py). Classification's
    positive label is the last label in the schema (binary tasks)."""
    positive = schema.labels[-1] if schema.labels else None
    rows = Predictions(actual, predicted, probabilities, tuple(classes or ()), positive)
    return exact_scores(rows, schema.task)


def _predict(
    model: Pipeline, inputs: pd.DataFrame, actual: np.ndarray, schema: Schema
) -> Predictions:
    """The model's outputs on `inputs`, as the metric registry reads them."""
    predicted = model.predict(inputs)
    if schema.labels is None:  # regression
        return Predictions(actual, predicted)
    classes = tuple(model.classes_)
    return Predictions(actual, predicted, model.predict_proba(inputs), classes, schema.labels[-1])


def score(model: Pipeline, frame: pd.DataFrame, schema: Schema) -> dict[str, float]:
    """The metrics of `evaluate` on other rows (the holdout): the same keys, no plots."""
    inputs, actual = model_inputs(frame, schema), frame[schema.target].to_numpy()
    return _rounded(exact_scores(_predict(model, inputs, actual, schema), schema.task))


def evaluate(
    model: Pipeline, frame: pd.DataFrame, schema: Schema, seed: int = 0
) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
    """Metrics and plot tables for one test split."""
    inputs, actual = model_inputs(frame, schema), frame[schema.target].to_numpy()
    rows = _predict(model, inputs, actual, schema)
    scores, predicted = exact_scores(rows, schema.task), rows.predicted
    ranked = importance(model, inputs, actual, seed)
    if rows.probabilities is None:  # regression
        residuals = pd.DataFrame(
            {"actual": actual, "predicted": predicted, "residual": actual - predicted}
        )
        return _rounded(scores), {"predictions": residuals.round(4), "importance": ranked}

    classes, probabilities = list(rows.classes), rows.probabilities
    if rows.binary:
        is_positive = actual == rows.positive
        score = probabilities[:, classes.index(rows.positive)]
    else:
        # One-vs-rest, micro-averaged: one curve that summarises every class.
        is_positive = label_binarize(actual, classes=classes).ravel()
        score = probabilities.ravel()
    fpr, tpr, thresholds = metrics.roc_curve(is_positive, score)
    roc = pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": np.minimum(thresholds, 1.0)})
    confusion = pd.DataFrame({"actual": actual, "predicted": predicted})
    for index, label in enumerate(classes):
        confusion[f"{PROBABILITY_PREFIX}{label}"] = probabilities[:, index].round(4)
    plots = {"confusion": confusion, "roc": roc.round(4), "importance": ranked}
    return _rounded(scores), plots


def cross_validate(
    model: Pipeline, frame: pd.DataFrame, schema: Schema, folds: int, seed: int = 0
) -> dict[str, object]:
    """k-fold cross-validated metrics of the model's settings (refitted on each fold's rest):
    mean, standard deviation, min and max over the folds. Stratified for classification."""
    inputs, actual = model_inputs(frame, schema), frame[schema.target].to_numpy()
    splitter = (StratifiedKFold if schema.is_classification else KFold)(
        n_splits=folds, shuffle=True, random_state=seed
    )
    per_fold: list[dict[str, float]] = []
    for fit_rows, score_rows in splitter.split(inputs, actual):
        fold = clone(model).fit(inputs.iloc[fit_rows], actual[fit_rows])
        held_out = inputs.iloc[score_rows]
        probabilities = fold.predict_proba(held_out) if schema.is_classification else None
        classes = list(fold.classes_) if schema.is_classification else None
        per_fold.append(
            scores_of(actual[score_rows], fold.predict(held_out), schema, probabilities, classes)
        )
    summary: dict[str, object] = {"folds": folds}
    for name in per_fold[0]:
        values = np.array([fold[name] for fold in per_fold], dtype=float)
        spread = {"mean": values.mean(), "std": values.std(ddof=1)}
        summary[name] = _rounded({**spread, "min": values.min(), "max": values.max()})
    return summary


def _rounded(scores: dict[str, float]) -> dict[str, float]:
    return {name: round(float(value), DIGITS) for name, value in scores.items()}
