"""The model's view of a data frame, shared by training, evaluation and ONNX export.

scikit-learn and ONNX must see the same values for parity: numbers as float32 (the ONNX input
type, so tree thresholds split identically) and categories as text, with "" for a missing category
because an ONNX string tensor cannot hold NaN.
"""

import numpy as np
import pandas as pd

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
