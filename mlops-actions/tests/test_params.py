"""params.yaml is typed and validated once: a typo, a wrong type or a missing key is one line
naming the file and the key, instead of defaults used silently or a traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlops_actions import drift
from mlops_actions.drift import Thresholds
from mlops_actions.errors import PipelineError
from mlops_actions.params import load_params, validate
from mlops_actions.report import gate_from_params
from mlops_actions.report.compare import flatten

SRC = Path(__file__).resolve().parents[1] / "src"
MINIMAL = {
    "base": {"seed": 42},
    "prepare": {"test_size": 0.2},
    "train": {"model": "linear"},
    "export": {"atol": 1e-4, "rtol": 1e-5},
}


def edited(project: Path, folder: Path, old: str, new: str) -> Path:
    """The bake's params.yaml with one edit, written to `folder`."""
    text = (project / "params.yaml").read_text()
    assert old in text
    path = folder / "params.yaml"
    path.write_text(text.replace(old, new, 1))
    return path


def refusal(path: Path) -> str:
    with pytest.raises(PipelineError) as refused:
        load_params(path)
    message = str(refused.value)
    assert "\n" not in message
    return message


def test_a_typo_in_a_section_is_one_line_naming_the_key(project, tmp_path):
    """`hyperparameter:` (no s) trained with the estimator's defaults, silently."""
    path = edited(project, tmp_path, "  hyperparameters:", "  hyperparameter:")
    assert refusal(path) == f"{path}: Object contains unknown field `hyperparameter` - at `$.train`"


def test_a_quoted_false_is_refused_not_read_as_true(project, tmp_path):
    """`enabled: "false"` turned the gate on (bool("false") is True)."""
    path = edited(project, tmp_path, "enabled: true", 'enabled: "false"')
    assert refusal(path) == f"{path}: Expected `bool`, got `str` - at `$.report.gate.enabled`"


def test_a_missing_key_is_one_line_not_a_traceback(project, tmp_path):
    path = edited(project, tmp_path, "  test_size: 0.2\n", "")
    assert refusal(path) == f"{path}: Object missing required field `test_size` - at `$.prepare`"


def test_a_number_yaml_reads_as_text_says_why(project, tmp_path):
    """PyYAML (YAML 1.1) reads `1e-4`, without a dot, as the string '1e-4'."""
    path = edited(project, tmp_path, "atol: 1.0e-4", "atol: 1e-4")
    assert refusal(path) == (
        f"{path}: Expected `float`, got `str` - at `$.export.atol` "
        "(YAML reads '1e-4' as text: write a number with a dot, e.g. 1.0e-4)"
    )
    path = edited(project, tmp_path, "atol: 1.0e-4", "atol: tiny")
    assert refusal(path) == f"{path}: Expected `float`, got `str` - at `$.export.atol`"


def test_every_bake_s_params_validate_with_their_values_kept(project, params):
    raw = yaml.safe_load((project / "params.yaml").read_text())
    assert flatten(raw).items() <= flatten(params).items()
    assert params == validate(raw)


def test_unknown_top_level_sections_are_kept_as_they_are(project, tmp_path):
    """Users add their own sections, and DVC params may carry more."""
    path = tmp_path / "params.yaml"
    path.write_text((project / "params.yaml").read_text() + "mine:\n  when: 2026-01-01\n  x: [1]\n")
    mine = load_params(path)["mine"]
    assert mine == yaml.safe_load(path.read_text())["mine"] and list(mine) == ["when", "x"]


def test_defaults_are_filled_in_and_optional_sections_stay_absent():
    params = validate({**MINIMAL, "report": {"gate": {"metric": "r2"}}})
    assert params["prepare"] == {"test_size": 0.2, "holdout_size": 0.1, "drop_empty_target": False}
    assert params["train"]["hyperparameters"] == {}
    assert params["evaluate"] == {"cv_folds": 0}
    assert params["report"]["gate"] == {
        "metric": "r2",
        "mode": "threshold",
        "max_drop": 0.0,
        "enabled": True,
    }
    assert "data" not in params and "drift" not in params
    # `hyperparameters:` with every line commented out is YAML null: no hyperparameters.
    train = validate({**MINIMAL, "train": {"model": "linear", "hyperparameters": None}})["train"]
    assert train == {"model": "linear", "hyperparameters": {}}


def test_the_data_section_may_go_with_the_data_stage(project, tmp_path):
    """The README's way to bring your own CSV: delete the data stage and `data:`."""
    raw = yaml.safe_load((project / "params.yaml").read_text())
    del raw["data"]
    assert "data" not in validate(raw)


def test_ints_are_numbers_where_floats_are_expected():
    params = validate({**MINIMAL, "export": {"atol": 0, "rtol": 1, "max_model_mb": 50}})
    assert params["export"] == {"atol": 0.0, "rtol": 1.0, "max_model_mb": 50.0}


def test_a_params_file_from_before_the_size_check_gets_its_default():
    """export.max_model_mb came with the size check (issue 28); older files do not have it."""
    assert validate(MINIMAL)["export"] == {"atol": 1e-4, "rtol": 1e-5, "max_model_mb": 100.0}


