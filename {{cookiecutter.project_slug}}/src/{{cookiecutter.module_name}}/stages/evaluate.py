"""Stage evaluate: score the model on the test split; write the metrics and the plot data."""

import argparse
import json
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn import metrics
from sklearn.inspection import permutation_importance
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import label_binarize

from ..errors import run_stage
from ..features import model_inputs
from ..params import load_params
from ..schema import Schema, load_frame, load_schema

DIGITS = 6
IMPORTANCE_REPEATS = 5


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


def evaluate(
    model: Pipeline, frame: pd.DataFrame, schema: Schema, seed: int = 0
) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
    """Metrics and plot tables for one test split. Classification's positive label is the last
    label in the schema (binary tasks)."""
    inputs, actual = model_inputs(frame, schema), frame[schema.target].to_numpy()
    predicted = model.predict(inputs)
    ranked = importance(model, inputs, actual, seed)
    if not schema.is_classification:
        scores = {
            "rmse": metrics.root_mean_squared_error(actual, predicted),
            "mae": metrics.mean_absolute_error(actual, predicted),
            "r2": metrics.r2_score(actual, predicted),
        }
        residuals = pd.DataFrame(
            {"actual": actual, "predicted": predicted, "residual": actual - predicted}
        )
        return _rounded(scores), {"predictions": residuals.round(4), "importance": ranked}

    classes = list(model.classes_)
    probabilities = model.predict_proba(inputs)
    scores = {
        "accuracy": metrics.accuracy_score(actual, predicted),
        "balanced_accuracy": metrics.balanced_accuracy_score(actual, predicted),
    }
    if len(classes) == 2:
        positive = schema.labels[-1]
        is_positive = actual == positive
        score = probabilities[:, classes.index(positive)]
        scores["f1"] = metrics.f1_score(actual, predicted, pos_label=positive)
        scores["roc_auc"] = metrics.roc_auc_score(is_positive, score)
    else:
        # One-vs-rest, micro-averaged: one curve that summarises every class.
        is_positive = label_binarize(actual, classes=classes).ravel()
        score = probabilities.ravel()
        scores["f1"] = metrics.f1_score(actual, predicted, average="macro")
        scores["roc_auc"] = metrics.roc_auc_score(
            actual, probabilities, multi_class="ovr", labels=classes
        )
    fpr, tpr, thresholds = metrics.roc_curve(is_positive, score)
    roc = pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": np.minimum(thresholds, 1.0)})
    confusion = pd.DataFrame({"actual": actual, "predicted": predicted})
    plots = {"confusion": confusion, "roc": roc.round(4), "importance": ranked}
    return _rounded(scores), plots


def _rounded(scores: dict[str, float]) -> dict[str, float]:
    return {name: round(float(value), DIGITS) for name, value in scores.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--schema", type=Path, required=True)
    parser.add_argument("--metrics-out", type=Path, required=True)
    parser.add_argument("--plots-dir", type=Path, required=True)
    args = parser.parse_args()

    schema = load_schema(args.schema)
    seed = load_params()["base"]["seed"]
    scores, plots = evaluate(joblib.load(args.model), load_frame(args.test, schema), schema, seed)
    args.metrics_out.parent.mkdir(parents=True, exist_ok=True)
    args.metrics_out.write_text(json.dumps(scores, indent=2) + "\n")
    args.plots_dir.mkdir(parents=True, exist_ok=True)
    for name, table in plots.items():
        table.to_csv(args.plots_dir / f"{name}.csv", index=False)
    print("evaluate: " + ", ".join(f"{name}={value:.4f}" for name, value in scores.items()))


if __name__ == "__main__":
    run_stage("evaluate", main)
