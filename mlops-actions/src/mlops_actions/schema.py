"""The data contract: which columns the raw CSV holds and what type each one is.

`data/schema.yaml` is kept next to the data and edited by hand when the data changes. Validation
fails with one message that names the column and how many rows are wrong, so a bad file is caught
before training rather than as a confusing scikit-learn error.
"""

import argparse
import csv
import io
import json
import os
import re
import sys
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
    bad = [column for column in [name, *features] if not NAME_PATTERN.fullmatch(column)]
    if bad:
        raise SchemaError(
            f"{path}: column name(s) {', '.join(map(repr, bad))} must start with a letter or "
            "an underscore and hold only letters, digits and underscores (they become ONNX "
            "input names): rename them in the CSV and here"
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


def read_csv(path: Path) -> pd.DataFrame:
    """Read every cell as text (an empty cell is a gap); `validate` decides the types. What
    spreadsheets and exports commonly get wrong (encoding, delimiter, repeated or unnamed
    headers) is refused here, before pandas would guess around it."""
    try:
        text = _decode(Path(path).read_bytes(), path)
    except FileNotFoundError:
        raise SchemaError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise SchemaError(f"{path}: is a directory, not a CSV file") from None
    _check_header(text, path)
    try:
        return pd.read_csv(
            io.StringIO(text),
            dtype=str,
            keep_default_na=False,
            na_values=[""],
        )
    except pd.errors.EmptyDataError:
        raise SchemaError(f"{path}: file is empty") from None
    except pd.errors.ParserError as err:
        raise SchemaError(f"{path}: not a well-formed CSV ({str(err).strip()})") from None


def _decode(raw: bytes, path: Path) -> str:
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise SchemaError(
            f"{path}: UTF-16 text (as 'Unicode text' exports write): save it as UTF-8"
        )
    if b"\0" in raw[:65536]:
        raise SchemaError(f"{path}: not a text file (it holds NUL bytes): export the table as CSV")
    try:
        return raw.decode("utf-8-sig")  # a byte-order mark, as Excel writes, is dropped
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise SchemaError(
            f"{path}: not UTF-8 text (byte 0x{raw[err.start]:02x} on line {line}): save it as "
            "UTF-8, e.g. iconv -f latin1 -t utf-8 old.csv > new.csv or 'CSV UTF-8' in a spreadsheet"
        ) from None


def _check_header(text: str, path: Path) -> None:
    sample = text[:65536]
    # The first row that holds anything: pandas skips blank lines before the header too.
    header = next((row for row in csv.reader(io.StringIO(sample)) if row), [])
    if len(header) == 1:
        try:
            delimiter = csv.Sniffer().sniff(sample, delimiters=";\t|").delimiter
        except csv.Error:
            delimiter = None
        if delimiter:
            raise SchemaError(
                f"{path}: columns are separated by {delimiter!r}, not commas: save it as "
                "comma-separated CSV"
            )
    unnamed = [str(number) for number, name in enumerate(header, 1) if not name.strip()]
    if unnamed and len(header) > 1:
        raise SchemaError(
            f"{path}: header has no name for column(s) {', '.join(unnamed)}: name or delete them"
        )
    positions: dict[str, list[int]] = {}
    for number, name in enumerate(header, 1):
        positions.setdefault(name, []).append(number)
    repeated = {name: where for name, where in positions.items() if len(where) > 1}
    if repeated:
        name, where = next(iter(repeated.items()))
        raise SchemaError(
            f"{path}: column {name!r} appears {len(where)} times in the header (columns "
            f"{', '.join(map(str, where))}): rename or delete the copies"
        )


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


def load_frame(path: Path, schema: Schema) -> pd.DataFrame:
    """Read and validate a CSV in one step: every stage sees typed, checked data."""
    return validate(read_csv(path), schema, source=str(path))


# A numeric target with at most this many distinct values is drafted as class labels.
MAX_DRAFT_LABELS = 10
# Text that exports write for a gap (R's NA, pandas' NaN, SQL's NULL ...): a draft lists those it
# finds among numbers as missing_values.
GAP_MARKERS = frozenset({"NA", "N/A", "n/a", "NaN", "nan", "NULL", "null", "None", "?", "-"})
# Column names a draft reads as a row's key: id, key, uuid, and names ending in _id or Id.
KEY_NAME = re.compile(r"(?i:id|key|uuid)|.*_(?i:id)|.*[a-z0-9](?:Id|ID)")


def numeric_gaps(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The GAP_MARKERS that stand among the numbers of otherwise numeric columns, and the frame
    with those cells as gaps (other columns untouched, as `with_gaps` reads them)."""
    found: set[str] = set()
    frame = frame.copy()
    for column in frame.columns:
        present = frame[column].dropna()
        text = present[pd.to_numeric(present, errors="coerce").isna()]
        if 0 < len(text) < len(present) and set(text) <= GAP_MARKERS:
            found |= set(text)
            frame[column] = frame[column].mask(frame[column].isin(GAP_MARKERS))
    return frame, sorted(found)


def proposed_id(frame: pd.DataFrame, target: str) -> str | None:
    """The column a draft proposes as the schema's id: filled in and unique in every row, and
    named like a key (KEY_NAME) or, failing that, whole numbers that all differ (a row number)
    while other columns remain to be features. None when no column qualifies."""
    unique = [
        column
        for column in frame.columns.drop(target)
        if frame[column].notna().all() and frame[column].is_unique
    ]
    named = [column for column in unique if KEY_NAME.fullmatch(str(column))]
    if named:
        return named[0]
    others = [column for column in frame.columns.drop(target) if frame[column].notna().any()]
    for column in unique:
        numbers = pd.to_numeric(frame[column], errors="coerce")
        if len(others) > 1 and numbers.notna().all() and (numbers == numbers.round()).all():
            return column
    return None


def yaml_name(name: str) -> str:
    """A column name as YAML reads it back as that very text: plain when it does, else quoted
    (YAML 1.1 reads YES, No, on, off, null, ~ and 2020 as booleans, null and numbers)."""
    plain = NAME_PATTERN.fullmatch(name) and yaml.safe_load(name) == name
    return name if plain else json.dumps(name, ensure_ascii=False)


def draft(frame: pd.DataFrame, target: str) -> str:
    """A first schema for a CSV read by `read_csv`: columns whose every value is a number are
    numeric, the rest categorical; columns empty in every row are left out, and so is the
    column proposed as the id (`proposed_id`). A starting point to review, not a verdict."""
    if target not in frame.columns:
        raise SchemaError(f"target {target!r} is not a column ({', '.join(frame.columns)})")
    frame, markers = numeric_gaps(frame)

    def is_numeric(values: pd.Series) -> bool:
        present = values.dropna()
        return bool(len(present)) and pd.to_numeric(present, errors="coerce").notna().all()

    if frame.empty:
        raise SchemaError("the CSV has a header but no data rows")
    values = frame[target].dropna()
    if values.empty:
        raise SchemaError(f"target {target!r} is empty in all {len(frame)} rows")
    key = proposed_id(frame, target)
    lines = ["# Drafted from the data: review the kinds and labels before you commit."]
    if markers:
        lines.append("# Text that marks a gap in a numeric column, as an empty cell does:")
        lines.append(f"missing_values: [{', '.join(json.dumps(marker) for marker in markers)}]")
    if key is not None:
        lines.append("# Unique in every row: the split's key, not a feature.")
        lines.append(f"id: {yaml_name(key)}")
    lines += ["target:", f"  name: {yaml_name(target)}"]
    if not is_numeric(values) or values.nunique() <= MAX_DRAFT_LABELS:
        labels = ", ".join(
            json.dumps(str(label), ensure_ascii=False) for label in sorted(values.unique())
        )
        lines.append(f"  labels: [{labels}]")
    lines.append("features:")
    for column in frame.columns.drop(target):
        if frame[column].isna().all():
            lines.append(f"  # {column}: empty in every row, left out")
            continue
        if column == key:
            lines.append(f"  # {column}: the id (above), left out")
            continue
        kind = "numeric" if is_numeric(frame[column]) else "categorical"
        lines.append(f"  {yaml_name(column)}: {kind}")
    return "\n".join(lines) + "\n"


def draft_notes(frame: pd.DataFrame, target: str) -> list[str]:
    """What the pipeline will refuse in this CSV even with the drafted schema, and the fix."""
    frame, _ = numeric_gaps(frame)
    notes = [
        f"column {column!r} is empty in every row: left out of the draft"
        for column in frame.columns.drop(target)
        if frame[column].isna().all()
    ]
    key = proposed_id(frame, target)
    if key is not None:
        notes.append(
            f"column {key!r} is unique in every row and looks like a key: drafted as id (the "
            "split's key), not a feature; if it is a feature, delete the id line and list it "
            "under features"
        )
    empty = empty_target_rows(frame, target)
    if len(empty):
        notes.append(
            f"target {target!r} is empty in {len(empty)} of {len(frame)} rows "
            f"({data_rows(empty)}): the pipeline refuses them; fill them in, delete them, or set "
            "prepare.drop_empty_target: true in params.yaml"
        )
    return notes


def main() -> None:
    parser = argparse.ArgumentParser(description="Draft data/schema.yaml from a CSV.")
    parser.add_argument("csv", type=Path)
    parser.add_argument("--target", required=True, help="the column the model predicts")
    parser.add_argument("--out", type=Path, help="write here (default: print)")
    args = parser.parse_args()
    frame = read_csv(args.csv)
    text = draft(frame, args.target)
    for note in draft_notes(frame, args.target):
        print(f"schema: {note}", file=sys.stderr)
    if args.out is None:
        print(text, end="")
        return
    # Written whole or not at all: a failed draft leaves the old schema and no stray file.
    partial = args.out.with_name(f".{args.out.name}.partial")
    partial.write_text(text)
    os.replace(partial, args.out)
    print(f"schema: drafted {args.out} from {args.csv}: review it before you commit")


if __name__ == "__main__":
    run_stage("schema", main)
