"""The contract itself: `data/schema.yaml` read and checked, and a frame typed by it."""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from ..errors import PipelineError

KINDS = ("numeric", "categorical")
# Column names become ONNX input names and JSON keys in the serving API. ONNX's IR spec asks for
# C identifiers, and a name kept as written is one the user can find in the model and the API:
# refused, not mapped to another.
NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
NAME_RULE = (
    "must start with a letter or an underscore and hold only letters, digits and underscores "
    "(they become ONNX input names and the serving API's keys)"
)
# Text that exports write for a gap (R's NA, pandas' NaN, SQL's NULL ...): a draft lists those it
# finds among numbers as missing_values.
GAP_MARKERS = frozenset({"NA", "N/A", "n/a", "NaN", "nan", "NULL", "null", "None", "?", "-"})


class SchemaError(PipelineError):
    """The data or the schema file does not hold what the pipeline needs."""


@dataclass(frozen=True)
class Schema:
    target: str
    features: dict[str, str]
    labels: tuple[str, ...] | None = None
    # Text that marks a gap in a numeric column besides an empty cell, such as R's "NA" (schema
    # key missing_values). In a categorical column it stays a category of its own: "NA" may well
    # mean North America there, and the model treats a gap as one more category anyway.
    missing_values: tuple[str, ...] = ()
    # A column that names each row (schema key id): the split's key (split.py), never a feature.
    # Unique and filled in every row; validate keeps it, as text, beside the features.
    id: str | None = None

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
        if not isinstance(column, str):
            raise SchemaError(
                f"{path}: column name {column!r} is not text: YAML reads an unquoted "
                f"{column!r} as a {type(column).__name__}; quote the name as it is in the CSV, "
                'e.g. "YES": numeric'
            )
    bad = bad_names([name, *features])
    if bad:
        raise SchemaError(
            f"{path}: column name(s) {', '.join(bad)} {NAME_RULE}: rename them in the CSV and here"
        )
    for column, kind in features.items():
        if kind not in KINDS:
            raise SchemaError(f"{path}: column {column!r} has kind {kind!r}, expected {KINDS}")
    labels = target.get("labels")
    if labels is not None and len(set(map(str, labels))) < 2:
        raise SchemaError(f"{path}: target.labels needs two or more distinct labels")
    missing = raw.get("missing_values") or []
    if not isinstance(missing, list) or not all(isinstance(value, str) for value in missing):
        raise SchemaError(f'{path}: missing_values must be a list of strings, e.g. ["NA"]')
    return Schema(
        target=name,
        features=dict(features),
        labels=tuple(str(label) for label in labels) if labels is not None else None,
        missing_values=tuple(missing),
        id=_id_column(raw.get("id"), name, features, path),
    )


def bad_names(names: Iterable[str]) -> list[str]:
    """The names that break NAME_RULE, each with what breaks it: "'1Ad' (a leading digit)"."""
    return [
        f"{name!r} ({_what_breaks(name)})" for name in names if not NAME_PATTERN.fullmatch(name)
    ]


def _what_breaks(name: str) -> str:
    if not name:
        return "empty"
    reasons = ["a leading digit"] if name[0].isdigit() else []
    # Each wrong character once, in the order it first appears.
    wrong = dict.fromkeys(char for char in name if not NAME_PATTERN.fullmatch(f"_{char}"))
    reasons += ["a space" if char == " " else repr(char) for char in wrong]
    return ", ".join(reasons)


def _id_column(column: object, target: str, features: dict, path: Path) -> str | None:
    """The schema's id: a column of its own, neither the target nor a feature."""
    if column is None:
        return None
    if not isinstance(column, str) or not column:
        raise SchemaError(f"{path}: id must be the name of a column, e.g. id: customer_id")
    if column == target:
        raise SchemaError(f"{path}: id {column!r} is the target: name the column that names rows")
    if column in features:
        raise SchemaError(
            f"{path}: id {column!r} is also a feature: an id names a row and teaches the model "
            "nothing; remove it from features"
        )
    return column


