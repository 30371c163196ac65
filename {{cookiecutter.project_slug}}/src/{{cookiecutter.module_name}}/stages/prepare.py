"""Stage prepare: validate the raw CSV against the schema and split it into train, test and
holdout.

It is the first stage to read the data, so a CSV the contract refuses stops the run here, before
any model file is touched. Each row's side comes from a seeded hash of its key (the schema's `id`,
or the row's values): appending rows moves no existing row (mlops_actions.split). The holdout
(`prepare.holdout_size`, 0: none) is scored by the evaluate stage alone, for the release.

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
    drop_empty_target,
    load_schema,
    read_csv,
    require_values,
    validate,
    with_gaps,
)
from mlops_actions.split import SIDES, split, unscored_labels

# Enough rows for stable deciles and tests; small enough to check a batch in a second.
REFERENCE_ROWS = 5000


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
    parser.add_argument("--holdout-out", type=Path, required=True)
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
    shares = {key: params["prepare"][key] for key in ("test_size", "holdout_size")}
    parts = split(frame, schema, params["base"]["seed"], **shares)
    require_values(parts.train, schema, source=f"{args.raw} (its train split)")
    for note in unscored_labels(parts, frame, schema):
        print(f"prepare: {note}")

    for path, part in zip((args.train_out, args.test_out, args.holdout_out), parts, strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        part.to_csv(path, index=False)
    # What drift checks compare new data with: a seeded sample of the training split.
    train = parts.train
    reference = train.sample(n=min(len(train), REFERENCE_ROWS), random_state=params["base"]["seed"])
    reference.to_csv(args.reference_out, index=False)
    counts = {side: len(part) for side, part in zip(SIDES, parts, strict=True)}
    summary = {"all": summarize(frame, schema), **counts}
    args.summary_out.parent.mkdir(parents=True, exist_ok=True)
    args.summary_out.write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"prepare: {len(frame)} valid rows -> {counts['train']} train, {counts['test']} test, "
        f"{counts['holdout']} holdout"
    )


if __name__ == "__main__":
    run_stage("prepare", main)
