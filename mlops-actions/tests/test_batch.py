"""Batch scoring (batch.py, `make score`): every row of a CSV or a folder scored by the model file
with onnxruntime, as the records `make performance` joins on; the split's keys; CSV and Parquet;
chunks that change nothing but memory; and a bad file refused in one line, OUT left as it was."""

import dataclasses
import hashlib
import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_actions import batch
from mlops_actions.errors import PipelineError
from mlops_actions.export import convert
from mlops_actions.features import feed
from mlops_actions.onnx_model import load_session
from mlops_actions.schema import (
    Schema,
    SchemaError,
    read_csv,
    read_csv_chunks,
    validate,
    validate_features,
)
from mlops_actions.split import record_keys

SRC = Path(__file__).resolve().parents[1] / "src"
HEAD = ["key", "model_version", "model_sha256", "scored_at"]
ISO_UTC_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00")


@pytest.fixture(scope="session")
def model_file(train, train_test, schema, params, tmp_path_factory) -> Path:
    """The project's model, trained on its train split and exported as the export stage does."""
    model = train(train_test[0], schema, params["train"], params["base"]["seed"])
    path = tmp_path_factory.mktemp("model") / "model.onnx"
    path.write_bytes(convert(model, schema, model_version="1.4.2", git_sha="0" * 40))
    return path


@pytest.fixture
def data(starter, tmp_path) -> Path:
    """The starter rows as a CSV, target and all, as the data stage writes it."""
    path = tmp_path / "rows.csv"
    starter.to_csv(path, index=False)
    return path


def score(project: Path, model: Path, source: Path, out: Path, *options: str) -> None:
    """`make score` as the Makefile runs it, in this process."""
    argv = ["--input", str(source), "--out", str(out), "--model", str(model)]
    argv += ["--schema", str(project / "data/schema.yaml"), *options]
    run_main(*argv)


def read_records(out: Path, model: Path) -> pd.DataFrame:
    """OUT as written, every column in its record type (a CSV read by that schema)."""
    session, metadata = load_session(model.read_bytes())
    types = batch.record_schema(batch.Model(session, metadata, [], "", ""))
    if out.suffix == ".parquet":
        table = pq.read_table(out)
        assert table.schema == types
    else:
        names = out.read_text().split("\n", 1)[0].replace('"', "").split(",")
        assert names == types.names
        table = pa_csv.read_csv(out, convert_options=pa_csv.ConvertOptions(column_types=types))
    frame = table.to_pandas()
    text = [field.name for field in types if field.type == "string"]
    return frame.astype(dict.fromkeys(text, object))


def expected(model: Path, path: Path, schema: Schema) -> pd.DataFrame:
    """What onnxruntime answers on the file's rows as the pipeline reads them (read_csv and
    validate, whole), fed as export typed them."""
    rows = validate(read_csv(path), schema)
    session, metadata = load_session(model.read_bytes())
    names = [output.name for output in session.get_outputs()]
    outputs = dict(
        zip(names, session.run(names, feed(rows, metadata["features"], "")), strict=True)
    )
    frame = pd.DataFrame({"key": record_keys(rows, schema)})
    if metadata["labels"] is None:
        frame["value"] = outputs["variable"].ravel().astype(np.float32)
    else:
        frame["label"] = pd.Series(outputs["label"].ravel().astype(str), dtype=object)
        for index, label in enumerate(metadata["labels"]):
            frame[f"proba_{label}"] = outputs["probabilities"][:, index].astype(np.float32)
    return frame


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_records_are_onnxruntime_on_the_same_rows(
    project, model_file, data, schema, tmp_path, suffix
):
    out = tmp_path / f"predictions{suffix}"
    score(project, model_file, data, out, "--chunk-rows", "100")
    records = read_records(out, model_file)
    assert list(records.columns[:4]) == HEAD
    assert set(records["model_version"]) == {"1.4.2"}
    assert set(records["model_sha256"]) == {hashlib.sha256(model_file.read_bytes()).hexdigest()}
    assert records["scored_at"].map(ISO_UTC_MS.fullmatch).all()
    # Rows 0-99 are one chunk, scored at one time.
    assert records["scored_at"].iloc[:100].nunique() == 1
    pd.testing.assert_frame_equal(
        records.drop(columns=HEAD[1:]), expected(model_file, data, schema)
    )


