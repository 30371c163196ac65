"""The PR report renders for every situation a real PR meets, and the gate decides correctly."""

import math
import re
import subprocess

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics

from mlops_actions import charts
from mlops_actions.report import (
    COMMENT_LIMIT,
    LATENCY_END,
    LATENCY_START,
    Gate,
    Results,
    build,
    intervals,
    read_base,
    read_results,
)
from mlops_actions.report.intervals import (
    Rows,
    bootstrap,
    rows_from_plots,
    scorer,
)

LABELS = ["no", "yes"]


def results(name: str = "this change", **scores) -> Results:
    rng = np.random.default_rng(len(name))
    actual = rng.choice(LABELS, 50)
    fpr = np.linspace(0, 1, 12)
    return Results(
        name=name,
        scores=scores or {"accuracy": 0.9, "roc_auc": 0.95},
        data={
            "all": {
                "rows": 500,
                "features": 4,
                "missing_cells": 3,
                "class_share": {"no": 0.6, "yes": 0.4},
            }
        },
        onnx={
            "passed": True,
            "max_abs_diff": 1.2e-7,
            "atol": 1e-4,
            "rtol": 1e-5,
            "rows": 50,
            "onnx_bytes": 2048,
        },
        params={"base": {"seed": 42}, "train": {"model": "linear", "hyperparameters": {"C": 1.0}}},
        plots={
            "confusion": pd.DataFrame({"actual": actual, "predicted": rng.permutation(actual)}),
            "roc": pd.DataFrame({"fpr": fpr, "tpr": np.sqrt(fpr)}),
            "importance": pd.DataFrame(
                {"feature": ["a", "b", "c"], "importance": [0.2, 0.1, 1e-5]}
            ),
        },
        data_version="abcdef12",
    )


GATE = Gate(metric="roc_auc", max_drop=0.01)


def render(base: Results, new: Results, gate: Gate | None = GATE, **extra) -> tuple[str, object]:
    options = {"base_revision": "main", "sha": "1234567", "labels": LABELS, "diffs": {}}
    return build("demo", "binary_classification", base, new, gate, **{**options, **extra})


def tables(text: str) -> list[list[str]]:
    blocks, current = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    return blocks


def cells(row: str) -> int:
    return len(re.split(r"(?<!\\)\|", row.strip())) - 2


def test_structure(tmp_path):
    text, verdict = render(results("base", accuracy=0.88, roc_auc=0.94), results())
    headings = re.findall(r"^#+ (.+)$", text, flags=re.M)
    assert headings[0].endswith("Model report: demo")
    for heading in [
        "Metrics",
        "Params",
        "Data",
        "Plots",
        "ONNX",
        "Inference latency (measured in this run)",
    ]:
        assert any(h.startswith(heading) for h in headings), heading
    for block in tables(text):
        assert len({cells(row) for row in block}) == 1, block
        assert set(block[1].replace("|", "").split()) <= {"---", "---:"}
    assert text.count("```mermaid") == text.count("```") / 2
    assert not re.search(r"\bNone\b|\bnan\b|\{\w+\}", text)
    assert verdict.passed and "0.9400 → 0.9500" in text


def test_deterministic():
    assert render(results("base"), results())[0] == render(results("base"), results())[0]


def test_latency_stays_in_its_own_section():
    """Measured latencies vary run to run; everything outside their section must not."""
    latency = {"1 row": {"sklearn": 0.004, "onnx": 0.00005}}
    measured, _ = render(results("base"), results(), latency=latency)
    plain, _ = render(results("base"), results())
    section = re.compile(re.escape(LATENCY_START) + ".*?" + re.escape(LATENCY_END), re.S)
    assert "| 1 row | 4.000 ms | 0.050 ms | 80× |" in section.search(measured).group()
    assert section.sub("", measured) == section.sub("", plain)


def test_no_baseline():
    base = Results(name="main", problem="revision `main` not found here")
    text, verdict = render(base, results())
    assert verdict.passed and verdict.symbol == "⚪"
    assert "No baseline: revision `main` not found here" in text
    assert "| `roc_auc` | — | 0.9500 | — |" in text


