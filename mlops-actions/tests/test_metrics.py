"""The metric registry (metrics.py): the evaluate stage's metrics, unchanged, and their direction,
the one the report's deltas, its intervals and the regression gate (the PR's and the release's)
all read."""

import json

import numpy as np
import pytest
from sklearn import metrics as sk

from mlops_actions import metrics
from mlops_actions.errors import PipelineError
from mlops_actions.evaluate import DIGITS, evaluate, score
from mlops_actions.features import model_inputs
from mlops_actions.release import promote
from mlops_actions.report import Gate, Results, gate_from_params, verdict
from mlops_actions.report.compare import judge, reported_gate
from mlops_actions.report.intervals import Rows, scorer

HIGHER = {"accuracy", "balanced_accuracy", "f1", "roc_auc", "r2"}


def written_before(actual, predicted, schema, probabilities, classes) -> dict[str, float]:
    """metrics/scores.json as the evaluate stage wrote it before the registry (its own code)."""
    if not schema.is_classification:
        scores = {
            "rmse": sk.root_mean_squared_error(actual, predicted),
            "mae": sk.mean_absolute_error(actual, predicted),
            "r2": sk.r2_score(actual, predicted),
        }
    else:
        scores = {
            "accuracy": sk.accuracy_score(actual, predicted),
            "balanced_accuracy": sk.balanced_accuracy_score(actual, predicted),
        }
        if len(classes) == 2:
            positive = schema.labels[-1]
            scores["f1"] = sk.f1_score(actual, predicted, pos_label=positive)
            scores["roc_auc"] = sk.roc_auc_score(
                actual == positive, probabilities[:, classes.index(positive)]
            )
        else:
            scores["f1"] = sk.f1_score(actual, predicted, average="macro")
            scores["roc_auc"] = sk.roc_auc_score(
                actual, probabilities, multi_class="ovr", labels=classes
            )
    return {name: round(float(value), DIGITS) for name, value in scores.items()}


@pytest.fixture(scope="session")
def fitted(train, train_test, schema, params):
    """The project's model, trained as its train stage trains it, and its test split."""
    rows, test = train_test
    return train(rows, schema, params["train"], params["base"]["seed"]), test


def test_evaluate_writes_the_same_metrics_and_numbers_as_before(fitted, schema, params):
    model, test = fitted
    scores, _ = evaluate(model, test, schema, params["base"]["seed"])
    inputs, actual = model_inputs(test, schema), test[schema.target].to_numpy()
    classification = schema.is_classification
    expected = written_before(
        actual,
        model.predict(inputs),
        schema,
        model.predict_proba(inputs) if classification else None,
        list(model.classes_) if classification else None,
    )
    assert list(scores) == list(expected) == [m.name for m in metrics.for_task(schema.task)]
    assert scores == expected


def test_the_holdout_gets_the_same_metrics_as_the_test_split(fitted, schema, params):
    """metrics/holdout.json (`score`) has scores.json's keys and, on the same rows, its values."""
    model, test = fitted
    scores, _ = evaluate(model, test, schema, params["base"]["seed"])
    assert score(model, test, schema) == scores


def test_the_bootstrap_recomputes_every_registry_metric_of_the_task(fitted, schema):
    """With every row weighed once, the intervals' metrics (the registry's weighted form) are the
    evaluate stage's (its exact form), for the same metrics."""
    model, test = fitted
    inputs, actual = model_inputs(test, schema), test[schema.target].to_numpy()
    predicted = model.predict(inputs)
    if schema.is_classification:
        classes = [str(label) for label in model.classes_]
        probabilities = model.predict_proba(inputs)
        rows = Rows(actual.astype(str), predicted.astype(str), classes, probabilities)
    else:
        rows = Rows(actual.astype(float), predicted.astype(float))
        probabilities, classes = None, None
    exact = metrics.exact_scores(
        metrics.Predictions(
            actual,
            predicted,
            probabilities,
            tuple(model.classes_) if classes else (),
            schema.labels[-1] if schema.labels else None,
        ),
        schema.task,
    )
    weighted = scorer(rows)(np.ones((len(rows), 1), np.float32))
    assert list(weighted) == list(exact)
    for name, value in exact.items():
        assert weighted[name][0] == pytest.approx(value, rel=1e-5, abs=1e-9), name


def test_each_metric_has_one_direction():
    assert set(metrics.METRICS) == HIGHER | {"rmse", "mae"}
    for metric in metrics.REGISTRY:
        assert metric.higher_is_better is (metric.name in HIGHER), metric.name
        assert metric.improvement(1.0, 2.0) == (1.0 if metric.higher_is_better else -1.0)
    for task in ("binary_classification", "multiclass_classification", "regression"):
        assert metrics.for_task(task), task


