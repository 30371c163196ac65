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
time by the pipeline's own reading rules (schema.read_csv_chunks, then validate_features), fed
to the model as export typed it (features.feed), and appended to a file beside OUT that is
renamed onto OUT once every chunk is scored: a failure leaves OUT as it was, absent or the last
good run's. Refused in one line naming the file, the column and the data row (1 = the first row
after the header): a cell a numeric column cannot read, a row without its id, a missing column.
A target column is not needed, and is ignored when there.

Only the model file and onnxruntime score: no scikit-learn is imported (tests/test_batch.py runs
this in a fresh interpreter to check), as in serving.
"""

import argparse
import hashlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
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


def scored(files: list[Path], model: Model, schema: Schema, chunk_rows: int) -> Iterator[pa.Table]:
    """Every file's records, chunk by chunk."""
    for path in files:
        columns = [*([schema.id] if schema.id else []), *schema.features]
        for chunk in read_csv_chunks(path, chunk_rows, columns, parsed_numbers(schema)):
            yield records(typed_rows(chunk, schema, path), model, schema, now())


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, required=True, help="a CSV, or a folder of CSVs")
    parser.add_argument("--out", type=Path, required=True, help="the records: .csv or .parquet")
    parser.add_argument("--model", type=Path, default=Path("models/model.onnx"))
    parser.add_argument("--schema", type=Path, default=Path("data/schema.yaml"))
    parser.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS, help="rows per chunk")
    args = parser.parse_args()

    if args.out.suffix not in SUFFIXES:
        raise PipelineError(f"{args.out}: OUT must end in .csv or .parquet")
    if args.chunk_rows < 1:
        raise PipelineError(f"--chunk-rows must be 1 or more, not {args.chunk_rows}")
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
    rows = write(scored(files, model, schema, args.chunk_rows), args.out, record_schema(model))
    print(
        f"score: {rows:,} rows of {len(files)} file(s) -> {args.out} "
        f"(model {model.version}, sha256 {model.sha256[:12]})"
    )


if __name__ == "__main__":
    run_stage("score", main)
