"""make tune's machinery (mlops_actions.tune): the space refused before any trial, the candidates
drawn, one trial's cross-validation on the train rows only, and the leaderboard's rule."""

import copy
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mlops_actions.errors import PipelineError
from mlops_actions.metrics import METRICS, Predictions
from mlops_actions.report.intervals import rows_of
from mlops_actions.tune import space as spaces
from mlops_actions.tune.leaderboard import Candidate, markdown, rank
from mlops_actions.tune.stage import main, plan
from mlops_actions.tune.trial import cross_validate

from .conftest import own


def _with_space(params: dict, family: str, space: dict) -> dict:
    changed = copy.deepcopy(params)
    changed["tune"]["space"][family] = space
    return changed


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"no_such_setting": [1, 2]}, "no_such_setting"),
        ({"learning_rate": []}, "an empty list"),
        (
            {"learning_rate": {"low": 0.3, "high": 0.3}},
            "an empty range: low 0.3 is not below high 0.3",
        ),
        (
            {"learning_rate": {"low": 0.0, "high": 0.3, "log": True}},
            "a log range needs low above 0",
        ),
        ({"learning_rate": {"low": 0.1}}, "needs low and high"),
        ({"learning_rate": 0.1}, "neither a list of values nor a range"),
        ({"learning_rate": [0.1, -1.0]}, "-1.0 refused"),
        ({"max_leaf_nodes": {"low": 1, "high": 31}}, "1 refused"),
    ],
)
def test_a_bad_space_is_refused_in_one_line_before_any_trial(
    project, params, schema, space, message
):
    if params["train"]["model"] != "hist_gradient_boosting":
        pytest.skip("the spaces above are the default family's")
    bad = _with_space(params, "hist_gradient_boosting", space)
    with pytest.raises(PipelineError) as refused:
        plan(bad, schema, own(project, "models").make_pipeline, trials=4)
    text = str(refused.value)
    assert text.startswith("tune.space.hist_gradient_boosting.") and message in text, text
    assert "\n" not in text


def test_a_family_without_a_space_is_refused(project, params, schema):
    bad = copy.deepcopy(params)
    del bad["tune"]["space"][params["train"]["model"]]
    with pytest.raises(PipelineError, match=r"no search space for "):
        plan(bad, schema, own(project, "models").make_pipeline, trials=4)


def test_the_template_spaces_are_accepted_for_every_family(project, params, schema):
    """Every family's default space passes scikit-learn's checks for this bake's task."""
    make_pipeline = own(project, "models").make_pipeline
    for family in params["tune"]["space"]:
        settings = copy.deepcopy(params)
        settings["train"] = {"model": family, "hyperparameters": {}}
        chosen = plan(settings, schema, make_pipeline, trials=4)
        assert len(chosen["candidates"]) == 4 and chosen["family"] == family


def test_candidates_are_drawn_within_the_space_the_same_for_the_same_seed():
    space = spaces.parse(
        {"m": {"rate": {"low": 0.01, "high": 0.3, "log": True}, "leaves": {"low": 5, "high": 50},
               "depth": [None, 4, 8]}},
        "m",
    )  # fmt: skip
    drawn = spaces.draw(space, 20, seed=7)
    assert drawn == spaces.draw(space, 20, seed=7) != spaces.draw(space, 20, seed=8)
    assert len(drawn) == 20
    for candidate in drawn:
        assert 0.01 <= candidate["rate"] <= 0.3 and isinstance(candidate["rate"], float)
        assert 5 <= candidate["leaves"] <= 50 and isinstance(candidate["leaves"], int)
        assert candidate["depth"] in (None, 4, 8)
    # A space of lists alone holds 2 x 2 combinations: each once, however many are asked for.
    grid = spaces.draw(spaces.parse({"m": {"a": [1, 2], "b": ["x", "y"]}}, "m"), 10, seed=0)
    assert sorted(map(json.dumps, grid)) == sorted(
        json.dumps({"a": a, "b": b}) for a in (1, 2) for b in ("x", "y")
    )