def test_keys_are_the_split_s_keys(project, model_file, data, starter, parts, schema, tmp_path):
    """A record's key is the key its row is split by: predictions join the split (and the labels
    that come back) on it, whether the batch holds the target or not."""
    out = tmp_path / "predictions.parquet"
    score(project, model_file, data, out)
    keys = read_records(out, model_file)["key"]
    assert keys.tolist() == record_keys(starter, schema).tolist()
    assert keys.str.fullmatch(r"[0-9a-f]{16}").all() or schema.id is not None
    holdout_keys = set(record_keys(parts.holdout, schema))
    assert holdout_keys and holdout_keys <= set(keys)

    without_target = tmp_path / "batch.csv"
    pd.read_csv(data).drop(columns=schema.target).to_csv(without_target, index=False)
    score(project, model_file, without_target, tmp_path / "again.parquet")
    assert read_records(tmp_path / "again.parquet", model_file)["key"].equals(keys)


def test_chunks_change_nothing_but_the_time(project, model_file, data, tmp_path):
    """Chunks of one row and of all rows (150 of them: a run per row costs)."""
    head = tmp_path / "head.csv"
    pd.read_csv(data, dtype=str, keep_default_na=False).head(150).to_csv(head, index=False)
    one, large = tmp_path / "one.csv", tmp_path / "large.csv"
    score(project, model_file, head, one, "--chunk-rows", "1")
    score(project, model_file, head, large, "--chunk-rows", "100000")
    first, second = (
        read_records(out, model_file).drop(columns="scored_at") for out in (one, large)
    )
    assert len(first) == 150
    pd.testing.assert_frame_equal(first, second)


def test_a_folder_is_every_csv_in_it_by_name(project, model_file, data, tmp_path):
    rows = pd.read_csv(data, dtype=str, keep_default_na=False)
    folder = tmp_path / "incoming"
    folder.mkdir()
    thirds = np.array_split(np.arange(len(rows)), 3)
    for name, part in zip(["b.csv", "c.csv", "a.csv"], thirds, strict=True):
        rows.iloc[part].to_csv(folder / name, index=False)
    (folder / "notes.txt").write_text("not a batch\n")
    whole, parts = tmp_path / "whole.parquet", tmp_path / "parts.parquet"
    score(project, model_file, data, whole)
    score(project, model_file, folder, parts)
    in_name_order = np.concatenate([thirds[2], thirds[0], thirds[1]])
    expected_records = read_records(whole, model_file).iloc[in_name_order].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        read_records(parts, model_file).drop(columns="scored_at"),
        expected_records.drop(columns="scored_at"),
    )


def leftovers(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.endswith(".part"))


def refused(project: Path, model: Path, source: Path, out: Path, *options: str) -> str:
    with pytest.raises(PipelineError) as error:
        score(project, model, source, out, *options)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_a_bad_cell_is_refused_by_file_column_and_row_and_out_stays(
    project, model_file, data, schema, tmp_path
):
    column = schema.numeric[0]
    rows = pd.read_csv(data, dtype=str, keep_default_na=False)
    rows.loc[250, column] = "12,5 mm"
    bad = tmp_path / "bad.csv"
    rows.to_csv(bad, index=False)
    out = tmp_path / "predictions.csv"
    # A new OUT: none after the failure, though two chunks were written before it.
    message = refused(project, model_file, bad, out, "--chunk-rows", "100")
    assert message == (
        f"{bad} (data rows 201-300): column {column!r} should be numeric but 1 of 100 rows are "
        "not (first: '12,5 mm' in data row 251)"
    )
    assert not out.exists() and leftovers(tmp_path) == []
    # An OUT from an earlier run stays as it was.
    out.write_text("the last good run\n")
    refused(project, model_file, bad, out, "--chunk-rows", "100")
    assert out.read_text() == "the last good run\n" and leftovers(tmp_path) == []


