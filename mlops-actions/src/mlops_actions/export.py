"""ONNX export: convert a fitted pipeline to ONNX and compare its predictions with scikit-learn's.

The export stage of a project calls `convert` and `parity`; releases call `parity` again on the
stamped model.

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

import copy
import os
import subprocess
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
from onnx import numpy_helper
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.base import is_classifier
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline

from .errors import PipelineError
from .features import onnx_feed
from .onnx_model import build_metadata
from .params import MAX_MODEL_MB
from .schema import Schema

# The highest operator sets the converter may use (onnxruntime 1.31 runs them). skl2onnx writes
# each operator at the lowest version that has it: float tree ensembles come out as ai.onnx.ml 1,
# whose float32 thresholds are exact after float32_floor.
TARGET_OPSET = {"": 21, "ai.onnx.ml": 3}

# What a tree costs in model.onnx. skl2onnx writes a tree ensemble as one TreeEnsemble* node whose
# attributes are lists with an entry per tree node (tree, node, feature and child ids, mode,
# threshold, hit rate, missing flag) and per value a leaf holds (tree, node and class or target
# ids, weight): `add_node` in skl2onnx's common/tree_ensemble.py. ONNX's proto2 lists are not
# packed, so each entry carries its own field tag. Measured on random forests of the synthetic
# starter data, 10,000 to 200,000 rows (skl2onnx 1.20, onnx 1.23): 38.9 bytes a node with one
# value a leaf and trees of at most 8,191 nodes, 41.3 with 177,000-node trees (node ids of three
# varint bytes), 51 with three classes; the constants put each 3% to 9% high, never low.
NODE_BYTES = 36
LEAF_VALUE_BYTES = 13


def float32_floor(values: np.ndarray) -> np.ndarray:
    """The largest float32 <= each value, as float64 (so it converts to float32 unchanged)."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(over="ignore"):  # beyond float32's range: infinity, stepped down below
        rounded = values.astype(np.float32)
    above = rounded.astype(np.float64) > values
    rounded[above] = np.nextafter(rounded[above], np.float32(-np.inf))
    return rounded.astype(np.float64)


def _decision_trees(estimator: Any) -> list[Any]:
    """The fitted decision trees that hold the estimator's splits in their `tree_`: a random
    forest's `estimators_` (a list of trees), or a tree itself. Any other `estimators_` (gradient
    boosting's array of trees by stage and class, an ensemble of other models) is refused by
    name: left as it is, a float64 threshold may send a row down another branch in ONNX."""
    if hasattr(estimator, "tree_"):
        return [estimator]
    members = getattr(estimator, "estimators_", [])
    if isinstance(members, list) and all(hasattr(member, "tree_") for member in members):
        return members
    if isinstance(members, list):
        others = sorted({type(m).__name__ for m in members if not hasattr(m, "tree_")})
        layout = f"a list holding {', '.join(others)}"
    elif isinstance(members, np.ndarray):
        layout = f"an ndarray of shape {members.shape}"
    else:
        layout = f"a {type(members).__name__}"
    raise PipelineError(
        f"float32 split fix: {type(estimator).__name__} keeps its estimators_ as {layout}; "
        "expected a list of fitted decision trees (each with tree_), as random forests keep "
        "them, or histogram gradient boosting's _predictors (a new family needs its layout in "
        "mlops_actions/export.py)"
    )


def float32_splits(model: Pipeline) -> Pipeline:
    """A copy of the model whose tree thresholds are float32 numbers that send every float32
    input down the same branch as the original's float64 thresholds (`x <= t` goes left in
    scikit-learn and ONNX alike). Models without trees come back as an unchanged copy; a layout
    of trees this does not know is a PipelineError naming the family."""
    exact = copy.deepcopy(model)
    estimator = exact[-1]
    for tree in _decision_trees(estimator):  # random forests, or a single tree
        splits = tree.tree_.children_left != -1  # leaves hold a placeholder threshold
        tree.tree_.threshold[splits] = float32_floor(tree.tree_.threshold[splits])
    for iteration in getattr(estimator, "_predictors", []):  # histogram gradient boosting
        for predictor in iteration:
            nodes = predictor.nodes
            splits = nodes["is_leaf"] == 0
            nodes["num_threshold"][splits] = float32_floor(nodes["num_threshold"][splits])
    return exact


def tree_size(estimator: Any) -> tuple[int, int]:
    """The estimator's tree nodes and the values its leaves hold in ONNX: (0, 0) without trees.
    skl2onnx writes one value a leaf for a regressor, a binary classifier (the positive class)
    and each histogram gradient boosting tree (one tree a class), one a class otherwise."""
    nodes = values = 0
    for tree in _decision_trees(estimator):
        leaves = int(np.count_nonzero(tree.tree_.children_left == -1))
        width = tree.tree_.value.shape[1] * tree.tree_.value.shape[2]
        nodes += tree.tree_.node_count
        values += leaves * (1 if is_classifier(tree) and width == 2 else width)
    for iteration in getattr(estimator, "_predictors", []):
        for predictor in iteration:
            nodes += len(predictor.nodes)
            values += int(np.count_nonzero(predictor.nodes["is_leaf"]))
    return nodes, values


