"""Model construction: families, hyperparameters and preprocessing."""

import re
import shutil
import sys
from pathlib import Path

import pytest
from mlops_actions.errors import PipelineError

from {{ cookiecutter.module_name }}.models import (
    FAMILIES,
    make_estimator,
    make_pipeline,
)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("classification", [True, False])
def test_every_family_builds_for_both_kinds(family, classification):
    estimator = make_estimator(classification, family, {}, seed=3)
    assert hasattr(estimator, "predict_proba") == classification
    if "random_state" in estimator.get_params():
        assert estimator.get_params()["random_state"] == 3


def test_unknown_family_is_refused():
    with pytest.raises(PipelineError, match=r"train\.model 'svm'"):
        make_estimator(True, "svm", {}, seed=0)


def test_foreign_hyperparameter_is_named():
    with pytest.raises(PipelineError, match="'n_estimators' not accepted by LogisticRegression"):
        make_estimator(True, "linear", {"n_estimators": 10}, seed=0)


def test_only_linear_models_scale(schema):
    """Trees split on raw values; scaling them would only add float32 rounding in ONNX."""
    if not schema.numeric:
        pytest.skip("no numeric features")
    for family in FAMILIES:
        name, numeric, _ = make_pipeline(schema, family, {}, seed=0)["preprocess"].transformers[0]
        assert name == "numeric"
        assert ("scale" in numeric.named_steps) == (family == "linear")


def test_a_value_out_of_range_is_named_in_one_line(train_test, schema):
    from {{ cookiecutter.module_name }}.stages.train import train

    settings = {"model": "hist_gradient_boosting", "hyperparameters": {"max_iter": -5}}
    with pytest.raises(PipelineError, match=r"train\.hyperparameters: The 'max_iter' parameter"):
        train(train_test[0], schema, settings, seed=0)


def test_a_typo_in_params_stops_the_stage_in_one_line(tmp_path, monkeypatch):
    """`hyperparameter:` (no s) would train with the defaults; params.yaml is validated first."""
    from mlops_actions.errors import run_stage

    from {{ cookiecutter.module_name }}.stages.train import main

    params = (Path(__file__).resolve().parents[2] / "params.yaml").read_text()
    (tmp_path / "params.yaml").write_text(params.replace("hyperparameters:", "hyperparameter:"))
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--train", "train.csv", "--schema", "schema.yaml", "--model-out", "m.joblib"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exited:
        run_stage("train", main)
    expected = "train: params.yaml: Object contains unknown field `hyperparameter` - at `$.train`"
    assert exited.value.code == expected


def test_the_export_stage_refuses_a_model_above_max_model_mb_in_one_line(
    train_test, schema, tmp_path, monkeypatch
):
    """`export.max_model_mb` reaches the size check, which refuses before converting: a random
    forest grown without max_leaf_nodes on 200,000 rows took 20.5 GB to convert."""
    import joblib
    import yaml
    from mlops_actions.errors import run_stage

    from {{ cookiecutter.module_name }}.stages.export import main
    from {{ cookiecutter.module_name }}.stages.train import train

    root = Path(__file__).resolve().parents[2]
    settings = {"model": "random_forest", "hyperparameters": {"n_estimators": 5}}
    joblib.dump(train(train_test[0], schema, settings, seed=0), tmp_path / "model.joblib")
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["export"]["max_model_mb"] = 0.001
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    shutil.copy(root / "data/schema.yaml", tmp_path / "schema.yaml")
    monkeypatch.chdir(tmp_path)
    argv = ["export", "--model", "model.joblib", "--test", "test.csv", "--schema", "schema.yaml"]
    argv += ["--onnx-out", "model.onnx", "--metrics-out", "onnx.json"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exited:
        run_stage("export", main)
    assert re.fullmatch(
        r"export: RandomForest\w+ would make a ~[\d.]+ MB model\.onnx \([\d,]+ tree nodes\), "
        r"above export\.max_model_mb 0\.001: bound train\.hyperparameters\.max_leaf_nodes "
        r"\(now unbounded\) or n_estimators, or raise export\.max_model_mb",
        str(exited.value.code),
    ), exited.value.code
    assert not (tmp_path / "model.onnx").exists()
