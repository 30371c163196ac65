"""The estimator families the project offers, and the preprocessing in front of them.

Each family names a classifier and a regressor; `params.yaml` picks one and passes its
hyperparameters straight to scikit-learn. Every family converts to ONNX and matches scikit-learn
(the model tests prove it for this project's data).
"""

from typing import Any

from mlops_actions.errors import PipelineError
from mlops_actions.schema import Schema
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

FAMILIES: dict[str, dict[bool, type[BaseEstimator]]] = {
    # family: {is_classification: estimator}
    "hist_gradient_boosting": {
        True: HistGradientBoostingClassifier,
        False: HistGradientBoostingRegressor,
    },
    "random_forest": {True: RandomForestClassifier, False: RandomForestRegressor},
    "linear": {True: LogisticRegression, False: Ridge},
}
# Trees split on raw values. Scaling them adds nothing but float32 rounding that can send a row
# down another branch in ONNX than in scikit-learn.
SCALED_FAMILIES = {"linear"}


def make_estimator(
    classification: bool, family: str, hyperparameters: dict[str, Any], seed: int
) -> BaseEstimator:
    if family not in FAMILIES:
        raise PipelineError(f"train.model {family!r}: choose one of {', '.join(FAMILIES)}")
    estimator = FAMILIES[family][classification]()
    if "random_state" in estimator.get_params():
        estimator.set_params(random_state=seed)
    try:
        return estimator.set_params(**hyperparameters)
    except ValueError:
        unknown = sorted(set(hyperparameters) - set(estimator.get_params()))
        raise PipelineError(
            f"train.hyperparameters: {', '.join(map(repr, unknown))} not accepted by "
            f"{type(estimator).__name__} (did train.model change without its hyperparameters?)"
        ) from None


def make_pipeline(
    schema: Schema, family: str, hyperparameters: dict[str, Any], seed: int
) -> Pipeline:
    numeric_steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median"))]
    if family in SCALED_FAMILIES:
        numeric_steps.append(("scale", StandardScaler()))
    columns = []
    if schema.numeric:
        columns.append(("numeric", Pipeline(numeric_steps), schema.numeric))
    if schema.categorical:
        # Missing categories arrive as "" (see features.py) and are simply one more category.
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        columns.append(("categorical", encoder, schema.categorical))
    return Pipeline(
        [
            ("preprocess", ColumnTransformer(columns)),
            ("model", make_estimator(schema.is_classification, family, hyperparameters, seed)),
        ]
    )
