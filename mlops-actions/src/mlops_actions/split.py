"""The split into train, test and holdout: each row's side comes from a hash of its key, so a row
stays on its side as the data grows.

A row's key (`record_keys`) is the schema's `id` column when it names one, otherwise a hash of the
row's feature values, the target left out: a batch to score has no target, and its prediction
records (mlops_actions.batch) carry the same key, so predictions, the labels that come back and
the split join on it. `assign` hashes the seed and the key into a number in [0, 1) and cuts that
range by the shares of params.yaml `prepare`: [0, holdout_size) is the holdout,
[holdout_size, holdout_size + test_size) the test split, the rest trains. So appending rows moves
no existing row, editing a row's features (without an id) moves that row alone, and a change of
`test_size` moves rows between test and train only, never into or out of the holdout. The holdout
is what no training or tuning sees: its metrics are the release's headline numbers.

Rows with identical features (duplicates, without an id) have one key, hence one side, whatever
their targets: a row and its copy are never one in training and the other in the test, which is
why duplicates across the split are not leakage any more. The shares hold on average, not exactly,
and classification is not stratified; a label missing from the train split is refused (`split`).

Both hashes are vectorized (pandas' `hash_pandas_object` and `hash_array`: SipHash-2-4 of text,
the bits of numbers), as prepare and batch scoring run them on millions of rows.
"""

import hashlib
from typing import NamedTuple

import numpy as np
import pandas as pd

from .schema import Schema, SchemaError

SIDES = ("train", "test", "holdout")


class Split(NamedTuple):
    train: pd.DataFrame
    test: pd.DataFrame
    holdout: pd.DataFrame


# pandas' default key for hash_pandas_object, spelled out: every row key depends on it, so a new
# default in pandas must not change them (tests/test_split.py pins known keys).
ROW_HASH_KEY = "0123456789123456"
# Two hex digits per byte: the 16-digit text of a 64-bit hash, for a million rows at once.
_HEX_DIGITS = np.array([f"{byte:02x}" for byte in range(256)], dtype="S2")


def record_keys(frame: pd.DataFrame, schema: Schema) -> pd.Series:
    """Each row's key as text: the id column's value when the schema names one; otherwise 16 hex
    digits, a 64-bit hash of the row's feature values in schema order (a target column, if there,
    is left out). Numbers count as floats ("1" and "1.0" in a numeric column are one key, -0.0 is
    0.0, text that is no number a gap), categories as text, a gap apart from every text ("null"
    and "" included). Rows as text and typed rows (validate's) have the same keys."""
    keys = key_values(frame, schema)
    if keys.dtype != object:  # hashes: 16 ASCII bytes each
        keys = keys.astype("U16").astype(object)
    return pd.Series(keys, index=frame.index, name="key", dtype=object)


def key_values(frame: pd.DataFrame, schema: Schema) -> np.ndarray:
    """`record_keys` as an array: the ids as text (object), or the hashes' hex digits as 16 bytes
    each (dtype S16), which a writer can take without a Python string per row."""
    if schema.id is not None:
        return frame[schema.id].astype(str).to_numpy(dtype=object)
    numeric = set(schema.numeric)
    parts: list[np.ndarray | pd.Series] = []
    for column in schema.features:
        values = frame[column]
        if column in numeric:
            if values.dtype != np.float64:  # rows as text: as validate reads them
                values = pd.to_numeric(values, errors="coerce")
            # One bit pattern per value: -0.0 + 0.0 is 0.0, and every NaN (a gap) is one NaN.
            numbers = values.to_numpy(np.float64, na_value=np.nan) + 0.0
            numbers[np.isnan(numbers)] = np.nan
            parts.append(numbers)
        else:
            gap = values.isna().to_numpy(dtype=bool)
            text = values.astype(object).where(~gap, "")
            if pd.api.types.infer_dtype(text, skipna=False) != "string":
                text = text.astype(str)  # categories that are not text yet (numbers), as text
            # Object dtype said outright: pandas 3 would infer its string dtype, whose hash need
            # not be the same. The gap is a column of its own, so no text can stand for it.
            parts.extend([pd.Series(text.to_numpy(dtype=object), dtype=object), gap])
    columns = pd.DataFrame(dict(enumerate(parts)), copy=False)
    hashes = pd.util.hash_pandas_object(columns, index=False, hash_key=ROW_HASH_KEY).to_numpy()
    octets = hashes.astype(">u8").view(np.uint8).reshape(-1, 8)
    return _HEX_DIGITS[octets].view("S16").ravel()


def assign(keys: pd.Series, seed: int, test_size: float, holdout_size: float) -> pd.Series:
    """Each key's side, "train", "test" or "holdout": the key's SipHash under a key made from the
    seed (pandas' `hash_array`), as a number in [0, 1); below holdout_size the holdout, below
    holdout_size + test_size the test split."""
    hashes = pd.util.hash_array(
        keys.to_numpy(dtype=object), hash_key=_seed_key(seed), categorize=False
    )
    shares = (hashes >> np.uint64(11)).astype(np.float64) * 2.0**-53  # 53 bits: below 1.0
    sides = np.select(
        [shares < holdout_size, shares < holdout_size + test_size], ["holdout", "test"], "train"
    )
    return pd.Series(sides, index=keys.index, name="side", dtype=object)


def _seed_key(seed: int) -> str:
    """The 16 characters SipHash takes as its key, from the seed."""
    return hashlib.blake2b(str(seed).encode(), digest_size=8).hexdigest()


def split(
    frame: pd.DataFrame, schema: Schema, seed: int, *, test_size: float, holdout_size: float
) -> Split:
    """The validated frame in three parts (`assign` of `record_keys`), each in the frame's order.
    Refused in one line: a label that occurs once, an empty side (the holdout only when its
    share is above 0) and, for classification, a label with no row to train on."""
    if schema.is_classification:
        counts = frame[schema.target].value_counts()
        if counts.min() < 2:
            rare = ", ".join(repr(label) for label in counts[counts < 2].index)
            raise SchemaError(
                f"target {schema.target!r}: label(s) {rare} occur once; need two rows"
            )
    sides = assign(record_keys(frame, schema), seed, test_size, holdout_size)
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