def test_base_without_metrics_file():
    base = read_results("`main`", lambda path: None)
    assert not base.found and "metrics/scores.json" in base.problem
    text, verdict = render(base, results())
    assert verdict.passed and "no baseline" in text.lower()


def test_missing_base_revision(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    base = read_base("no-such-branch", tmp_path)
    assert not base.found and "`no-such-branch` not found" in base.problem


def test_metrics_added_and_removed():
    text, _ = render(
        results("base", accuracy=0.9, logloss=0.3, roc_auc=0.9),
        results(accuracy=0.9, f1=0.8, roc_auc=0.9),
    )
    assert re.search(r"\| `f1` \| — \| 0\.8000 \| — \| new metric \|", text)
    assert re.search(r"\| `logloss` \| 0\.3000 \| — \| — \| removed \|", text)


def test_directions_know_which_way_is_better():
    text, _ = render(results("base", rmse=10.0, r2=0.5), results(rmse=9.0, r2=0.4), gate=None)
    assert "| `rmse` | 10.0000 | 9.0000 | -1.0000 | ✅ |" in text
    assert "| `r2` | 0.5000 | 0.4000 | -0.1000 | 🔻 |" in text


def test_nan_metrics():
    text, verdict = render(results("base", roc_auc=0.9), results(roc_auc=math.nan))
    assert not verdict.passed and "is NaN" in verdict.text
    assert "| `roc_auc` | 0.9000 | NaN | — | ⚠️ |" in text
    _, verdict = render(results("base", roc_auc=math.nan), results(roc_auc=0.9))
    assert verdict.passed and "no baseline" in verdict.text


@pytest.mark.parametrize(
    "gate, passed",
    [
        (Gate("roc_auc", 0.01), False),
        (Gate("roc_auc", 0.05), True),
        (Gate("roc_auc", 0.01, enabled=False), True),
        (Gate("rmse", 0.5), True),
        (Gate("rmse", 0.1), False),
    ],
)
def test_gate(gate, passed):
    base = results("base", roc_auc=0.95, rmse=3.0)
    new = results(roc_auc=0.92, rmse=3.2)
    _, verdict = render(base, new, gate=gate)
    assert verdict.passed is passed


def test_failed_gate_is_said_at_the_top():
    text, verdict = render(results("base", roc_auc=0.95), results(roc_auc=0.80))
    assert not verdict.passed
    assert (
        text.startswith("## ❌")
        and "worse than the allowed drop of 0.0100" in text.split("\n\n")[1]
    )


def test_long_param_values_are_cut_and_escaped():
    new = results()
    new.params["train"]["hyperparameters"]["note"] = "a|b " * 100
    text, _ = render(results("base"), new)
    row = next(line for line in text.splitlines() if "`train.hyperparameters.note`" in line)
    assert "…" in row and len(row) < 200 and "a\\|b" in row
    assert cells(row) == 3


def test_stays_under_the_comment_limit():
    new = results()
    new.params["many"] = {f"param_{i}": "x" * 60 for i in range(3000)}
    diffs = {"dvc params diff --md main": "\n".join(f"| p{i} | 1 | 2 |" for i in range(5000))}
    text, _ = render(results("base"), new, diffs=diffs)
    assert len(text) < COMMENT_LIMIT
    assert "lines cut to stay under GitHub's 65,536-character limit" in text
    assert text.count("<details>") == text.count("</details>")


def test_charts_never_emit_tokens_mermaid_rejects():
    chart = charts.xychart(
        "t", x_labels=['a "b"', "c"], bars=[[1e-7, math.nan]], lines=[[-2e-6, 3.0]]
    )
    assert not re.search(r"\de-|nan|inf", chart, flags=re.I)
    assert "\"a 'b'\"" in chart


def classified(name: str, actual, predicted, positive_score, **scores) -> Results:
    """A binary side with per-row results, as the evaluate stage writes them."""
    side = results(name, **scores)
    side.plots["confusion"] = pd.DataFrame(
        {
            "actual": actual,
            "predicted": predicted,
            "proba_no": np.round(1 - positive_score, 4),
            "proba_yes": np.round(positive_score, 4),
        }
    )
    return side


def sides(flip: int, rows: int = 200) -> tuple[Results, Results]:
    """Base and change on the same test rows; the change gets `flip` more rows right."""
    rng = np.random.default_rng(7)
    actual = rng.choice(LABELS, rows)
    score = np.clip(np.where(actual == "yes", 0.65, 0.35) + rng.normal(0, 0.2, rows), 0, 1)
    predicted = np.where(score > 0.5, "yes", "no")
    wrong = np.flatnonzero(predicted != actual)[:flip]
    better = predicted.copy()
    better[wrong] = actual[wrong]
    better_score = score.copy()
    better_score[wrong] = np.where(actual[wrong] == "yes", 0.9, 0.1)

    def side(name, guess, probability):
        values = {
            "accuracy": metrics.accuracy_score(actual, guess),
            "roc_auc": metrics.roc_auc_score(actual == "yes", np.round(probability, 4)),
        }
        return classified(name, actual, guess, probability, **values)

    return side("base", predicted, score), side("this change", better, better_score)


def metric_row(text: str, name: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"| `{name}` |"))


