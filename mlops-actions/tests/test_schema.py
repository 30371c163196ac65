"""The data contract: bad data is refused with a message that names the column and the count."""

import pandas as pd
import pytest
import yaml

from mlops_actions.schema import (
    Schema,
    SchemaError,
    draft,
    draft_notes,
    drop_empty_target,
    load_schema,
    read_csv,
    validate,
)
from mlops_actions.schema.proposer import yaml_name

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


def test_empty_target_is_counted_with_its_rows_and_the_fix():
    with pytest.raises(
        SchemaError,
        match=r"target 'label' is empty in 1 of 3 rows \(data row 2\): fill them in, delete them, "
        r"or set prepare\.drop_empty_target: true",
    ):
        validate(frame(label=["no", None, "yes"]), SCHEMA)


def test_drop_empty_target_keeps_the_rest_and_counts():
    kept, dropped = drop_empty_target(frame(label=[None, "yes", None]), "label")
    assert dropped == 2
    assert list(kept["label"]) == ["yes"] and list(kept.index) == [1]  # the file's data row 2


def test_a_feature_empty_in_every_row_is_refused_by_name():
    with pytest.raises(SchemaError, match=r"column 'size' is empty in all 3 rows: fill it in or "):
        validate(frame(size=[None, None, None]), SCHEMA)


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


@pytest.mark.parametrize(
    "content, message",
    [
        (b"size;colour;label\n1,5;red;no\n2;blue;yes\n", r"separated by ';', not commas"),
        (b"size\tcolour\tlabel\n1\tred\tno\n", r"separated by '\\t', not commas"),
        (
            "size,colour,label\n1,Málaga,no\n".encode("latin-1"),
            r"not UTF-8 text \(byte 0xe1 on line 2\)",
        ),
        (b"PK\x03\x04\x00\x00binary", r"not a text file \(it holds NUL bytes\)"),
        (
            b"size,colour,size,label\n1,red,2,no\n",
            r"'size' appears 2 times in the header \(columns 1, 3\)",
        ),
        (b"size,,colour,label\n1,x,red,no\n", r"no name for column\(s\) 2"),
    ],
    ids=["semicolon", "tab", "latin-1", "binary", "duplicate-column", "unnamed-column"],
)
def test_what_exports_get_wrong_is_named_with_the_fix(tmp_path, content, message):
    path = tmp_path / "own.csv"
    path.write_bytes(content)
    with pytest.raises(SchemaError, match=message):
        read_csv(path)


def test_a_byte_order_mark_is_not_part_of_the_first_column(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("size,colour,label\n1,red,no\n".encode("utf-8-sig"))
    assert list(read_csv(path).columns) == ["size", "colour", "label"]


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
        (
            "target: {name: y}\nfeatures: {a b: numeric}\n",
            r"'a b' \(a space\) must start with a letter",
        ),
        ("target: {name: y, labels: [a]}\nfeatures: {a: numeric}\n", "two or more"),
        ("id: a\ntarget: {name: y}\nfeatures: {a: numeric}\n", "id 'a' is also a feature"),
        ("id: y\ntarget: {name: y}\nfeatures: {a: numeric}\n", "id 'y' is the target"),
        ("id: [a]\ntarget: {name: y}\nfeatures: {a: numeric}\n", "id must be the name of a"),
    ],
)
def test_bad_schema_file(tmp_path, text, message):
    """One line each, naming what is wrong."""
    path = tmp_path / "schema.yaml"
    path.write_text(text)
    with pytest.raises(SchemaError, match=message) as refused:
        load_schema(path)
    assert "\n" not in str(refused.value)


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