def estimated_onnx_bytes(nodes: int, values: int) -> int:
    """About how many bytes trees of `nodes` nodes and `values` leaf values take in model.onnx."""
    return NODE_BYTES * nodes + LEAF_VALUE_BYTES * values


def _megabytes(size: float) -> str:
    """791 MB, 1,234 MB, 7.1 MB, 0.0071 MB: never rounded to 0."""
    megabytes = size / 1e6
    return f"{megabytes:,.0f}" if megabytes >= 10 else f"{megabytes:.2g}"


def check_size(model: Pipeline, max_model_mb: float) -> None:
    """Refuse a model whose model.onnx would pass `max_model_mb` MB (10^6 bytes) before
    converting it: skl2onnx holds a Python object for every node's every attribute, then the
    protobuf, about 25 times the file's size in memory (a 32 MB forest took 1.0 GB, a 791 MB one
    20.5 GB, issue 28); onnxruntime needs more to load it (an 80 MB tree ensemble took 1.4 GB,
    microsoft/onnxruntime#7067), and protobuf refuses a model past 2 GB outright (onnx/onnx#3275).
    The error names the size, the limit and the settings that bound it."""
    estimator = model[-1]
    nodes, values = tree_size(estimator)
    estimate = estimated_onnx_bytes(nodes, values)
    if estimate <= max_model_mb * 1e6:
        return
    leaves = estimator.get_params().get("max_leaf_nodes")
    bound = "bound" if leaves is None else "lower"
    count = "max_iter" if hasattr(estimator, "_predictors") else "n_estimators"
    raise PipelineError(
        f"{type(estimator).__name__} would make a ~{_megabytes(estimate)} MB model.onnx "
        f"({nodes:,} tree nodes), above export.max_model_mb {max_model_mb:g}: {bound} "
        f"train.hyperparameters.max_leaf_nodes (now {leaves or 'unbounded'}) or {count}, or "
        "raise export.max_model_mb"
    )


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


def convert(
    model: Pipeline,
    schema: Schema,
    *,
    model_version: str,
    git_sha: str,
    max_model_mb: float = MAX_MODEL_MB,
) -> bytes:
    """The model as ONNX bytes, its metadata saying what serving needs to know about it. A model
    whose trees would pass `max_model_mb` is refused before anything is converted (`check_size`)."""
    check_size(model, max_model_mb)
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
    """Compare ONNX with scikit-learn on every row: class probabilities, or predicted values.
    A classifier's label agrees when it is scikit-learn's, or one of the labels tied with it for
    the top probability within the tolerance (such as 0.42 and 0.42 out of a forest: scikit-learn
    takes the first, ONNX's float32 sums may take the other); `label_ties` counts those rows.
    `passed` needs the values within the tolerance and, for a classifier, every label agreeing."""
    outputs = session.run(None, onnx_feed(inputs))
    result: dict[str, Any] = {"rows": len(inputs)}
    if classification:
        expected, got = model.predict_proba(inputs), outputs[1]
        predicted, classes = model.predict(inputs), list(model.classes_)
        tolerance = (atol, rtol)
        agreement, ties = _label_agreement(
            outputs[0].ravel(), predicted, classes, expected, tolerance
        )
        result["label_agreement"], result["label_ties"] = agreement, ties
    else:
        expected, got = model.predict(inputs), outputs[0].ravel()
    difference = np.abs(got.astype(np.float64) - expected)
    result["max_abs_diff"] = float(difference.max())
    within = bool(np.all(difference <= atol + rtol * np.abs(expected)))
    result["passed"] = within and result.get("label_agreement", 1.0) == 1.0
    return result


def _label_agreement(
    labels: np.ndarray,
    predicted: np.ndarray,
    classes: list,
    probabilities: np.ndarray,
    tolerance: tuple[float, float],
) -> tuple[float, int]:
    """The share of rows whose ONNX label is scikit-learn's or tied with it (see `parity`), and
    how many of them are ties (another label than scikit-learn's)."""
    atol, rtol = tolerance
    top = probabilities.max(axis=1, keepdims=True)
    tied = probabilities >= top - (atol + rtol * top)
    column = {label: index for index, label in enumerate(classes)}
    same = labels == predicted
    tie = np.array(
        [
            not equal and label in column and bool(row[column[label]])
            for label, equal, row in zip(labels, same, tied, strict=True)
        ],
        dtype=bool,
    )
    return float(np.mean(same | tie)), int(tie.sum())


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