def test_bootstrap_metrics_match_scikit_learn():
    """With every row weighed once, the resampled metrics are the evaluate stage's metrics."""
    rng = np.random.default_rng(0)
    actual = rng.choice(["a", "b", "c"], 150)
    probabilities = rng.dirichlet([1, 1, 1], 150)
    predicted = np.array(["a", "b", "c"])[probabilities.argmax(axis=1)]
    once = np.ones((150, 1), np.float32)
    got = scorer(Rows(actual, predicted, ["a", "b", "c"], probabilities))(once)
    expected = {
        "accuracy": metrics.accuracy_score(actual, predicted),
        "balanced_accuracy": metrics.balanced_accuracy_score(actual, predicted),
        "f1": metrics.f1_score(actual, predicted, average="macro"),
        "roc_auc": metrics.roc_auc_score(actual, probabilities, multi_class="ovr"),
    }
    for name, value in expected.items():
        assert got[name][0] == pytest.approx(value, abs=1e-9), name
    truth = rng.normal(100, 10, 150)
    guess = truth + rng.normal(0, 5, 150)
    got = scorer(Rows(truth, guess))(once)
    assert got["rmse"][0] == pytest.approx(metrics.root_mean_squared_error(truth, guess), 1e-5)
    assert got["r2"][0] == pytest.approx(metrics.r2_score(truth, guess), abs=1e-5)


@pytest.mark.parametrize("classes", [["no", "yes"], ["a", "b", "c"]])
def test_resampled_roc_auc_is_scikit_learns_weighted_roc_auc(classes):
    """Under any row weights (ties, long one-label runs of scores), the AUC the bootstrap sums is
    scikit-learn's roc_auc_score with those weights as sample weights."""
    rng = np.random.default_rng(len(classes))
    actual = rng.choice(classes, 300)
    logits = rng.normal(0, 1, (300, len(classes)))
    logits[np.arange(300), np.searchsorted(classes, actual)] += 2
    probabilities = np.round(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), 2)
    predicted = np.array(classes)[probabilities.argmax(axis=1)]
    weights = rng.poisson(1.0, (300, 5)).astype(np.float32)
    got = scorer(Rows(actual, predicted, classes, probabilities))(weights)["roc_auc"]
    for column, value in enumerate(got):
        # One-vs-rest, macro: what roc_auc_score(multi_class="ovr") averages (it refuses rounded
        # scores that do not sum to 1, hence by hand); binary: the last label's curve.
        targets = classes[-1:] if len(classes) == 2 else classes
        expected = np.mean(
            [
                metrics.roc_auc_score(
                    actual == label,
                    probabilities[:, classes.index(label)],
                    sample_weight=weights[:, column],
                )
                for label in targets
            ]
        )
        assert value == pytest.approx(expected, abs=1e-9)