@pytest.mark.parametrize(
    "name, base, new, symbol",
    [("mae", 3.0, 2.0, "✅"), ("rmse", 3.0, 4.0, "🔻"), ("r2", 0.5, 0.4, "🔻"), ("rows", 1, 2, "")],
)
def test_report_deltas_take_the_registry_direction(name, base, new, symbol):
    assert judge(name, base, new)[1] == symbol


def gate_params(**settings) -> dict:
    return {"report": {"gate": {"max_drop": 0.1, **settings}}}


@pytest.mark.parametrize("metric, worse", [("rmse", 3.5), ("mae", 3.5), ("r2", 2.5)])
def test_the_gate_takes_the_direction_of_its_metric(metric, worse):
    """Before the registry, a gate without `higher_is_better` took every metric as
    higher-is-better: an RMSE that rose by 0.5 passed."""
    gate = gate_from_params(gate_params(metric=metric), "regression")
    judged = verdict(
        gate, Results("base", scores={metric: 3.0}), Results("new", scores={metric: worse})
    )
    assert not judged.passed and "worse than the allowed drop" in judged.text
    better = 6.0 - worse
    judged = verdict(
        gate, Results("base", scores={metric: 3.0}), Results("new", scores={metric: better})
    )
    assert judged.passed


@pytest.mark.parametrize("metric, old", [("roc_auc", True), ("rmse", False), ("mae", False)])
def test_an_old_higher_is_better_that_agrees_is_ignored(metric, old):
    task = "regression" if metric in {"rmse", "mae"} else "binary_classification"
    with_key = gate_from_params(gate_params(metric=metric, higher_is_better=old), task)
    assert with_key == gate_from_params(gate_params(metric=metric), task) == Gate(metric, 0.1)


@pytest.mark.parametrize(
    "metric, old, direction",
    [("rmse", True, "lower is better"), ("roc_auc", False, "higher is better")],
)
def test_an_old_higher_is_better_that_contradicts_is_one_line(metric, old, direction):
    params = gate_params(metric=metric, higher_is_better=old)
    with pytest.raises(PipelineError) as refused:
        gate_from_params(params)
    message = str(refused.value)
    assert "\n" not in message and f"`{metric}`" in message and direction in message
    assert message.startswith(f"report.gate.higher_is_better: {str(old).lower()} contradicts")
    # The report is still written: its gate fails with that line, unless the gate is off.
    task = "regression" if metric == "rmse" else "binary_classification"
    gate = reported_gate(params, task)
    sides = Results("base", scores={metric: 0.5}), Results("new", scores={metric: 0.5})
    assert verdict(gate, *sides).text == message and not verdict(gate, *sides).passed
    gate.enabled = False
    assert verdict(gate, *sides).passed


@pytest.mark.parametrize(
    "metric, task, valid",
    [
        ("auc", "binary_classification", "accuracy, balanced_accuracy, f1, roc_auc"),
        ("rmse", "multiclass_classification", "accuracy, balanced_accuracy, f1, roc_auc"),
        ("accuracy", "regression", "rmse, mae, r2"),
        ("auc", None, "accuracy, balanced_accuracy, f1, roc_auc, rmse, mae, r2"),
    ],
)
def test_a_gate_metric_the_task_does_not_compute_is_one_line_listing_the_valid_names(
    metric, task, valid
):
    with pytest.raises(PipelineError) as refused:
        gate_from_params(gate_params(metric=metric), task)
    message = str(refused.value)
    assert "\n" not in message and f"report.gate.metric `{metric}`" in message
    assert message.endswith(f"choose one of {valid}")


def test_the_release_rule_refuses_a_contradicting_direction(tmp_path, monkeypatch):
    """`make promotion-check` reads the same report.gate: a contradiction stops it with the line
    (run_stage prints it as `release: ...`), not with a verdict allow-worse could override."""
    monkeypatch.setattr(
        "mlops_actions.params.load_params",
        lambda: gate_params(metric="rmse", higher_is_better=True),
    )
    for name, value in (("latest", 3.0), ("candidate", 4.0)):
        facts = {"version": "1.0.0", "scores": {"rmse": value}}
        (tmp_path / f"{name}.json").write_text(json.dumps(facts))
    with pytest.raises(PipelineError, match="contradicts `rmse`, for which lower is better"):
        promote(tmp_path / "candidate.json", tmp_path / "latest.json", allow_worse=True)
