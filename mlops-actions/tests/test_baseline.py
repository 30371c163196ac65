"""The trivial baseline the generated model tests beat (report.intervals.baseline_rows): a constant
guess whose metrics are what guessing gives, scored on the same rows as the model."""

import numpy as np
import pandas as pd

from mlops_actions.report.intervals import Rows, baseline_rows, bootstrap


def test_a_classification_baseline_guesses_the_majority_with_the_training_shares():
    train = pd.Series(["a", "a", "a", "b"])
    test = pd.Series(["a", "b"] * 100)
    rows = baseline_rows(train, test, ["a", "b"])
    assert list(rows.predicted) == ["a"] * 200 and rows.classes == ["a", "b"]
    assert np.allclose(rows.probabilities, [[0.75, 0.25]] * 200)
    found = bootstrap(None, rows, ["balanced_accuracy", "roc_auc"], seed=1, resamples=200)
    assert found.new["balanced_accuracy"].low == found.new["balanced_accuracy"].high == 0.5


def test_a_model_is_judged_against_it_on_the_same_rows():
    rng = np.random.default_rng(0)
    actual = rng.normal(size=300)
    baseline = baseline_rows(pd.Series(rng.normal(size=50)), pd.Series(actual), None)
    good = Rows(actual, actual + rng.normal(scale=0.3, size=300))
    found = bootstrap(baseline, good, ["r2"], seed=1, resamples=300)
    assert found.paired and found.delta["r2"].low > 0
    noise = Rows(actual, rng.normal(size=300))
    assert bootstrap(baseline, noise, ["r2"], seed=1, resamples=300).delta["r2"].high < 0
