"""The package runs inside projects baked from the template, so its tests run against such
projects: three bakes (the default's numbers and binary labels; regression; numbers and
categories with gaps, multiclass), the combinations whose own test suites ran these tests before
they moved here. Each bake's own modules (datasets, models, stages) train the models under test;
everything else comes from the package."""

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest
from cookiecutter.main import cookiecutter

from mlops_actions.params import load_params
from mlops_actions.schema import Schema, load_schema, validate
from mlops_actions.split import split

# As in the template's tests: one native thread per test process (xdist fills both cores).
for _threads in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_threads, "1")

TEMPLATE = Path(__file__).resolve().parents[2]
BAKES = {
    "default": {},
    "regression": {"task": "regression", "model": "linear"},
    "synthetic": {"task": "multiclass_classification", "dataset": "synthetic"},
}


@pytest.fixture(scope="session", params=list(BAKES))
def project(request, tmp_path_factory) -> Path:
    """A baked project (not set up: its data is made in memory), its src/ importable."""
    answers = {"project_name": f"Package {request.param}", **BAKES[request.param]}
    root = Path(
        cookiecutter(
            str(TEMPLATE),
            no_input=True,
            output_dir=str(tmp_path_factory.mktemp(request.param)),
            extra_context=answers,
        )
    )
    sys.path.insert(0, str(root / "src"))
    return root


def own(project: Path, name: str) -> ModuleType:
    """A module of the baked project's own code, e.g. own(project, "stages.train")."""
    return importlib.import_module(f"{project.name.replace('-', '_')}.{name}")


@pytest.fixture(scope="session")
def params(project) -> dict:
    return load_params(project / "params.yaml")


@pytest.fixture(scope="session")
def schema(project) -> Schema:
    return load_schema(project / "data/schema.yaml")


@pytest.fixture(scope="session")
def train(project):
    """The project's train function (stages/train.py)."""
    return own(project, "stages.train").train


@pytest.fixture(scope="session")
def starter(project, params, schema) -> pd.DataFrame:
    """The project's starter data as its data stage makes it, validated as prepare reads it."""
    data = params["data"]
    raw = own(project, "datasets").make_dataset(
        data["dataset"], data.get("rows", 0), params["base"]["seed"], schema
    )
    return validate(raw, schema, source=data["dataset"])


def split_as_prepare(frame: pd.DataFrame, schema: Schema, params: dict):
    """`frame` split as the project's prepare stage splits it (the package's split, with the
    project's seed and shares)."""
    prepare = params["prepare"]
    shares = {"test_size": prepare["test_size"], "holdout_size": prepare["holdout_size"]}
    return split(frame, schema, params["base"]["seed"], **shares)


@pytest.fixture(scope="session")
def parts(starter, params, schema):
    """The train, test and holdout parts the prepare stage makes of the starter data, made in
    memory."""
    return split_as_prepare(starter, schema, params)


@pytest.fixture(scope="session")
def train_test(parts) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The train and test splits of the starter data (`parts`)."""
    return parts.train, parts.test


@pytest.fixture
def in_project(project, monkeypatch) -> Path:
    """The test runs in the project's folder, as its make targets do (params.yaml, data/)."""
    monkeypatch.chdir(project)
    return project
