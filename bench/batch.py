"""Batch scoring, `make score`, against onnxruntime alone on the same rows, with its peak memory.

Bakes the default project (breast cancer, 30 numeric features, hist gradient boosting), trains
and exports its model with the project's own code, and writes CSVs of 10,000, 1,000,000 and
10,000,000 rows drawn from its starter rows with 1% noise, each column rounded to the decimals
the data has. Each CSV is scored by `python -m mlops_actions.batch` in a process of its own
(Parquet out), timed from after its imports (start-up, the imports, is its own column), and its
peak RSS taken from the kernel (`ru_maxrss`). The limit is onnxruntime in this process on the
same rows, the session `make score` opens: one `session.run` per chunk of `CHUNK_ROWS` rows,
on float32 arrays built beforehand from the CSV (not timed). Share = `make score`'s rows/s ÷
the limit's. The CSVs are deleted after use.

`make score` reads the next chunk in a thread while it checks, scores, hashes and writes this one
(pandas' C parser and onnxruntime both release the GIL): past onnxruntime's own time, the larger
part is pandas' C parser reading the CSV's numbers, then the keys' hashes and the writer. At
10,000 rows the run's fixed cost (schema, session, first chunk) dominates. Peak RSS does not grow
with the rows: two chunks are held at a time, the one scored and the one read ahead. The machine
is shared with other work: rates move by a third from one run to the next.
"""

import importlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from cookiecutter.main import cookiecutter

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build/bench/batch"
SIZES = (10_000, 1_000_000, 10_000_000)
WRITE_ROWS = 200_000  # rows generated and written at a time: flat memory here too
# `make score` in a child process: the imports timed apart, then main(), then its peak RSS.
CHILD = """
import json, resource, sys, time
start = time.perf_counter()
from mlops_actions import batch
imported = time.perf_counter()
sys.argv = ["mlops_actions.batch", *sys.argv[1:]]
batch.main()
done = time.perf_counter()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
print(json.dumps({"start_up": imported - start, "seconds": done - imported, "peak_kib": peak}))
"""


def bake() -> Path:
    project = cookiecutter(
        str(ROOT),
        no_input=True,
        output_dir=str(OUT),
        overwrite_if_exists=True,
        extra_context={"project_name": "Bench batch"},
    )
    return Path(project)


def model_and_rows(project: Path) -> tuple[bytes, pd.DataFrame, list[str]]:
    """The project's model, exported, and its starter rows (raw, as the data stage writes them)."""
    sys.path.insert(0, str(project / "src"))
    package = project.name.replace("-", "_")
    from mlops_actions.export import convert
    from mlops_actions.params import load_params
    from mlops_actions.schema import load_schema, validate
    from mlops_actions.split import split

    params = load_params(project / "params.yaml")
    schema = load_schema(project / "data/schema.yaml")
    data, prepare = params["data"], params["prepare"]
    raw = importlib.import_module(f"{package}.datasets").make_dataset(
        data["dataset"], data.get("rows", 0), params["base"]["seed"], schema
    )
    parts = split(
        validate(raw, schema),
        schema,
        params["base"]["seed"],
        test_size=prepare["test_size"],
        holdout_size=prepare["holdout_size"],
    )
    train = importlib.import_module(f"{package}.stages.train").train
    model = train(parts.train, schema, params["train"], params["base"]["seed"])
    return convert(model, schema, model_version="bench", git_sha="bench"), raw, schema.numeric


def write_rows(path: Path, raw: pd.DataFrame, numeric: list[str], rows: int) -> None:
    """`rows` rows drawn from `raw`, numbers moved by 1% noise and rounded as the column is."""
    decimals = {
        column: max(
            len(np.format_float_positional(value).partition(".")[2]) for value in raw[column]
        )
        for column in numeric
    }
    rng = np.random.default_rng(0)
    table = pa.Table.from_pandas(raw.head(0), preserve_index=False)
    with pa_csv.CSVWriter(str(path), table.schema) as writer:
        for start in range(0, rows, WRITE_ROWS):
            count = min(WRITE_ROWS, rows - start)
            chunk = raw.iloc[rng.integers(0, len(raw), count)].reset_index(drop=True)
            for column in numeric:
                noise = 1 + rng.normal(0, 0.01, count)
                chunk[column] = np.round(chunk[column].to_numpy() * noise, decimals[column])
            writer.write_table(
                pa.Table.from_pandas(chunk, schema=table.schema, preserve_index=False)
            )


def limit_seconds(model: bytes, path: Path, numeric: list[str]) -> float:
    """onnxruntime alone on the CSV's rows: the session `make score` opens, one run per chunk."""
    from mlops_actions.batch import CHUNK_ROWS, SESSION_CONFIG
    from mlops_actions.onnx_model import load_session

    session, _ = load_session(model, config=SESSION_CONFIG)
    names = [output.name for output in session.get_outputs()]
    seconds = 0.0
    types = dict.fromkeys(numeric, "float64")
    for chunk in pd.read_csv(path, usecols=numeric, dtype=types, chunksize=CHUNK_ROWS):
        feed = {name: chunk[name].to_numpy(np.float32).reshape(-1, 1) for name in numeric}
        start = time.perf_counter()
        session.run(names, feed)
        seconds += time.perf_counter() - start
    return seconds


def score(project: Path, model: Path, path: Path) -> dict:
    out = path.with_suffix(".parquet")
    args = ["--input", str(path), "--out", str(out), "--model", str(model)]
    args += ["--schema", str(project / "data/schema.yaml")]
    run = subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, check=True
    )
    out.unlink()
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    sizes = [int(size) for size in sys.argv[1:]] or list(SIZES)
    project = bake()
    model, raw, numeric = model_and_rows(project)
    model_path = OUT / "model.onnx"
    model_path.write_bytes(model)
    print(
        "| rows | CSV | onnxruntime alone (the limit) | `make score` | share of the limit | "
        "start-up | peak RSS, `make score` |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for rows in sizes:
        path = OUT / f"rows-{rows}.csv"
        write_rows(path, raw, numeric, rows)
        size = path.stat().st_size
        scored = score(project, model_path, path)
        limit = rows / limit_seconds(model, path, numeric)
        path.unlink()
        rate = rows / scored["seconds"]
        peak = scored["peak_kib"] / 1024
        print(
            f"| {rows:,} | {size / 2**20:,.0f} MiB | {limit:,.0f} rows/s | {rate:,.0f} rows/s | "
            f"{rate / limit:.0%} | {scored['start_up']:.1f} s | {peak:,.0f} MiB |"
        )


if __name__ == "__main__":
    main()
