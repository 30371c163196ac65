"""`make schema`: a first data/schema.yaml drafted from a CSV, and a line on everything it saw.

Columns whose every value is a number are numeric, the rest categorical. What would be refused
later, or would train on the wrong thing without a word, is settled here instead: a column name
ONNX cannot take is refused, every such name in one line; numbers written with commas, dates and
a different text in every row are left out of the features, with a comment in the file and a
line saying why and what to do; a categorical with more values than half the rows is kept and
warned about. A starting point to review, not a verdict.
"""

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from .contract import (
    GAP_MARKERS,
    NAME_PATTERN,
    NAME_RULE,
    SchemaError,
    bad_names,
    data_rows,
    empty_target_rows,
)
from .reading import read_csv

# A numeric target with at most this many distinct values is drafted as class labels.
MAX_DRAFT_LABELS = 10
# Column names a draft reads as a row's key: id, key, uuid, and names ending in _id or Id.
KEY_NAME = re.compile(r"(?i:id|key|uuid)|.*_(?i:id)|.*[a-z0-9](?:Id|ID)")
# A categorical with more distinct values than this share of the rows is kept with a warning: most
# of its values are seen in a row or two, and new ones keep coming when it serves.
MANY_VALUES = 0.5
# Numbers grouped by thousands ("12,400", "1,045.5"). pandas parses numbers but cannot tell a
# thousands separator from a decimal comma ("1,5"); the grouping can.
THOUSANDS = r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?"


@dataclass(frozen=True)
class Column:
    """One column as the draft reads it: its kind when it is a feature, else why it is left out
    (`left_out`, a few words); the comment schema.yaml shows beside it and make schema's line
    about it ("" when there is nothing to say)."""

    name: str
    kind: str | None
    left_out: str = ""
    comment: str = ""
    note: str = ""


@dataclass(frozen=True)
class Survey:
    """What a draft saw in a CSV: everything `draft` writes and `draft_notes` says."""

    target: str
    rows: int
    labels: list[str] | None  # None: a regression target
    missing_values: list[str]
    key: str | None
    columns: list[Column]
    empty_targets: pd.Index


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


def is_numeric(values: pd.Series) -> bool:
    present = values.dropna()
    return bool(len(present)) and pd.to_numeric(present, errors="coerce").notna().all()


def _reads_as(present: pd.Series, parsed: pd.Series) -> bool:
    """Every value parsed but gap markers (R's NA, ...), and at least one did."""
    failed = present[parsed.isna()]
    return len(failed) < len(present) and set(failed) <= GAP_MARKERS


def comma_numbers(values: pd.Series) -> tuple[str, str] | None:
    """("thousands separators", "2,760") or ("decimal commas", "1,5") when the column is numbers
    once its commas are taken out, else None: "1,2,3" is a list, not a number."""
    present = values.dropna().astype(str)
    commas = present[present.str.contains(",", regex=False)]
    plain = pd.to_numeric(present.str.replace(",", "", regex=False), errors="coerce")
    if commas.empty or not _reads_as(present, plain):
        return None
    grouped = commas.str.fullmatch(THOUSANDS)
    if grouped.all():
        return "thousands separators", commas.iloc[0]
    if (commas.str.count(",") == 1).all():
        return "decimal commas", commas[~grouped].iloc[0]
    return None


def first_date(values: pd.Series) -> str | None:
    """The first value when the column is ISO 8601 dates or times (pandas' own parser), else
    None. Only for columns that are not numbers: "2020" alone parses as a date too."""
    present = values.dropna().astype(str)
    parsed = pd.to_datetime(present, format="ISO8601", errors="coerce", utc=True)
    return present[parsed.notna()].iloc[0] if _reads_as(present, parsed) else None


def is_text(values: pd.Series) -> bool:
    """Neither numbers, with or without commas, nor dates: what a draft makes categorical."""
    return not is_numeric(values) and comma_numbers(values) is None and first_date(values) is None


