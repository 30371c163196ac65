"""Stage evaluate: score the model on the test split; write the metrics and the plot data; score
it on the holdout too, apart (metrics/holdout.json: the release's headline numbers).

The plot files keep one line per test row (regression: predictions.csv; classification:
confusion.csv with each label's probability), so `make report` can bootstrap intervals from them.
With `evaluate.cv_folds` >= 2, the metrics also hold k-fold cross-validated scores of the same
settings on the train and test rows (never the holdout): steadier than one small test split.
Without a holdout (`prepare.holdout_size: 0`), metrics/holdout.json is `{}`."""

import argparse
import json
from pathlib import Path

import joblib
import pandas as pd
from mlops_actions.errors import run_stage
from mlops_actions.evaluate import cross_validate, evaluate, score
from mlops_actions.params import load_params
from mlops_actions.schema import load_frame, load_schema, read_csv, validate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--schema", type=Path, required=True)
    parser.add_argument("--metrics-out", type=Path, required=True)
    parser.add_argument("--plots-dir", type=Path, required=True)
    parser.add_argument("--train", type=Path, help="train split, for evaluate.cv_folds")
    parser.add_argument("--holdout", type=Path, required=True)
    parser.add_argument("--holdout-metrics-out", type=Path, required=True)
    args = parser.parse_args()

    schema = load_schema(args.schema)
    params = load_params()
    seed = params["base"]["seed"]
    folds = params["evaluate"]["cv_folds"]  # 0 (off) or 2 or more: load_params checks it
    model, test = joblib.load(args.model), load_frame(args.test, schema)
    scores, plots = evaluate(model, test, schema, seed)
    if folds and args.train:
        every_row = pd.concat([load_frame(args.train, schema), test], ignore_index=True)
        scores["cv"] = cross_validate(model, every_row, schema, folds, seed)
    holdout, held = read_csv(args.holdout), {}  # no rows without a holdout
    if len(holdout):
        held = score(model, validate(holdout, schema, source=str(args.holdout)), schema)
    args.metrics_out.parent.mkdir(parents=True, exist_ok=True)
    args.metrics_out.write_text(json.dumps(scores, indent=2) + "\n")
    args.holdout_metrics_out.write_text(json.dumps(held, indent=2) + "\n")
    args.plots_dir.mkdir(parents=True, exist_ok=True)
    for name, table in plots.items():
        table.to_csv(args.plots_dir / f"{name}.csv", index=False)
    flat = {name: value for name, value in scores.items() if name != "cv"}
    print("evaluate: " + ", ".join(f"{name}={value:.4f}" for name, value in flat.items()))
    if held:
        shown = ", ".join(f"{name}={value:.4f}" for name, value in held.items())
        print(f"evaluate: holdout {shown}")


if __name__ == "__main__":
    run_stage("evaluate", main)
