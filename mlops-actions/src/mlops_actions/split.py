"""The split into train, test and holdout: each row's side comes from a hash of its key, so a row
stays on its side as the data grows.

A row's key is the schema's `id` column when it names one, otherwise the row's own feature and
target values (`row_keys`). `assign` hashes the seed and the key into a number in [0, 1) and cuts
that range by the shares of params.yaml `prepare`: [0, holdout_size) is the holdout,
[holdout_size, holdout_size + test_size) the test split, the rest trains. So appending rows moves no
existing row, editing a row's values (without an id) moves that row alone, and a change of
`test_size` moves rows between test and train only, never into or out of the holdout. The holdout
is what no training or tuning sees: its metrics are the release's headline numbers.

Identical rows (duplicates, without an id) have one key, hence one side: a row and its copy are
never one in training and the other in the test, which is why duplicates across the split are not
leakage any more. The shares hold on average, not exactly, and classification is not stratified;
a label missing from the train split is refused (`split`).
"""

import hashlib
import json
import math
from typing import NamedTuple

import pandas as pd

from .schema import Schema, SchemaError

SIDES = ("train", "test", "holdout")


class Split(NamedTuple):
    train: pd.DataFrame
    test: pd.DataFrame
    holdout: pd.DataFrame


def row_keys(frame: pd.DataFrame, schema: Schema) -> pd.Series:
    """Each row's key as text: the id column's value when the schema names one; otherwise the
    row's feature values and its target, in schema order, as a JSON list. Numbers are written as
    floats ("1" and "1.0" in a numeric column are one key, -0.0 is 0.0), a gap as null (text
    "null" stays the string "null"), categories and labels as JSON strings."""
    if schema.id is not None:
        return frame[schema.id].astype(str).rename("key")
    numeric = set(schema.numeric) | (set() if schema.is_classification else {schema.target})
    cells = [
        _numbers(frame[column]) if column in numeric else _texts(frame[column])
        for column in [*schema.features, schema.target]
    ]
    keys = ["[" + ",".join(row) + "]" for row in zip(*cells, strict=True)]
    return pd.Series(keys, index=frame.index, name="key", dtype=object)


def record_keys(frame: pd.DataFrame, schema: Schema) -> pd.Series:
    """Each row's key as prediction records carry it: the id column's value, else a 16-hex hash
    of the row's feature values (no target: a batch to score has none)."""
    if schema.id is not None and schema.id in frame.columns:
        return frame[schema.id].astype(str).rename("key")
    numeric = set(schema.numeric)
    cells = [
        _numbers(frame[column]) if column in numeric else _texts(frame[column])
        for column in schema.features
    ]
    keys = [
        hashlib.blake2b(("[" + ",".join(row) + "]").encode(), digest_size=8).hexdigest()
        for row in zip(*cells, strict=True)
    ]
    return pd.Series(keys, index=frame.index, name="key", dtype=object)


def _numbers(values: pd.Series) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    return numbers.map(lambda value: "null" if math.isnan(value) else repr(value + 0.0))


def _texts(values: pd.Series) -> pd.Series:
    return values.map(lambda value: "null" if pd.isna(value) else json.dumps(str(value)))


def assign(keys: pd.Series, seed: int, test_size: float, holdout_size: float) -> pd.Series:
    """Each key's side, "train", "test" or "holdout": blake2b of f"{seed}:{key}" as a number in
    [0, 1), below holdout_size the holdout, below holdout_size + test_size the test split."""
    sides = []
    for key in keys:
        share = _uniform(f"{seed}:{key}")
        sides.append(
            "holdout"
            if share < holdout_size
            else "test"
            if share < holdout_size + test_size
            else "train"
        )
    return pd.Series(sides, index=keys.index, name="side", dtype=object)


def _uniform(text: str) -> float:
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def split(
    frame: pd.DataFrame, schema: Schema, seed: int, *, test_size: float, holdout_size: float
) -> Split:
    """The validated frame in three parts (`assign` of `row_keys`), each in the frame's order.
    Refused in one line: a label that occurs once, an empty side (the holdout only when its
    share is above 0) and, for classification, a label with no row to train on."""
    if schema.is_classification:
        counts = frame[schema.target].value_counts()
        if counts.min() < 2:
            rare = ", ".join(repr(label) for label in counts[counts < 2].index)
            raise SchemaError(
                f"target {schema.target!r}: label(s) {rare} occur once; need two rows"
            )
    sides = assign(row_keys(frame, schema), seed, test_size, holdout_size)
    parts = Split(*(frame[sides == side].reset_index(drop=True) for side in SIDES))
    shares = {"train": 1 - test_size - holdout_size, "test": test_size, "holdout": holdout_size}
    for side, part in zip(SIDES, parts, strict=True):
        if part.empty and shares[side] > 0:
            raise SchemaError(
                f"the {side} split is empty: {len(frame)} rows at prepare.test_size {test_size} "
                f"and prepare.holdout_size {holdout_size} put none there; {_advice(side)}"
            )
    missing = missing_labels(parts.train, frame, schema)
    if missing:
        label, rows = missing[0]
        raise SchemaError(
            f"target {schema.target!r}: no row of label {label!r} ({rows} in all) fell in the "
            f"train split, so the model cannot learn it; {_advice('train')}"
        )
    return parts


def _advice(side: str) -> str:
    if side == "train":
        return "add rows, or lower prepare.test_size or prepare.holdout_size in params.yaml"
    if side == "test":
        return "add rows, or raise prepare.test_size in params.yaml"
    return "add rows, raise prepare.holdout_size, or set it to 0 (no holdout) in params.yaml"


def missing_labels(
    part: pd.DataFrame, frame: pd.DataFrame, schema: Schema
) -> list[tuple[str, int]]:
    """The labels of `frame` that `part` holds no row of, each with its count in `frame`
    (classification; none for regression)."""
    if not schema.is_classification:
        return []
    counts = frame[schema.target].value_counts()
    present = set(part[schema.target])
    return [(str(label), int(count)) for label, count in counts.items() if label not in present]


def unscored_labels(parts: Split, frame: pd.DataFrame, schema: Schema) -> list[str]:
    """What the test and holdout splits miss: a label with no row there, which their metrics
    leave out (roc_auc: NaN). Not refused, as a label missing from training is; said."""
    return [
        f"no row of label {label!r} ({rows} in all) fell in the {side} split: its {side} "
        "metrics leave it out (roc_auc: NaN); more rows fix it"
        for side, part in zip(SIDES[1:], parts[1:], strict=True)
        if len(part)
        for label, rows in missing_labels(part, frame, schema)
    ]
