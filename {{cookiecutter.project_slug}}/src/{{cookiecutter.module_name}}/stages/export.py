"""Stage export: convert the model to ONNX and prove it predicts what scikit-learn predicts.

Serving loads only the ONNX file, so a conversion that drifts from scikit-learn must fail here,
not in production: parity is checked on every test row with the tolerance from params.yaml.

Parity means the same branch in every tree, not a close number. The model's numeric inputs are
float32 (features.py casts them, for scikit-learn and ONNX alike) and ONNX Runtime compares them
with float32 thresholds, while scikit-learn keeps float64 thresholds. Rounding a threshold to the
nearest float32 can land on the row's own value (47.39999961853027 -> 47.4000015), which sends the
row down the other branch. So the exported copy's thresholds are rounded *down*: no float32 lies
between t and the largest float32 <= t, hence `x <= t` and `x <= float32_floor(t)` agree for every
float32 x. skl2onnx makes the same adjustment for random forests (`sklearn_threshold` in its
common/tree_ensemble.py: scikit-learn's forests cast inputs to float32 themselves) but not for
histogram gradient boosting, which compares float64 inputs; ours are float32 already, so the rule
holds for both. See docs/generated-project.md, "ONNX parity".
"""

import argparse
import copy
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
from onnx import numpy_helper
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline

from ..errors import PipelineError, run_stage
from ..features import model_inputs, onnx_feed
from ..onnx_model import build_metadata
from ..params import load_params
from ..schema import Schema, load_frame, load_schema

# The highest operator sets the converter may use (onnxruntime 1.31 runs them). skl2onnx writes
# each operator at the lowest version that has it: float tree ensembles come out as ai.onnx.ml 1,
# whose float32 thresholds are exact after float32_floor.
TARGET_OPSET = {"": 21, "ai.onnx.ml": 3}


def float32_floor(values: np.ndarray) -> np.ndarray:
    """The largest float32 <= each value, as float64 (so it converts to float32 unchanged)."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(over="ignore"):  # beyond float32's range: infinity, stepped down below
        rounded = values.astype(np.float32)
    above = rounded.astype(np.float64) > values
    rounded[above] = np.nextafter(rounded[above], np.float32(-np.inf))
    return rounded.astype(np.float64)


def float32_splits(model: Pipeline) -> Pipeline:
    """A copy of the model whose tree thresholds are float32 numbers that send every float32
    input down the same branch as the original's float64 thresholds (`x <= t` goes left in
    scikit-learn and ONNX alike). Models without trees come back as an unchanged copy."""
    exact = copy.deepcopy(model)
    estimator = exact[-1]
    for tree in getattr(estimator, "estimators_", []):  # random forests: decision trees
        splits = tree.tree_.children_left != -1  # leaves hold a placeholder threshold
        tree.tree_.threshold[splits] = float32_floor(tree.tree_.threshold[splits])
    for iteration in getattr(estimator, "_predictors", []):  # histogram gradient boosting
        for predictor in iteration:
            nodes = predictor.nodes
            splits = nodes["is_leaf"] == 0
            nodes["num_threshold"][splits] = float32_floor(nodes["num_threshold"][splits])
    return exact


def _swap(graph: onnx.GraphProto, op_type: str, nodes: Any, values: dict[str, np.ndarray]) -> None:
    """Replace the graph's one `op_type` node by `nodes(input, output)`, adding `values` as
    initializers."""
    index, node = next((i, n) for i, n in enumerate(graph.node) if n.op_type == op_type)
    replacement = nodes(node.input[0], node.output[0])
    del graph.node[index]
    for offset, new in enumerate(replacement):
        graph.node.insert(index + offset, new)
    graph.initializer.extend(numpy_helper.from_array(v, name) for name, v in values.items())


def _cast(source: str, target: str, to: int) -> onnx.NodeProto:
    return onnx.helper.make_node("Cast", [source], [target], to=to)


def exact_linear(converted: onnx.ModelProto, model: Pipeline) -> None:
    """The linear family, computed as scikit-learn computes it. With a categorical feature its
    regressor sums terms in the thousands (diamond prices) in float64, where ONNX's float32
    LinearRegressor is off by ~3e-3, too much for predictions near zero; so the head becomes a
    MatMul + Add in the dtype of the fitted coefficients. In front of it, ONNX's Scaler multiplies
    by 1/scale where StandardScaler divides by the scale (one float32 step apart): it becomes Sub
    and Div by the float32 mean and scale, what StandardScaler does to float32 input
    (scikit-learn 1.9's `transform`). Standard ONNX operators throughout."""
    double, single = onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT
    numeric = model["preprocess"].named_transformers_.get("numeric")
    scaler = numeric.named_steps.get("scale") if isinstance(numeric, Pipeline) else None
    if scaler is not None:
        _swap(
            converted.graph,
            "Scaler",
            lambda x, y: [
                onnx.helper.make_node("Sub", [x, "exact_mean"], ["exact_centred"]),
                onnx.helper.make_node("Div", ["exact_centred", "exact_scale"], [y]),
            ],
            {
                "exact_mean": scaler.mean_.astype(np.float32),
                "exact_scale": scaler.scale_.astype(np.float32),
            },
        )
    estimator = model[-1]
    if isinstance(estimator, Ridge) and np.ndim(estimator.coef_) == 1:
        # Ridge works in the dtype it was fitted on: float64 once a one-hot column joins the
        # float32 numbers, float32 when every feature is numeric. The head does the same.
        dtype = np.asarray(estimator.coef_).dtype
        onnx_dtype = double if dtype == np.float64 else single
        _swap(
            converted.graph,
            "LinearRegressor",
            lambda x, y: [
                _cast(x, "exact_inputs", onnx_dtype),
                onnx.helper.make_node("MatMul", ["exact_inputs", "exact_coef"], ["exact_dot"]),
                onnx.helper.make_node("Add", ["exact_dot", "exact_intercept"], ["exact_sum"]),
                _cast("exact_sum", y, single),
            ],
            {
                "exact_coef": np.asarray(estimator.coef_, dtype).reshape(-1, 1),
                "exact_intercept": np.asarray(estimator.intercept_, dtype).reshape(1, 1),
            },
        )


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
        float32_splits(model),
        initial_types=input_types,
        options=options,
        target_opset=TARGET_OPSET,
    )
    exact_linear(converted, model)
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
