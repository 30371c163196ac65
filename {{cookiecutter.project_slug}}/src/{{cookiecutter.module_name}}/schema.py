"""The data contract: which columns the raw CSV holds and what type each one is.

`data/schema.yaml` is kept next to the data and edited by hand when the data changes. Validation
fails with one message that names the column and how many rows are wrong, so a bad file is caught
before training rather than as a confusing scikit-learn error.
"""

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from .errors import PipelineError

KINDS = ("numeric", "categorical")
# Column names become ONNX input names and JSON keys in the serving API.
NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SchemaError(PipelineError):
    """The data or the schema file does not hold what the pipeline needs."""


@dataclass(frozen=True)
class Schema:
    target: str
    features: dict[str, str]
    labels: tuple[str, ...] | None = None

    @property
    def task(self) -> str:
        """Labels make it classification; their count says binary or multiclass."""
        if self.labels is None:
            return "regression"
        return "binary_classification" if len(self.labels) == 2 else "multiclass_classification"

    @property
    def is_classification(self) -> bool:
        return self.labels is not None

    @property
    def numeric(self) -> list[str]:
        return [name for name, kind in self.features.items() if kind == "numeric"]

    @property
    def categorical(self) -> list[str]:
        return [name for name, kind in self.features.items() if kind == "categorical"]


def load_schema(path: Path) -> Schema:
    raw = yaml.safe_load(Path(path).read_text())
    try:
        target, features = raw["target"], raw["features"]
        name = target["name"]
    except (KeyError, TypeError) as err:
        raise SchemaError(f"{path}: needs target.name and features (missing {err})") from None
    for column in [name, *features]:
        if not NAME_PATTERN.fullmatch(str(column)):
            raise SchemaError(f"{path}: column name {column!r} must be letters, digits, underscores")
    for column, kind in features.items():
        if kind not in KINDS:
            raise SchemaError(f"{path}: column {column!r} has kind {kind!r}, expected {KINDS}")
    labels = target.get("labels")
    if labels is not None and len(set(map(str, labels))) < 2:
        raise SchemaError(f"{path}: target.labels needs two or more distinct labels")
    return Schema(
        target=name,
        features=dict(features),
        labels=tuple(str(label) for label in labels) if labels is not None else None,
    )


def read_csv(path: Path) -> pd.DataFrame:
    """Read every cell as text; `validate` decides the types."""
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except FileNotFoundError:
        raise SchemaError(f"{path}: file not found") from None
    except pd.errors.EmptyDataError:
        raise SchemaError(f"{path}: file is empty") from None
    except pd.errors.ParserError as err:
        raise SchemaError(f"{path}: not a well-formed CSV ({str(err).strip()})") from None


def validate(frame: pd.DataFrame, schema: Schema, source: str = "data") -> pd.DataFrame:
    """Return the schema's columns, typed: numeric as float, categorical and labels as text."""
    columns = [*schema.features, schema.target]
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise SchemaError(f"{source}: missing column(s) {', '.join(map(repr, missing))}")
    if frame.empty:
        raise SchemaError(f"{source}: no rows")
    rows = len(frame)
    typed = pd.DataFrame(index=frame.index)
    for column in schema.numeric:
        typed[column] = _numeric(frame[column], column, source)
    for column in schema.categorical:
        typed[column] = frame[column].astype(object).where(frame[column].notna(), None)
    target = frame[schema.target]
    empty = int(target.isna().sum())
    if empty:
        raise SchemaError(f"{source}: target {schema.target!r} is empty in {empty} of {rows} rows")
    if schema.labels is None:
        typed[schema.target] = _numeric(target, schema.target, source)
    else:
        labels = target.astype(str)
        unknown = labels[~labels.isin(schema.labels)]
        if len(unknown):
            examples = ", ".join(map(repr, sorted(unknown.unique())[:3]))
            raise SchemaError(
                f"{source}: target {schema.target!r} has labels not in the schema in "
                f"{len(unknown)} of {rows} rows ({examples}; allowed: {', '.join(schema.labels)})"
            )
        typed[schema.target] = labels.astype(object)
    return typed.reset_index(drop=True)


def _numeric(values: pd.Series, column: str, source: str) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values):
        return values.astype(float)
    numbers = pd.to_numeric(values, errors="coerce")
    bad = values[numbers.isna() & values.notna()]
    if len(bad):
        raise SchemaError(
            f"{source}: column {column!r} should be numeric but {len(bad)} of {len(values)} rows "
            f"are not (first: {bad.iloc[0]!r} in data row {bad.index[0] + 1})"
        )
    return numbers.astype(float)


def load_frame(path: Path, schema: Schema) -> pd.DataFrame:
    """Read and validate a CSV in one step: every stage sees typed, checked data."""
    return validate(read_csv(path), schema, source=str(path))
