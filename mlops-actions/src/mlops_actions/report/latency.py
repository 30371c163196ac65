"""Inference latency, measured in this run: scikit-learn vs ONNX Runtime on the test split."""

import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from ..schema import load_schema


def median_seconds(call: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure_latency(root: Path, batch_rows: int = 1000) -> dict[str, dict[str, float]]:
    """scikit-learn vs onnxruntime on one row and on a batch drawn from the test split."""
    import joblib
    import onnxruntime as ort

    from ..features import model_inputs, onnx_feed
    from ..schema import load_frame

    schema = load_schema(root / "data/schema.yaml")
    test = load_frame(root / "data/prepared/test.csv", schema)
    model = joblib.load(root / "models/model.joblib")
    session = ort.InferenceSession(
        str(root / "models/model.onnx"), providers=["CPUExecutionProvider"]
    )
    predict = model.predict_proba if schema.is_classification else model.predict
    results = {}
    for case, rows in (
        ("1 row", test.head(1)),
        (f"{batch_rows:,} rows", test.sample(batch_rows, replace=True, random_state=0)),
    ):
        inputs = model_inputs(rows, schema)
        feed = onnx_feed(inputs)
        results[case] = {
            "sklearn": median_seconds(partial(predict, inputs), 50),
            "onnx": median_seconds(partial(session.run, None, feed), 200),
        }
    return results
