"""A baked project per task, driven only through its own Makefile: setup, tests, lint, and the
DVC contract that a pipeline reruns exactly what changed."""

import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import assert_mermaid_parses, bake, git, make

# One bake per task; together they run every family and the mixed numeric/categorical data.
TASKS = {
    "binary_classification": {"model": "hist_gradient_boosting", "dataset": "breast_cancer"},
    "multiclass_classification": {"model": "random_forest", "dataset": "synthetic"},
    "regression": {"model": "linear", "dataset": "diabetes"},
}
STAGES = ["data", "prepare", "train", "evaluate", "export"]


def stages_run(output: str) -> list[str]:
    return re.findall(r"Running stage '(\w+)'", output)


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

    check_report(project, key, hyper[key], hyper[key] * 2)

    # A change to one stage's module reruns that stage; DVC skips what follows when its output
    # is byte-identical (a comment does not change a model).
    module = project / "src" / project.name.replace("-", "_") / "stages" / "evaluate.py"
    module.write_text(module.read_text() + "\n# a reviewer's note\n")
    assert stages_run(make(project, "repro").stdout) == ["evaluate"]
    assert stages_run(make(project, "repro").stdout) == []


def metric_rows(report: str) -> dict[str, tuple[float, float, float]]:
    """base, new and delta of each row of the report's metrics table."""
    table = report.split("### Metrics", 1)[1].split("###", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| ([-\d.]+) \| ([-\d.]+) \| ([-+\d.]+) \|", table, flags=re.M)
    return {name: (float(b), float(n), float(d)) for name, b, n, d in rows}


def check_report(project: Path, key: str, old, new) -> None:
    """The two-commit scenario: the setup commit is the base, the params change is the PR."""
    baseline = git(project, "rev-list", "--max-parents=0", "HEAD").strip()
    base = json.loads(git(project, "show", f"{baseline}:metrics/scores.json"))
    now = json.loads((project / "metrics/scores.json").read_text())
    gate = yaml.safe_load((project / "params.yaml").read_text())["report"]["gate"]
    drop = base[gate["metric"]] - now[gate["metric"]]

    first = make(project, "report", check=False, BASE=baseline)
    report = (project / "report.md").read_text()
    assert "Traceback" not in first.stderr
    assert (first.returncode != 0) == (drop > gate["max_drop"]), first.stdout + first.stderr
    assert re.search(rf"\| `train\.hyperparameters\.{key}` \| {old} \| {new} \|", report)
    rows = metric_rows(report)
    assert set(rows) == set(now)
    # The base is its model.onnx (from the DVC cache: setup ran it here) re-scored with
    # onnxruntime on the same rows: scikit-learn's committed numbers within parity (float32
    # probabilities may break a tie the other way: random_forest's AUC moved by 1.2e-4).
    assert "_Base: its model.onnx from the local DVC cache, re-scored on this change's" in report
    assert "Δ paired: both models scored on the same resampled rows" in report
    for name, (base_value, new_value, delta) in rows.items():
        assert abs(base_value - base[name]) < 1e-3 and abs(new_value - now[name]) < 1e-4
        assert abs(delta - (now[name] - base[name])) < 1.2e-3
    assert any(abs(delta) > 0 for *_, delta in rows.values())
    assert assert_mermaid_parses(project / "report.md") >= 2

    # A threshold tighter than the observed drop trips the gate, after writing the report.
    params_file = project / "params.yaml"
    text = params_file.read_text()
    params_file.write_text(
        text.replace(f"max_drop: {gate['max_drop']}", f"max_drop: {drop - 0.001:.6f}")
    )
    tight = make(project, "report", check=False, BASE=baseline, LATENCY="off")
    # make reports the command's own exit status 1 (the gate), not a crash.
    assert tight.returncode != 0 and "Error 1" in tight.stderr and "Traceback" not in tight.stderr
    assert "worse than the allowed drop" in tight.stdout
    assert "_Not measured: skipped (--no-latency)._" in (project / "report.md").read_text()
    assert (project / "report.md").read_text().startswith("## ❌")
    assert (
        make(project, "report", check=False, BASE=baseline, GATE="off", LATENCY="off").returncode
        == 0
    )
    params_file.write_text(text)
