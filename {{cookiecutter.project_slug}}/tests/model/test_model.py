"""Behaviour of the model, beyond one metric: it beats a trivial baseline, ignores column order,
tolerates gaps and unseen categories, and its ONNX export predicts what scikit-learn predicts."""

import numpy as np
import onnxruntime as ort
import pytest

from {{ cookiecutter.module_name }}.features import model_inputs
from {{ cookiecutter.module_name }}.models import FAMILIES
from {{ cookiecutter.module_name }}.onnx_model import parse_metadata
from {{ cookiecutter.module_name }}.stages.evaluate import evaluate
from {{ cookiecutter.module_name }}.stages.export import (
    convert,
    parity,
)
from {{ cookiecutter.module_name }}.stages.train import train


@pytest.fixture(scope="module")
def model(train_test, schema, params):
    """The model as params.yaml configures it."""
    return train(train_test[0], schema, params["train"], params["base"]["seed"])


def session_for(model, schema):
    converted = convert(model, schema, model_version="test", git_sha="test")
    return ort.InferenceSession(converted, providers=["CPUExecutionProvider"])


def test_beats_a_trivial_baseline(model, train_test, schema):
    """Minimum functionality: clearly better than guessing the majority class or the mean."""
    scores, _ = evaluate(model, train_test[1], schema)
    if schema.is_classification:
        assert scores["balanced_accuracy"] >= 1 / len(schema.labels) + 0.2, scores
    else:
        assert scores["r2"] >= 0.2, scores


def test_column_order_does_not_matter(model, train_test, schema):
    test = train_test[1]
    shuffled = test[list(reversed(test.columns))]
    assert np.array_equal(
        model.predict(model_inputs(shuffled, schema)), model.predict(model_inputs(test, schema))
    )


def test_gaps_and_unseen_categories_still_predict(model, train_test, schema, params):
    rows = train_test[1].head(5).copy()
    rows[list(schema.numeric)] = np.nan
    for column in schema.categorical:
        rows[column] = "a-category-never-seen"
    inputs = model_inputs(rows, schema)
    assert len(model.predict(inputs)) == 5
    tolerance = params["export"]
    result = parity(
        session_for(model, schema),
        model,
        inputs,
        schema.is_classification,
        tolerance["atol"],
        tolerance["rtol"],
    )
    assert result["passed"], result


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_converts_to_onnx_and_matches(family, train_test, schema, params):
    """Any family params.yaml may name converts, and agrees with scikit-learn on the test split."""
    train_frame, test_frame = train_test
    fitted = train(train_frame, schema, {"model": family}, params["base"]["seed"])
    tolerance = params["export"]
    result = parity(
        session_for(fitted, schema),
        fitted,
        model_inputs(test_frame, schema),
        schema.is_classification,
        tolerance["atol"],
        tolerance["rtol"],
    )
    assert result["passed"], result


def test_onnx_metadata_describes_the_model(model, schema):
    props = session_for(model, schema).get_modelmeta().custom_metadata_map
    metadata = parse_metadata(props)
    assert metadata["task"] == schema.task
    assert metadata["features"] == schema.features
    assert metadata["labels"] == (sorted(schema.labels) if schema.labels else None)