def proposed_id(frame: pd.DataFrame, target: str) -> str | None:
    """The column a draft proposes as the schema's id: filled in and unique in every row, and
    named like a key (KEY_NAME) or, failing that, whole numbers that all differ (a row number)
    or text that all differs ("A-1001"), while other columns remain to be features. None when
    no column qualifies."""
    unique = [
        column
        for column in frame.columns.drop(target)
        if frame[column].notna().all() and frame[column].is_unique
    ]
    named = [column for column in unique if KEY_NAME.fullmatch(str(column))]
    if named:
        return named[0]
    others = [column for column in frame.columns.drop(target) if frame[column].notna().any()]
    if len(others) < 2:
        return None
    for column in unique:
        numbers = pd.to_numeric(frame[column], errors="coerce")
        if numbers.notna().all() and (numbers == numbers.round()).all():
            return column
    return next((column for column in unique if is_text(frame[column])), None)


def read_column(name: str, values: pd.Series, key: str | None, rows: int) -> Column:
    """What the draft makes of one column (not the target) and what it says about it."""
    said = f"column {name!r}"
    if values.isna().all():
        return Column(
            name,
            None,
            left_out="empty",
            comment="empty in every row, left out",
            note=f"{said} is empty in every row: left out of the draft",
        )
    if name == key:
        return Column(
            name,
            None,
            left_out="the id",
            comment="the id (above), left out",
            note=f"{said} is unique in every row and looks like a key: drafted as id (the "
            "split's key), not a feature; if it is a feature, delete the id line and list it "
            "under features",
        )
    if is_numeric(values):
        return Column(name, "numeric")
    commas = comma_numbers(values)
    if commas is not None:
        how, example = commas
        if how == "thousands separators":
            way, fixed = "without separators", example.replace(",", "")
        else:
            way, fixed = "with a decimal point", example.replace(".", "").replace(",", ".")
        return Column(
            name,
            None,
            left_out=how,
            comment=f"numbers with {how} ({json.dumps(example)}), left out",
            note=f"{said} looks numeric with {how} ({json.dumps(example)}): left out of the "
            f"draft; write its numbers {way} ({fixed}) in the CSV and run make schema again",
        )
    date = first_date(values)
    if date is not None:
        return Column(
            name,
            None,
            left_out="dates",
            comment=f"dates ({json.dumps(date)}), left out: the schema has no date type",
            note=f"{said} looks like dates ({json.dumps(date)}): left out of the draft, as the "
            "schema has no date type; to use it, add what matters of it (year, month, weekday, "
            "days since) to the CSV as numeric columns",
        )
    if values.notna().all() and values.is_unique:
        return Column(
            name,
            None,
            left_out="a different value in every row",
            comment="a different value in every row, left out",
            note=f"{said} has a different value in every row: left out of the draft, as one "
            "category per row teaches the model nothing; if it names rows, make it the id "
            f"(id: {yaml_name(name)})",
        )
    distinct = values.nunique()
    if distinct > MANY_VALUES * rows:
        return Column(
            name,
            "categorical",
            comment=f"{distinct} distinct values in {rows} rows",
            note=f"{said} has {distinct} distinct values in {rows} rows: kept as categorical, "
            "but most of them are seen in a row or two, which teaches the model little, and "
            "values it never saw will come when it serves; leave it out, or group rare values "
            "in the CSV",
        )
    return Column(name, "categorical")


def survey(frame: pd.DataFrame, target: str) -> Survey:
    """Read a CSV (as `read_csv` returns it) for a draft. Refused in one line: a target that is
    not a column, empty or numbers with commas; no data rows; no column left to be a feature;
    a name the schema would refuse (every such name, with what is wrong with each)."""
    if target not in frame.columns:
        raise SchemaError(f"target {target!r} is not a column ({', '.join(frame.columns)})")
    if frame.empty:
        raise SchemaError("the CSV has a header but no data rows")
    frame, markers = numeric_gaps(frame)
    values = frame[target].dropna()
    if values.empty:
        raise SchemaError(f"target {target!r} is empty in all {len(frame)} rows")
    commas = comma_numbers(values)
    if commas is not None:
        raise SchemaError(
            f"target {target!r} looks numeric with {commas[0]} ({json.dumps(commas[1])}): write "
            "its numbers without them in the CSV and run make schema again"
        )
    key = proposed_id(frame, target)
    columns = [
        read_column(name, frame[name], key, len(frame)) for name in frame.columns.drop(target)
    ]
    features = [column.name for column in columns if column.kind is not None]
    if not features:
        left = ", ".join(f"{column.name!r} ({column.left_out})" for column in columns)
        raise SchemaError(
            f"no column is left to be a feature: {left or 'the CSV holds only the target'}; a "
            "model needs at least one numeric or categorical column besides the target"
        )
    bad = bad_names([target, *features])
    if bad:
        raise SchemaError(
            f"column name(s) {', '.join(bad)} {NAME_RULE}: rename them in the CSV's header and "
            "run make schema again"
        )
    classes = not is_numeric(values) or values.nunique() <= MAX_DRAFT_LABELS
    return Survey(
        target=target,
        rows=len(frame),
        labels=[str(label) for label in sorted(values.unique())] if classes else None,
        missing_values=markers,
        key=key,
        columns=columns,
        empty_targets=empty_target_rows(frame, target),
    )


