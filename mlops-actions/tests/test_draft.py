"""`make schema`'s draft (issue 28, items 8 and 9): what would be refused later is refused now, in
one line; what would train silently on the wrong type is named, with the fix, and left out."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mlops_actions.schema import SchemaError, draft, draft_notes, load_schema, read_csv, validate

SRC = Path(__file__).resolve().parents[1] / "src"

# Ten rows of what exports hold: a text key, ISO dates, numbers with thousands separators, a city
# column with more distinct values than half the rows, an e-mail per row, a measurement.
MESSY = """order,signup,price,city,email,size,label
A-1001,2021-03-04,"2,760",Oslo,a@x.org,1.5,yes
A-1002,2021-03-05,"1,045",Rome,b@x.org,2,no
A-1003,2021-04-11,980,Oslo,c@x.org,2.5,yes
A-1004,2021-05-02,"12,400",Paris,d@x.org,1,no
A-1005,2021-06-30,"3,100",Lima,e@x.org,3,yes
A-1006,2021-07-01,760,Rome,f@x.org,1.5,no
A-1007,2021-08-15,"1,200",Kyiv,g@x.org,2,yes
A-1008,2021-09-09,"2,000",Oslo,h@x.org,2.5,no
A-1009,2021-10-10,"5,500",Pune,i@x.org,1,yes
A-1010,2021-11-11,640,Lima,j@x.org,3,no
"""


def drafted(tmp_path: Path, text: str, target: str = "label") -> tuple[str, list[str], dict]:
    """The draft's text and notes for a CSV, and the schema it loads as (checked on the data)."""
    csv = tmp_path / "own.csv"
    csv.write_text(text)
    frame = read_csv(csv)
    schema_file = tmp_path / "schema.yaml"
    schema_file.write_text(draft(frame, target))
    schema = load_schema(schema_file)
    validate(frame, schema)
    return schema_file.read_text(), draft_notes(frame, target), schema.features


def make_schema(tmp_path: Path, text: str, target: str) -> subprocess.CompletedProcess:
    """python -m mlops_actions.schema, as `make schema` runs it."""
    (tmp_path / "own.csv").write_text(text)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    command = ["own.csv", "--target", target, "--out", "schema.yaml"]
    return subprocess.run(
        [sys.executable, "-m", "mlops_actions.schema", *command],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def read_csv_text(text: str) -> pd.DataFrame:
    """As read_csv reads a file: every cell text, an empty one a gap."""
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""])


def only(notes: list[str], start: str) -> str:
    found = [note for note in notes if note.startswith(start)]
    assert len(found) == 1, (start, notes)
    return found[0]


# No column unique in every row: none of them is drafted as the id, all are features.
BAD_NAMES = "Comp Price,café,1Advertising,Income,Sales\n1,2,3,4,5\n1,3,3,5,6\n2,3,4,4,7\n"
REFUSED_NAMES = (
    "column name(s) 'Comp Price' (a space), 'café' ('é'), '1Advertising' (a leading digit) "
    "must start with a letter or an underscore and hold only letters, digits and underscores"
)


def test_every_bad_name_is_refused_by_the_draft_in_one_line():
    """Issue 28 (8): they passed make schema and were refused one at a time at make repro."""
    frame = read_csv_text(BAD_NAMES)
    with pytest.raises(SchemaError) as refused:
        draft(frame, "Sales")
    assert str(refused.value).startswith(REFUSED_NAMES), refused.value
    assert "\n" not in str(refused.value)


def test_make_schema_refuses_bad_names_and_writes_nothing(tmp_path):
    done = make_schema(tmp_path, BAD_NAMES, "Sales")
    assert done.returncode == 1
    assert done.stderr.startswith(f"schema: {REFUSED_NAMES}") and done.stderr.count("\n") == 1
    assert "rename them in the CSV's header" in done.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["own.csv"]


def test_a_bad_name_in_a_column_left_out_is_not_refused(tmp_path):
    """Only the names the schema holds become ONNX inputs: an empty column's name may be any."""
    text, _, features = drafted(tmp_path, "size,Comp Notes,label\n1,,yes\n2,,no\n3,,yes\n")
    assert features == {"size": "numeric"}
    assert '  # "Comp Notes": empty in every row, left out' in text


