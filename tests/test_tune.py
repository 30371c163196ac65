"""`make tune` on a set-up project: a bad space refused before any trial runs, the candidates
scored in one process and saved as DVC experiments that the real `dvc exp ls` lists, the
leaderboard, a second run that reuses them, and `make tune-apply` (the real `dvc exp apply`)
bringing a candidate's hyperparameters into params.yaml. The machinery's own tests
(mlops-actions/tests/test_tune.py) prove the rule, the pool, the workspace put back on an error
or Ctrl-C, and that the test rows stay unread.

Both tests share one set-up project of their own (`Tune Demo`: its own package name in the shared
venv, which the act runs' `make install` re-points to act's workspace) in their own xdist group
("tune"), so they run beside the act runs' group on the other worker instead of after them."""

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import OWNER_REPO, bake, git, in_venv, make
from test_act import act, pull_request_event


@pytest.fixture(scope="session")
def tune_project(tmp_path_factory) -> Path:
    """A default bake after `make setup`, with an origin that looks like GitHub's (as conftest's
    set_up_project, under another name)."""
    root = tmp_path_factory.mktemp("tune-origin")
    project = bake(root, project_name="Tune Demo")
    make(project, "setup", DVC_REMOTE_DIR=str(root / "local-remote"))
    git(project, "remote", "add", "origin", f"https://github.com/{OWNER_REPO}.git")
    git(project, "update-ref", "refs/remotes/origin/main", "HEAD")
    return project


def experiment_names(project: Path) -> set[str]:
    listed = in_venv(["dvc", "exp", "ls", "--name-only"], project).stdout.split()
    return {name for name in listed if name.startswith("tune-")}


@pytest.mark.xdist_group("tune")
def test_make_tune_runs_candidates_as_experiments_and_applies_the_choice(tune_project, tmp_path):
    project = Path(shutil.copytree(tune_project, tmp_path / "project", symlinks=True))
    make(project, "install")  # this copy's code, whatever an act run installed last
    params_file = project / "params.yaml"
    good = params_file.read_text()
    params_file.write_text(good.replace("max_iter: [100, 200, 300]", "max_iter: []"))
    refused = make(project, "tune", check=False, TRIALS="4")
    assert refused.returncode != 0
    assert (
        "tune: tune.space.hist_gradient_boosting.max_iter: an empty list: give at least one value"
        in refused.stderr.splitlines()
    ), refused.stderr
    assert experiment_names(project) == set()
    params_file.write_text(good)

    status = git(project, "status", "--porcelain")
    ran = make(project, "tune", TRIALS="4")
    assert git(project, "status", "--porcelain") == status  # the workspace as it was
    assert params_file.read_text() == good and not (project / "tune/dvc.lock").exists()
    plan = json.loads((project / "tune/plan.json").read_text())
    names = [candidate["name"] for candidate in plan["candidates"]]
    assert len(names) == 4 and names[0] == plan["current"]
    assert experiment_names(project) == set(names)
    board = json.loads((project / "tune/leaderboard.json").read_text())
    assert [c["error"] for c in board["candidates"]] == [None] * 4
    assert {c["name"] for c in board["candidates"]} == set(names)
    assert board["chosen"] in names and board["metric"] == "roc_auc"
    table = (project / "tune/leaderboard.md").read_text()
    assert table.count("| `tune-") == 4 and "✅ chosen" in table
    assert f"chosen {board['chosen']}" in ran.stdout
    shown = in_venv(["dvc", "exp", "show", "--csv", "--no-pager"], project).stdout
    rows = {row["Experiment"]: row for row in csv.DictReader(io.StringIO(shown))}
    for candidate in plan["candidates"]:  # each with its params and its cross-validated metric
        row = rows[candidate["name"]]
        assert row["train.hyperparameters.max_iter"] == str(
            candidate["hyperparameters"]["max_iter"]
        )
        assert float(row["cv.roc_auc.mean"]) > 0.5
    make(project, "leaderboard")  # read back from the experiments
    assert json.loads((project / "tune/leaderboard.json").read_text())["chosen"] == board["chosen"]

    again = make(project, "tune", TRIALS="4")
    assert again.stdout.count("already ran on this commit") == 4
    assert experiment_names(project) == set(names)

    drawn = plan["candidates"][1]
    make(project, "tune-apply", EXP=drawn["name"])
    applied = yaml.safe_load(params_file.read_text())["train"]["hyperparameters"]
    assert applied == drawn["hyperparameters"] != plan["candidates"][0]["hyperparameters"]


REPORT_MARK = '"CML watermark model-report")'
LEADERBOARD_MARK = '"CML watermark tune-leaderboard")'


@pytest.mark.xdist_group("tune")
def test_tune_yml_fans_trials_out_and_keeps_one_leaderboard_comment(tune_project, tmp_path):
    """A PR labelled `tune` under act: 3 trial jobs (the plan's matrix), a leaderboard job, and one
    leaderboard comment (CML stand-in, stand-in GitHub API), replaced on a second run while the
    PR's report comment and a reviewer's comment stay."""
    project = Path(shutil.copytree(tune_project, tmp_path / "project", symlinks=True))
    git(project, "switch", "--quiet", "--create", "search")
    params_file = project / "params.yaml"
    params_file.write_text(params_file.read_text().replace("trials: 8", "trials: 3"))
    git(project, "commit", "--quiet", "--all", "--message", "Three candidates")
    event = {**pull_request_event("search"), "action": "labeled", "label": {"name": "tune"}}
    store = tmp_path / "github.json"
    others = [
        {"id": 50, "issue": 7, "user": {"login": "reviewer", "type": "User"}, "body": "Tune it?",
         "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"},
        {"id": 51, "issue": 7, "user": {"login": "github-actions[bot]", "type": "Bot"},
         "body": f"## Model report\n\n![](https://cml.dev/watermark.png#x {REPORT_MARK}",
         "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"},
    ]  # fmt: skip
    store.write_text(json.dumps({"comments": others, "pulls": {}}))
    posted = []
    for run_number in (1, 2):
        record = tmp_path / f"record-{run_number}"
        result = act(
            project, "pull_request", event, "tune.yml", record,
            env={"STUB_GITHUB_STORE": str(store)},
        )  # fmt: skip
        assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
        plan = json.loads((record / "artifacts/tuning-plan/plan.json").read_text())
        names = [candidate["name"] for candidate in plan["candidates"]]
        assert len(names) == 3
        for name in names:  # one trial job each, its results in its own artifact
            result_files = record / "artifacts" / name / name
            assert {p.name for p in result_files.iterdir()} == {"cv.json", "oof.csv"}
        board = json.loads((record / "artifacts/leaderboard/leaderboard.json").read_text())
        assert {c["name"] for c in board["candidates"]} == set(names)
        assert all(c["error"] is None for c in board["candidates"])
        table = (record / "artifacts/leaderboard/leaderboard.md").read_text()
        comments = json.loads(store.read_text())["comments"]
        assert comments[:2] == others, "the reviewer's and the report's comments are untouched"
        leaderboards = [c for c in comments if LEADERBOARD_MARK in c["body"]]
        assert len(leaderboards) == 1 and leaderboards[0]["body"].startswith(table)
        posted.append(leaderboards[0]["id"])
    assert posted[0] != posted[1]  # the second run's comment replaced the first's
