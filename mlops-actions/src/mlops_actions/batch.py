"""Batch scoring, `make score INPUT=<csv or folder> OUT=<file>`: every row of INPUT scored by a
model file (models/model.onnx) with onnxruntime, written as prediction records.

The record format, one record per scored row, its columns in this order (what `make performance`
joins with the labels that come back, and what the split keys):

- `key`: the schema's `id` column, else 16 hex digits hashing the row's feature values: the key
  the split puts the row on its side by (split.record_keys), so a scored row meets its training,
  test or holdout copy, and the label that comes back for it;
- `model_version` (the model's ONNX metadata) and `model_sha256` (of the model file's bytes);
- `scored_at`: ISO 8601 UTC with milliseconds, one time per chunk of rows;
- classification: `label`, then `proba_<label>` for each label in the model's order; regression:
  `value`. Float32, the model's own outputs.

OUT's suffix picks the file type: `.csv`, or `.parquet` (typed columns, compressed). Both are
written by pyarrow, whose CSV writer takes a fifth of the time of pandas' `to_csv` here. A CSV
reader should read `key` as text (pandas: `dtype={"key": str}`): a hash of digits alone would
lose its leading zeros.

Flat memory: INPUT (a CSV, or every *.csv of a folder by name) is read `--chunk-rows` rows at a
time by the pipeline's own reading rules (schema.read_csv_chunks, then validate_features), the
next chunk in a thread while this one is scored, fed to the model as export typed it
(features.feed), and appended to a file beside OUT that is renamed onto OUT once every chunk is
scored: a failure leaves OUT as it was, absent or the last good run's. Refused in one line
naming the file, the column and the data row (1 = the first row after the header): a cell a
numeric column cannot read, a row without its id, a missing column.
A target column is not needed, and is ignored when there.

Only the model file and onnxruntime score: no scikit-learn is imported (tests/test_batch.py runs
this in a fresh interpreter to check), as in serving.

Shards (batch-score.yml fans them over a matrix of jobs): INPUT's rows are numbered from 0 over its
files in name order; `--plan N` counts them and cuts them into at most N (≤ 32) contiguous ranges,
`--rows START:STOP` scores one range (a file wholly before START is only counted, never scored),
and `--join FOLDER` writes the shards' records (FOLDER/*.parquet, by name) into OUT with the same
writer. A shard scores whole chunks, as one run does, and keeps its rows of them: onnxruntime's
float32 results can differ in their last digits with the batch a row is in. So with one
`--scored-at` time for every shard and the same `--chunk-rows`, the joined OUT is byte for byte
the file one run writes.
"""

import argparse
import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from .errors import PipelineError, run_stage
from .features import feed
from .onnx_model import load_session
from .schema import (
    Schema,
    SchemaError,
    csv_files,
    data_rows,
    load_schema,
    read_csv_chunks,
    validate_features,
)
from .split import key_values

# Rows per chunk: large enough that onnxruntime's per-call cost and pandas' per-chunk cost vanish,
# small enough that a chunk of a hundred features stays within tens of megabytes.
CHUNK_ROWS = 50_000
SUFFIXES = (".csv", ".parquet")
REPEATED = ["model_version", "model_sha256", "scored_at", "label"]
# onnxruntime's threads sleep between runs instead of spinning (its "Thread management" docs:
# session.intra_op.allow_spinning). Between two chunks the CPU goes to parsing the next one, and
# on a shared machine (a CI runner, a pod's CPU quota) onnxruntime alone scored twice the rows per
# second without the spinning (bench/batch.py, 2 cores).
SESSION_CONFIG = {"session.intra_op.allow_spinning": "0"}
# A matrix of more shards costs more runner start-ups (install, pull, model download) than it saves.
MAX_SHARDS = 32


class Model(NamedTuple):
    """A model file loaded for scoring: session, metadata, outputs, and what records say of it."""

    session: Any
    metadata: dict[str, Any]
    outputs: list[str]
    version: str
    sha256: str