def test_intervals_are_deterministic_and_cover_the_metric():
    base, new = sides(flip=1)
    text, _ = render(base, new)
    assert text == render(*sides(flip=1))[0]
    never = Rows(np.array(["no", "yes"] * 50), np.array(["no"] * 100), LABELS)
    found = bootstrap(None, never, ["f1"])
    assert found.new["f1"].low == found.new["f1"].high == 0
    row = metric_row(text, "accuracy")
    low, high = map(float, re.findall(r"\[([-+\d.]+), ([-+\d.]+)\]", row)[2])
    assert low <= new.scores["accuracy"] <= high


def test_rows_weighed_by_kind_give_the_intervals_of_rows_weighed_one_by_one(monkeypatch):
    """Few kinds of rows (no probabilities: confusion cells only) are weighed one Poisson draw per
    kind; the intervals must be those of weighing each row, up to the resampling's own noise."""
    rng = np.random.default_rng(3)
    actual = rng.choice(LABELS, 4000)
    base = Rows(actual, np.where(rng.random(4000) < 0.8, actual, "no"), LABELS)
    new = Rows(actual, np.where(rng.random(4000) < 0.85, actual, "no"), LABELS)
    names = ["accuracy", "balanced_accuracy", "f1"]
    by_kind = bootstrap(base, new, names, seed=1)
    monkeypatch.setattr(intervals, "_kinds", lambda codes, most: None)
    by_row = bootstrap(base, new, names, seed=1)
    for side in ("base", "new", "delta"):
        for name in names:
            got, expected = getattr(by_kind, side)[name], getattr(by_row, side)[name]
            # Each bound's Monte Carlo error with 1,000 resamples is below a tenth of the width.
            width = expected.high - expected.low
            assert got.low == pytest.approx(expected.low, abs=0.15 * width), (side, name)
            assert got.high == pytest.approx(expected.high, abs=0.15 * width), (side, name)
            assert (got.low, got.high) != (expected.low, expected.high)  # two different draws


