"""The README's "bring your own data" path, step by step, on real data: Palmer penguins exactly as
the palmerpenguins package ships the file (R's NA for gaps, two rows without a body mass). The
multiclass run goes through the DVC remote to a fresh clone; the regression run trains every
family and then feeds the pipeline the bad files users bring, checking that each is refused in one
line, that the last good model survives, and that `make restore` brings the last commit back;
then a second corpus table, ISLR Hitters, goes through the same steps."""

import hashlib
import re
import shutil
from importlib.resources import files
from pathlib import Path

import pandas as pd
import yaml
from conftest import MAKE_ERROR, bake, git, in_venv, make, run
from corpus import DATASETS

# The file as the package ships it, read from the installed package: no download.
PENGUINS = Path(str(files("palmerpenguins") / "data" / "penguins.csv"))
STAGES = ["prepare", "train", "evaluate", "export"]
# What a failed run must not touch: the last good model and its metrics.
KEPT = ["models/model.joblib", "models/model.onnx", "metrics/scores.json", "metrics/onnx.json"]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stages_run(output: str) -> list[str]:
    return re.findall(r"Running stage '(\w+)'", output)


def edit_params(project: Path, drop_empty_target: bool = False) -> None:
    """Delete the `data:` section of params.yaml, as the README says (and, when make schema listed
    empty targets, take its advice to drop them)."""
    params_file = project / "params.yaml"
    text = re.sub(r"\ndata:\n(?:[ #].*\n)*", "\n", params_file.read_text())
    if drop_empty_target:
        text = text.replace("drop_empty_target: false", "drop_empty_target: true")
    params_file.write_text(text)
    params = yaml.safe_load(text)
    assert "data" not in params and params["prepare"]["drop_empty_target"] is drop_empty_target


def own_data_steps(project: Path, csv: Path, target: str) -> str:
    """The README's commands in its order, up to editing params.yaml; returns make schema's
    output (stdout and stderr)."""
    drafted = make(project, "schema", CSV=str(csv), TARGET=target)
    in_venv(["dvc", "remove", "data"], cwd=project)
    shutil.copy(csv, project / "data/raw/dataset.csv")
    in_venv(["dvc", "add", "data/raw/dataset.csv"], cwd=project)
    return drafted.stdout + drafted.stderr


def test_penguins_species_round_trip_through_the_remote(tmp_path):
    origin = bake(tmp_path / "origin", project_name="Own Species", task="multiclass_classification")
    remote = tmp_path / "dvc-remote"
    make(origin, "setup", DVC_REMOTE_DIR=str(remote))

    own_data_steps(origin, PENGUINS, "species")
    edit_params(origin)
    assert stages_run(make(origin, "repro").stdout) == STAGES
    make(origin, "push")
    git(origin, "add", "--all")
    git(origin, "commit", "--quiet", "--message", "Own data")

    schema = yaml.safe_load((origin / "data/schema.yaml").read_text())
    assert schema["missing_values"] == ["NA"]
    assert schema["target"] == {"name": "species", "labels": ["Adelie", "Chinstrap", "Gentoo"]}
    assert schema["features"]["island"] == schema["features"]["sex"] == "categorical"
    assert schema["features"]["bill_length_mm"] == "numeric"
    assert list(yaml.safe_load((origin / "dvc.yaml").read_text())["stages"]) == STAGES
    data = yaml.safe_load((origin / "metrics/data.json").read_text())
    # The numeric NAs are gaps now; sex's NA stays a category of its own.
    assert data["all"]["rows"] == 344 and data["all"]["missing_cells"] == 8

    # A collaborator: fresh clone, fresh venv (the Makefile's default), same remote.
    clone = tmp_path / "clone"
    run(["git", "clone", "--quiet", str(origin), str(clone)], cwd=tmp_path)
    run(["make", "--no-print-directory", "setup", f"DVC_REMOTE_DIR={remote}"], cwd=clone)
    run(["make", "--no-print-directory", "pull"], cwd=clone)
    for path in ["data/raw/dataset.csv", "data/prepared/train.csv", "models/model.onnx"]:
        assert digest(clone / path) == digest(origin / path), path
    assert stages_run(run(["make", "--no-print-directory", "repro"], cwd=clone).stdout) == []
    # The project's own tests on its own data: every family converts and matches, rows at
    # every split threshold take scikit-learn's branch.
    run(["make", "--no-print-directory", "test"], cwd=clone)
    more_rows_are_compared_on_the_same_rows(clone, remote)


