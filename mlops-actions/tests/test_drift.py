"""Drift statistics on synthetic shifts: nothing moved, no alarm; a shifted mean, a new category or
a jump in missing values, an alarm on that feature alone. PSI is checked against scipy."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from mlops_actions.drift import (
    Thresholds,
    batch_from_logs,
    categorical_check,
    compare,
    main,
    numeric_check,
    psi,
    render,
)
from mlops_actions.errors import PipelineError
from mlops_actions.schema import Schema

SCHEMA = Schema(
    target="y",
    features={"size": "numeric", "weight": "numeric", "colour": "categorical"},
    labels=("no", "yes"),
)
THRESHOLDS = Thresholds(
    psi=0.2, p_value=0.01, missing_increase=0.05, new_category_share=0.01, min_rows=100
)


def frame(
    rows: int, seed: int, shift: float = 0.0, colours=("red", "green", "blue")
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "size": rng.normal(10 + shift, 2, rows),
            "weight": rng.gamma(2.0, 3.0, rows),
            "colour": rng.choice(colours, rows).astype(object),
        }
    )


def drifted(checks) -> dict[str, list[str]]:
    return {check.name: check.reasons for check in checks if check.drifted}


def test_psi_is_the_symmetric_kullback_leibler_divergence():
    rng = np.random.default_rng(0)
    for _ in range(20):
        # Shares well above the floor that keeps empty bins finite.
        p, q = rng.dirichlet(np.full(10, 20.0)), rng.dirichlet(np.full(10, 20.0))
        expected = np.sum(special.rel_entr(p, q) + special.rel_entr(q, p))
        assert psi(q, p) == pytest.approx(expected, rel=1e-9)
    assert psi(p, p) == 0.0
    assert np.isfinite(psi(np.array([0.5, 0.5, 0.0]), np.array([0.0, 0.5, 0.5])))


def test_statistics_are_scipys():
    reference, batch = frame(2000, 1), frame(700, 2, shift=0.3)
    check = numeric_check("size", reference["size"], batch["size"])
    expected = stats.ks_2samp(reference["size"], batch["size"])
    assert (check.statistic, check.p_value) == pytest.approx((expected.statistic, expected.pvalue))
    colours = categorical_check("colour", reference["colour"], batch["colour"])
    table = pd.crosstab(
        np.r_[np.zeros(2000), np.ones(700)], pd.concat([reference["colour"], batch["colour"]])
    )
    chi2 = stats.chi2_contingency(table.to_numpy(), correction=False)
    assert (colours.statistic, colours.p_value) == pytest.approx((chi2.statistic, chi2.pvalue))


def test_no_shift_no_alarm():
    for seed in range(5):
        checks = compare(frame(3000, seed), frame(1000, seed + 100), SCHEMA, THRESHOLDS)
        assert drifted(checks) == {}, seed


def test_small_batches_noise_is_not_drift():
    """PSI of 100 unchanged rows often passes 0.2; significance keeps that from an alarm."""
    noisy = 0
    for seed in range(20):
        checks = compare(frame(450, seed), frame(100, seed + 100), SCHEMA, THRESHOLDS)
        noisy += any(check.psi >= 0.2 for check in checks)
        assert drifted(checks) == {}, seed
    assert noisy, "the case this test is about did not occur"


def test_a_shifted_mean_alarms_on_that_feature_only():
    checks = compare(frame(3000, 1), frame(1000, 2, shift=1.5), SCHEMA, THRESHOLDS)
    assert list(drifted(checks)) == ["size"]
    [size] = [check for check in checks if check.name == "size"]
    assert size.psi >= 0.2 and size.p_value < 0.01 / 3


def test_a_new_category_alarms_and_is_named():
    batch = frame(1000, 2, colours=("red", "green", "blue", "purple"))
    checks = compare(frame(3000, 1), batch, SCHEMA, THRESHOLDS)
    assert list(drifted(checks)) == ["colour"]
    assert any(
        "new categories" in reason and "'purple'" in reason for reason in drifted(checks)["colour"]
    )


def test_a_jump_in_missing_values_alarms_on_that_feature():
    batch = frame(1000, 2)
    batch.loc[batch.sample(frac=0.2, random_state=0).index, "weight"] = np.nan
    checks = compare(frame(3000, 1), batch, SCHEMA, THRESHOLDS)
    assert list(drifted(checks)) == ["weight"]
    assert drifted(checks)["weight"] == ["missing 0% → 20%"]


def test_shifted_predictions_alarm():
    reference, batch = frame(3000, 1), frame(1000, 2)
    predictions = (
        np.where(reference["size"] > 10, "yes", "no"),
        np.where(batch["size"] > 8, "yes", "no"),
    )
    checks = compare(reference, batch, SCHEMA, THRESHOLDS, predictions)
    assert list(drifted(checks)) == ["prediction"]


def test_the_report_names_the_drift_and_its_charts(tmp_path):
    checks = compare(frame(3000, 1), frame(1000, 2, shift=1.5), SCHEMA, THRESHOLDS)
    result = {
        "project": "demo",
        "batch": "data/incoming",
        "rows": {"batch": 1000, "reference": 3000},
        "model_version": "1.2.0",
        "thresholds": THRESHOLDS.__dict__,
    }
    markdown = render(result, checks)
    assert markdown.startswith("## ❌ Drift: 1 of 3 features (demo)")
    assert "| `size` | numeric |" in markdown and markdown.count("```mermaid") == 1
    calm = render(result, compare(frame(3000, 1), frame(1000, 2), SCHEMA, THRESHOLDS))
    assert calm.startswith("## ✅ No drift") and "```mermaid" not in calm


def test_prediction_logs_become_a_batch(tmp_path):
    log = tmp_path / "predictions.jsonl"
    lines = [
        {"features": {"size": 1.5, "weight": None, "colour": "red"}, "outputs": {"label": "no"}},
        {"features": {"size": 2.5, "weight": 3.0, "colour": None}, "outputs": {"label": "yes"}},
    ]
    log.write_text("".join(json.dumps(line) + "\n" for line in lines))
    batch = batch_from_logs([log], SCHEMA)
    assert list(batch.columns) == ["size", "weight", "colour"] and len(batch) == 2
    log.write_text(log.read_text() + "not json\n")
    with pytest.raises(PipelineError, match=r"predictions\.jsonl line 3: not a prediction log"):
        batch_from_logs([log], SCHEMA)


def test_the_command_refuses_a_batch_it_cannot_read(tmp_path, capsys, in_project):
    bad = tmp_path / "batch.csv"
    bad.write_text("something,else\n1,2\n")
    outputs = ["--out-json", str(tmp_path / "r.json"), "--out-md", str(tmp_path / "r.md")]
    assert main(["check", "--batch", str(bad), *outputs]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"drift: {bad}: missing column(s)") and error.count("\n") == 1
    assert not (tmp_path / "r.json").exists()