def test_intervals_do_not_depend_on_the_number_of_threads(monkeypatch):
    base, new = sides(flip=3)
    rows = [rows_from_plots(side.plots, side.labels) for side in (base, new)]
    monkeypatch.setattr(intervals, "PARALLEL_CELLS", 0)
    monkeypatch.setattr(intervals, "SUMS_CELLS", 0)  # many small chunks for the threads to share
    monkeypatch.setattr(intervals.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    found = []
    for threads in ("1", "3"):
        monkeypatch.setenv("OMP_NUM_THREADS", threads)
        assert intervals._threads(1) == int(threads)
        found.append(bootstrap(*rows, ["accuracy", "roc_auc"], seed=7))
    assert found[0] == found[1] and found[0].delta


def test_a_one_row_change_reads_within_noise():
    text, verdict = render(*sides(flip=1))
    # Paired, one row apart: in over 2.5% of resamples that row is not drawn, so Δ = 0.
    assert "| +0.0050 | within noise | [+0.0000, +0.0" in metric_row(text, "accuracy")
    assert "Δ paired: both models scored on the same resampled rows (200 rows)" in text
    assert verdict.passed and verdict.text.endswith("; within noise")


def test_a_clear_change_gets_its_verdict():
    text, _ = render(*sides(flip=40))
    assert re.search(r"\| ✅ \| \[\+0\.\d+, \+0\.\d+\] \|", metric_row(text, "accuracy"))
    base, new = sides(flip=40)
    text, _ = render(new, base)
    assert "| 🔻 |" in metric_row(text, "accuracy")


def test_changed_test_rows_give_an_unpaired_interval():
    base, new = sides(flip=1)
    new.plots["confusion"] = new.plots["confusion"].iloc[:150]
    text, _ = render(base, new)
    assert "**Δ unpaired**: the test sets differ (200 base rows, 150 now" in text


def test_base_without_per_row_results_has_no_delta_interval():
    base, new = sides(flip=1)
    del base.plots["confusion"]
    text, _ = render(base, new)
    assert "No Δ intervals: the base has no per-row results" in text


@pytest.mark.parametrize(
    "mode, flip, passed",
    [
        ("threshold", -1, False),
        ("significant", -1, True),  # a drop beyond max_drop, but within noise
        ("significant", -40, False),
        ("threshold", 0, True),
    ],
)
def test_gate_modes(mode, flip, passed):
    base, new = sides(flip=abs(flip))
    if flip < 0:
        base, new = new, base
    gate = Gate("accuracy", max_drop=0.001, mode=mode)
    _, verdict = render(base, new, gate=gate)
    assert verdict.passed is passed, verdict.text
    assert "95% interval [" in verdict.text or flip == 0


def test_base_confusion_uses_the_base_labels():
    base = results("base")
    base.labels = ["neg", "pos"]
    base.plots["confusion"] = pd.DataFrame({"actual": ["neg", "pos"], "predicted": ["neg", "neg"]})
    text, _ = render(base, results())
    matrix = text.split("Confusion matrix of the base", 1)[1]
    assert "| **neg** | 1 | 0 |" in matrix and "| **pos** | 1 | 0 |" in matrix


def test_cross_validated_metrics_show_their_spread():
    new = results()
    new.cv = {"folds": 5, "accuracy": {"mean": 0.9, "std": 0.02, "min": 0.87, "max": 0.93}}
    text, _ = render(results("base"), new)
    assert "### Cross-validated metrics" in text
    assert "| `accuracy` | — | 0.9000 ± 0.0200 | 0.8700 to 0.9300 |" in text


def test_cv_scores_are_read_apart_from_the_metrics():
    scores = '{"accuracy": 0.9, "cv": {"folds": 3, "accuracy": {"mean": 0.8}}}'
    side = read_results("x", lambda path: scores if path == "metrics/scores.json" else None)
    assert side.scores == {"accuracy": 0.9} and side.cv["folds"] == 3


def test_an_unknown_gate_mode_fails_with_one_line():
    _, verdict = render(*sides(flip=1), gate=Gate("accuracy", mode="signficant"))
    assert not verdict.passed and "expected `threshold` or `significant`" in verdict.text


def test_a_failed_threshold_gate_says_when_the_drop_is_noise():
    base, new = sides(flip=1)
    _, verdict = render(new, base, gate=Gate("accuracy", max_drop=0.001))
    assert not verdict.passed and verdict.text.endswith("(within noise: its 95% interval spans 0)")


def test_holdout_metrics_are_a_table_of_their_own():
    base, new = results("base"), results()
    new.holdout, new.data = {"accuracy": 0.91, "roc_auc": 0.96}, {**new.data, "holdout": 50}
    base.holdout = {"accuracy": 0.89, "roc_auc": 0.96}
    text, _ = render(base, new)
    section = text.split("### Holdout metrics", 1)[1].split("###", 1)[0]
    assert "The rows no training or tuning sees (50 rows)" in section
    assert "| `accuracy` | 0.8900 | 0.9100 | +0.0200 | ✅ |" in section
    # The metrics table (and the gate) stay the test split's.
    assert "0.91" not in text.split("### Metrics", 1)[1].split("###", 1)[0]
    assert "### Holdout metrics" not in render(results("base"), results())[0]


def test_the_holdout_is_read_from_its_own_file():
    files = {
        "metrics/scores.json": '{"accuracy": 0.9}',
        "metrics/holdout.json": '{"accuracy": 0.8}',
    }
    side = read_results("x", files.get)
    assert side.scores == {"accuracy": 0.9} and side.holdout == {"accuracy": 0.8}
    files["metrics/holdout.json"] = "{}"  # no holdout (prepare.holdout_size: 0)
    assert read_results("x", files.get).holdout == {}