def report_of(project: Path, **variables: str) -> tuple[str, dict[str, tuple[float, ...]]]:
    """`make report BASE=HEAD`: its base line and its metrics table (base, change, Δ)."""
    settings = [f"{key}={value}" for key, value in {"BASE": "HEAD", **variables}.items()]
    (project / "report.md").unlink(missing_ok=True)
    command = ["make", "--no-print-directory", "report", "LATENCY=off", *settings]
    done = run(command, cwd=project, check=False)  # the gate may fail: the report is written
    assert "Traceback" not in done.stderr and (project / "report.md").is_file(), done.stderr
    text = (project / "report.md").read_text()
    table = text.split("### Metrics", 1)[1].split("### ", 1)[0]
    base_line = re.search(r"^_Base: (.*)_$", table, flags=re.M)
    rows = re.findall(r"^\| `(\w+)` \| ([-\d.]+) \| ([-\d.]+) \| ([-+\d.]+|0) \|", table, re.M)
    assert base_line and rows, text
    return base_line.group(1) + "\n" + table, {n: tuple(map(float, v)) for n, *v in rows}


def more_rows_are_compared_on_the_same_rows(project: Path, remote: Path) -> None:
    """A PR that appends rows to the data: the base model is re-scored on the change's test rows
    (from the DVC cache, the remote, or rebuilt), so every delta is paired; rows move no side."""
    old_test = pd.read_csv(project / "data/prepared/test.csv")
    raw = pd.read_csv(project / "data/raw/dataset.csv", keep_default_na=False)
    new = raw.sample(40, random_state=1).copy()
    new["bill_length_mm"] = [
        f"{value}1" if value != "NA" else "39.1" for value in new["bill_length_mm"]
    ]
    pd.concat([raw, new]).to_csv(project / "data/raw/dataset.csv", index=False)
    run([".venv/bin/dvc", "add", "--quiet", "data/raw/dataset.csv"], cwd=project)
    run(["make", "--no-print-directory", "repro"], cwd=project)
    test = pd.read_csv(project / "data/prepared/test.csv")
    assert len(test) > len(old_test)
    kept = test.merge(old_test, how="inner")
    assert len(kept) == len(old_test), "appending rows moved test rows to another side"

    cached, table = report_of(project)
    assert cached.startswith(
        f"its model.onnx from the local DVC cache, re-scored on this change's {len(test)} test"
    ), cached
    assert "Δ paired: both models scored on the same resampled rows" in cached, cached
    lock = yaml.safe_load(git(project, "show", "HEAD:dvc.lock"))
    (md5,) = [
        out["md5"]
        for stage in lock["stages"].values()
        for out in stage.get("outs", [])
        if out["path"] == "models/model.onnx"
    ]
    in_cache = project / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
    in_cache.unlink()
    fetched, same = report_of(project)
    assert fetched.startswith("its model.onnx from the DVC remote, re-scored"), fetched
    assert same == table
    in_cache.unlink()
    remote.rename(remote.with_name("remote-away"))
    try:
        assert "(BASE_MODEL=fetch: no rebuild)" in report_of(project, BASE_MODEL="fetch")[0]
        rebuilt, again = report_of(project)  # and the rebuild puts it in the cache
    finally:
        remote.with_name("remote-away").rename(remote)
    assert rebuilt.startswith("its model.onnx from `dvc repro` of the base"), rebuilt
    assert again == table  # the same model: training is seeded
    committed, _ = report_of(project, BASE_MODEL="off")
    assert committed.startswith("its committed metrics, since its model was not re-scored"), (
        committed
    )
    assert "**Δ unpaired**: the test sets differ" in committed
    assert len(git(project, "worktree", "list").splitlines()) == 1  # the rebuild's is gone


def bad_files(good: pd.DataFrame, folder: Path) -> dict[str, tuple[Path, str]]:
    """What users bring, each with the line the pipeline must answer with."""
    cases = {}

    def write(name: str, content: bytes, message: str) -> None:
        (folder / name).write_bytes(content)
        cases[name] = (folder / name, message)

    text = good.to_csv(index=False, na_rep="NA")
    blanked = good.assign(bill_depth_mm=None).to_csv(index=False, na_rep="NA")
    write(
        "empty-column.csv",
        blanked.replace(",NA,", ",,").encode(),
        r"column 'bill_depth_mm' is empty in all 342 rows: fill it in or remove it from features",
    )
    write(
        "semicolons.csv",
        good.to_csv(index=False, sep=";", decimal=",", na_rep="NA").encode(),
        r"columns are separated by ';', not commas",
    )
    write(
        "latin-1.csv",
        text.replace("Torgersen", "Tørgersen").encode("latin-1"),
        r"not UTF-8 text \(byte 0xf8 on line 2\): save it as UTF-8",
    )
    header, rest = text.split("\n", 1)
    write(
        "repeated-column.csv",
        (header.replace("sex", "bill_length_mm") + "\n" + rest).encode(),
        r"column 'bill_length_mm' appears 2 times in the header \(columns 3, 7\)",
    )
    return cases


