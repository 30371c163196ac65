"""Two models on the same rows: the one scoring path of every champion/challenger comparison.

The PR report re-scores the base branch's model on the change's test rows, and a release scores
the champion (the model that serves) and the challenger (the tag's) on the current holdout. Both
go through `onnx_predictions`: a model file, its own metadata (features, task, labels), and
onnxruntime, so a model is compared as it would serve, whatever code trained it. When two models
score the same rows, every delta is paired: the bootstrap (report/intervals.py) weighs the same
rows for both, and the shared luck of an easy or a hard draw of rows cancels.
"""

from typing import Any

import pandas as pd

from .errors import PipelineError
from .features import feed
from .metrics import Predictions, exact_scores
from .onnx_model import load_session
from .schema import Schema

DIGITS = 6  # as the evaluate stage rounds its metrics


def onnx_predictions(
    model: bytes, frame: pd.DataFrame, schema: Schema, what: str = "the model"
) -> Predictions:
    """`model` (an exported model.onnx) on `frame`'s labelled rows, with onnxruntime. The rows'
    targets are `schema`'s; a model of another task or other labels cannot be compared on them,
    and is refused in one line that says so."""
    session, metadata = load_session(model, what)
    labels = metadata["labels"]
    if (labels is None) != (schema.labels is None):
        raise PipelineError(
            f"{what} is a {metadata['task'].replace('_', ' ')} model, the rows' task is "
            f"{schema.task.replace('_', ' ')}"
        )
    if labels is not None and sorted(map(str, labels)) != sorted(schema.labels or ()):
        raise PipelineError(
            f"{what} knows the labels {', '.join(map(str, labels))}; these rows have "
            f"{', '.join(schema.labels or ())}"
        )
    names = [output.name for output in session.get_outputs()]
    try:
        answers = session.run(names, feed(frame, metadata["features"], what))
        outputs = dict(zip(names, answers, strict=True))
    except PipelineError:
        raise
    except Exception as err:  # onnxruntime's own failures, such as a type mismatch
        raise PipelineError(f"{what} failed on these rows: {str(err).splitlines()[0]}") from None
    actual = frame[schema.target].to_numpy()
    if labels is None:
        return Predictions(actual.astype(float), outputs["variable"].ravel().astype(float))
    classes = tuple(str(label) for label in labels)
    return Predictions(
        actual.astype(str),
        outputs["label"].ravel().astype(str),
        outputs["probabilities"].astype(float),
        classes,
        (schema.labels or ())[-1],
    )


def scores(predictions: Predictions, schema: Schema) -> dict[str, float]:
    """The evaluate stage's metrics of these predictions, rounded as it rounds them."""
    exact = exact_scores(predictions, schema.task)
    return {name: round(float(value), DIGITS) for name, value in exact.items()}


def model_facts(model: bytes) -> dict[str, Any]:
    """What a model file says about itself: its version and commit (metadata), its sha256."""
    import hashlib

    import onnxruntime as ort

    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    props = session.get_modelmeta().custom_metadata_map
    return {
        "version": props.get("model_version"),
        "git_sha": props.get("git_sha"),
        "sha256": hashlib.sha256(model).hexdigest(),
    }
