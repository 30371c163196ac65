"""The float32 split fix (export.float32_splits): every family it knows gets float32 thresholds
that keep each float32 row on its branch; a tree layout it does not know is refused by name."""

import functools

import numpy as np
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
