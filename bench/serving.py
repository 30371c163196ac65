"""HTTP serving side by side in one run: the floor, the ceiling, our server, two FastAPI servers.

Bakes the default project (breast cancer, hist gradient boosting) and runs its pipeline; every
server uses the same stack (uvicorn, httptools, uvloop, one process, no access log), pinned to
core 0, and answers `POST /predict {"records": [...]}` with 1, 64 and 1,000 test rows. `wrk` (one
thread, 64 keep-alive connections, 1 s warm-up then 4 s; three rounds through the servers in
turn, the median round) runs on core 1. The floor reads the body and answers a constant; the
ceiling is 1 / (the floor's time per request + onnxruntime's in-process time for that many rows,
median); FastAPI + onnxruntime parses with pydantic and runs the same model.onnx (framework cost
apart from model cost); FastAPI + scikit-learn runs the joblib pickle through pandas (a typical
baseline). Non-2xx answers are counted; our server's RSS is sampled every second over a 60 s run
at 64 rows.
"""

import csv
import json
import os
import re
import shutil
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
BATCHES = (1, 64, 1000)
CONNECTIONS, WARM_UP, MEASURE, ROUNDS, SOAK = 64, 1, 4, 3, 60

UVICORN = ["--log-level", "warning", "--no-access-log", "--http", "httptools", "--loop", "uvloop"]
FLOOR = textwrap.dedent(
    """
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"{}"})
    """
)
FASTAPI_ONNX = textwrap.dedent(
    """
    import numpy as np
    import onnxruntime as ort
    from fastapi import FastAPI
    from pydantic import BaseModel

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession("{model}", options, providers=["CPUExecutionProvider"])
    names = [item.name for item in session.get_inputs()]
    labels = {labels}
    app = FastAPI()


    class Records(BaseModel):
        records: list[dict[str, float | None]]


    @app.post("/predict")
    def predict(body: Records):
        block = np.array([[r.get(n) for n in names] for r in body.records], dtype=np.float32)
        feed = {{n: block[:, [i]] for i, n in enumerate(names)}}
        label, probabilities = session.run(["label", "probabilities"], feed)
        return {{"predictions": [
            {{"label": l, "probabilities": dict(zip(labels, row))}}
            for l, row in zip(label.tolist(), probabilities.tolist())
        ]}}
    """
)
FASTAPI_SKLEARN = textwrap.dedent(
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
        return {{"predictions": [
            {{"label": labels[row.argmax()], "probabilities": dict(zip(labels, row.tolist()))}}
            for row in probabilities
        ]}}
    """
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(command: list[str], cwd: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{cwd / 'src'}{os.pathsep}{cwd}", "OMP_NUM_THREADS": "1"}
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


def wrk(port: int, body_file: Path, seconds: int) -> tuple[float, int]:
    """(requests per second, non-2xx answers) from one wrk run on core 1."""
    script = body_file.with_suffix(".lua")
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f'local f = io.open("{body_file}", "rb")\nwrk.body = f:read("*a")\nf:close()\n'
    )
    command = [
        *("taskset", "-c", "1", "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s"),
        *("--timeout", "10s", "-s", str(script), f"http://127.0.0.1:{port}/predict"),
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: .*", out)
    if errors:
        raise SystemExit(f"wrk: {errors.group(0)}")
    return rate, int(bad.group(1)) if bad else 0


def rss_mib(pid: int) -> float:
    """The server's resident memory (its child: taskset execs, so the pid is the server's)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def onnx_seconds(project: Path, records: list[dict], rows: int) -> float:
    """onnxruntime's in-process time for `rows` rows: the prepared feed, median."""
    sys.path.insert(0, str(project / "src"))
    from mlops_demo.serve import ServedModel
    from mlops_demo.serve.protocol import Codec
    from mlops_demo.serve.settings import Limits

    served = ServedModel((project / "models/model.onnx").read_bytes(), "bench")
    feed = Codec(served, Limits()).predict_feed(json.dumps({"records": records[:rows]}).encode())[0]
    times = []
    for _ in range(200 if rows > 100 else 2000):
        start = time.perf_counter()
        served.run(feed)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def prepare() -> tuple[Path, list[dict]]:
    if shutil.which("wrk") is None:
        raise SystemExit("bench/serving.py needs wrk: apt-get install wrk")
    project = Path(
        cookiecutter(str(ROOT), no_input=True, output_dir=str(OUT), overwrite_if_exists=True)
    )
    tools = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(project / "src")}  # fmt: skip
    subprocess.run(["git", "init", "--quiet"], cwd=project, check=True)
    subprocess.run([str(tools / "dvc"), "repro", "--quiet"], cwd=project, env=env, check=True)
    schema = yaml.safe_load((project / "data/schema.yaml").read_text())
    features, labels = schema["features"], schema["target"]["labels"]
    (project / "floor.py").write_text(FLOOR.lstrip())
    (project / "fastapi_onnx.py").write_text(
        FASTAPI_ONNX.format(model=project / "models/model.onnx", labels=labels).lstrip()
    )
    (project / "fastapi_sklearn.py").write_text(
        FASTAPI_SKLEARN.format(model=project / "models/model.joblib").lstrip()
    )
    with (project / "data/prepared/test.csv").open() as test:
        rows = [{name: float(row[name]) for name in features} for row in csv.DictReader(test)]
    return project, (rows * (1000 // len(rows) + 1))[:1000]


def main() -> None:
    project, records = prepare()
    python = sys.executable
    ports = {name: free_port() for name in ("floor", "ours", "onnx", "sklearn")}
    servers = {
        "floor": [python, "-m", "uvicorn", "floor:app", *UVICORN, "--port", str(ports["floor"])],
        "ours": [python, "-m", "mlops_demo.serve", "--port", str(ports["ours"])],
        "onnx": [python, "-m", "uvicorn", "fastapi_onnx:app", *UVICORN,
                 "--port", str(ports["onnx"])],
        "sklearn": [python, "-m", "uvicorn", "fastapi_sklearn:app", *UVICORN,
                    "--port", str(ports["sklearn"])],
    }  # fmt: skip
    bodies = {}
    for rows in BATCHES:
        bodies[rows] = OUT / f"body-{rows}.json"
        bodies[rows].write_bytes(json.dumps({"records": records[:rows]}).encode())
    rate: dict[tuple[str, int], float] = {}
    non_2xx = dict.fromkeys(servers, 0)
    rss: list[float] = []
    running = {name: start(command, project, ports[name]) for name, command in servers.items()}
    try:
        # Rounds interleave the servers, so a change in the machine's load falls on all of them;
        # the median round counts. Idle servers cost the measured one nothing.
        for rows in BATCHES:
            rates: dict[str, list[float]] = {name: [] for name in servers}
            for _ in range(ROUNDS):
                for name in servers:
                    wrk(ports[name], bodies[rows], WARM_UP)
                    measured, bad = wrk(ports[name], bodies[rows], MEASURE)
                    rates[name].append(measured)
                    non_2xx[name] += bad
            for name in servers:
                rate[name, rows] = statistics.median(rates[name])
        pid = running["ours"].pid
        rss.append(rss_mib(pid))
        soak = subprocess.Popen(
            ["taskset", "-c", "1", "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{SOAK}s", "-s",
             str(bodies[64].with_suffix(".lua")), f"http://127.0.0.1:{ports['ours']}/predict"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        while soak.poll() is None:
            rss.append(rss_mib(pid))
            time.sleep(1)
        bad = re.search(r"Non-2xx or 3xx responses: (\d+)", soak.stdout.read())
        non_2xx["ours"] += int(bad.group(1)) if bad else 0
    finally:
        for server in running.values():
            server.terminate()
            server.wait(timeout=10)

    print(
        "| rows | floor | ceiling | ours | FastAPI + onnxruntime | FastAPI + scikit-learn "
        "| ours / floor | ours / ceiling | ours / FastAPI + ORT | ours / FastAPI + sklearn |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")  # fmt: skip
    for rows in BATCHES:
        floor, ours = rate["floor", rows], rate["ours", rows]
        ceiling = 1 / (1 / floor + onnx_seconds(project, records, rows))
        print(
            f"| {rows:,} | {floor:,.0f} | {ceiling:,.0f} | **{ours:,.0f}** | "
            f"{rate['onnx', rows]:,.0f} | {rate['sklearn', rows]:,.0f} | {ours / floor:.0%} | "
            f"**{ours / ceiling:.0%}** | {ours / rate['onnx', rows]:.1f}x | "
            f"{ours / rate['sklearn', rows]:.1f}x |"
        )
    print()
    print("Requests per second; the ratios are ours over each comparator.\n")
    names = {"floor": "floor", "ours": "ours (with the 60 s run)", "onnx": "FastAPI + onnxruntime",
             "sklearn": "FastAPI + scikit-learn"}  # fmt: skip
    print("- Non-2xx answers: " + ", ".join(f"{names[n]} {c}" for n, c in non_2xx.items()) + ".")
    print(
        f"- Our server's RSS over {SOAK} s at 64 rows per request: {rss[0]:.0f} MiB at the start, "
        f"{rss[-1]:.0f} MiB at the end, {max(rss):.0f} MiB at most."
    )


if __name__ == "__main__":
    main()
