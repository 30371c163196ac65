"""A baked project per task, driven only through its own Makefile: setup, tests, lint, and the
DVC contract that a pipeline reruns exactly what changed."""

import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import bake, make, run

# One bake per task; together they run every family and the mixed numeric/categorical data.
TASKS = {
    "binary_classification": {"model": "hist_gradient_boosting", "dataset": "breast_cancer"},
    "multiclass_classification": {"model": "random_forest", "dataset": "synthetic"},
    "regression": {"model": "linear", "dataset": "diabetes"},
}
STAGES = ["data", "prepare", "train", "evaluate", "export"]


def stages_run(output: str) -> list[str]:
    return re.findall(r"Running stage '(\w+)'", output)


def git(project: Path, *args: str) -> str:
    return run(["git", *args], cwd=project).stdout


@pytest.mark.parametrize("task", TASKS)
def test_project_lifecycle(task, tmp_path):
    answers = {"project_name": f"Pipeline {task.split('_')[0]}", "task": task, **TASKS[task]}
    project = bake(tmp_path, **answers)
    remote = tmp_path / "dvc-remote"

    # make setup: git repo, DVC remote, first run of every stage, first commit with its metrics.
    setup = make(project, "setup", DVC_REMOTE_DIR=str(remote)).stdout
    assert stages_run(setup) == STAGES
    assert git(project, "rev-list", "--count", "HEAD").strip() == "1"
    assert git(project, "status", "--porcelain") == ""
    tracked = git(project, "ls-files").split()
    assert {"dvc.lock", "metrics/scores.json", "metrics/onnx.json", "metrics/data.json"} <= set(
        tracked
    )
    assert "models/model.onnx" not in tracked  # a DVC output, in the remote instead
    assert any(remote.rglob("*")), "make setup pushed nothing to the local DVC remote"

    scores = json.loads((project / "metrics/scores.json").read_text())
    expected = (
        {"rmse", "mae", "r2"}
        if task == "regression"
        else {"accuracy", "balanced_accuracy", "f1", "roc_auc"}
    )
    assert set(scores) == expected
    onnx_check = json.loads((project / "metrics/onnx.json").read_text())
    assert onnx_check["passed"] is True and onnx_check["max_abs_diff"] < 1e-3
    assert (project / "models/model.onnx").stat().st_size == onnx_check["onnx_bytes"]

    # Running setup again changes nothing.
    again = make(project, "setup", DVC_REMOTE_DIR=str(remote)).stdout
    assert stages_run(again) == []
    assert git(project, "rev-list", "--count", "HEAD").strip() == "1"

    # The project's own checks.
    make(project, "test")
    make(project, "lint")

    # Nothing changed: nothing reruns.
    assert stages_run(make(project, "repro").stdout) == []

    # A params change reruns train and what follows, nothing before it.
    params_file = project / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    hyper = params["train"]["hyperparameters"]
    key = {
        "hist_gradient_boosting": "learning_rate",
        "random_forest": "n_estimators",
        "linear": "alpha",
    }[answers["model"]]
    params_file.write_text(
        params_file.read_text().replace(f"{key}: {hyper[key]}", f"{key}: {hyper[key] * 2}")
    )
    assert stages_run(make(project, "repro").stdout) == ["train", "evaluate", "export"]
    assert scores != json.loads((project / "metrics/scores.json").read_text())

    # A change to one stage's module reruns that stage; DVC skips what follows when its output
    # is byte-identical (a comment does not change a model).
    module = project / "src" / project.name.replace("-", "_") / "stages" / "evaluate.py"
    module.write_text(module.read_text() + "\n# a reviewer's note\n")
    assert stages_run(make(project, "repro").stdout) == ["evaluate"]
    assert stages_run(make(project, "repro").stdout) == []
