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
from mlops_actions.split import SIDES, Split, split

from {{ cookiecutter.module_name }}.datasets import make_dataset

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def params() -> dict:
    return load_params(ROOT / "params.yaml")


@pytest.fixture(scope="session")
def schema() -> Schema:
    return load_schema(ROOT / "data/schema.yaml")


@pytest.fixture(scope="session")
def splits(params, schema) -> Split:
    """The pipeline's own train, test and holdout when it has run (or been pulled); otherwise the
    same split made in memory from the starter dataset, so a fresh clone can test too."""
    files = [ROOT / "data/prepared" / f"{side}.csv" for side in SIDES]
    if all(path.exists() for path in files):
        return Split(*(_prepared(path, schema) for path in files))
    if "data" not in params:
        pytest.skip("no prepared data: run `make repro` or `make pull` first")
    data = params["data"]
    raw = make_dataset(data["dataset"], data.get("rows", 0), params["base"]["seed"], schema)
    frame = validate(raw, schema, source=data["dataset"])
    shares = {key: params["prepare"][key] for key in ("test_size", "holdout_size")}
    return split(frame, schema, params["base"]["seed"], **shares)


def _prepared(path: Path, schema: Schema) -> pd.DataFrame:
    """A prepared split, typed; the holdout may have no rows (prepare.holdout_size: 0)."""
    frame = pd.read_csv(path, nrows=1)
    return load_frame(path, schema) if len(frame) else frame.iloc[:0]


@pytest.fixture(scope="session")
def train_test(splits) -> tuple[pd.DataFrame, pd.DataFrame]:
    return splits.train, splits.test
