"""Behaviour of the model, beyond one metric: it beats a trivial baseline, ignores column order,
tolerates gaps and unseen categories, and its ONNX export predicts what scikit-learn predicts."""

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mlops_actions.evaluate import cross_validate, evaluate
from mlops_actions.export import (
    convert,
    float32_floor,
    parity,
)
from mlops_actions.features import model_inputs
from mlops_actions.onnx_model import parse_metadata
from mlops_actions.report.intervals import baseline_rows, bootstrap, rows_from_plots

from {{ cookiecutter.module_name }}.models import FAMILIES
from {{ cookiecutter.module_name }}.stages.train import train


@pytest.fixture(scope="module")
def model(train_test, schema, params):
    """The model as params.yaml configures it."""
    return train(train_test[0], schema, params["train"], params["base"]["seed"])


def session_for(model, schema):
    converted = convert(model, schema, model_version="test", git_sha="test")
    return ort.InferenceSession(converted, providers=["CPUExecutionProvider"])


def onnx_parity(model, inputs, schema, params) -> dict:
    """The export stage's parity check of the model's ONNX twin on these rows."""
    tolerance = params["export"]
    return parity(
        session_for(model, schema),
        model,
        inputs,
        schema.is_classification,
        tolerance["atol"],
        tolerance["rtol"],
    )


def test_beats_a_trivial_baseline(model, train_test, schema, params):
    """Minimum functionality: better than guessing the training rows' majority class (or mean)
    by a margin that follows the data: the paired-bootstrap 95% interval of the difference on
    the test rows, as the PR report computes it, lies above 0."""
    train_rows, test = train_test
    metric = "balanced_accuracy" if schema.is_classification else "r2"
    classes = list(schema.labels) if schema.labels else None
    _, plots = evaluate(model, test, schema)
    baseline = baseline_rows(train_rows[schema.target], test[schema.target], classes)
    found = bootstrap(baseline, rows_from_plots(plots, classes), [metric], params["base"]["seed"])
    assert found.paired, "the model and the baseline were not scored on the same rows"
    assert found.delta[metric].low > 0, (metric, found.delta[metric])


def test_cross_validation_reports_every_metric_with_its_spread(model, train_test, schema):
    """evaluate.cv_folds: each fold refits the same settings; the test split's metrics are the
    ones cross-validated, and the folds disagree a little, not wildly."""
    scores, _ = evaluate(model, train_test[1], schema)
    cv = cross_validate(model, pd.concat(train_test, ignore_index=True), schema, folds=3)
    assert cv["folds"] == 3 and set(cv) - {"folds"} == set(scores)
    for name in scores:
        spread = cv[name]
        assert spread["min"] <= spread["mean"] <= spread["max"] and spread["std"] >= 0, name
    assert cross_validate(model, train_test[0], schema, folds=3) == cross_validate(
        model, train_test[0], schema, folds=3
    )


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
    result = onnx_parity(model, inputs, schema, params)
    assert result["passed"], result


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_converts_to_onnx_and_matches(family, train_test, schema, params):
    """Any family params.yaml may name converts, and agrees with scikit-learn on the test split."""
    train_frame, test_frame = train_test
    fitted = train(train_frame, schema, {"model": family}, params["base"]["seed"])
    result = onnx_parity(fitted, model_inputs(test_frame, schema), schema, params)
    assert result["passed"], result


def test_onnx_metadata_describes_the_model(model, schema):
    props = session_for(model, schema).get_modelmeta().custom_metadata_map
    metadata = parse_metadata(props)
    assert metadata["task"] == schema.task
    assert metadata["features"] == schema.features
    assert metadata["labels"] == (sorted(schema.labels) if schema.labels else None)


@given(st.floats(allow_nan=False, allow_infinity=False, width=64))
def test_float32_floor_keeps_every_float32_on_its_side(threshold):
    """No float32 lies between a threshold and its floor: every float32 x <= t iff x <= floor."""
    floor = float32_floor(np.array([threshold]))[0]
    assert floor == np.float32(floor) and floor <= threshold
    with np.errstate(over="ignore"):  # the step above the largest float32 is infinity
        above = np.nextafter(np.float32(floor), np.float32(np.inf))
    assert float(above) > threshold


def split_points(model, numeric: list[str]) -> dict[str, np.ndarray]:
    """Each numeric feature's tree thresholds (float64, as scikit-learn stores them). The
    preprocessing puts the numeric columns first, in schema order."""
    estimator, points = model[-1], {name: [] for name in numeric}
    nodes = [
        (tree.tree_.feature, tree.tree_.threshold, tree.tree_.children_left != -1)
        for tree in getattr(estimator, "estimators_", [])
    ] + [
        (p.nodes["feature_idx"], p.nodes["num_threshold"], p.nodes["is_leaf"] == 0)
        for iteration in getattr(estimator, "_predictors", [])
        for p in iteration
    ]
    for feature, threshold, is_split in nodes:
        for index, name in enumerate(numeric):
            points[name].extend(threshold[is_split & (feature == index)])
    return {name: np.unique(values) for name, values in points.items()}


@pytest.mark.parametrize("family", ["hist_gradient_boosting", "random_forest"])
def test_rows_at_every_split_take_the_same_branch(family, train_test, schema, params):
    """Rows whose value sits on, or one float32 step around, each split threshold: the float64
    threshold itself, its nearest float32 and the float32 on either side. These are the rows a
    rounded threshold sends the other way; ONNX must agree with scikit-learn on all of them."""
    if not schema.numeric:
        pytest.skip("no numeric features")
    train_frame, test_frame = train_test
    fitted = train(train_frame, schema, {"model": family}, params["base"]["seed"])
    base = test_frame.iloc[[0]]
    rows = []
    for column, thresholds in split_points(fitted, schema.numeric).items():
        # At most 300 thresholds per feature keep the test quick on forests with many splits.
        picks = np.linspace(0, len(thresholds) - 1, min(len(thresholds), 300)).astype(int)
        chosen = thresholds[picks]
        nearest = chosen.astype(np.float32)
        values = np.concatenate(
            [
                chosen,
                nearest,
                np.nextafter(nearest, np.float32(-np.inf)),
                np.nextafter(nearest, np.float32(np.inf)),
            ]
        ).astype(np.float64)
        batch = base.loc[base.index.repeat(len(values))].reset_index(drop=True)
        batch[column] = values
        rows.append(batch)
    if not rows:
        pytest.skip("the trees never split on a numeric feature")
    inputs = model_inputs(pd.concat(rows, ignore_index=True), schema)
    result = onnx_parity(fitted, inputs, schema, params)
    assert result["passed"], result
    assert result.get("label_agreement", 1.0) == 1.0, result
