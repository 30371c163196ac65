"""Expectations on the data itself: what a model can learn from, beyond the schema's types."""

import pandas as pd
import pytest

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


def test_test_rows_are_not_copies_of_training_rows(train_test, schema):
    train, test = train_test
    columns = [*schema.features, schema.target]
    copies = test[columns].merge(train[columns].drop_duplicates(), how="inner")
    assert len(copies) <= 0.01 * len(test) + 1