def test_the_plan_starts_with_the_current_settings(project, params, schema):
    chosen = plan(params, schema, own(project, "models").make_pipeline, trials=5)
    current = params["train"]["hyperparameters"]
    family = params["train"]["model"]
    first, *drawn = chosen["candidates"]
    name = spaces.name_of(family, current)
    assert first == {"name": name, "model": family, "hyperparameters": current}
    assert chosen["current"] == first["name"] and len(drawn) == 4
    assert len({c["name"] for c in chosen["candidates"]}) == 5
    searched = set(params["tune"]["space"][family])
    for candidate in drawn:
        settings = candidate["hyperparameters"]
        assert {k: v for k, v in settings.items() if k not in searched} == {
            k: v for k, v in current.items() if k not in searched
        }
        assert candidate["name"] == spaces.name_of(family, settings)


def test_another_family_starts_from_its_defaults_without_a_reference(project, params, schema):
    other = next(family for family in params["tune"]["space"] if family != params["train"]["model"])
    chosen = plan(params, schema, own(project, "models").make_pipeline, 3, family=other)
    assert chosen["current"] == "" and len(chosen["candidates"]) == 3
    assert all(c["model"] == other for c in chosen["candidates"])
    assert all(
        set(c["hyperparameters"]) <= set(params["tune"]["space"][other])
        for c in chosen["candidates"]
    )


def test_a_trial_predicts_every_train_row_out_of_fold(project, params, schema, train_test):
    train_rows, _ = train_test
    pipeline = own(project, "models").make_pipeline(
        schema, params["train"]["model"], params["train"]["hyperparameters"], 0
    )
    trial = cross_validate(pipeline, train_rows, schema, folds=3, seed=1)
    assert len(trial.predictions.actual) == len(train_rows) and len(trial.folds) == 3
    if schema.is_classification:
        probabilities = trial.predictions.probabilities
        assert probabilities.shape == (len(train_rows), len(schema.labels))
        assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    else:
        assert np.isfinite(trial.predictions.predicted.astype(float)).all()
    again = cross_validate(pipeline, train_rows, schema, folds=3, seed=1)
    assert (again.predictions.predicted == trial.predictions.predicted).all()


def test_a_trial_never_opens_the_test_split_or_the_holdout(
    project, params, schema, train_test, tmp_path, monkeypatch
):
    """The stage, then the leaderboard on its output, with every file opened recorded (Python's
    audit hook): only the train rows are read, although test.csv and holdout.csv lie beside them."""
    if params["train"]["model"] != "hist_gradient_boosting":
        pytest.skip("one family is enough to follow the files")
    train_rows, test_rows = train_test
    data = tmp_path / "data"
    data.mkdir()
    train_rows.to_csv(data / "train.csv", index=False)
    for name in ("test.csv", "holdout.csv"):
        test_rows.to_csv(data / name, index=False)
    settings = copy.deepcopy(params)
    settings["tune"]["folds"] = 3
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(settings))
    shutil.copy(project / "data/schema.yaml", data / "schema.yaml")
    monkeypatch.chdir(tmp_path)
    opened: list[str] = []
    recording = [True]

    def record(event, args):
        if recording[0] and event == "open" and isinstance(args[0], str | bytes):
            opened.append(str(args[0]))

    sys.addaudithook(record)
    stage = [
        "--schema",
        "data/schema.yaml",
        "trial",
        "--train",
        "data/train.csv",
        "--out-dir",
        "out",
    ]
    try:
        main(own(project, "models").make_pipeline, stage)
    finally:
        recording[0] = False
    read = [path for path in opened if path.endswith(".csv")]
    assert read and all(path.endswith("train.csv") or "oof.csv" in path for path in read), read
    result = json.loads((tmp_path / "out/cv.json").read_text())
    assert result["rows"] == len(train_rows) and result["folds"] == 3
    assert result["onnx_bytes"] > 0 and result["onnx_latency_us"] > 0


def _candidate(name: str, predicted: np.ndarray, actual: np.ndarray, size: int) -> Candidate:
    rows = rows_of(Predictions(actual, predicted))
    error = np.abs(predicted - actual)
    cv = {
        "model": "m", "hyperparameters": {"x": size}, "folds": 5, "rows": len(actual),
        "cv": {"mae": {"mean": float(error.mean()), "std": 0.01}},
        "fit_seconds": 0.1, "onnx_bytes": size, "onnx_latency_us": 50.0,
    }  # fmt: skip
    return Candidate(name, cv, rows)


