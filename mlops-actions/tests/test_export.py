"""The float32 split fix (export.float32_splits): every family it knows gets float32 thresholds
that keep each float32 row on its branch; a tree layout it does not know is refused by name.
The size check (export.check_size): a model whose model.onnx would pass export.max_model_mb is
refused in one line before skl2onnx runs."""

import functools
import re

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from sklearn.base import is_classifier
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    VotingClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier

from mlops_actions import export
from mlops_actions.errors import PipelineError
from mlops_actions.export import _label_agreement, float32_splits, parity
from mlops_actions.features import model_inputs

# Small versions of the project's families (models.py): each family's own layout of trees.
FAMILIES = {
    "hist_gradient_boosting": {"max_iter": 10},
    "random_forest": {"n_estimators": 5},
    "linear": {},
}


def thresholds(estimator) -> np.ndarray:
    """Every split threshold of the fitted estimator (none for a linear model)."""
    found = [
        tree.tree_.threshold[tree.tree_.children_left != -1]
        for tree in getattr(estimator, "estimators_", [])
    ]
    found += [
        predictor.nodes["num_threshold"][predictor.nodes["is_leaf"] == 0]
        for iteration in getattr(estimator, "_predictors", [])
        for predictor in iteration
    ]
    return np.concatenate(found) if found else np.array([])


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_keeps_its_predictions_with_float32_thresholds(
    family, train, train_test, schema, params
):
    fitted_frame, test = train_test
    settings = {"model": family, "hyperparameters": FAMILIES[family]}
    model = train(fitted_frame, schema, settings, params["base"]["seed"])
    fixed = float32_splits(model)
    splits = thresholds(fixed[-1])
    assert (len(splits) > 0) == (family != "linear")
    assert np.array_equal(splits, splits.astype(np.float32).astype(np.float64))
    inputs = model_inputs(test, schema)
    assert np.array_equal(fixed.predict(inputs), model.predict(inputs))


def fitted(estimator) -> Pipeline:
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(60, 3))
    target = (inputs[:, 0] + rng.normal(0, 0.5, 60) > 0).astype(int)
    if not is_classifier(estimator):
        target = inputs[:, 0] * 2.0
    return Pipeline([("model", estimator)]).fit(inputs, target)


@pytest.mark.parametrize(
    "estimator, layout",
    [
        (GradientBoostingClassifier(n_estimators=3), "an ndarray of shape (3, 1)"),
        (GradientBoostingRegressor(n_estimators=3), "an ndarray of shape (3, 1)"),
        (
            VotingClassifier([("a", LogisticRegression()), ("b", DecisionTreeClassifier())]),
            "a list holding LogisticRegression",
        ),
    ],
)
def test_an_unknown_tree_layout_is_refused_with_one_line_naming_the_family(estimator, layout):
    """Gradient boosting keeps its trees in a 2-D array (stages x classes): before, the fix took
    each row for a tree and failed with an AttributeError ('numpy.ndarray' has no 'tree_')."""
    with pytest.raises(PipelineError) as refused:
        float32_splits(fitted(estimator))
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"float32 split fix: {type(estimator).__name__} keeps ")
    assert layout in message and "expected a list of fitted decision trees" in message


def test_a_single_decision_tree_gets_float32_thresholds():
    """A bare tree keeps its splits in `tree_` itself: fixed as a forest's trees are."""
    model = fitted(DecisionTreeClassifier(random_state=0))
    tree = float32_splits(model)[-1].tree_
    splits = tree.threshold[tree.children_left != -1]
    assert len(splits) and np.array_equal(splits, splits.astype(np.float32).astype(np.float64))


def test_a_tie_for_the_top_probability_may_go_either_way():
    """A forest's 0.42 and 0.42: scikit-learn takes the first label, ONNX's float32 sums may take
    the other; both are right. A label below the top is not."""
    probabilities = np.array([[0.42, 0.16, 0.42], [0.5, 0.3, 0.2]])
    classes, predicted = ["bronze", "gold", "silver"], np.array(["bronze", "bronze"])
    agreement = functools.partial(
        _label_agreement, predicted=predicted, classes=classes, probabilities=probabilities,
        tolerance=(1e-4, 1e-5),
    )  # fmt: skip
    assert agreement(np.array(["silver", "bronze"])) == (1.0, 1)
    assert agreement(np.array(["bronze", "bronze"])) == (1.0, 0)
    assert agreement(np.array(["gold", "silver"])) == (0.0, 0)