def yaml_name(name: str) -> str:
    """A column name as YAML reads it back as that very text: plain when it does, else quoted
    (YAML 1.1 reads YES, No, on, off, null, ~ and 2020 as booleans, null and numbers)."""
    plain = NAME_PATTERN.fullmatch(name) and yaml.safe_load(name) == name
    return name if plain else json.dumps(name, ensure_ascii=False)


def render(found: Survey) -> str:
    """The draft's schema.yaml text: every column listed, a left-out one as a comment saying why."""
    lines = ["# Drafted from the data: review the kinds and labels before you commit."]
    if found.missing_values:
        lines.append("# Text that marks a gap in a numeric column, as an empty cell does:")
        lines.append(f"missing_values: [{', '.join(map(json.dumps, found.missing_values))}]")
    if found.key is not None:
        lines.append("# Unique in every row: the split's key, not a feature.")
        lines.append(f"id: {yaml_name(found.key)}")
    lines += ["target:", f"  name: {yaml_name(found.target)}"]
    if found.labels is not None:
        labels = ", ".join(json.dumps(label, ensure_ascii=False) for label in found.labels)
        lines.append(f"  labels: [{labels}]")
    lines.append("features:")
    for column in found.columns:
        name = yaml_name(column.name)
        if column.kind is None:
            lines.append(f"  # {name}: {column.comment}")
        else:
            comment = f"  # {column.comment}" if column.comment else ""
            lines.append(f"  {name}: {column.kind}{comment}")
    return "\n".join(lines) + "\n"


def notes(found: Survey) -> list[str]:
    """One line for each column the draft left out or warns about, then the rows the pipeline
    will refuse even with the drafted schema, each with the fix."""
    lines = [column.note for column in found.columns if column.note]
    if len(found.empty_targets):
        lines.append(
            f"target {found.target!r} is empty in {len(found.empty_targets)} of {found.rows} rows "
            f"({data_rows(found.empty_targets)}): the pipeline refuses them; fill them in, delete "
            "them, or set prepare.drop_empty_target: true in params.yaml"
        )
    return lines


def draft(frame: pd.DataFrame, target: str) -> str:
    """A first schema for a CSV read by `read_csv` (see `survey` for what it refuses)."""
    return render(survey(frame, target))


def draft_notes(frame: pd.DataFrame, target: str) -> list[str]:
    """What the draft left out or warns about, and what the pipeline will refuse, with fixes."""
    return notes(survey(frame, target))


def main() -> None:
    parser = argparse.ArgumentParser(description="Draft data/schema.yaml from a CSV.")
    parser.add_argument("csv", type=Path)
    parser.add_argument("--target", required=True, help="the column the model predicts")
    parser.add_argument("--out", type=Path, help="write here (default: print)")
    args = parser.parse_args()
    found = survey(read_csv(args.csv), args.target)
    text = render(found)
    for note in notes(found):
        print(f"schema: {note}", file=sys.stderr)
    if args.out is None:
        print(text, end="")
        return
    # Written whole or not at all: a failed draft leaves the old schema and no stray file.
    partial = args.out.with_name(f".{args.out.name}.partial")
    partial.write_text(text)
    os.replace(partial, args.out)
    print(f"schema: drafted {args.out} from {args.csv}: review it before you commit")
