"""HTTP serving: the generated ONNX server vs a FastAPI + scikit-learn pickle baseline.

Bakes the default project (breast cancer, hist gradient boosting), trains and exports the model
with the project's own code, then serves the same model twice on loopback, each with uvicorn
(httptools, uvloop, one process, no access log): the project's `serve` module on model.onnx,
and a typical FastAPI app (pydantic body, pandas frame, `predict_proba`) on the joblib pickle.
Both answer the same `POST /predict {"records": [...]}`. A keep-alive asyncio client holds 8
connections for 10 s after 2 s of warm-up, pinned to the other core than the server, and
counts only 200 answers. In-process rows time the prediction path alone (request JSON in,
response objects out), median of 2,000 calls.
"""

import asyncio
import csv
import json
import os
import socket
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import yaml
from cookiecutter.main import cookiecutter

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build/bench/serving"
CONCURRENCY = 8
WARM_UP, MEASURE = 2.0, 10.0
BATCHES = (1, 100)

BASELINE = textwrap.dedent(
    """
    import joblib
    import pandas as pd
    from fastapi import FastAPI
    from pydantic import BaseModel

    model = joblib.load("{model}")
    labels = [str(label) for label in model.classes_]
    app = FastAPI()


    class Records(BaseModel):
        records: list[dict[str, float | None]]


    @app.post("/predict")
    def predict(body: Records):
        frame = pd.DataFrame.from_records(body.records).astype("float32")
        probabilities = model.predict_proba(frame)
        return {{
            "predictions": [
                {{"label": labels[row.argmax()], "probabilities": dict(zip(labels, row.tolist()))}}
                for row in probabilities
            ]
        }}
    """
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(command: list[str], cwd: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(cwd / "src")}
    # The server gets core 0, the load generator core 1: they do not share a CPU.
    server = subprocess.Popen(
        ["taskset", "-c", "0", *command], cwd=cwd, env=env, stdout=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server did not start: {' '.join(command)}") from None
            time.sleep(0.2)


async def client(port: int, body: bytes, until: float, since: float, latencies: list[float]):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = (
        b"POST /predict HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    while (started := time.perf_counter()) < until:
        writer.write(request)
        await writer.drain()
        status = (await reader.readline()).split()[1]
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        if status != b"200":
            raise SystemExit(f"server answered {status.decode()}")
        if started >= since:
            latencies.append(time.perf_counter() - started)
    writer.close()


async def load(port: int, body: bytes) -> list[float]:
    latencies: list[float] = []
    since = time.perf_counter() + WARM_UP
    until = since + MEASURE
    await asyncio.gather(*(client(port, body, until, since, latencies) for _ in range(CONCURRENCY)))
    return latencies


def in_process(project: Path, records: list[dict]) -> tuple[float, float]:
    """Median seconds of one /predict's compute: ONNX server path vs the baseline's path."""
    sys.path.insert(0, str(project / "src"))
    import joblib
    import pandas as pd
    from mlops_demo.report import median_seconds
    from mlops_demo.serve import ServedModel

    served = ServedModel((project / "models/model.onnx").read_bytes(), "bench")
    model = joblib.load(project / "models/model.joblib")

    def onnx_path():
        served.predictions(served.run(served.feed_from_records(records)))

    def sklearn_path():
        model.predict_proba(pd.DataFrame.from_records(records).astype("float32")).tolist()

    return median_seconds(onnx_path, 2000), median_seconds(sklearn_path, 2000)


def prepare() -> tuple[Path, list[dict]]:
    """A fresh default bake, its pipeline run up to export, the baseline app written next to it,
    and 100 test rows as request records."""
    project = Path(
        cookiecutter(str(ROOT), no_input=True, output_dir=str(OUT), overwrite_if_exists=True)
    )
    tools = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(project / "src"),
    }
    subprocess.run(["git", "init", "--quiet"], cwd=project, check=True)
    subprocess.run([str(tools / "dvc"), "repro", "--quiet"], cwd=project, env=env, check=True)
    (project / "baseline.py").write_text(
        BASELINE.format(model=project / "models/model.joblib").lstrip()
    )
    features = yaml.safe_load((project / "data/schema.yaml").read_text())["features"]
    with (project / "data/prepared/test.csv").open() as test:
        rows = list(csv.DictReader(test))[:100]
    return project, [{name: float(row[name]) for name in features} for row in rows]


def main() -> None:
    os.sched_setaffinity(0, {1})
    project, records = prepare()
    python = sys.executable
    ours_port, baseline_port = free_port(), free_port()
    onnx_server = [
        python, "-m", "mlops_demo.serve", "--model", "models/model.onnx", "--port", str(ours_port),
    ]  # fmt: skip
    baseline_server = [
        python, "-m", "uvicorn", "baseline:app", "--log-level", "warning", "--no-access-log",
        "--http", "httptools", "--loop", "uvloop", "--port", str(baseline_port),
    ]  # fmt: skip
    servers = {
        "ONNX server (`make serve`)": (onnx_server, ours_port),
        "FastAPI + scikit-learn pickle": (baseline_server, baseline_port),
    }
    results: dict[tuple[str, int], tuple[float, float, float]] = {}
    for name, (command, port) in servers.items():
        server = start(command, project, port)
        try:
            for rows in BATCHES:
                body = json.dumps({"records": records[:rows]}).encode()
                latencies = asyncio.run(load(port, body))
                cuts = statistics.quantiles(latencies, n=100)
                results[name, rows] = (len(latencies) / MEASURE, cuts[49], cuts[98])
        finally:
            server.terminate()
            server.wait(timeout=10)

    ours, baseline = list(servers)
    print("| server | rows per request | requests/s | p50 | p99 |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for rows in BATCHES:
        for name in servers:
            throughput, p50, p99 = results[name, rows]
            timing = f"{p50 * 1e3:.2f} ms | {p99 * 1e3:.2f} ms"
            print(f"| {name} | {rows} | {throughput:,.0f} | {timing} |")
    print()
    for rows in BATCHES:
        (a, a50, a99), (b, b50, b99) = results[ours, rows], results[baseline, rows]
        print(
            f"- {rows} row(s) per request: {a / b:.1f}x the throughput, p50 {b50 / a50:.1f}x "
            f"and p99 {b99 / a99:.1f}x lower than the baseline."
        )
    onnx_one, sklearn_one = in_process(project, records[:1])
    print(
        f"- In process, one row's prediction path: {onnx_one * 1e6:.0f} µs (ONNX) vs "
        f"{sklearn_one * 1e3:.2f} ms (pandas + scikit-learn), {sklearn_one / onnx_one:.0f}x."
    )


if __name__ == "__main__":
    main()