def load_model(content: bytes, what: str, schema: Schema) -> Model:
    """The model in `content`, refused in one line when it reads a feature the schema does not
    list as it does: a model of another schema, whose rows' types and keys are not these."""
    session, metadata = load_session(content, what, SESSION_CONFIG)
    differ = [
        f"`{name}` ({kind})"
        for name, kind in metadata["features"].items()
        if schema.features.get(name) != kind
    ]
    if differ:
        raise PipelineError(
            f"{what} reads {', '.join(differ)}, which the schema does not list as such: score "
            "with the model of this schema (make repro)"
        )
    return Model(
        session,
        metadata,
        [output.name for output in session.get_outputs()],
        metadata.get("model_version", "unknown"),
        hashlib.sha256(content).hexdigest(),
    )


def record_schema(model: Model) -> pa.Schema:
    """The records' columns and types (the module docstring's format)."""
    fields = [(name, pa.string()) for name in ("key", "model_version", "model_sha256", "scored_at")]
    labels = model.metadata["labels"]
    if labels is None:
        fields.append(("value", pa.float32()))
    else:
        fields.append(("label", pa.string()))
        fields += [(f"proba_{label}", pa.float32()) for label in labels]
    return pa.schema(fields)


def parsed_numbers(schema: Schema) -> list[str]:
    """The numeric columns pandas may parse itself (read_csv_chunks' `numbers`): all of them,
    unless a missing_values marker is a number too (-999), which only validate's rules, on the
    text, tell from that number."""
    markers = pd.to_numeric(pd.Series(schema.missing_values, dtype=object), errors="coerce")
    return [] if markers.notna().any() else schema.numeric


def typed_rows(chunk: pd.DataFrame, schema: Schema, path: Path) -> pd.DataFrame:
    """A chunk of the file at `path` typed as validate_features types features, with the id
    column (as text) when the schema names one. Refused in one line: a missing column, a cell a
    numeric column cannot read, a row without its id."""
    required = [*([schema.id] if schema.id else []), *schema.features]
    missing = [column for column in required if column not in chunk.columns]
    if missing:
        raise SchemaError(f"{path}: missing column(s) {', '.join(map(repr, missing))}")
    # validate's counts are of this chunk's rows, so the message says which rows those are.
    source = f"{path} (data rows {chunk.index[0] + 1}-{chunk.index[-1] + 1})"
    typed = validate_features(chunk, schema, source)
    if schema.id is not None:
        ids = chunk[schema.id]
        empty = ids.index[ids.isna()]
        if len(empty):
            raise SchemaError(
                f"{source}: id column {schema.id!r} is empty in {len(empty)} of {len(ids)} rows "
                f"({data_rows(empty)}): every row needs its id, the key of its record"
            )
        typed.insert(0, schema.id, ids.astype(str).astype(object))
    return typed


def records(rows: pd.DataFrame, model: Model, schema: Schema, scored_at: str) -> pa.Table:
    """The prediction records of typed rows (`typed_rows`), as one table."""
    try:
        answers = model.session.run(
            model.outputs, feed(rows, model.metadata["features"], "the model")
        )
    except PipelineError:
        raise
    except Exception as err:  # onnxruntime's own failures, such as a type mismatch
        raise PipelineError(f"the model failed on these rows: {str(err).splitlines()[0]}") from None
    outputs = dict(zip(model.outputs, answers, strict=True))
    keys = key_values(rows, schema)
    count = len(rows)
    columns = [
        # Hashes as fixed 16-byte values, then text: from numpy's bytes without the fixed width,
        # the cast took forty times as long.
        pa.array(keys, pa.string() if keys.dtype == object else pa.binary(16)).cast(pa.string()),
        *(pa.repeat(pa.scalar(text), count) for text in (model.version, model.sha256, scored_at)),
    ]
    if model.metadata["labels"] is None:
        columns.append(pa.array(outputs["variable"].ravel().astype(np.float32)))
    else:
        columns.append(pa.array(outputs["label"].ravel().astype(object), pa.string()))
        probabilities = outputs["probabilities"].astype(np.float32)
        columns += [pa.array(probabilities[:, index]) for index in range(probabilities.shape[1])]
    return pa.Table.from_arrays(columns, schema=record_schema(model))


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def scored_time(text: str) -> str:
    """`--scored-at`: an ISO 8601 time with its offset, written as the records write times."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise PipelineError(
            f"--scored-at {text!r} is not an ISO 8601 time with an offset "
            "(e.g. 2026-12-07T06:37:00+00:00)"
        )
    return when.astimezone(UTC).isoformat(timespec="milliseconds")


def row_range(text: str) -> range:
    """`--rows START:STOP`: rows START to STOP - 1, numbered from 0 over INPUT's files."""
    start, _, stop = text.partition(":")
    if not (start.isdigit() and stop.isdigit() and int(start) < int(stop)):
        raise PipelineError(
            f"--rows {text!r} is not START:STOP with 0 <= START < STOP (rows numbered from 0)"
        )
    return range(int(start), int(stop))