def test_true_and_false_in_a_numeric_column_are_refused_as_words(
    project, model_file, data, schema, tmp_path
):
    """pandas reads a chunk's column of true/false words alone as booleans, which would score as
    1 and 0: the words are refused, as the pipeline refuses them."""
    column = schema.numeric[-1]
    rows = pd.read_csv(data, dtype=str, keep_default_na=False)
    rows.loc[100:199, column] = "TRUE"
    bad = tmp_path / "words.csv"
    rows.to_csv(bad, index=False)
    message = refused(project, model_file, bad, tmp_path / "out.csv", "--chunk-rows", "100")
    assert message == (
        f"{bad} (data rows 101-200): column {column!r} should be numeric but 100 of 100 rows "
        "are not (first: 'TRUE' in data row 101)"
    )


def test_a_missing_column_and_a_file_that_is_no_csv_are_refused(
    project, model_file, data, schema, tmp_path
):
    first = next(iter(schema.features))
    lacking = tmp_path / "lacking.csv"
    pd.read_csv(data).drop(columns=first).to_csv(lacking, index=False)
    assert refused(project, model_file, lacking, tmp_path / "o.csv") == (
        f"{lacking}: missing column(s) {first!r}"
    )
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes(data.read_bytes() + "caf\xe9\n".encode("latin-1") * 20_000)
    assert refused(project, model_file, latin1, tmp_path / "o.csv").startswith(
        f"{latin1}: not UTF-8 text (byte 0xe9 on line {len(data.read_text().splitlines()) + 1})"
    )
    assert refused(project, model_file, data, tmp_path / "o.json") == (
        f"{tmp_path / 'o.json'}: OUT must end in .csv or .parquet"
    )
    # A schema that lost a feature the model reads: the model of another schema.
    other = tmp_path / "other"
    (other / "data").mkdir(parents=True)
    text = yaml.safe_load((project / "data/schema.yaml").read_text())
    kind = text["features"].pop(first)
    (other / "data/schema.yaml").write_text(yaml.safe_dump(text))
    assert refused(other, model_file, data, tmp_path / "o.csv") == (
        f"{model_file} reads `{first}` ({kind}), which the schema does not list as such: score "
        "with the model of this schema (make repro)"
    )
    assert leftovers(tmp_path) == []


def test_a_row_without_its_id_is_refused(project, model_file, starter, schema, tmp_path):
    with_id = dataclasses.replace(schema, id="row_id")
    schema_file = tmp_path / "schema.yaml"
    text = (project / "data/schema.yaml").read_text()
    schema_file.write_text(f"id: row_id\n{text}")
    rows = starter.assign(row_id=[f"r{number}" for number in range(len(starter))])
    rows.loc[7, "row_id"] = None
    path = tmp_path / "rows.csv"
    rows.to_csv(path, index=False)
    out = tmp_path / "o.parquet"
    argv = ["--input", str(path), "--out", str(out), "--model", str(model_file)]
    old, sys.argv = sys.argv, ["batch", *argv, "--schema", str(schema_file)]
    try:
        with pytest.raises(PipelineError) as error:
            batch.main()
        assert str(error.value) == (
            f"{path} (data rows 1-{len(rows)}): id column 'row_id' is empty in 1 of "
            f"{len(rows)} rows (data row 8): every row needs its id, the key of its record"
        )
        rows.loc[7, "row_id"] = "r7"
        rows.to_csv(path, index=False)
        batch.main()
    finally:
        sys.argv = old
    assert read_records(out, model_file)["key"].tolist() == rows["row_id"].tolist()
    assert record_keys(validate(rows, with_id), with_id).tolist() == rows["row_id"].tolist()


