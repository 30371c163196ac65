"""Starter data: made on the machine, deterministic, and shaped as the schema says."""

import pytest
from mlops_actions.schema import (
    Schema,
    validate,
)

from {{ cookiecutter.module_name }}.datasets import (
    BUNDLED,
    SYNTHETIC_CLASSES,
    bundled,
    synthetic,
)

FEATURES = {
    "tenure_months": "numeric",
    "monthly_spend": "numeric",
    "support_calls": "numeric",
    "usage_hours": "numeric",
    "age": "numeric",
    "plan": "categorical",
    "region": "categorical",
}
SYNTHETIC_SCHEMAS = {
    "regression": Schema(target="value", features=FEATURES),
    **{
        task: Schema(target="label", features=FEATURES, labels=tuple(sorted(classes)))
        for task, classes in SYNTHETIC_CLASSES.items()
    },
}


@pytest.mark.parametrize("task", SYNTHETIC_SCHEMAS)
def test_synthetic_is_deterministic_valid_and_has_gaps(task):
    schema = SYNTHETIC_SCHEMAS[task]
    first, second = synthetic(600, 7, schema), synthetic(600, 7, schema)
    assert first.equals(second)
    typed = validate(first, schema)
    assert len(typed) == 600
    for column in ("monthly_spend", "usage_hours", "plan"):
        assert 0 < typed[column].isna().mean() < 0.1
    if schema.labels:
        shares = typed[schema.target].value_counts(normalize=True)
        assert shares.min() > 0.8 / len(schema.labels)


def test_synthetic_seed_changes_the_data():
    schema = SYNTHETIC_SCHEMAS["regression"]
    assert not synthetic(100, 1, schema).equals(synthetic(100, 2, schema))


def test_project_dataset_fits_the_project_schema(params, schema):
    """The data stage's output passes the schema (what the prepare stage checks)."""
    name = params.get("data", {}).get("dataset")
    if name not in BUNDLED:
        pytest.skip("the project's data is not a bundled dataset")
    typed = validate(bundled(name, schema), schema)
    assert typed[schema.target].notna().all()