def test_penguins_body_mass_every_family_every_bad_file_then_hitters(tmp_path):
    project = bake(tmp_path, project_name="Own Mass", task="regression")
    make(project, "setup", DVC_REMOTE_DIR=str(tmp_path / "dvc-remote"))

    drafted = own_data_steps(project, PENGUINS, "body_mass_g")
    # make schema names the two penguins without a body mass and what to do about them.
    assert (
        "target 'body_mass_g' is empty in 2 of 344 rows (data rows 4, 272): the pipeline refuses "
        "them; fill them in, delete them, or set prepare.drop_empty_target: true" in drafted
    )
    edit_params(project, drop_empty_target=True)
    reran = make(project, "repro").stdout
    assert stages_run(reran) == STAGES
    assert "prepare: dropped 2 rows whose target 'body_mass_g' is empty" in reran
    assert yaml.safe_load((project / "metrics/onnx.json").read_text())["passed"] is True
    make(project, "test")  # every family converts and matches; every split threshold agrees
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--message", "Own data")

    # Every family through the pipeline itself: export refuses a model that differs.
    params_file = project / "params.yaml"
    committed_params = params_file.read_text()
    for family in ["random_forest", "linear"]:
        params = yaml.safe_load(committed_params)
        params["train"] = {"model": family, "hyperparameters": {}}
        params_file.write_text(yaml.safe_dump(params, sort_keys=False))
        assert stages_run(make(project, "repro").stdout) == ["train", "evaluate", "export"]
        onnx_check = yaml.safe_load((project / "metrics/onnx.json").read_text())
        assert onnx_check["passed"] is True, (family, onnx_check)
    params_file.write_text(committed_params)
    assert stages_run(make(project, "repro").stdout) == []  # back to the committed run's cache
    committed = {path: digest(project / path) for path in [*KEPT, "data/raw/dataset.csv"]}
    committed_summary = (project / "metrics/data.json").read_text()
    good = pd.read_csv(PENGUINS).dropna(subset=["body_mass_g"])

    for name, (bad, message) in bad_files(good, tmp_path).items():
        schema_before = (project / "data/schema.yaml").read_bytes()
        data_files = sorted(p.name for p in (project / "data").iterdir())
        if name != "empty-column.csv":  # make schema drafts around an empty column instead
            refused = make(project, "schema", CSV=str(bad), TARGET="body_mass_g", check=False)
            assert refused.returncode != 0 and re.search(message, refused.stderr), (name, refused)
            assert (project / "data/schema.yaml").read_bytes() == schema_before, name
            assert sorted(p.name for p in (project / "data").iterdir()) == data_files, name

        # The README's update path with the bad file: refused in prepare, in one line.
        shutil.copy(bad, project / "data/raw/dataset.csv")
        in_venv(["dvc", "add", "data/raw/dataset.csv"], cwd=project)
        failed = make(project, "repro", check=False)
        assert failed.returncode != 0, name
        errors = [line for line in failed.stderr.splitlines() if line.startswith("prepare: ")]
        assert len(errors) == 1 and re.search(message, errors[0]), (name, failed.stderr)
        # The run's last word (before make's own "***" line) is the way back.
        last = [line for line in failed.stderr.splitlines() if not MAKE_ERROR.match(line)]
        assert last[-1].endswith(
            "or run make restore to get the last commit's data, model and metrics back"
        ), (name, failed.stderr)
        assert stages_run(failed.stdout) == ["prepare"], name
        for path, sha in committed.items():
            if path.startswith(("models/", "metrics/")):
                assert digest(project / path) == sha, (name, path)

        restored = make(project, "restore").stdout
        assert "kept in git stash" in restored, restored
        assert {path: digest(project / path) for path in committed} == committed, name
        assert (project / "metrics/data.json").read_text() == committed_summary, name
        assert git(project, "status", "--porcelain") == "", name
        assert stages_run(make(project, "repro").stdout) == [], name
        stashed = git(project, "stash", "show", "--include-untracked", "--name-only")
        assert "data/raw/dataset.csv.dvc" in stashed.split(), (name, stashed)
        git(project, "stash", "drop", "--quiet")

    # A DVC-tracked file edited in place, never dvc-added: restore keeps the edit in DVC's cache
    # and its pointer in the stash, from where it comes back.
    raw = project / "data/raw/dataset.csv"
    raw.write_text(raw.read_text() + raw.read_text().splitlines()[-1] + "\n")
    edited = digest(raw)
    assert "data/raw/dataset.csv.dvc" in make(project, "restore").stdout
    assert digest(raw) == committed["data/raw/dataset.csv"]
    git(project, "stash", "pop", "--quiet")
    in_venv(["dvc", "checkout", "--quiet", "data/raw/dataset.csv.dvc"], cwd=project)
    assert digest(raw) == edited
    make(project, "restore")
    git(project, "stash", "drop", "--quiet")

    # A later stage fails (a value the estimator refuses): DVC cleared train's output before the
    # stage ran; restore brings the committed model back.
    params = yaml.safe_load(committed_params)
    params["train"]["hyperparameters"] = {"max_iter": -5}
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    failed = make(project, "repro", check=False)
    assert failed.returncode != 0
    assert "train: train.hyperparameters: The 'max_iter' parameter" in failed.stderr
    assert not (project / "models/model.joblib").exists()
    make(project, "restore")
    assert {path: digest(project / path) for path in committed} == committed
    assert params_file.read_text() == committed_params
    git(project, "stash", "drop", "--quiet")

    # A second real table through the README's steps in the same project: ISLR Hitters from the
    # corpus (salaries in thousands, 59 players without one, three categorical columns).
    hitters = tmp_path / "hitters.csv"
    DATASETS["hitters_salary"].load().to_csv(hitters, index=False)
    drafted = make(project, "schema", CSV=str(hitters), TARGET="Salary")
    assert "target 'Salary' is empty in 59 of 322 rows" in drafted.stderr
    shutil.copy(hitters, project / "data/raw/dataset.csv")
    in_venv(["dvc", "add", "data/raw/dataset.csv"], cwd=project)
    reran = make(project, "repro").stdout
    assert stages_run(reran) == STAGES
    assert "prepare: dropped 59 rows whose target 'Salary' is empty" in reran
    assert yaml.safe_load((project / "metrics/onnx.json").read_text())["passed"] is True
    schema = yaml.safe_load((project / "data/schema.yaml").read_text())
    assert schema["features"]["League"] == schema["features"]["Division"] == "categorical"