def test_the_command_imports_no_scikit_learn_and_fails_in_one_line(
    project, model_file, data, tmp_path
):
    """The model file and onnxruntime score, as in serving: scikit-learn is never imported."""
    out = tmp_path / "records.parquet"
    check = (
        "import sys\n"
        "from mlops_actions import batch\n"
        "batch.main()\n"
        "assert 'sklearn' not in sys.modules, sorted(m for m in sys.modules if 'sklearn' in m)\n"
    )
    argv = ["--input", str(data), "--out", str(out), "--model", str(model_file)]
    argv += ["--schema", str(project / "data/schema.yaml")]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    run = subprocess.run(
        [sys.executable, "-c", check, *argv], env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(f"score: {len(pd.read_csv(data)):,} rows of 1 file(s) -> {out}")
    failed = subprocess.run(
        [sys.executable, "-m", "mlops_actions.batch", *argv[:2], "--out", str(tmp_path / "x.txt")],
        env=env,
        capture_output=True,
        text=True,
    )
    assert failed.returncode == 1
    assert failed.stderr == f"score: {tmp_path / 'x.txt'}: OUT must end in .csv or .parquet\n"


# --- the reading: pandas' number parsing and validate's rules agree ---------------------------

SCHEMA = Schema(target="y", features={"x": "numeric", "c": "categorical"}, labels=("a", "b"))
NUMBER_TEXT = st.one_of(
    st.floats(allow_nan=False).map(repr),
    st.floats(-1e6, 1e6).map(lambda value: f"{value:.3f}"),
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(
        ["", " 1.5", "1.5 ", "+1", "-0", "1e3", "1E-2", ".5", "1.", "inf", "-Infinity"]
    ),
    st.sampled_from(["nan", "NaN", "NA", "True", "TRUE", "false", "1,5", "0x10", "1_000", "abc"]),
    st.text(alphabet="0123456789.eE+- naif", max_size=6),
)


@settings(max_examples=150, deadline=None)
@given(cells=st.lists(NUMBER_TEXT, min_size=1, max_size=12), rows=st.integers(1, 5))
def test_numbers_read_by_pandas_are_validate_s_numbers(tmp_path_factory, cells, rows):
    """read_csv_chunks' fast path (pandas parses a column of numbers itself) gives the values,
    or the refusal, that validate gives on the same cells read as text."""
    path = tmp_path_factory.mktemp("cells") / "cells.csv"
    cells = [cell.replace(",", "") if cell != "1,5" else '"1,5"' for cell in cells]
    path.write_text("x,c\n" + "".join(f"{cell},k\n" for cell in cells))

    def typed(chunks) -> pd.DataFrame | str:
        try:
            return pd.concat(validate_features(chunk, SCHEMA, "cells") for chunk in chunks)
        except SchemaError as error:
            return re.sub(r"\d+ of \d+ rows", "N rows", str(error))

    fast = typed(read_csv_chunks(path, rows, ["x", "c"], ["x"]))
    text = typed(read_csv_chunks(path, rows, ["x", "c"]))
    if isinstance(text, str) or isinstance(fast, str):
        assert fast == text
    else:
        assert np.array_equal(fast["x"].to_numpy(), text["x"].to_numpy(), equal_nan=True)
        whole = validate_features(read_csv(path), SCHEMA, "cells")
        assert np.array_equal(fast["x"].to_numpy(), whole["x"].to_numpy(), equal_nan=True)


# Shards: batch-score.yml's plan, shard and join jobs, as `make score-plan`, `make score ROWS=`
# and `make score-join` run them.
SCORED_AT = "2026-12-07T06:37:00+00:00"


@given(rows=st.integers(0, 5_000), shards=st.integers(1, batch.MAX_SHARDS))
def test_shard_ranges_cover_every_row_once_in_order(rows, shards):
    ranges = batch.shard_ranges(rows, shards)
    assert [row for part in ranges for row in part] == list(range(rows))
    assert len(ranges) == min(rows, shards) and all(len(part) for part in ranges)
    assert max(map(len, ranges), default=0) - min(map(len, ranges), default=0) <= 1


def run_main(*argv: str) -> None:
    old = sys.argv
    sys.argv = ["mlops_actions.batch", *argv]
    try:
        batch.main()
    finally:
        sys.argv = old


def planned(project: Path, source: Path, shards: int, capsys, *options: str) -> dict[str, str]:
    """`make score-plan`'s key=value lines."""
    capsys.readouterr()
    schema = str(project / "data/schema.yaml")
    run_main("--input", str(source), "--plan", str(shards), "--schema", schema, *options)
    return dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())


