"""The model's view of the data: identical for scikit-learn and ONNX."""

import numpy as np
import pandas as pd

from mlops_actions.features import (
    MISSING_CATEGORY,
    model_inputs,
    onnx_feed,
)
from mlops_actions.schema import Schema

SCHEMA = Schema(target="y", features={"size": "numeric", "colour": "categorical"}, labels=None)


def test_types_order_and_missing_category():
    frame = pd.DataFrame({"colour": ["red", None], "y": [1.0, 2.0], "size": [1.25, np.nan]})
    inputs = model_inputs(frame, SCHEMA)
    assert list(inputs.columns) == ["size", "colour"]
    assert inputs["size"].dtype == np.float32
    assert np.isnan(inputs["size"].iloc[1])
    assert inputs["colour"].tolist() == ["red", MISSING_CATEGORY]


def test_onnx_feed_is_one_column_per_input():
    frame = pd.DataFrame({"size": [1.0, 2.0, 3.0], "colour": ["a", "b", "c"]})
    feed = onnx_feed(model_inputs(frame, SCHEMA))
    assert set(feed) == {"size", "colour"}
    assert feed["size"].shape == (3, 1) and feed["size"].dtype == np.float32
    assert feed["colour"].shape == (3, 1) and feed["colour"][2, 0] == "c"