def shard_ranges(rows: int, shards: int) -> list[range]:
    """`rows` rows cut into `shards` contiguous ranges, in order, sizes within one of each other;
    fewer when there are fewer rows than shards (a range is never empty), none without rows."""
    count = min(shards, rows)
    return [range(rows * i // count, rows * (i + 1) // count) for i in range(count)]


def read_columns(schema: Schema) -> list[str]:
    return [*([schema.id] if schema.id else []), *schema.features]


def count_rows(path: Path, schema: Schema, chunk_rows: int) -> int:
    """The file's data rows as scoring reads them (the same reader and tokenizer), converting
    one column only."""
    first = read_columns(schema)[:1]
    return sum(len(chunk) for chunk in read_csv_chunks(path, chunk_rows, first))


def read_ahead(items: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """`items`, the next one read in a thread while the caller works on this one: pandas' parser
    and onnxruntime both release the GIL, so reading the next chunk overlaps scoring this one
    (bench/batch.py). One item is held ahead; its error comes when it is reached."""
    with ThreadPoolExecutor(1, thread_name_prefix="read-ahead") as pool:
        ahead = pool.submit(next, items, None)
        while (item := ahead.result()) is not None:
            ahead = pool.submit(next, items, None)
            yield item


def scored(
    files: list[Path],
    model: Model,
    schema: Schema,
    chunk_rows: int,
    rows: range | None = None,
    scored_at: str | None = None,
) -> Iterator[pa.Table]:
    """Every file's records, chunk by chunk; with `rows`, only those rows' (module docstring):
    reading stops once past them."""
    offset = 0  # the number of INPUT's first row in the file or chunk at hand
    for path in files:
        if rows is not None and offset < rows.start:
            counted = count_rows(path, schema, chunk_rows)
            if offset + counted <= rows.start:
                offset += counted
                continue
        chunks = read_csv_chunks(path, chunk_rows, read_columns(schema), parsed_numbers(schema))
        for chunk in read_ahead(chunks):
            first, offset = offset, offset + len(chunk)
            if rows is not None and offset <= rows.start:
                continue
            # The whole chunk is scored, as one run scores it, and then cut: onnxruntime's
            # float32 sums depend on the batch (its kernels block rows), so the same rows in
            # another batch may differ in the last digits.
            table = records(typed_rows(chunk, schema, path), model, schema, scored_at or now())
            if rows is not None:
                start = max(rows.start - first, 0)
                table = table.slice(start, min(rows.stop - first, len(chunk)) - start)
            yield table
            if rows is not None and offset >= rows.stop:
                return


def write(tables: Iterator[pa.Table], out: Path, schema: pa.Schema) -> int:
    """`tables` into OUT (CSV or Parquet by its suffix) through a file beside it, renamed onto OUT
    once the last table is written; on any failure the file goes and OUT stays as it was. The
    number of rows written."""
    part = out.with_name(f".{out.name}.{os.getpid()}.part")
    writer: Any = (
        # Dictionary encoding where values repeat; keys and probabilities would only pay for it.
        pq.ParquetWriter(str(part), schema, use_dictionary=REPEATED)
        if out.suffix == ".parquet"
        else pa_csv.CSVWriter(str(part), schema)
    )
    rows = 0
    try:
        try:
            for table in tables:
                writer.write_table(table)
                rows += table.num_rows
        finally:
            writer.close()
        if not rows:
            raise PipelineError("INPUT holds no rows to score")
        os.replace(part, out)
    except BaseException:  # Ctrl-C too: nothing half-written is left beside OUT
        part.unlink(missing_ok=True)
        raise
    return rows


def plan(rows: int, shards: int, scored_at: str) -> str:
    """`--plan`: the shards of `rows` rows as `key=value` lines (what $GITHUB_OUTPUT reads): the
    row count, the shard count, the one scoring time for all, and the matrix, one entry a shard
    (`shard`, its zero-padded number, which orders the join; `rows`, START:STOP)."""
    if not 1 <= shards <= MAX_SHARDS:
        raise PipelineError(f"SHARDS must be 1 to {MAX_SHARDS}, not {shards}")
    if not rows:
        raise PipelineError("INPUT holds no rows to score")
    ranges = shard_ranges(rows, shards)
    include = [
        {"shard": f"{index:02d}", "rows": f"{part.start}:{part.stop}"}
        for index, part in enumerate(ranges)
    ]
    matrix = json.dumps({"include": include}, separators=(",", ":"))
    return f"rows={rows}\nshards={len(ranges)}\nscored-at={scored_at}\nmatrix={matrix}\n"


def shard_files(folder: Path) -> list[Path]:
    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    if not files:
        raise PipelineError(f"{folder}: no shard records (*.parquet) in it")
    return files


def shard_tables(files: list[Path], schema: pa.Schema) -> Iterator[pa.Table]:
    """The shards' records in order, a row group at a time; refused when a shard's columns are
    not the first one's (a model of other labels)."""
    for path in files:
        parquet = pq.ParquetFile(path)
        if not parquet.schema_arrow.equals(schema):
            raise PipelineError(f"{path}: its columns are not those of {files[0].name}'s records")
        for index in range(parquet.num_row_groups):
            yield parquet.read_row_group(index)


class Tally:
    """What the summary says of the records, counted as they go by: rows, the model (one, or the
    join is refused), labels or values."""

    def __init__(self) -> None:
        self.rows = 0
        self.model: tuple[str, str] | None = None
        self.labels: Counter[str] = Counter()
        self.values: list[tuple[float, float, float]] = []  # min, max, sum of each table

    def counted(self, tables: Iterable[pa.Table]) -> Iterator[pa.Table]:
        for table in tables:
            models = {
                (row["model_version"], row["model_sha256"])
                for row in table.select(["model_version", "model_sha256"])
                .group_by(["model_version", "model_sha256"])
                .aggregate([])
                .to_pylist()
            }
            if self.model is not None:
                models.add(self.model)
            if len(models) > 1:
                raise PipelineError(
                    "the shards were scored by different models: "
                    + ", ".join(f"{version} ({sha[:12]})" for version, sha in sorted(models))
                )
            self.model = next(iter(models), self.model)
            self.rows += table.num_rows
            if "label" in table.column_names:
                for entry in pc.value_counts(table["label"]).to_pylist():
                    self.labels[entry["values"]] += entry["counts"]
            elif table.num_rows:
                extremes = pc.min_max(table["value"]).as_py()
                total = pc.sum(table["value"].cast(pa.float64())).as_py()
                self.values.append((extremes["min"], extremes["max"], total))
            yield table


def summary(tally: Tally, shards: int, out: Path, release: str | None = None) -> str:
    """The job summary of a joined batch (markdown)."""
    version, sha256 = tally.model or ("unknown", "unknown")
    lines = [
        f"## Batch scoring: {tally.rows:,} rows in {shards} shard(s)",
        "",
        *([f"- **release**: `{release}`"] if release else []),
        f"- **model**: version `{version}`, sha256 `{sha256}`",
        f"- **predictions**: `{out}`",
        "",
    ]
    if tally.labels:
        lines += ["| label | rows | share |", "|---|---:|---:|"]
        lines += [
            f"| {label} | {count:,} | {count / tally.rows:.1%} |"
            for label, count in sorted(tally.labels.items())
        ]
    elif tally.values:
        low = min(part[0] for part in tally.values)
        high = max(part[1] for part in tally.values)
        mean = sum(part[2] for part in tally.values) / tally.rows
        lines += ["| value | min | mean | max |", "|---|---:|---:|---:|"]
        lines += [f"| predicted | {low:.6g} | {mean:.6g} | {high:.6g} |"]
    return "\n".join(lines) + "\n"


def join(folder: Path, out: Path, expect_rows: int | None) -> tuple[Tally, int]:
    """`--join`: the shards' records in FOLDER into OUT; refused (OUT as it was) when the rows
    are not the `expect_rows` the plan counted. The tally and the number of shards."""
    files = shard_files(folder)
    schema = pq.read_schema(files[0]).remove_metadata()
    tally = Tally()

    def checked() -> Iterator[pa.Table]:
        yield from tally.counted(shard_tables(files, schema))
        if expect_rows is not None and tally.rows != expect_rows:
            raise PipelineError(
                f"{folder}: {len(files)} shard(s) hold {tally.rows:,} rows, not the "
                f"{expect_rows:,} INPUT holds: a shard is missing or was cut otherwise"
            )

    write(checked(), out, schema)
    return tally, len(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, help="a CSV, or a folder of CSVs")
    parser.add_argument("--out", type=Path, help="the records: .csv or .parquet")
    parser.add_argument("--model", type=Path, default=Path("models/model.onnx"))
    parser.add_argument("--schema", type=Path, default=Path("data/schema.yaml"))
    parser.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS, help="rows per chunk")
    parser.add_argument("--rows", type=row_range, help="START:STOP: score these rows only")
    parser.add_argument("--scored-at", type=scored_time, help="the records' time (default: now)")
    parser.add_argument("--plan", type=int, metavar="SHARDS", help="cut INPUT's rows into shards")
    parser.add_argument("--join", type=Path, metavar="FOLDER", help="join the shards' records")
    parser.add_argument("--expect-rows", type=int, help="--join: the rows the plan counted")
    parser.add_argument("--summary", type=Path, help="--join: write a markdown summary here")
    parser.add_argument("--release", help="--join: the release the summary names")
    args = parser.parse_args()

    if args.chunk_rows < 1:
        raise PipelineError(f"--chunk-rows must be 1 or more, not {args.chunk_rows}")
    if args.plan is not None:
        if args.input is None:
            raise PipelineError("--plan needs --input")
        schema = load_schema(args.schema)
        rows = sum(count_rows(path, schema, args.chunk_rows) for path in csv_files(args.input))
        print(plan(rows, args.plan, args.scored_at or now()), end="")
        return
    if args.out is None or (args.input is None) == (args.join is None):
        raise PipelineError("give --out, and --input (to score) or --join (to join shards)")
    if args.out.suffix not in SUFFIXES:
        raise PipelineError(f"{args.out}: OUT must end in .csv or .parquet")
    if args.join is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tally, shards = join(args.join, args.out, args.expect_rows)
        if args.summary:
            args.summary.parent.mkdir(parents=True, exist_ok=True)
            args.summary.write_text(summary(tally, shards, args.out, args.release))
        print(f"score: {tally.rows:,} rows of {shards} shard(s) -> {args.out}")
        return
    files = csv_files(args.input)
    if any(path.resolve() == args.out.resolve() for path in files):
        raise PipelineError(f"{args.out}: OUT is one of INPUT's files; write it elsewhere")
    try:
        content = args.model.read_bytes()
    except OSError as err:
        raise PipelineError(
            f"{args.model}: {err.strerror}: run make repro (or make pull), or set MODEL"
        ) from None
    schema = load_schema(args.schema)
    model = load_model(content, str(args.model), schema)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tables = scored(files, model, schema, args.chunk_rows, args.rows, args.scored_at)
    rows = write(tables, args.out, record_schema(model))
    print(
        f"score: {rows:,} rows of {len(files)} file(s) -> {args.out} "
        f"(model {model.version}, sha256 {model.sha256[:12]})"
    )


if __name__ == "__main__":
    run_stage("score", main)