def test_draft_leaves_out_empty_columns_and_notes_empty_targets(tmp_path):
    csv = tmp_path / "own.csv"
    csv.write_text("age,notes,price\n31,,10.5\n40,,\n45,,12.25\n")
    data = read_csv(csv)
    text = draft(data, target="price")
    assert "# notes: empty in every row, left out" in text
    path = tmp_path / "schema.yaml"
    path.write_text(text)
    assert load_schema(path).features == {"age": "numeric"}
    assert draft_notes(data, "price") == [
        "column 'notes' is empty in every row: left out of the draft",
        "target 'price' is empty in 1 of 3 rows (data row 2): the pipeline refuses them; fill them "
        "in, delete them, or set prepare.drop_empty_target: true in params.yaml",
    ]


def test_gap_markers_among_numbers_are_drafted_as_missing_values(tmp_path):
    """R and many exports write NA for a gap: the draft lists it, and the schema turns it into a
    gap in numeric columns; in a categorical one it stays a category (NA, North America). Without
    the list, the error says what to add."""
    csv = tmp_path / "from_r.csv"
    csv.write_text("mass,region,kind\n3750,EU,a\nNA,NA,b\n3800,EU,a\n")
    path = tmp_path / "schema.yaml"
    path.write_text(draft(read_csv(csv), target="kind"))
    schema = load_schema(path)
    assert schema.missing_values == ("NA",)
    assert schema.features == {"mass": "numeric", "region": "categorical"}
    typed = validate(read_csv(csv), schema)
    assert typed["mass"].isna().sum() == 1
    assert list(typed["region"]) == ["EU", "NA", "EU"]
    schema_without = Schema(target="kind", features=schema.features, labels=schema.labels)
    with pytest.raises(
        SchemaError, match=r"\(first: 'NA' in data row 2\); if 'NA' marks a gap, list"
    ):
        validate(read_csv(csv), schema_without)