def test_restore_before_any_commit_says_so(tmp_path):
    project = bake(tmp_path, project_name="No Commit")
    run(["git", "init", "--quiet"], cwd=project)
    result = make(project, "restore", check=False)
    assert result.returncode != 0
    assert result.stderr.splitlines()[0] == (
        "restore: nothing is committed yet, so there is no last good state to return to"
    )


def test_make_schema_says_what_it_saw_and_refuses_every_bad_name_at_once(tmp_path):
    """Issue 28 (8, 9) through the project's Makefile: a text key, ISO dates, numbers with
    thousands separators and an e-mail per row each get one line and stay out of the features (a
    city with many values is kept, with its line); bad names are refused all in one line, the
    committed schema untouched. No setup: make schema needs only the venv."""
    project = bake(tmp_path / "bake", project_name="Own Draft")
    cities = ["Oslo", "Rome", "Oslo", "Paris", "Lima", "Rome", "Kyiv", "Oslo", "Pune", "Lima"]
    rows = [
        f'A-{1001 + i},2021-03-{i + 1:02d},"{(i + 1) * 1250:,}",{city},u{i}@x.org,{i % 3},{i % 2}'
        for i, city in enumerate(cities)
    ]
    messy = tmp_path / "messy.csv"
    messy.write_text("\n".join(["order,signup,price,city,email,size,label", *rows]) + "\n")
    drafted = make(project, "schema", CSV=str(messy), TARGET="label")
    lines = drafted.stderr.splitlines()
    for column, saw in [
        ("order", "is unique in every row and looks like a key: drafted as id"),
        ("signup", 'looks like dates ("2021-03-01"): left out of the draft'),
        ("price", 'looks numeric with thousands separators ("1,250"): left out of the draft'),
        ("email", "has a different value in every row: left out of the draft"),
        ("city", "has 6 distinct values in 10 rows: kept as categorical"),
    ]:
        said = [line for line in lines if line.startswith(f"schema: column {column!r} ")]
        assert len(said) == 1 and saw in said[0], (column, lines)
    schema = yaml.safe_load((project / "data/schema.yaml").read_text())
    assert schema["id"] == "order"
    assert schema["features"] == {"city": "categorical", "size": "numeric"}

    committed = (project / "data/schema.yaml").read_bytes()
    bad = tmp_path / "bad.csv"
    bad.write_text("Comp Price,café,1Advertising,Sales\n1,2,3,4\n1,3,3,5\n2,3,4,6\n")
    refused = make(project, "schema", CSV=str(bad), TARGET="Sales", check=False)
    assert refused.returncode != 0
    errors = [line for line in refused.stderr.splitlines() if not MAKE_ERROR.match(line)]
    assert errors == [
        "schema: column name(s) 'Comp Price' (a space), 'café' ('é'), '1Advertising' (a leading "
        "digit) must start with a letter or an underscore and hold only letters, digits and "
        "underscores (they become ONNX input names and the serving API's keys): rename them in "
        "the CSV's header and run make schema again"
    ], refused.stderr
    assert (project / "data/schema.yaml").read_bytes() == committed
    assert not list((project / "data").glob(".*partial"))
