"""Starter data made on the machine, never downloaded: scikit-learn's bundled datasets, or
synthetic customers with numeric and categorical columns and a few gaps.

Replace the data stage with your own CSV when you have one (see README); the rest of the pipeline
only reads `data/raw/<name>.csv` and `data/schema.yaml`.
"""

import re

import numpy as np
import pandas as pd
from mlops_actions.errors import PipelineError
from mlops_actions.schema import Schema

BUNDLED = ("breast_cancer", "wine", "iris", "diabetes")
# Synthetic labels from the lowest customer value to the highest: low-value customers churn.
SYNTHETIC_CLASSES = {
    "binary_classification": ["yes", "no"],
    "multiclass_classification": ["bronze", "silver", "gold"],
}


def column_name(name: str) -> str:
    """'mean radius' -> 'mean_radius', 'od280/od315 of ...' -> 'od280_od315_of_...'."""
    return re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()


def bundled(name: str, schema: Schema) -> pd.DataFrame:
    from sklearn import datasets

    if name == "diabetes":
        # The unscaled copy keeps the units people know (age in years, BMI, blood pressure).
        data = datasets.load_diabetes(as_frame=True, scaled=False)
    else:
        data = getattr(datasets, f"load_{name}")(as_frame=True)
    frame = data.data.rename(columns=column_name)
    if schema.labels is None:
        frame[schema.target] = data.target.astype(float)
    else:
        frame[schema.target] = np.asarray(data.target_names)[data.target]
    return frame


def synthetic(rows: int, seed: int, schema: Schema) -> pd.DataFrame:
    """Customers whose value depends on numbers and categories, with about 3% gaps."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "plus", "pro"], size=rows, p=[0.5, 0.3, 0.2])
    region = rng.choice(["north", "south", "east", "west"], size=rows)
    frame = pd.DataFrame(
        {
            "tenure_months": rng.integers(1, 72, size=rows).astype(float),
            "monthly_spend": rng.gamma(4.0, 15.0, size=rows).round(2),
            "support_calls": rng.poisson(1.5, size=rows).astype(float),
            "usage_hours": rng.normal(40.0, 12.0, size=rows).clip(0).round(1),
            "age": rng.integers(18, 80, size=rows).astype(float),
            "plan": plan,
            "region": region,
        }
    )
    score = (
        0.04 * frame["tenure_months"]
        + 0.02 * frame["monthly_spend"]
        - 0.5 * frame["support_calls"]
        + 0.03 * frame["usage_hours"]
        + pd.Series(plan).map({"basic": -1.0, "plus": 0.5, "pro": 1.5})
        + pd.Series(region).map({"north": 0.3, "south": -0.3, "east": 0.0, "west": 0.1})
        + rng.normal(0.0, 0.5, size=rows)
    )
    if not schema.is_classification:
        frame[schema.target] = (100.0 * score.clip(lower=-2.0) + 300.0).round(2)
    else:
        # Quantile cut points give balanced classes.
        classes = SYNTHETIC_CLASSES[schema.task]
        cuts = np.quantile(score, np.linspace(0, 1, len(classes) + 1)[1:-1])
        frame[schema.target] = np.asarray(classes)[np.digitize(score, cuts)]
    for column in ["monthly_spend", "usage_hours", "plan"]:
        frame.loc[rng.random(rows) < 0.03, column] = None
    return frame


def make_dataset(name: str, rows: int, seed: int, schema: Schema) -> pd.DataFrame:
    if name == "synthetic":
        return synthetic(rows, seed, schema)
    if name in BUNDLED:
        return bundled(name, schema)
    raise PipelineError(f"data.dataset {name!r}: choose synthetic or one of {', '.join(BUNDLED)}")