def data_rows(index: pd.Index, limit: int = 5) -> str:
    """'data rows 4, 272' for the first few rows of a mask's index (1 = first row after the
    header, as a spreadsheet without its header row counts)."""
    numbers = [str(position + 1) for position in list(index)[:limit]]
    more = f" and {len(index) - limit} more" if len(index) > limit else ""
    return f"data row{'s' if len(index) > 1 else ''} {', '.join(numbers)}{more}"


def empty_target_rows(frame: pd.DataFrame, target: str) -> pd.Index:
    return frame.index[frame[target].isna()]


def drop_empty_target(frame: pd.DataFrame, target: str) -> tuple[pd.DataFrame, int]:
    """The rows whose target is filled in, and how many were dropped (prepare.drop_empty_target).
    The rows keep their index, so later messages still name the file's data rows."""
    if target not in frame.columns:
        return frame, 0
    empty = empty_target_rows(frame, target)
    return frame.drop(index=empty), len(empty)


def with_gaps(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """The schema's missing_values as gaps, in its numeric columns (the target, for regression)."""
    if not schema.missing_values:
        return frame
    numeric = [*schema.numeric, *([] if schema.labels else [schema.target])]
    frame = frame.copy()
    for column in numeric:
        if column in frame.columns:
            frame[column] = frame[column].mask(frame[column].isin(schema.missing_values))
    return frame


def validate(frame: pd.DataFrame, schema: Schema, source: str = "data") -> pd.DataFrame:
    """Return the schema's columns, typed: numeric as float, categorical and labels as text."""
    frame = with_gaps(frame, schema)
    required = [*([schema.id] if schema.id else []), *schema.features, schema.target]
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise SchemaError(f"{source}: missing column(s) {', '.join(map(repr, missing))}")
    typed = validate_features(frame, schema, source)
    require_values(frame, schema, source)
    rows = len(frame)
    target = frame[schema.target]
    empty = empty_target_rows(frame, schema.target)
    if len(empty):
        raise SchemaError(
            f"{source}: target {schema.target!r} is empty in {len(empty)} of {rows} rows "
            f"({data_rows(empty)}): fill them in, delete them, or set "
            "prepare.drop_empty_target: true in params.yaml"
        )
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
    if schema.id is not None:
        typed.insert(0, schema.id, _ids(frame[schema.id], schema.id, source))
    return typed.reset_index(drop=True)


def _ids(values: pd.Series, column: str, source: str) -> pd.Series:
    """The id column as text, refused when a row has none or two rows share one."""
    empty = values.index[values.isna()]
    if len(empty):
        raise SchemaError(
            f"{source}: id column {column!r} is empty in {len(empty)} of {len(values)} rows "
            f"({data_rows(empty)}): every row needs its own id"
        )
    ids = values.astype(str)
    repeated = ids[ids.duplicated(keep=False)]
    if len(repeated):
        first = repeated.iloc[0]
        rows = repeated.index[repeated == first]
        raise SchemaError(
            f"{source}: id column {column!r} repeats {first!r} ({data_rows(rows)}; "
            f"{repeated.nunique()} value(s) repeat in all): every row needs its own id"
        )
    return ids.astype(object)


def require_values(frame: pd.DataFrame, schema: Schema, source: str = "data") -> None:
    """A feature empty in every row teaches the model nothing, and scikit-learn's imputer drops
    it, so the ONNX graph would no longer match: refuse it by name instead."""
    for column in schema.features:
        if frame[column].isna().all():
            raise SchemaError(
                f"{source}: column {column!r} is empty in all {len(frame)} rows: fill it in or "
                "remove it from features in data/schema.yaml"
            )


def validate_features(frame: pd.DataFrame, schema: Schema, source: str = "data") -> pd.DataFrame:
    """The feature columns, typed: for data without the target, such as a batch to check."""
    frame = with_gaps(frame, schema)
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
        first = bad.iloc[0]
        hint = (
            f"; if {first!r} marks a gap, list it in missing_values in data/schema.yaml"
            if first in GAP_MARKERS
            else ""
        )
        raise SchemaError(
            f"{source}: column {column!r} should be numeric but {len(bad)} of {len(values)} rows "
            f"are not (first: {first!r} in data row {bad.index[0] + 1}){hint}"
        )
    return numbers.astype(float)
