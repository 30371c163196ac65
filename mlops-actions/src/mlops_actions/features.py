"""The model's view of a data frame, shared by training, evaluation and ONNX export.

scikit-learn and ONNX must see the same values for parity: numbers as float32 (the ONNX input
type, so tree thresholds split identically) and categories as text, with "" for a missing category
because an ONNX string tensor cannot hold NaN.
"""

import numpy as np
import pandas as pd

from .errors import PipelineError
from .schema import Schema

MISSING_CATEGORY = ""


def model_inputs(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """The feature columns in schema order, typed as the model and its ONNX twin expect."""
    inputs = pd.DataFrame(index=frame.index)
    for column in schema.features:
        if column in schema.categorical:
            values = frame[column].astype(object)
            inputs[column] = (
                values.where(values.notna(), MISSING_CATEGORY).astype(str).astype(object)
            )
        else:
            inputs[column] = frame[column].astype(np.float32)
    return inputs


def onnx_feed(inputs: pd.DataFrame) -> dict[str, np.ndarray]:
    """One (rows, 1) array per input, named after the column, as the exported model expects."""
    return {column: inputs[[column]].to_numpy() for column in inputs.columns}


def feed(frame: pd.DataFrame, features: dict[str, str], what: str) -> dict[str, np.ndarray]:
    """The model's inputs from `frame`, typed by the model's own feature list (its metadata), as
    export made them: numbers as float32, categories as text with "" for a gap. A feature the rows
    lack is refused in one line naming it (the model was trained on other columns)."""
    missing = [name for name in features if name not in frame.columns]
    if missing:
        names = ", ".join(f"`{name}`" for name in missing)
        raise PipelineError(f"{what} reads {names}, which these rows lack")
    inputs = {}
    for name, kind in features.items():
        column = frame[name]
        if kind == "categorical":
            values = column.astype(object).where(column.notna(), MISSING_CATEGORY).astype(str)
            inputs[name] = values.to_numpy(dtype=object).reshape(-1, 1)
        else:
            try:
                inputs[name] = column.to_numpy(dtype=np.float32).reshape(-1, 1)
            except (TypeError, ValueError):
                raise PipelineError(
                    f"{what} reads `{name}` as numbers; these rows hold text there"
                ) from None
    return inputs
