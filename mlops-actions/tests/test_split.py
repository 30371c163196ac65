"""The split (split.py): each row's side is a seeded hash of its key, so a row stays put as the data
grows, the holdout stays frozen, and copies of a row (its features) never sit on two sides."""

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops_actions.schema import Schema, SchemaError, validate
from mlops_actions.split import (
    SIDES,
    Split,
    assign,
    missing_labels,
    record_keys,
    split,
    unscored_labels,
)

SCHEMA = Schema(
    target="label",
    features={"size": "numeric", "colour": "categorical"},
    labels=("no", "yes"),
)
WITH_ID = Schema(target=SCHEMA.target, features=SCHEMA.features, labels=SCHEMA.labels, id="key")
SHARES = {"test_size": 0.2, "holdout_size": 0.1}


def rows(count: int, seed: int = 0, start: int = 0) -> pd.DataFrame:
    """Typed rows as `validate` returns them, with an id column `key`."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "key": [f"r{number}" for number in range(start, start + count)],
            "size": rng.normal(size=count).round(3),
            "colour": rng.choice(["red", "blue", None], size=count).astype(object),
            "label": rng.choice(["no", "yes"], size=count).astype(object),
        }
    )


def sides(frame: pd.DataFrame, schema: Schema = SCHEMA, seed: int = 42) -> pd.Series:
    return assign(record_keys(frame, schema), seed, **SHARES)


ROW = st.fixed_dictionaries(
    {
        "size": st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)),
        "colour": st.one_of(st.none(), st.sampled_from(["red", "blue", "null", "", "a,b"])),
        "label": st.sampled_from(["no", "yes"]),
    }
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ROW, min_size=1, max_size=40), st.lists(ROW, max_size=40), st.integers(0, 2**32))
def test_appending_rows_moves_no_existing_row(old, new, seed):
    before = sides(pd.DataFrame(old), seed=seed)
    after = sides(pd.DataFrame(old + new), seed=seed)
    assert after.iloc[: len(old)].tolist() == before.tolist()


def test_changing_one_row_s_values_moves_that_row_alone():
    frame = rows(2000)
    before = sides(frame)
    changed = frame.copy()
    # A row whose new values land on another side (which one depends on the hash alone).
    for offset in range(1, 50):
        changed.loc[7, "size"] = frame.loc[7, "size"] + offset
        after = sides(changed)
        if after[7] != before[7]:
            break
    assert after[7] != before[7]
    assert after.drop(index=7).equals(before.drop(index=7))


def test_with_an_id_changing_a_row_s_values_does_not_move_it():
    frame = rows(2000)
    changed = frame.assign(size=frame["size"] + 1, label=frame["label"].iloc[::-1].to_numpy())
    assert sides(changed, WITH_ID).equals(sides(frame, WITH_ID))
    assert not sides(changed).equals(sides(frame))  # without the id, they move


def test_shares_are_close_to_the_params():
    counts = sides(rows(10_000)).value_counts(normalize=True)
    assert abs(counts["test"] - 0.2) < 0.03
    assert abs(counts["holdout"] - 0.1) < 0.03
    assert abs(counts["train"] - 0.7) < 0.03
    assert set(assign(record_keys(rows(1000), SCHEMA), 42, 0.2, 0.0)) == {"train", "test"}


def test_same_seed_same_split_another_seed_another():
    frame = rows(1000)
    assert sides(frame, seed=42).equals(sides(frame, seed=42))
    assert (sides(frame, seed=42) != sides(frame, seed=7)).mean() > 0.2


def test_a_larger_test_share_never_moves_a_holdout_row():
    keys = record_keys(rows(2000), SCHEMA)
    small, large = assign(keys, 42, 0.2, 0.1), assign(keys, 42, 0.4, 0.1)
    assert small[small == "holdout"].index.equals(large[large == "holdout"].index)
    assert set(small[(small != large)]) == {"train"}


def test_the_holdout_never_meets_training_and_copies_share_a_side():
    frame = validate(
        pd.concat([rows(500), rows(500).iloc[:100]], ignore_index=True).drop(columns="key"),
        SCHEMA,
    )
    parts = split(frame, SCHEMA, 42, **SHARES)
    keys = {side: set(record_keys(part, SCHEMA)) for side, part in zip(SIDES, parts, strict=True)}
    assert not keys["train"] & keys["holdout"]
    assert not keys["train"] & keys["test"] and not keys["test"] & keys["holdout"]
    assert sum(len(part) for part in parts) == len(frame)


def test_keys_read_numbers_as_numbers_and_gaps_apart_from_text():
    frame = pd.DataFrame(
        {
            "size": ["1", "1.0", None, "-0", "0", "x"],
            "colour": ["red", "red", "null", None, None, "null"],
            "label": ["no", "yes", "no", "no", "no", "no"],
        }
    )
    keys = record_keys(frame, SCHEMA).tolist()
    assert all(re.fullmatch(r"[0-9a-f]{16}", key) for key in keys)
    assert keys[0] == keys[1]  # 1 and 1.0 are one number; the label is no part of the key
    assert keys[3] == keys[4]  # -0 is 0
    assert keys[2] == keys[5]  # text in a numeric column is a gap there
    assert keys[2] != record_keys(frame.assign(colour=[None] * 6), SCHEMA)[2]  # "null" is no gap
    assert keys[0] != record_keys(frame.assign(colour=""), SCHEMA)[0]
    # Typed rows (validate's) give the same keys as rows as text, whatever pandas' string dtype.
    typed = validate(frame.iloc[:5], SCHEMA)
    assert record_keys(typed, SCHEMA).tolist() == keys[:5]
    assert record_keys(frame.astype("str"), SCHEMA).tolist() == keys
    assert record_keys(frame.astype(object), SCHEMA).tolist() == keys


def test_keys_are_the_same_on_every_machine_and_pandas_version():
    """Known keys: prediction records made today must join with labels that come back next year,
    after pandas or the platform changed (pandas documents no promise that its hashes stay)."""
    frame = pd.DataFrame({"size": [1.5, None, -0.0], "colour": ["red", None, "blue"]})
    assert record_keys(frame, SCHEMA).tolist() == [
        "d3d18462a2031684",
        "592a578d5df0abbd",
        "77b3ef5ca609c703",
    ]
    ids = pd.Series([str(number) for number in range(12)])
    assert assign(ids, 42, **SHARES).tolist() == (
        ["train"] * 3 + ["test", "holdout"] + ["train"] * 3 + ["test", "test", "train", "test"]
    )


def test_the_target_is_no_part_of_the_key():
    schema = Schema(target="price", features={"size": "numeric"})
    frame = pd.DataFrame({"size": ["2", "2.00"], "price": ["10", "11"]})
    assert record_keys(frame, schema).nunique() == 1
    assert (
        record_keys(frame.drop(columns="price"), schema).tolist()
        == record_keys(frame, schema).tolist()
    )


def test_rows_with_the_same_features_share_a_side_whatever_their_labels():
    frame = rows(400)
    copies = frame.assign(label=frame["label"].map({"no": "yes", "yes": "no"}))
    both = pd.concat([frame, copies], ignore_index=True)
    sides_of = sides(both)
    assert sides_of.iloc[:400].tolist() == sides_of.iloc[400:].tolist()


def test_with_an_id_the_key_is_the_id():
    assert record_keys(rows(3), WITH_ID).tolist() == ["r0", "r1", "r2"]


def test_a_label_that_occurs_once_is_refused_by_name():
    frame = validate(rows(50).assign(label=["yes"] + ["no"] * 49).drop(columns="key"), SCHEMA)
    with pytest.raises(SchemaError, match=r"^target 'label': label\(s\) 'yes' occur once"):
        split(frame, SCHEMA, 42, **SHARES)


def test_an_empty_side_is_refused_with_the_fix():
    frame = validate(rows(4).drop(columns="key").assign(label=["no", "yes"] * 2), SCHEMA)
    with pytest.raises(SchemaError) as refused:
        for seed in range(100):  # some seed leaves a side empty of 4 rows
            split(frame, SCHEMA, seed, test_size=0.2, holdout_size=0.05)
    message = str(refused.value)
    assert "\n" not in message and re.search(r"^the (train|test|holdout) split is empty", message)
    assert "add rows" in message


def test_a_label_missing_from_training_is_refused_by_name():
    frame = validate(rows(200).drop(columns="key").assign(label="no"), SCHEMA)
    frame.loc[[0, 1], "label"] = "yes"
    for seed in range(200):
        sides_of_yes = set(assign(record_keys(frame, SCHEMA), seed, **SHARES)[[0, 1]])
        if "train" not in sides_of_yes:
            break
    with pytest.raises(SchemaError, match=r"no row of label 'yes' \(2 in all\) fell in the train"):
        split(frame, SCHEMA, seed, **SHARES)
    assert missing_labels(frame[frame["label"] == "no"], frame, SCHEMA) == [("yes", 2)]


def test_a_label_missing_from_test_or_holdout_is_said_not_refused():
    frame = validate(rows(200).drop(columns="key").assign(label="no"), SCHEMA)
    train, test = frame.iloc[:150].copy(), frame.iloc[150:]
    train.loc[train.index[:2], "label"] = "yes"
    parts = Split(train, test, test.iloc[:0])  # an empty holdout is not reported
    assert unscored_labels(parts, pd.concat([train, test]), SCHEMA) == [
        "no row of label 'yes' (2 in all) fell in the test split: its test metrics leave it "
        "out (roc_auc: NaN); more rows fix it"
    ]


def test_no_holdout_when_its_share_is_zero():
    parts = split(validate(rows(300).drop(columns="key"), SCHEMA), SCHEMA, 42, test_size=0.2,
                  holdout_size=0.0)  # fmt: skip
    assert parts.holdout.empty and len(parts.train) + len(parts.test) == 300


def test_the_bakes_split_keeps_its_keys_apart(project, params, schema, train_test):
    """The project's params (holdout_size 0.1 by default) on its starter data."""
    assert params["prepare"]["holdout_size"] == 0.1
    train, test = train_test
    assert not set(record_keys(train, schema)) & set(record_keys(test, schema))
    assert missing_labels(train, pd.concat([train, test]), schema) == []