def test_the_leaderboard_chooses_the_simplest_within_noise_of_the_best():
    generator = np.random.default_rng(0)
    actual = generator.normal(size=400)
    best = actual + generator.normal(scale=0.5, size=400)
    close = best + generator.normal(scale=0.02, size=400)  # the same model, within noise
    worse = actual + generator.normal(scale=2.0, size=400)  # clearly worse on the same rows
    board = rank(
        [
            _candidate("tune-worse", worse, actual, size=10),
            _candidate("tune-best", best, actual, size=500),
            _candidate("tune-close", close, actual, size=200),
            Candidate("tune-failed", {"hyperparameters": {}}, error="experiment failed"),
        ],
        METRICS["mae"],
        current="tune-best",
    )
    names = [c.name for c in board.candidates]
    assert names[-1] == "tune-failed" and board.best == names[0]
    by_name = {c.name: c for c in board.candidates}
    assert not by_name["tune-worse"].within_noise and by_name["tune-worse"].delta.low > 0
    assert by_name["tune-close"].within_noise or board.best == "tune-close"
    # The smaller of the two within noise wins, although its mean may be a hair worse.
    assert board.chosen == "tune-close"
    table = markdown(board)
    assert "✅ chosen" in table and "tune-failed" in table and "within noise" in table


def test_an_interval_that_only_touches_zero_is_not_within_noise():
    """[-0.0324, +0.0000]: never better in any resample (a real penguins leaderboard's row)."""
    from mlops_actions.report.intervals import Interval
    from mlops_actions.tune.leaderboard import within_noise

    assert not within_noise(Interval(-0.0324, 0.0), higher_is_better=True)
    assert within_noise(Interval(-0.0324, 0.001), higher_is_better=True)
    assert within_noise(Interval(0.0, 0.0), higher_is_better=True)  # predicted alike
    assert not within_noise(Interval(0.0, 0.02), higher_is_better=False)  # mae: worse
    assert within_noise(Interval(-0.001, 0.02), higher_is_better=False)
    assert not within_noise(None, higher_is_better=True)


def test_a_trial_job_that_left_no_result_is_listed_as_failed(tmp_path):
    """tune.yml's leaderboard job reads one folder per candidate; a trial job that failed left
    none: the candidate is listed as failed, last, and the others still rank."""
    from mlops_actions.tune.experiments import board_of, results

    generator = np.random.default_rng(1)
    actual = generator.normal(size=200)
    plan = {"metric": "mae", "current": "tune-a", "candidates": []}
    for name, noise in (("tune-a", 0.5), ("tune-b", 1.5), ("tune-c", 0.5)):
        plan["candidates"].append({"name": name, "model": "m", "hyperparameters": {"x": noise}})
        if name == "tune-c":
            continue  # its trial job failed: no artifact
        folder = tmp_path / name
        folder.mkdir()
        predicted = actual + generator.normal(scale=noise, size=200)
        cv = _candidate(name, predicted, actual, size=100).cv
        (folder / "cv.json").write_text(json.dumps(cv))
        pd.DataFrame({"actual": actual, "predicted": predicted}).to_csv(
            folder / "oof.csv", index=False
        )
    board = board_of(plan, results(plan, tmp_path))
    assert [c.name for c in board.candidates] == ["tune-a", "tune-b", "tune-c"]
    assert board.candidates[-1].error == "no result: its trial job failed"
    assert board.chosen == "tune-a" and "❌" in markdown(board)


def _work(candidate: dict) -> tuple[dict, pd.DataFrame]:
    """A stand-in for the scikit-learn trial (stage.score_candidate): the pool and the recording
    are under test here, not the fit. x < 0 raises, as a value scikit-learn refuses would."""
    import os

    from threadpoolctl import threadpool_info

    x = candidate["hyperparameters"]["x"]
    if x < 0:
        raise ValueError(f"x={x} refused\nand a second line")
    threads = {pool["num_threads"] for pool in threadpool_info()}
    cv = {"hyperparameters": candidate["hyperparameters"], "cv": {"mae": {"mean": x, "std": 0.1}},
          "pid": os.getpid(), "threads": sorted(threads)}  # fmt: skip
    return cv, pd.DataFrame({"actual": [0.0, 1.0, 2.0], "predicted": [x, 1.0 + x, 2.0]})


