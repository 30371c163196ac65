"""Stage prepare: validate the raw CSV against the schema and split it into train and test.

It is the first stage to read the data, so a CSV the contract refuses stops the run here, before
any model file is touched.

It also saves the drift reference: a seeded sample of the training split that `make drift`
compares new batches with.
"""

import argparse
import json
from pathlib import Path
from typing import Any

import pandas as pd
from mlops_actions.errors import run_stage
from mlops_actions.params import load_params
from mlops_actions.schema import (
    Schema,
    SchemaError,
    drop_empty_target,
    load_schema,
    read_csv,
    require_values,
    validate,
    with_gaps,
)
from sklearn.model_selection import train_test_split

# Enough rows for stable deciles and tests; small enough to check a batch in a second.
REFERENCE_ROWS = 5000


def split(
    frame: pd.DataFrame, schema: Schema, test_size: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Deterministic split; stratified for classification so both sides keep the class balance."""
    stratify = None
    if schema.is_classification:
        stratify = frame[schema.target]
        counts = stratify.value_counts()
        if counts.min() < 2:
            rare = ", ".join(repr(label) for label in counts[counts < 2].index)
            raise SchemaError(
                f"target {schema.target!r}: label(s) {rare} occur once; need two rows"
            )
    train, test = train_test_split(
        frame, test_size=test_size, random_state=seed, shuffle=True, stratify=stratify
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)


def summarize(frame: pd.DataFrame, schema: Schema) -> dict[str, Any]:
    """Size and target distribution, committed so a PR report can compare data versions."""
    target = frame[schema.target]
    summary: dict[str, Any] = {
        "rows": len(frame),
        "features": len(schema.features),
        "missing_cells": int(frame[list(schema.features)].isna().sum().sum()),
    }
    if schema.is_classification:
        shares = target.value_counts(normalize=True).reindex(schema.labels, fill_value=0.0)
        summary["class_share"] = {str(k): round(float(v), 4) for k, v in shares.items()}
    else:
        summary["target"] = {
            name: round(float(getattr(target, name)()), 4) for name in ("mean", "std", "min", "max")
        }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--raw", type=Path, required=True)
    parser.add_argument("--schema", type=Path, required=True)
    parser.add_argument("--train-out", type=Path, required=True)
    parser.add_argument("--test-out", type=Path, required=True)
    parser.add_argument("--summary-out", type=Path, required=True)
    parser.add_argument("--reference-out", type=Path, required=True)
    args = parser.parse_args()

    params = load_params()
    schema = load_schema(args.schema)
    frame = with_gaps(read_csv(args.raw), schema)
    if params["prepare"]["drop_empty_target"]:
        frame, dropped = drop_empty_target(frame, schema.target)
        if dropped:
            print(
                f"prepare: dropped {dropped} rows whose target {schema.target!r} is empty "
                "(prepare.drop_empty_target)"
            )
    frame = validate(frame, schema, source=str(args.raw))
    train, test = split(frame, schema, params["prepare"]["test_size"], params["base"]["seed"])
    require_values(train, schema, source=f"{args.raw} (its train split)")

    args.train_out.parent.mkdir(parents=True, exist_ok=True)
    train.to_csv(args.train_out, index=False)
    test.to_csv(args.test_out, index=False)
    # What drift checks compare new data with: a seeded sample of the training split.
    reference = train.sample(n=min(len(train), REFERENCE_ROWS), random_state=params["base"]["seed"])
    reference.to_csv(args.reference_out, index=False)
    summary = {"all": summarize(frame, schema), "train": len(train), "test": len(test)}
    args.summary_out.parent.mkdir(parents=True, exist_ok=True)
    args.summary_out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"prepare: {len(frame)} valid rows -> {len(train)} train, {len(test)} test")


if __name__ == "__main__":
    run_stage("prepare", main)
