"""Expectations on the data itself: what a model can learn from, beyond the schema's types."""

import pandas as pd
import pytest
from mlops_actions.split import SIDES, record_keys

MAX_MISSING_SHARE = 0.5
MIN_ROWS_PER_LABEL = 10


def test_enough_rows_per_label(train_test, schema):
    if not schema.is_classification:
        pytest.skip("regression")
    counts = pd.concat(train_test)[schema.target].value_counts()
    assert counts.reindex(schema.labels, fill_value=0).min() >= MIN_ROWS_PER_LABEL, counts


def test_every_label_is_seen_in_training(train_test, schema):
    if not schema.is_classification:
        pytest.skip("regression")
    assert set(train_test[0][schema.target]) == set(schema.labels)


def test_target_varies(train_test, schema):
    assert train_test[0][schema.target].nunique() > 1


def test_features_are_mostly_present(train_test, schema):
    shares = train_test[0][list(schema.features)].isna().mean()
    assert (shares <= MAX_MISSING_SHARE).all(), shares[shares > MAX_MISSING_SHARE]


def test_no_feature_is_constant(train_test, schema):
    train = train_test[0]
    assert [column for column in schema.features if train[column].nunique() < 2] == []


def test_no_row_key_is_on_two_sides(splits, schema):
    """A row's side comes from its key (the schema's id, or its features), so copies of a row share
    its side: a test or holdout row that repeats a training row would be leakage."""
    keys = {side: set(record_keys(part, schema)) for side, part in zip(SIDES, splits, strict=True)}
    assert not keys["train"] & keys["test"]
    assert not (keys["train"] | keys["test"]) & keys["holdout"]