def _planned(*values: float) -> dict:
    candidates = [
        {"name": f"tune-{index}", "model": "m", "hyperparameters": {"x": value}}
        for index, value in enumerate(values)
    ]
    return {"metric": "mae", "current": "tune-0", "candidates": candidates}


def test_the_pool_runs_every_candidate_in_forked_one_thread_workers():
    import os

    from mlops_actions.tune import pool

    plan = _planned(0.1, -1.0, 0.2, 0.3)
    ran = {
        c["name"]: (result, error) for c, result, error in pool.trials(_work, plan["candidates"], 2)
    }
    assert set(ran) == {"tune-0", "tune-1", "tune-2", "tune-3"}
    assert ran["tune-1"] == (None, "ValueError: x=-1.0 refused")
    pids = {result[0]["pid"] for result, _ in ran.values() if result}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert all(result[0]["threads"] in ([], [1]) for result, _ in ran.values() if result)
    assert ran["tune-3"][0][0]["cv"]["mae"]["mean"] == 0.3


def _git(where, *args: str) -> str:
    import subprocess

    return subprocess.run(
        ["git", *args], cwd=where, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture(scope="module")
def dvc_project(tmp_path_factory):
    """The least a project needs for make tune's recording: git, DVC, a prepare stage that wrote
    data/prepared/train.csv, params.yaml's train section and tune/dvc.yaml's trial stage."""
    import subprocess

    root = tmp_path_factory.mktemp("dvc-project")
    _git(root, "init", "--quiet", "--initial-branch", "main")
    _git(root, "config", "user.email", "t@example.com")
    _git(root, "config", "user.name", "t")
    dvc = str(Path(sys.executable).parent / "dvc")
    subprocess.run([dvc, "init", "--quiet"], cwd=root, check=True)
    (root / "params.yaml").write_text("train:\n  model: m\n  hyperparameters:\n    x: 0.1\n")
    (root / "dvc.yaml").write_text(
        "stages:\n  prepare:\n    cmd: mkdir -p data/prepared && echo a,b > data/prepared/train.csv"
        "\n    outs:\n      - data/prepared/train.csv\n"
    )
    (root / "tune").mkdir()
    (root / "tune/dvc.yaml").write_text(
        "stages:\n  trial:\n    cmd: echo the stage runs in make tune's pool\n"
        "    deps:\n      - ../data/prepared/train.csv\n"
        "    params:\n      - ../params.yaml:\n          - train\n"
        "    outs:\n      - oof.csv:\n          cache: false\n"
        "    metrics:\n      - cv.json:\n          cache: false\n"
    )
    (root / ".gitignore").write_text("tune/plan.json\n")
    subprocess.run([dvc, "repro", "--quiet", "dvc.yaml:prepare"], cwd=root, check=True)
    _git(root, "add", "--all")
    _git(root, "commit", "--quiet", "--message", "A project")
    return root


@pytest.fixture
def in_dvc_project(dvc_project, tmp_path, monkeypatch):
    """A copy of dvc_project (its own experiments) as the working directory."""
    project = Path(shutil.copytree(dvc_project, tmp_path / "project", symlinks=True))
    monkeypatch.chdir(project)
    return project


def _workspace(project) -> dict:
    return {
        path: (project / path).read_bytes() if (project / path).exists() else None
        for path in ("params.yaml", "tune/dvc.lock", "tune/cv.json", "tune/oof.csv")
    }


def test_search_records_each_candidate_as_an_experiment_and_runs_it_once(in_dvc_project):
    from dvc.repo import Repo

    from mlops_actions.tune import experiments

    project = in_dvc_project
    (project / "params.yaml").write_text(
        "train:\n  model: m\n  hyperparameters:\n    x: 0.1\n# mine\n"
    )
    before, status = _workspace(project), _git(project, "status", "--porcelain")
    plan = _planned(0.1, -1.0, 0.3)
    found = experiments.search(plan, 2, _work)
    assert [c.name for c in found] == ["tune-0", "tune-1", "tune-2"]
    assert found[1].error == "failed: ValueError: x=-1.0 refused"
    assert not found[0].error and not found[2].error
    assert _workspace(project) == before and _git(project, "status", "--porcelain") == status
    with Repo() as repo:
        saved = dict(next(iter(repo.experiments.ls().values())))
        assert set(saved) == {"tune-0", "tune-2"}
        files = repo.scm.get_fs(saved["tune-2"])
        params = yaml.safe_load(files.read_text("params.yaml"))
        assert params["train"] == {"model": "m", "hyperparameters": {"x": 0.3}}
        assert json.loads(files.read_text("tune/cv.json"))["cv"]["mae"]["mean"] == 0.3
        assert "x: 0.3" in files.read_text("tune/dvc.lock")
        assert "# mine" in repo.scm.get_fs(saved["tune-0"]).read_text("params.yaml")

    ran = project.parent / "ran"  # each trial leaves its name: the workers are other processes
    ran.mkdir()

    def counted(candidate: dict) -> tuple[dict, pd.DataFrame]:
        (ran / candidate["name"]).touch()
        return _work(candidate)

    again = experiments.search(plan, 2, counted)
    assert [p.name for p in ran.iterdir()] == ["tune-1"]  # the failed one only
    assert [c.error for c in again] == ["", "failed: ValueError: x=-1.0 refused", ""]
    assert again[2].cv == found[2].cv
    assert _workspace(project) == before
    board = experiments.saved(plan)
    assert board["tune-1"].error.startswith("no experiment on this commit")


def test_ctrl_c_while_recording_puts_the_workspace_back_and_stops_the_workers(
    in_dvc_project, monkeypatch
):
    import multiprocessing

    from mlops_actions.tune import experiments

    project = in_dvc_project
    before = _workspace(project)
    record = experiments.record

    def interrupted(stage, plan, candidate, result):
        record(stage, plan, candidate, result)  # the workspace holds the candidate's files now
        assert _workspace(project) != before
        raise KeyboardInterrupt

    monkeypatch.setattr(experiments, "record", interrupted)
    with pytest.raises(KeyboardInterrupt):
        experiments.search(_planned(0.1, 0.2, 0.3, 0.4), 2, _work)
    assert _workspace(project) == before
    assert multiprocessing.active_children() == []


def test_a_stale_train_split_is_refused_before_any_trial(in_dvc_project):
    from mlops_actions.tune import experiments

    (in_dvc_project / "data/prepared/train.csv").write_text("changed\n")
    with pytest.raises(PipelineError, match=r"data/prepared is not what dvc\.lock says"):
        experiments.search(_planned(0.1), 1, _work)


INTERRUPTED_SEARCH = """
import signal, sys, time
from pathlib import Path
# Ctrl-C as a terminal delivers it: a shell that started the tests in the background (`make test &`)
# leaves SIGINT ignored, and Python keeps an ignored SIGINT ignored.
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path[:0] = [{package!r} + "/src", {package!r}]  # this checkout's package and its tests
from mlops_actions.tune import experiments
from tests.test_tune import _planned, _work

def work(candidate):
    if candidate["name"] == "tune-0":
        return _work(candidate)  # recorded: the workspace holds its files meanwhile
    Path("../waiting").touch()
    time.sleep(600)  # until Ctrl-C

experiments.search(_planned(0.1, 0.2), 1, work)
"""


def test_ctrl_c_in_a_terminal_stops_the_search_and_puts_the_workspace_back(in_dvc_project):
    """A real SIGINT to the search's process group, as a terminal's Ctrl-C sends it, while a
    worker runs a trial and the workspace holds the first candidate's files."""
    import os
    import signal
    import subprocess
    import time

    project = in_dvc_project
    before = _workspace(project)
    script = INTERRUPTED_SEARCH.format(package=str(Path(__file__).parents[1]))
    search = subprocess.Popen(
        [sys.executable, "-c", script], cwd=project, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        saved = search.stdout.readline()  # wait until the first candidate is an experiment
        while "saved" not in saved:
            assert saved, search.communicate()
            saved = search.stdout.readline()
        while not (project.parent / "waiting").exists():  # and the second trial runs
            time.sleep(0.2)
        assert _workspace(project) != before
        os.killpg(search.pid, signal.SIGINT)
        _, stderr = search.communicate(timeout=120)
    finally:
        if search.poll() is None:
            os.killpg(search.pid, signal.SIGKILL)
    assert search.returncode != 0 and "KeyboardInterrupt" in stderr, stderr
    assert _workspace(project) == before
    left = subprocess.run(["pgrep", "-s", str(search.pid)], capture_output=True, text=True)
    assert left.stdout == "", "no worker outlives the search"
