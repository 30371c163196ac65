"""Stage train: fit the scikit-learn pipeline (preprocessing + estimator) on the train split."""

import argparse
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
from mlops_actions.errors import PipelineError, run_stage
from mlops_actions.features import model_inputs
from mlops_actions.params import load_params
from mlops_actions.schema import Schema, load_frame, load_schema
from sklearn.pipeline import Pipeline
from sklearn.utils._param_validation import InvalidParameterError

from ..models import make_pipeline


def train(frame: pd.DataFrame, schema: Schema, settings: dict[str, Any], seed: int) -> Pipeline:
    pipeline = make_pipeline(schema, settings["model"], settings.get("hyperparameters") or {}, seed)
    try:
        return pipeline.fit(model_inputs(frame, schema), frame[schema.target])
    except InvalidParameterError as err:  # a value out of range, named by scikit-learn
        raise PipelineError(f"train.hyperparameters: {err}") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--schema", type=Path, required=True)
    parser.add_argument("--model-out", type=Path, required=True)
    args = parser.parse_args()

    params = load_params()
    schema = load_schema(args.schema)
    model = train(load_frame(args.train, schema), schema, params["train"], params["base"]["seed"])
    args.model_out.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, args.model_out)
    print(f"train: {type(model[-1]).__name__} -> {args.model_out}")


if __name__ == "__main__":
    run_stage("train", main)
