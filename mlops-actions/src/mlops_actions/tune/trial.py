"""One candidate of `make tune`, scored on the train rows only: the work of tune/dvc.yaml's stage.

k-fold cross-validation (`tune.folds`, stratified for classification, shuffled with `tune.seed`,
so every candidate meets the same folds) gives each training row one out-of-fold prediction, made
by a model that never saw it. Those predictions are the candidate's per-row record: the
leaderboard bootstraps paired differences between candidates from them, since all candidates
predicted the same rows. The test split and the holdout are not read here, nor by the
leaderboard: they stay unseen until the chosen candidate is trained and evaluated by `make repro`.

What it costs is measured too: the mean fit time of a fold, and the last fold's model exported to
ONNX (the size, and the median time onnxruntime takes for one row, as serving would see it).
"""

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline

from ..errors import PipelineError
from ..evaluate import PROBABILITY_PREFIX
from ..export import convert
from ..features import model_inputs, onnx_feed
from ..metrics import Predictions, exact_scores
from ..onnx_model import load_session
from ..schema import Schema

DIGITS = 6
LATENCY_RUNS = 200


@dataclass
class Trial:
    """One candidate's cross-validated record."""

    predictions: Predictions  # out of fold: one per training row, in the rows' order
    folds: list[dict[str, float]]  # each fold's metrics
    fit_seconds: float  # mean over the folds
    model: Pipeline  # the last fold's, for the ONNX measures


def cross_validate(
    pipeline: Pipeline, frame: pd.DataFrame, schema: Schema, folds: int, seed: int
) -> Trial:
    """`pipeline`'s settings refitted on each fold's other rows, predicting the fold's rows."""
    inputs, actual = model_inputs(frame, schema), frame[schema.target].to_numpy()
    if schema.is_classification:
        actual = actual.astype(str)
        smallest = pd.Series(actual).value_counts().min()
        if smallest < folds:
            raise PipelineError(
                f"tune.folds {folds}: a label has only {smallest} training rows; use fewer folds"
            )
    splitter = (StratifiedKFold if schema.is_classification else KFold)(
        n_splits=folds, shuffle=True, random_state=seed
    )
    predicted = np.empty(len(frame), dtype=object if schema.is_classification else float)
    probabilities = None
    classes: tuple[str, ...] = tuple(schema.labels or ())
    if schema.is_classification:
        probabilities = np.zeros((len(frame), len(classes)))
    per_fold, seconds, model = [], [], pipeline
    for fit_rows, score_rows in splitter.split(inputs, actual):
        started = time.perf_counter()
        model = clone(pipeline).fit(inputs.iloc[fit_rows], actual[fit_rows])
        seconds.append(time.perf_counter() - started)
        held_out = inputs.iloc[score_rows]
        predicted[score_rows] = model.predict(held_out)
        fold_probabilities = None
        if probabilities is not None:
            # A fold's model knows the labels it was fitted on: place its columns by label.
            fold_probabilities = model.predict_proba(held_out)
            known = [classes.index(str(label)) for label in model.classes_]
            probabilities[np.ix_(score_rows, known)] = fold_probabilities
        rows = _predictions(
            actual[score_rows], predicted[score_rows], schema, probabilities, score_rows
        )
        per_fold.append(exact_scores(rows, schema.task))
    whole = _predictions(actual, predicted, schema, probabilities, slice(None))
    return Trial(whole, per_fold, float(np.mean(seconds)), model)


def _predictions(
    actual: np.ndarray, predicted: np.ndarray, schema: Schema, probabilities: Any, rows: Any
) -> Predictions:
    if schema.labels is None:
        return Predictions(actual.astype(float), predicted.astype(float))
    return Predictions(
        actual.astype(str),
        predicted.astype(str),
        probabilities[rows],
        tuple(schema.labels),
        schema.labels[-1],
    )


def onnx_measures(
    model: Pipeline, frame: pd.DataFrame, schema: Schema, max_model_mb: float
) -> dict[str, float]:
    """The model's ONNX size and the median time of one row through onnxruntime, in µs."""
    exported = convert(model, schema, model_version="tune", git_sha="", max_model_mb=max_model_mb)
    session, _ = load_session(exported, "the candidate")
    one_row = onnx_feed(model_inputs(frame.iloc[:1], schema))
    names = [output.name for output in session.get_outputs()]
    session.run(names, one_row)  # the first run allocates
    times = []
    for _ in range(LATENCY_RUNS):
        started = time.perf_counter()
        session.run(names, one_row)
        times.append(time.perf_counter() - started)
    return {"onnx_bytes": len(exported), "onnx_latency_us": round(float(np.median(times)) * 1e6, 1)}


def summary(trial: Trial, measures: dict[str, float], settings: dict[str, Any]) -> dict[str, Any]:
    """tune/cv.json: the candidate's settings, its metrics over the folds, its costs."""
    scores = {}
    for name in trial.folds[0]:
        values = np.array([fold[name] for fold in trial.folds], dtype=float)
        scores[name] = {
            "mean": round(float(values.mean()), DIGITS),
            "std": round(float(values.std(ddof=1)), DIGITS),
        }
    return {
        "model": settings["model"],
        "hyperparameters": settings.get("hyperparameters") or {},
        "folds": len(trial.folds),
        "rows": len(trial.predictions.actual),
        "cv": scores,
        "fit_seconds": round(trial.fit_seconds, 4),
        **measures,
    }


def out_of_fold_table(predictions: Predictions) -> pd.DataFrame:
    """tune/oof.csv, in the evaluate stage's per-row plot format (report/intervals.py reads it):
    actual, predicted, and each label's probability for classification."""
    table = pd.DataFrame({"actual": predictions.actual, "predicted": predictions.predicted})
    if predictions.probabilities is not None:
        for index, label in enumerate(predictions.classes):
            table[f"{PROBABILITY_PREFIX}{label}"] = predictions.probabilities[:, index].round(6)
    return table


def score(
    pipeline: Pipeline,
    frame: pd.DataFrame,
    schema: Schema,
    params: dict[str, Any],
    settings: dict[str, Any],
) -> tuple[dict[str, Any], pd.DataFrame]:
    """One candidate (`pipeline`, made from `settings`: its model and hyperparameters) scored on
    the train rows `frame`: tune/cv.json's content and tune/oof.csv's table."""
    tune = params["tune"]
    trial = cross_validate(pipeline, frame, schema, tune["folds"], tune["seed"])
    measures = onnx_measures(trial.model, frame, schema, params["export"]["max_model_mb"])
    return summary(trial, measures, settings), out_of_fold_table(trial.predictions)


def write(out_dir: Path, cv: dict[str, Any], table: pd.DataFrame) -> None:
    """A candidate's results as the stage writes them: out_dir/cv.json and out_dir/oof.csv."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "cv.json").write_text(json.dumps(cv, indent=2) + "\n")
    table.to_csv(out_dir / "oof.csv", index=False)
