"""Fixtures shared by the code, data and model tests."""

from pathlib import Path

import pandas as pd
import pytest
from mlops_actions.params import load_params
from mlops_actions.schema import (
    Schema,
    load_frame,
    load_schema,
    validate,
)

from {{ cookiecutter.module_name }}.datasets import make_dataset
from {{ cookiecutter.module_name }}.stages.prepare import split

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def params() -> dict:
    return load_params(ROOT / "params.yaml")


@pytest.fixture(scope="session")
def schema() -> Schema:
    return load_schema(ROOT / "data/schema.yaml")


@pytest.fixture(scope="session")
def train_test(params, schema) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The pipeline's own split when it has run (or been pulled); otherwise the same split made
    in memory from the starter dataset, so a fresh clone can test too."""
    prepared = ROOT / "data/prepared"
    if (prepared / "train.csv").exists() and (prepared / "test.csv").exists():
        return load_frame(prepared / "train.csv", schema), load_frame(prepared / "test.csv", schema)
    if "data" not in params:
        pytest.skip("no prepared data: run `make repro` or `make pull` first")
    data = params["data"]
    raw = make_dataset(data["dataset"], data.get("rows", 0), params["base"]["seed"], schema)
    frame = validate(raw, schema, source=data["dataset"])
    return split(frame, schema, params["prepare"]["test_size"], params["base"]["seed"])