def test_a_blank_first_line_still_gets_the_header_checks(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("\nsize,size\n1,2\n")
    with pytest.raises(SchemaError, match="'size' appears 2 times"):
        read_csv(path)


def test_utf16_is_named(tmp_path):
    path = tmp_path / "unicode.txt"
    path.write_bytes("size,label\n1,no\n".encode("utf-16"))
    with pytest.raises(SchemaError, match=r"UTF-16 text .*: save it as UTF-8"):
        read_csv(path)


def test_missing_values_must_be_a_list_of_text(tmp_path):
    path = tmp_path / "schema.yaml"
    path.write_text("missing_values: NA\ntarget: {name: y}\nfeatures: {a: numeric}\n")
    with pytest.raises(SchemaError, match="missing_values must be a list of strings"):
        load_schema(path)


ID_SCHEMA = Schema(target="label", features=SCHEMA.features, labels=SCHEMA.labels, id="key")


def test_the_id_column_is_kept_as_text_beside_the_features():
    typed = validate(frame(key=["7", "08", "x"]), ID_SCHEMA)
    assert list(typed.columns) == ["key", "size", "colour", "label"]
    assert list(typed["key"]) == ["7", "08", "x"]


@pytest.mark.parametrize(
    "keys, message",
    [
        (["a", None, "c"], r"id column 'key' is empty in 1 of 3 rows \(data row 2\): every row"),
        (["a", "b", "a"], r"id column 'key' repeats 'a' \(data rows 1, 3; 1 value\(s\) repeat"),
    ],
    ids=["gap", "duplicate"],
)
def test_an_id_with_gaps_or_repeats_is_refused_in_one_line(keys, message):
    with pytest.raises(SchemaError, match=message) as refused:
        validate(frame(key=keys), ID_SCHEMA)
    assert "\n" not in str(refused.value)


def test_a_missing_id_column_is_named():
    with pytest.raises(SchemaError, match=r"missing column\(s\) 'key'$"):
        validate(frame(), ID_SCHEMA)


@pytest.mark.parametrize("column", ["id", "customer_id", "customerId", "KEY", "uuid"])
def test_draft_proposes_a_unique_key_column_as_the_id(tmp_path, column):
    csv = tmp_path / "own.csv"
    csv.write_text(f"{column},age,approved\nc1,31,yes\nc2,40,no\nc3,31,yes\n")
    data = read_csv(csv)
    path = tmp_path / "schema.yaml"
    path.write_text(draft(data, target="approved"))
    schema = load_schema(path)
    assert schema.id == column and schema.features == {"age": "numeric"}
    assert f"  # {column}: the id (above), left out" in path.read_text()
    assert any(note.startswith(f"column {column!r} is unique in every row and looks like a key")
               for note in draft_notes(data, "approved"))  # fmt: skip
    assert list(validate(data, schema).columns) == [column, "age", "approved"]


def test_draft_proposes_distinct_whole_numbers_as_the_id_but_not_measurements(tmp_path):
    csv = tmp_path / "own.csv"
    csv.write_text("row,weight,age,approved\n3,61.5,31,yes\n1,72.25,40,no\n2,80.0,31,yes\n")
    schema_text = draft(read_csv(csv), target="approved")
    assert "\nid: row\n" in schema_text and "  weight: numeric" in schema_text
    # A unique measurement (decimals), a repeated key, or a key with a gap is no id.
    for text in (
        "weight,age,approved\n61.5,31,yes\n72.25,40,no\n80.0,31,no\n",
        "customer_id,age,approved\nc1,31,yes\nc1,40,no\nc2,31,no\n",
        "customer_id,age,approved\nc1,31,yes\n,40,no\nc2,31,no\n",
    ):
        csv.write_text(text)
        assert "\nid:" not in draft(read_csv(csv), target="approved")
        assert not any(
            "looks like a key" in note for note in draft_notes(read_csv(csv), "approved")
        )


YAML_1_1_WORDS = ["YES", "Yes", "yes", "No", "no", "on", "Off", "true", "False", "null", "Null"]


@pytest.mark.parametrize("name", YAML_1_1_WORDS)
def test_a_drafted_name_reads_back_as_written(name, tmp_path):
    """Issue 28 (7): statsmodels' `scotland` has a target `YES`; the draft wrote it unquoted and
    prepare read it back as True (`missing column(s) True`)."""
    frame = pd.DataFrame({name: ["1", "1", "2", "2"], "x": ["a", "b", "a", "b"]})
    drafted = yaml.safe_load(draft(frame, name))
    assert drafted["target"]["name"] == name
    drafted = yaml.safe_load(draft(frame.rename(columns={"x": "target"}), "target"))
    assert name in drafted["features"]


@pytest.mark.parametrize("name", [*YAML_1_1_WORDS, "2020", "1e3", "~", "Comp Price"])
def test_yaml_name_reads_back_as_written(name):
    """Names the schema refuses as features (2020, ~) are still written so, as the id or in a
    left-out column's comment."""
    assert yaml.safe_load(yaml_name(name)) == name


def test_a_name_yaml_reads_as_a_boolean_is_one_line_saying_quote_it(tmp_path):
    path = tmp_path / "schema.yaml"
    path.write_text("target: {name: YES}\nfeatures: {x: numeric}\n")
    with pytest.raises(SchemaError, match=r"column name True is not text: .* quote the name"):
        load_schema(path)


def test_every_bad_name_is_listed_in_one_line(tmp_path):
    """Issue 28 (8): one name at a time, and a leading digit got the same wrong sentence."""
    path = tmp_path / "schema.yaml"
    path.write_text('target: {name: y}\nfeatures: {"Comp Price": numeric, "1Ad": numeric}\n')
    with pytest.raises(SchemaError) as refused:
        load_schema(path)
    message = str(refused.value)
    assert (
        "'Comp Price' (a space), '1Ad' (a leading digit) must start with a letter or an underscore"
        in message
    )
    assert "\n" not in message


def test_a_header_only_csv_says_it_has_no_data_rows():
    """Issue 28 (13): it said "target 'Sales' is empty in all 0 rows"."""
    with pytest.raises(SchemaError, match=r"^the CSV has a header but no data rows$"):
        draft(pd.DataFrame({"Sales": [], "x": []}, dtype=str), "Sales")
