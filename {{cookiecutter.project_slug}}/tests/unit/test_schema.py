"""The data contract: bad data is refused with a message that names the column and the count."""

import pandas as pd
import pytest

from {{ cookiecutter.module_name }}.schema import (
    Schema,
    SchemaError,
    draft,
    load_schema,
    read_csv,
    validate,
)

SCHEMA = Schema(
    target="label",
    features={"size": "numeric", "colour": "categorical"},
    labels=("no", "yes"),
)


def frame(**overrides) -> pd.DataFrame:
    columns = {
        "size": ["1.5", "2", None],
        "colour": ["red", None, "blue"],
        "label": ["no", "yes", "no"],
    }
    return pd.DataFrame({**columns, **overrides})


def test_valid_frame_is_typed():
    typed = validate(frame(), SCHEMA)
    assert typed["size"].dtype == float
    assert typed["size"].isna().sum() == 1
    assert list(typed.columns) == ["size", "colour", "label"]
    assert typed["colour"].isna().sum() == 1


def test_extra_columns_are_dropped():
    assert "note" not in validate(frame(note=["a", "b", "c"]), SCHEMA).columns


def test_missing_column_is_named():
    with pytest.raises(SchemaError, match=r"missing column.*'colour'"):
        validate(frame().drop(columns="colour"), SCHEMA)


def test_non_numeric_value_is_named_with_count():
    with pytest.raises(SchemaError, match=r"'size' should be numeric but 2 of 3 rows.*'big'"):
        validate(frame(size=["big", "huge", "1"]), SCHEMA)


def test_empty_target_is_counted():
    with pytest.raises(SchemaError, match=r"target 'label' is empty in 1 of 3 rows"):
        validate(frame(label=["no", None, "yes"]), SCHEMA)


def test_unknown_label_is_named():
    with pytest.raises(SchemaError, match=r"labels not in the schema in 1 of 3 rows \('maybe'"):
        validate(frame(label=["no", "maybe", "yes"]), SCHEMA)


def test_regression_target_must_be_numeric():
    schema = Schema(target="label", features=SCHEMA.features)
    with pytest.raises(SchemaError, match="'label' should be numeric"):
        validate(frame(), schema)


def test_no_rows():
    with pytest.raises(SchemaError, match="no rows"):
        validate(frame().iloc[:0], SCHEMA)


def test_malformed_csv(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("size,colour,label\n1,red,no\n2,blue,yes,extra,cells\n")
    with pytest.raises(SchemaError, match="not a well-formed CSV"):
        read_csv(path)


def test_empty_and_missing_files(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(SchemaError, match="file is empty"):
        read_csv(tmp_path / "empty.csv")
    with pytest.raises(SchemaError, match="file not found"):
        read_csv(tmp_path / "absent.csv")


@pytest.mark.parametrize(
    "text, message",
    [
        ("features: {a: numeric}\n", "needs target.name"),
        ("target: {name: y}\nfeatures: {a: text}\n", "kind 'text'"),
        ("target: {name: y}\nfeatures: {a b: numeric}\n", "'a b' must be letters"),
        ("target: {name: y, labels: [a]}\nfeatures: {a: numeric}\n", "two or more"),
    ],
)
def test_bad_schema_file(tmp_path, text, message):
    path = tmp_path / "schema.yaml"
    path.write_text(text)
    with pytest.raises(SchemaError, match=message):
        load_schema(path)


@pytest.mark.parametrize(
    "labels, task",
    [
        (None, "regression"),
        (("a", "b"), "binary_classification"),
        (("a", "b", "c"), "multiclass_classification"),
    ],
)
def test_task_follows_from_labels(labels, task):
    assert Schema(target="y", features={}, labels=labels).task == task


def test_project_schema_loads(schema):
    assert schema.target not in schema.features
    assert schema.features


def test_draft_reads_kinds_and_labels(tmp_path):
    csv = tmp_path / "own.csv"
    csv.write_text("age,city,approved\n31,Oslo,yes\n,Rome,no\n45,,yes\n")
    path = tmp_path / "schema.yaml"
    path.write_text(draft(read_csv(csv), target="approved"))
    schema = load_schema(path)
    assert schema.features == {"age": "numeric", "city": "categorical"}
    assert schema.labels == ("no", "yes")
    validate(read_csv(csv), schema)


def test_draft_of_a_continuous_target_is_regression(tmp_path):
    csv = tmp_path / "own.csv"
    csv.write_text("x,y\n" + "".join(f"{i},{i * 1.5}\n" for i in range(20)))
    path = tmp_path / "schema.yaml"
    path.write_text(draft(read_csv(csv), target="y"))
    assert load_schema(path).task == "regression"


def test_draft_needs_an_existing_target(tmp_path):
    with pytest.raises(SchemaError, match="target 'price' is not a column"):
        draft(pd.DataFrame({"x": [1]}), target="price")
