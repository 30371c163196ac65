"""Stage export: convert the model to ONNX and prove it predicts what scikit-learn predicts.

Serving loads only the ONNX file, so a conversion that drifts from scikit-learn must fail here,
not in production: parity is checked on every test row with the tolerance from params.yaml.
"""

import argparse
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.pipeline import Pipeline

from ..errors import PipelineError, run_stage
from ..features import model_inputs, onnx_feed
from ..onnx_model import build_metadata
from ..params import load_params
from ..schema import Schema, load_frame, load_schema

# Operator sets onnxruntime 1.31 runs; ai.onnx.ml 3 stores tree thresholds exactly.
TARGET_OPSET = {"": 21, "ai.onnx.ml": 3}


def convert(model: Pipeline, schema: Schema, *, model_version: str, git_sha: str) -> bytes:
    """The model as ONNX bytes, its metadata saying what serving needs to know about it."""
    metadata = build_metadata(
        task=schema.task,
        target=schema.target,
        features=schema.features,
        labels=[str(label) for label in model.classes_] if schema.is_classification else None,
        model_version=model_version,
        git_sha=git_sha,
    )
    input_types = [
        (name, StringTensorType([None, 1]) if kind == "categorical" else FloatTensorType([None, 1]))
        for name, kind in schema.features.items()
    ]
    # zipmap off: probabilities as one float matrix instead of a list of dicts.
    options = {"zipmap": False} if schema.is_classification else None
    converted = to_onnx(
        model, initial_types=input_types, options=options, target_opset=TARGET_OPSET
    )
    onnx.helper.set_model_props(converted, metadata)
    return converted.SerializeToString()


def parity(
    session: ort.InferenceSession,
    model: Pipeline,
    inputs: pd.DataFrame,
    classification: bool,
    atol: float,
    rtol: float,
) -> dict[str, Any]:
    """Compare ONNX with scikit-learn on every row: class probabilities, or predicted values."""
    outputs = session.run(None, onnx_feed(inputs))
    result: dict[str, Any] = {"rows": len(inputs)}
    if classification:
        expected, got = model.predict_proba(inputs), outputs[1]
        result["label_agreement"] = float(np.mean(outputs[0].ravel() == model.predict(inputs)))
    else:
        expected, got = model.predict(inputs), outputs[0].ravel()
    difference = np.abs(got.astype(np.float64) - expected)
    result["max_abs_diff"] = float(difference.max())
    result["passed"] = bool(np.all(difference <= atol + rtol * np.abs(expected)))
    return result


def git_sha() -> str:
    """The commit the export ran from (its parent, when run before committing)."""
    if os.environ.get("GITHUB_SHA"):
        return os.environ["GITHUB_SHA"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--schema", type=Path, required=True)
    parser.add_argument("--onnx-out", type=Path, required=True)
    parser.add_argument("--metrics-out", type=Path, required=True)
    args = parser.parse_args()

    params = load_params()
    tolerance = params["export"]
    schema = load_schema(args.schema)
    model = joblib.load(args.model)
    serialized = convert(
        model,
        schema,
        model_version=os.environ.get("MODEL_VERSION", "0.0.0-dev"),
        git_sha=git_sha(),
    )
    session = ort.InferenceSession(serialized, providers=["CPUExecutionProvider"])
    inputs = model_inputs(load_frame(args.test, schema), schema)
    result = parity(
        session, model, inputs, schema.is_classification, tolerance["atol"], tolerance["rtol"]
    )
    if not result["passed"]:
        raise PipelineError(
            f"ONNX differs from scikit-learn by up to {result['max_abs_diff']:.3g} "
            f"(allowed: atol {tolerance['atol']} + rtol {tolerance['rtol']}); "
            "model.onnx not written"
        )
    args.onnx_out.parent.mkdir(parents=True, exist_ok=True)
    args.onnx_out.write_bytes(serialized)
    report = {
        **result,
        "onnx_bytes": len(serialized),
        "atol": tolerance["atol"],
        "rtol": tolerance["rtol"],
    }
    args.metrics_out.parent.mkdir(parents=True, exist_ok=True)
    args.metrics_out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"export: parity max |diff| {result['max_abs_diff']:.3g} "
        f"on {len(inputs)} rows -> {args.onnx_out}"
    )


if __name__ == "__main__":
    run_stage("export", main)
