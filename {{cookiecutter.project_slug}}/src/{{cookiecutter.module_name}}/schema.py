"""The data contract: which columns the raw CSV holds and what type each one is.

`data/schema.yaml` is kept next to the data and edited by hand when the data changes. Validation
fails with one message that names the column and how many rows are wrong, so a bad file is caught
before training rather than as a confusing scikit-learn error.
"""

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from .errors import PipelineError, run_stage

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
            raise SchemaError(
                f"{path}: column name {column!r} must be letters, digits, underscores"
            )
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
    if schema.target not in frame.columns:
        missing = [c for c in [*schema.features, schema.target] if c not in frame.columns]
        raise SchemaError(f"{source}: missing column(s) {', '.join(map(repr, missing))}")
    typed = validate_features(frame, schema, source)
    rows = len(frame)
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


def validate_features(frame: pd.DataFrame, schema: Schema, source: str = "data") -> pd.DataFrame:
    """The feature columns, typed: for data without the target, such as a batch to check."""
    missing = [column for column in schema.features if column not in frame.columns]
    if missing:
        raise SchemaError(f"{source}: missing column(s) {', '.join(map(repr, missing))}")
    if frame.empty:
        raise SchemaError(f"{source}: no rows")
    typed = pd.DataFrame(index=frame.index)
    for column in schema.numeric:
        typed[column] = _numeric(frame[column], column, source)
    for column in schema.categorical:
        typed[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return typed


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


# A numeric target with at most this many distinct values is drafted as class labels.
MAX_DRAFT_LABELS = 10


def draft(frame: pd.DataFrame, target: str) -> str:
    """A first schema for a CSV read by `read_csv`: columns whose every value is a number are
    numeric, the rest categorical. A starting point to review, not a verdict."""
    if target not in frame.columns:
        raise SchemaError(f"target {target!r} is not a column ({', '.join(frame.columns)})")

    def is_numeric(values: pd.Series) -> bool:
        present = values.dropna()
        return bool(len(present)) and pd.to_numeric(present, errors="coerce").notna().all()

    lines = ["# Drafted from the data: review the kinds and labels before you commit.", "target:"]
    lines.append(f"  name: {target}")
    values = frame[target].dropna()
    if not is_numeric(values) or values.nunique() <= MAX_DRAFT_LABELS:
        labels = ", ".join(f'"{label}"' for label in sorted(values.unique()))
        lines.append(f"  labels: [{labels}]")
    lines.append("features:")
    for column in frame.columns.drop(target):
        kind = "numeric" if is_numeric(frame[column]) else "categorical"
        lines.append(f"  {column}: {kind}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description="Draft data/schema.yaml from a CSV.")
    parser.add_argument("csv", type=Path)
    parser.add_argument("--target", required=True, help="the column the model predicts")
    args = parser.parse_args()
    print(draft(read_csv(args.csv), args.target), end="")


if __name__ == "__main__":
    run_stage("schema", main)