@pytest.mark.parametrize(
    ("section", "value", "error"),
    [
        ("base", {"seed": True}, "Expected `int`, got `bool` - at `$.base.seed`"),
        ("base", {"seed": 4.2}, "Expected `int`, got `float` - at `$.base.seed`"),
        ("prepare", {"test_size": 1}, "Expected `float` < 1.0 - at `$.prepare.test_size`"),
        (
            "prepare",
            {"test_size": 0.2, "drop_empty_target": 1},
            "Expected `bool`, got `int` - at `$.prepare.drop_empty_target`",
        ),
        (
            "prepare",
            {"test_size": 0.2, "holdout_size": -0.1},
            "Expected `float` >= 0.0 - at `$.prepare.holdout_size`",
        ),
        (
            "prepare",
            {"test_size": 0.6, "holdout_size": 0.4},
            "test_size 0.6 + holdout_size 0.4 leave no rows to train on: their sum must be below 1"
            " - at `$.prepare`",
        ),
        ("train", {"hyperparameters": {}}, "Object missing required field `model` - at `$.train`"),
        ("evaluate", {"cv_folds": 1}, "cv_folds is 1: use 0 (off) or 2 or more folds - at"),
        ("evaluate", {"cv_folds": -2}, "Expected `int` >= 0 - at `$.evaluate.cv_folds`"),
        ("export", {"atol": -1e-4, "rtol": 0}, "Expected `float` >= 0.0 - at `$.export.atol`"),
        ("export", {"atol": 0, "rtol": "1e-5"}, "Expected `float`, got `str` - at `$.export.rtol`"),
        (
            "export",
            {"atol": 0, "rtol": 0, "max_model_mb": 0},
            "Expected `float` > 0.0 - at `$.export.max_model_mb`",
        ),
        ("report", {"gate": {"metric": "r2", "mode": "strict"}}, "Invalid enum value 'strict'"),
        ("report", {"gate": {"max_drop": 0.01}}, "missing required field `metric`"),
        ("report", None, "Expected `object`, got `null` - at `$.report`"),
        ("drift", {"psi": 0.2}, "Object missing required field `p_value` - at `$.drift`"),
    ],
)
def test_bad_values_are_refused_by_path(section, value, error):
    with pytest.raises(PipelineError, match=r"^params\.yaml: ") as refused:
        validate({**MINIMAL, section: value})
    assert error in str(refused.value)


DRIFT = {"psi": 0.2, "p_value": 0.01, "missing_increase": 0.05, "new_category_share": 0.01}


@pytest.mark.parametrize(
    ("key", "value", "error"),
    [
        ("psi", 0, "Expected `float` > 0.0 - at `$.drift.psi`"),
        ("p_value", 1, "Expected `float` < 1.0 - at `$.drift.p_value`"),
        ("missing_increase", -0.1, "Expected `float` >= 0.0 - at `$.drift.missing_increase`"),
        ("new_category_share", 2, "Expected `float` <= 1.0 - at `$.drift.new_category_share`"),
        ("min_rows", 0, "Expected `int` >= 1 - at `$.drift.min_rows`"),
    ],
)
def test_drift_thresholds_are_checked_once(key, value, error):
    with pytest.raises(PipelineError) as refused:
        validate({**MINIMAL, "drift": {**DRIFT, "min_rows": 100, key: value}})
    assert str(refused.value) == f"params.yaml: {error}"


def test_drift_reads_its_thresholds_from_the_validated_params(params):
    assert Thresholds.from_params(params) == Thresholds(**params["drift"])
    with pytest.raises(PipelineError, match=r"params\.yaml has no drift section"):
        Thresholds.from_params(validate(MINIMAL))


def test_a_gate_needs_no_direction_and_an_old_one_passes_through_to_the_registry_check():
    """The direction is the metric's (metrics.py): validation neither needs nor invents it."""
    gate = validate({**MINIMAL, "report": {"gate": {"metric": "rmse"}}})["report"]["gate"]
    assert "higher_is_better" not in gate
    assert gate_from_params({"report": {"gate": gate}}, "regression").enabled
    old = {"metric": "rmse", "higher_is_better": True}
    kept = validate({**MINIMAL, "report": {"gate": old}})["report"]["gate"]
    assert kept["higher_is_better"] is True
    with pytest.raises(PipelineError, match="contradicts `rmse`, for which lower is better"):
        gate_from_params({"report": {"gate": kept}}, "regression")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (None, "file not found"),
        ("", "file is empty"),
        ("# only comments\n", "file is empty"),
        ("base:\n  seed: 1\n x: 2\n", "not valid YAML (expected <block end>, but found"),
        ("train: [\n", "not valid YAML (expected the node content"),
        ("- base\n", "Expected `object`, got `array`"),
    ],
)
def test_a_file_that_cannot_be_read_is_one_line_naming_it(tmp_path, text, error):
    path = tmp_path / "params.yaml"
    if text is not None:
        path.write_text(text)
    message = refusal(path)
    assert message.startswith(f"{path}: {error}")


def test_drift_check_exits_2_with_the_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({**MINIMAL, "drift": {"psi": "0.2"}}))
    assert drift.main(["check"]) == 2
    error = "drift: params.yaml: Expected `float`, got `str` - at `$.drift.psi`\n"
    assert capsys.readouterr().err == error


def test_make_report_stops_on_a_quoted_false_in_one_line(tmp_path):
    """python -m mlops_actions.report, as make report runs it, before it reads anything else."""
    gate = {"metric": "r2", "enabled": "false"}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({**MINIMAL, "report": {"gate": gate}}))
    path = os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    done = subprocess.run(
        [sys.executable, "-m", "mlops_actions.report", "--no-latency", "--base", "HEAD"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    error = "report: params.yaml: Expected `bool`, got `str` - at `$.report.gate.enabled`\n"
    assert done.stderr == error, done.stderr
