"""The README's "bring your own data" path, step by step: replace the starter data with a CSV
tracked by DVC, push it to the remote, and reproduce from a fresh clone with a fresh venv."""

import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from conftest import bake, git, in_venv, make, run


def own_csv(path: Path, rows: int = 400) -> None:
    """Loan applications: numbers and categories, with gaps, as a user might bring."""
    rng = np.random.default_rng(0)
    income = rng.normal(50_000, 15_000, rows).round(0)
    debt = rng.normal(10_000, 5_000, rows).round(0)
    employment = rng.choice(["salaried", "self_employed", "student"], rows)
    score = (income - 2 * debt) / 20_000 + (employment == "salaried") + rng.normal(0, 0.5, rows)
    frame = pd.DataFrame(
        {
            "income": income,
            "debt": debt,
            "employment": employment,
            "approved": np.where(score > np.median(score), "yes", "no"),
        }
    )
    frame.loc[::25, "employment"] = None
    frame.to_csv(path, index=False)


def without_data_section(params_text: str) -> str:
    """Delete the `data:` section of params.yaml, as the README says."""
    return re.sub(r"\ndata:\n(?:[ #].*\n)*", "\n", params_text)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_own_csv_round_trip_through_the_remote(tmp_path):
    origin = bake(tmp_path / "origin", project_name="Own Data")
    remote = tmp_path / "dvc-remote"
    make(origin, "setup", DVC_REMOTE_DIR=str(remote))

    # The README's steps, in its order.
    in_venv(["dvc", "remove", "data"], cwd=origin)
    own_csv(origin / "data/raw/dataset.csv")
    in_venv(["dvc", "add", "data/raw/dataset.csv"], cwd=origin)
    make(origin, "schema", TARGET="approved")
    params_file = origin / "params.yaml"
    params_file.write_text(without_data_section(params_file.read_text()))
    assert "data" not in yaml.safe_load(params_file.read_text())
    reran = make(origin, "repro").stdout
    assert re.findall(r"Running stage '(\w+)'", reran) == ["prepare", "train", "evaluate", "export"]
    make(origin, "push")
    git(origin, "add", "--all")
    git(origin, "commit", "--quiet", "--message", "Own data")

    schema = yaml.safe_load((origin / "data/schema.yaml").read_text())
    assert schema["target"] == {"name": "approved", "labels": ["no", "yes"]}
    assert schema["features"]["employment"] == "categorical"
    assert (origin / "data/raw/dataset.csv.dvc").exists()
    assert list(yaml.safe_load((origin / "dvc.yaml").read_text())["stages"]) == [
        "prepare",
        "train",
        "evaluate",
        "export",
    ]

    # A collaborator: fresh clone, fresh venv (the Makefile's default), same remote.
    clone = tmp_path / "clone"
    run(["git", "clone", "--quiet", str(origin), str(clone)], cwd=tmp_path)
    run(["make", "--no-print-directory", "setup", f"DVC_REMOTE_DIR={remote}"], cwd=clone)
    run(["make", "--no-print-directory", "pull"], cwd=clone)
    for path in ["data/raw/dataset.csv", "data/prepared/train.csv", "models/model.onnx"]:
        assert digest(clone / path) == digest(origin / path), path
    status = run(["make", "--no-print-directory", "repro"], cwd=clone).stdout
    assert "Running stage" not in status
    run(["make", "--no-print-directory", "test"], cwd=clone)