def sharded(project, model, source, out, shards, capsys, tmp_path) -> dict[str, str]:
    """Plan, score each shard, join into `out`: the workflow's three jobs. Chunks of 64 rows, as
    the one run they are compared with reads them, so shards start and stop inside chunks."""
    plan = planned(project, source, shards, capsys, "--scored-at", SCORED_AT)
    parts = tmp_path / "parts"
    for entry in json.loads(plan["matrix"])["include"]:
        options = ["--rows", entry["rows"], "--scored-at", plan["scored-at"], "--chunk-rows", "64"]
        score(project, model, source, parts / f"{entry['shard']}.parquet", *options)
    summary = str(tmp_path / "summary.md")
    run_main(
        "--join", str(parts), "--out", str(out), "--expect-rows", plan["rows"], "--summary", summary
    )
    return plan


def uneven_folder(rows: pd.DataFrame, folder: Path) -> None:
    """The rows in four files of uneven sizes, one of them a header alone."""
    folder.mkdir()
    cuts = [0, 7, 7, 300, len(rows)]
    for index, (start, stop) in enumerate(itertools.pairwise(cuts)):
        rows.iloc[start:stop].to_csv(folder / f"part-{index}.csv", index=False)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("source_kind", ["file", "folder"])
def test_shards_joined_are_one_run(
    project, model_file, data, capsys, tmp_path, suffix, source_kind
):
    source = data
    if source_kind == "folder":
        source = tmp_path / "incoming"
        uneven_folder(pd.read_csv(data, dtype=str, keep_default_na=False), source)
    whole, joined = tmp_path / f"whole{suffix}", tmp_path / f"joined{suffix}"
    score(project, model_file, source, whole, "--scored-at", SCORED_AT, "--chunk-rows", "64")
    plan = sharded(project, model_file, source, joined, 3, capsys, tmp_path)

    rows = len(pd.read_csv(data))
    assert plan["rows"] == str(rows) and plan["shards"] == "3"
    assert plan["scored-at"] == "2026-12-07T06:37:00.000+00:00"
    assert [entry["rows"] for entry in json.loads(plan["matrix"])["include"]] == [
        f"{part.start}:{part.stop}" for part in batch.shard_ranges(rows, 3)
    ]
    if suffix == ".csv":
        assert joined.read_bytes() == whole.read_bytes()
    else:
        assert pq.read_table(joined).equals(pq.read_table(whole))
    records = read_records(joined, model_file)
    assert len(records) == rows and records["key"].is_unique
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith(f"## Batch scoring: {rows:,} rows in 3 shard(s)")
    assert f"sha256 `{hashlib.sha256(model_file.read_bytes()).hexdigest()}`" in summary
    if "label" in records:
        for label, count in records["label"].value_counts().items():
            assert f"| {label} | {count:,} | {count / rows:.1%} |" in summary
    else:
        values = records["value"].astype(float)
        low, mean, high = values.min(), values.mean(), values.max()
        assert f"| predicted | {low:.6g} | {mean:.6g} | {high:.6g} |" in summary


def test_more_shards_than_rows_make_a_shard_a_row(project, model_file, data, capsys, tmp_path):
    head = tmp_path / "head.csv"
    pd.read_csv(data, dtype=str, keep_default_na=False).head(5).to_csv(head, index=False)
    whole, joined = tmp_path / "whole.csv", tmp_path / "joined.csv"
    score(project, model_file, head, whole, "--scored-at", SCORED_AT, "--chunk-rows", "64")
    plan = sharded(project, model_file, head, joined, batch.MAX_SHARDS, capsys, tmp_path)
    assert plan["shards"] == "5"
    assert [entry["rows"] for entry in json.loads(plan["matrix"])["include"]] == [
        "0:1",
        "1:2",
        "2:3",
        "3:4",
        "4:5",
    ]
    assert joined.read_bytes() == whole.read_bytes()


