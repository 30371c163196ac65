"""`make tune` on a set-up project: a bad space refused before anything is queued, the candidates
run as DVC experiments with the real DVC queue, the leaderboard, a second run that reuses them, and
`make tune-apply` bringing a candidate's hyperparameters into params.yaml. The machinery's own
tests (mlops-actions/tests/test_tune.py) prove the rule and that the test rows stay unread."""

import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import in_venv, make


def experiment_names(project: Path) -> set[str]:
    listed = in_venv(["dvc", "exp", "ls", "--name-only"], project).stdout.split()
    return {name for name in listed if name.startswith("tune-")}


@pytest.mark.xdist_group("act-setup")
def test_make_tune_runs_candidates_as_experiments_and_applies_the_choice(
    set_up_project, tmp_path
):
    project = Path(shutil.copytree(set_up_project, tmp_path / "project", symlinks=True))
    params_file = project / "params.yaml"
    good = params_file.read_text()
    params_file.write_text(good.replace("max_iter: [100, 200, 300]", "max_iter: []"))
    refused = make(project, "tune", check=False, TRIALS="3")
    assert refused.returncode != 0
    assert (
        "tune: tune.space.hist_gradient_boosting.max_iter: an empty list: give at least one value"
        in refused.stderr.splitlines()
    ), refused.stderr
    assert experiment_names(project) == set()
    params_file.write_text(good)

    ran = make(project, "tune", TRIALS="3")
    plan = json.loads((project / "tune/plan.json").read_text())
    names = [candidate["name"] for candidate in plan["candidates"]]
    assert len(names) == 3 and names[0] == plan["current"]
    assert experiment_names(project) == set(names)
    board = json.loads((project / "tune/leaderboard.json").read_text())
    assert [c["error"] for c in board["candidates"]] == [None] * 3
    assert {c["name"] for c in board["candidates"]} == set(names)
    assert board["chosen"] in names and board["metric"] == "roc_auc"
    table = (project / "tune/leaderboard.md").read_text()
    assert table.count("| `tune-") == 3 and "✅ chosen" in table
    assert f"chosen {board['chosen']}" in ran.stdout

    again = make(project, "tune", TRIALS="3")
    assert again.stdout.count("already ran on this commit") == 3
    assert experiment_names(project) == set(names)

    drawn = plan["candidates"][1]
    make(project, "tune-apply", EXP=drawn["name"])
    applied = yaml.safe_load(params_file.read_text())["train"]["hyperparameters"]
    assert applied == drawn["hyperparameters"] != plan["candidates"][0]["hyperparameters"]
