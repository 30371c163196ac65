"""Stage export: convert the model to ONNX and prove it predicts what scikit-learn predicts.

Serving loads only the ONNX file, so a conversion that drifts from scikit-learn fails here, not in
production: parity is checked on every test row with the tolerance from params.yaml. How the
conversion keeps every tree's branches (float32 thresholds) is mlops_actions.export's docstring.
A model whose model.onnx would pass `export.max_model_mb` is refused before converting.
"""

import argparse
import json
import os
from pathlib import Path

import joblib
import onnxruntime as ort
from mlops_actions.errors import PipelineError, run_stage
from mlops_actions.export import convert, git_sha, parity
from mlops_actions.features import model_inputs
from mlops_actions.params import load_params
from mlops_actions.schema import load_frame, load_schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--schema", type=Path, required=True)
    parser.add_argument("--onnx-out", type=Path, required=True)
    parser.add_argument("--metrics-out", type=Path, required=True)
    args = parser.parse_args()

    params = load_params()
    settings = params["export"]
    schema = load_schema(args.schema)
    model = joblib.load(args.model)
    serialized = convert(
        model,
        schema,
        model_version=os.environ.get("MODEL_VERSION", "0.0.0-dev"),
        git_sha=git_sha(),
        max_model_mb=settings["max_model_mb"],
    )
    session = ort.InferenceSession(serialized, providers=["CPUExecutionProvider"])
    inputs = model_inputs(load_frame(args.test, schema), schema)
    result = parity(
        session, model, inputs, schema.is_classification, settings["atol"], settings["rtol"]
    )
    if not result["passed"]:
        labels = result.get("label_agreement", 1.0)
        differs = f"its labels agree on {labels:.2%} of the rows, " if labels < 1 else ""
        raise PipelineError(
            f"ONNX differs from scikit-learn: {differs}values by up to "
            f"{result['max_abs_diff']:.3g} (allowed: atol {settings['atol']} + rtol "
            f"{settings['rtol']}; a label may differ only in a tie); model.onnx not written"
        )
    args.onnx_out.parent.mkdir(parents=True, exist_ok=True)
    args.onnx_out.write_bytes(serialized)
    report = {
        **result,
        "onnx_bytes": len(serialized),
        "atol": settings["atol"],
        "rtol": settings["rtol"],
    }
    args.metrics_out.parent.mkdir(parents=True, exist_ok=True)
    args.metrics_out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"export: parity max |diff| {result['max_abs_diff']:.3g} "
        f"on {len(inputs)} rows -> {args.onnx_out}"
    )


if __name__ == "__main__":
    run_stage("export", main)