def test_numbers_with_thousands_separators_are_named_and_left_out(tmp_path):
    """Issue 28 (9): "2,760" was drafted as a category per value and trained on."""
    text, notes, features = drafted(tmp_path, MESSY)
    assert "price" not in features
    assert '  # price: numbers with thousands separators ("2,760"), left out' in text
    assert only(notes, "column 'price'") == (
        "column 'price' looks numeric with thousands separators (\"2,760\"): left out of the "
        "draft; write its numbers without separators (2760) in the CSV and run make schema again"
    )


def test_numbers_with_decimal_commas_are_named_as_such(tmp_path):
    _, notes, features = drafted(tmp_path, 'x,size,label\n"1,5",1,yes\n"2,25",1,no\n3,2,yes\n')
    assert features == {"size": "numeric"}
    assert only(notes, "column 'x'").startswith(
        "column 'x' looks numeric with decimal commas (\"1,5\"): left out of the draft; write "
        "its numbers with a decimal point (1.5)"
    )


def test_lists_with_commas_stay_categorical(tmp_path):
    """A list such as "1,2,3" reads as a number once its commas go: no note, a category."""
    _, notes, features = drafted(
        tmp_path, 'x,size,label\n"1,2,3",1,yes\n"2,3",1,no\n"1,2,3",2,yes\n'
    )
    assert features == {"x": "categorical", "size": "numeric"}
    assert not [note for note in notes if "looks numeric" in note]


def test_iso_dates_are_named_and_left_out(tmp_path):
    text, notes, features = drafted(tmp_path, MESSY)
    assert "signup" not in features
    assert '  # signup: dates ("2021-03-04"), left out' in text
    assert only(notes, "column 'signup'").startswith(
        "column 'signup' looks like dates (\"2021-03-04\"): left out of the draft, as the schema "
        "has no date type; "
    )


def test_dates_with_times_and_gap_markers_are_dates(tmp_path):
    csv = "at,size,label\n2021-03-04T10:00:00Z,1,yes\nNA,1,no\n2021-03-05 11:30,2,yes\n"
    _, notes, features = drafted(tmp_path, csv)
    assert features == {"size": "numeric"}
    assert only(notes, "column 'at'").startswith("column 'at' looks like dates")


def test_a_unique_text_column_is_the_id_and_a_second_one_is_left_out(tmp_path):
    """A key not named like one (order) is the id; another value-per-row column (email) is no
    feature either: one category per row teaches the model nothing."""
    text, notes, features = drafted(tmp_path, MESSY)
    assert "\nid: order\n" in text
    assert "order" not in features and "email" not in features
    assert only(notes, "column 'order'").startswith(
        "column 'order' is unique in every row and looks like a key: drafted as id"
    )
    assert "  # email: a different value in every row, left out" in text
    assert only(notes, "column 'email'").startswith(
        "column 'email' has a different value in every row: left out of the draft, as one "
        "category per row teaches the model nothing"
    )


def test_a_categorical_with_many_values_is_kept_with_a_warning(tmp_path):
    text, notes, features = drafted(tmp_path, MESSY)
    assert features == {"city": "categorical", "size": "numeric"}
    assert "  city: categorical  # 6 distinct values in 10 rows" in text
    assert only(notes, "column 'city'").startswith(
        "column 'city' has 6 distinct values in 10 rows: kept as categorical, but"
    )


def test_nothing_left_to_be_a_feature_is_one_line():
    frame = read_csv_text("day,label\n2021-03-04,yes\n2021-03-05,no\n")
    with pytest.raises(SchemaError, match=r"^no column is left to be a feature: 'day' \(dates\)"):
        draft(frame, "label")


def test_make_schema_says_what_it_saw_one_line_a_column(tmp_path):
    done = make_schema(tmp_path, MESSY, "label")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    for column in ["order", "signup", "price", "email", "city"]:
        assert sum(line.startswith(f"schema: column {column!r} ") for line in lines) == 1, lines
    assert load_schema(tmp_path / "schema.yaml").features == {
        "city": "categorical",
        "size": "numeric",
    }


def test_a_target_with_thousands_separators_is_refused_not_drafted_as_labels():
    """As text, "2,760" would be drafted as one class label per price."""
    frame = read_csv_text('price,size\n"2,760",1\n"1,045",1\n980,2\n')
    with pytest.raises(
        SchemaError,
        match=r'^target \'price\' looks numeric with thousands separators \("2,760"\): write ',
    ):
        draft(frame, "price")


def test_a_csv_of_only_the_target_is_one_line():
    with pytest.raises(
        SchemaError, match=r"^no column is left to be a feature: the CSV holds only"
    ):
        draft(read_csv_text("y\n1\n2\n"), "y")