class _FlippedLabels:
    """An ONNX session whose probabilities match but whose labels do not (issue 28, item 10)."""

    def __init__(self, model, inputs):
        self.outputs = [model.predict(inputs)[::-1].copy(), model.predict_proba(inputs)]

    def run(self, *_args):
        return self.outputs


def test_a_label_that_differs_outside_a_tie_fails_parity(train, train_test, schema, params):
    """Probabilities within the tolerance are not enough: a label that is not scikit-learn's and
    not tied with it fails, as the export stage's gate (`passed`) now says."""
    if not schema.is_classification:
        pytest.skip("labels: classification bakes only")
    fitted_frame, test = train_test
    settings = {"model": "linear", "hyperparameters": {}}
    model = train(fitted_frame, schema, settings, params["base"]["seed"])
    inputs = model_inputs(test, schema)
    result = parity(_FlippedLabels(model, inputs), model, inputs, True, 1e-4, 1e-5)
    assert result["max_abs_diff"] == 0.0
    assert result["label_agreement"] < 1.0 and not result["passed"]


def forest(train, train_test, schema, params, trees: int = 20):
    """A random forest as scikit-learn grows it by default: every tree until its leaves are pure."""
    settings = {"model": "random_forest", "hyperparameters": {"n_estimators": trees}}
    return train(train_test[0], schema, settings, params["base"]["seed"])


def test_a_forest_over_the_limit_is_refused_in_one_line_before_skl2onnx_runs(
    train, train_test, schema, params, monkeypatch
):
    """Issue 28: a random forest on 200,000 rows made a 791 MB model.onnx, converting it took
    20.5 GB of a 23 GB machine, and nothing warned. Now its size is estimated from its trees
    and refused before conversion, in one line naming the size, the limit and what to change."""
    model = forest(train, train_test, schema, params)
    size = len(export.convert(model, schema, model_version="t", git_sha="t"))
    nodes = sum(tree.tree_.node_count for tree in model[-1].estimators_)
    limit = float(f"{size / 2e6:.2g}")  # half of the real model.onnx

    def skl2onnx(*_args, **_kwargs):
        raise AssertionError("skl2onnx ran: the size check must come before conversion")

    monkeypatch.setattr(export, "to_onnx", skl2onnx)
    with pytest.raises(PipelineError) as refused:
        export.convert(model, schema, model_version="t", git_sha="t", max_model_mb=limit)
    message = str(refused.value)
    assert "\n" not in message
    assert re.fullmatch(
        rf"{type(model[-1]).__name__} would make a ~[\d.,]+ MB model\.onnx \({nodes:,} tree "
        rf"nodes\), above export\.max_model_mb {limit:g}: bound "
        r"train\.hyperparameters\.max_leaf_nodes \(now unbounded\) or n_estimators, or raise "
        r"export\.max_model_mb",
        message,
    ), message


def test_a_forest_under_the_limit_converts(train, train_test, schema, params):
    model = forest(train, train_test, schema, params)
    size = len(export.convert(model, schema, model_version="t", git_sha="t"))
    converted = export.convert(
        model, schema, model_version="t", git_sha="t", max_model_mb=2 * size / 1e6
    )
    assert len(converted) == size
    ort.InferenceSession(converted, providers=["CPUExecutionProvider"])


def test_gradient_boosting_names_its_own_settings(train, train_test, schema, params):
    settings = {"model": "hist_gradient_boosting", "hyperparameters": {"max_iter": 10}}
    model = train(train_test[0], schema, settings, params["base"]["seed"])
    expected = r": lower train\.hyperparameters\.max_leaf_nodes \(now 31\) or max_iter, or raise "
    with pytest.raises(PipelineError, match=expected):
        export.check_size(model, 1e-6)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_the_size_estimate_follows_the_trees_in_model_onnx(
    family, train, train_test, schema, params
):
    """The estimate (NODE_BYTES a node, LEAF_VALUE_BYTES a leaf value) against the tree ensemble
    skl2onnx writes, for every family and task: never low, at most 30% high (these trees are
    small: ids of one varint byte, where the constants price the larger trees of big data)."""
    settings = {"model": family, "hyperparameters": FAMILIES[family]}
    model = train(train_test[0], schema, settings, params["base"]["seed"])
    converted = onnx.load_from_string(export.convert(model, schema, model_version="t", git_sha="t"))
    ensembles = [n for n in converted.graph.node if n.op_type.startswith("TreeEnsemble")]
    written = sum(len(node.SerializeToString()) for node in ensembles)
    estimate = export.estimated_onnx_bytes(*export.tree_size(model[-1]))
    assert (estimate == 0) == (family == "linear") == (written == 0)
    assert written <= estimate <= 1.3 * written