def test_an_empty_input_and_bad_shards_are_refused_in_one_line(
    project, model_file, data, capsys, tmp_path
):
    empty = tmp_path / "empty.csv"
    empty.write_text(data.read_text().split("\n", 1)[0] + "\n")
    with pytest.raises(PipelineError, match=r"^INPUT holds no rows to score$"):
        planned(project, empty, 3, capsys)
    out = tmp_path / "out.csv"
    assert refused(project, model_file, empty, out, "--rows", "0:1") == (
        "INPUT holds no rows to score"
    )
    # Rows past the end are none to score either.
    assert refused(project, model_file, data, out, "--rows", "9000:9001") == (
        "INPUT holds no rows to score"
    )
    for shards in (0, batch.MAX_SHARDS + 1):
        with pytest.raises(PipelineError, match=f"^SHARDS must be 1 to 32, not {shards}$"):
            planned(project, data, shards, capsys)
    for rows in ("5", "5:5", "-1:3", "a:b"):
        with pytest.raises(PipelineError, match="is not START:STOP"):
            batch.row_range(rows)
    with pytest.raises(PipelineError, match="not an ISO 8601 time with an offset"):
        batch.scored_time("2026-12-07T06:37:00")
    assert not out.exists() and leftovers(tmp_path) == []


def test_a_missing_shard_is_refused_and_out_stays(project, model_file, data, capsys, tmp_path):
    plan = planned(project, data, 3, capsys)
    parts = tmp_path / "parts"
    entries = json.loads(plan["matrix"])["include"]
    for entry in entries[:2]:  # the third shard's job failed
        out = parts / f"{entry['shard']}.parquet"
        score(project, model_file, data, out, "--rows", entry["rows"])
    out = tmp_path / "joined.csv"
    out.write_text("the last good run\n")
    with pytest.raises(PipelineError) as error:
        run_main("--join", str(parts), "--out", str(out), "--expect-rows", plan["rows"])
    held = sum(len(range(*map(int, entry["rows"].split(":")))) for entry in entries[:2])
    assert str(error.value) == (
        f"{parts}: 2 shard(s) hold {held:,} rows, not the {int(plan['rows']):,} INPUT holds: "
        "a shard is missing or was cut otherwise"
    )
    assert out.read_text() == "the last good run\n" and leftovers(tmp_path) == []
    with pytest.raises(PipelineError, match="no shard records"):
        run_main("--join", str(tmp_path / "nothing"), "--out", str(out))


def test_shards_of_two_models_are_refused(project, model_file, data, capsys, tmp_path):
    """A shard scored by another release's model (the same columns) is no part of this batch."""
    other = tmp_path / "other.onnx"
    model = onnx.load(model_file)
    for prop in model.metadata_props:
        if prop.key == "model_version":
            prop.value = "9.9.9"
    onnx.save(model, other)
    plan = planned(project, data, 2, capsys)
    parts = tmp_path / "parts"
    entries = json.loads(plan["matrix"])["include"]
    for entry, scorer in zip(entries, [model_file, other], strict=True):
        out = parts / f"{entry['shard']}.parquet"
        score(project, scorer, data, out, "--rows", entry["rows"])
    out = tmp_path / "joined.parquet"
    with pytest.raises(PipelineError) as error:
        run_main("--join", str(parts), "--out", str(out), "--expect-rows", plan["rows"])
    sha = hashlib.sha256(model_file.read_bytes()).hexdigest()[:12]
    other_sha = hashlib.sha256(other.read_bytes()).hexdigest()[:12]
    assert str(error.value) == (
        f"the shards were scored by different models: 1.4.2 ({sha}), 9.9.9 ({other_sha})"
    )
    assert not out.exists() and leftovers(tmp_path) == []
