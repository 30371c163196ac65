"""HTTP serving side by side in one run: the floor, the ceiling, our server, two FastAPI servers.

Bakes the default project (breast cancer, hist gradient boosting) and runs its pipeline; every
server uses the same stack (uvicorn, httptools, uvloop, one process, no access log), pinned to core
0, and answers `POST /predict {"records": [...]}` with 1, 64 and 1,000 test rows, and the 1,000
rows again as columns and data (`{"columns": [...], "data": [[...]]}`, pandas' split orientation,
which every server here takes) and as OIP infer's binary tensor data (one float32 tensor per
feature after the JSON, the outputs asked for as binary data: what tritonclient sends by default;
only our server and the floors take it, the FastAPI servers show a dash). `wrk` (one thread, 64
keep-alive connections, 1 s warm-up then 4 s; three rounds through the servers in turn, the median
round; after the warm-up and after the run, the server is left to finish what wrk left it, so the
measured run and the next server have core 0 alone) runs on core 1. The floor reads the body and
answers a constant; the ceiling is 1 / (the floor's time per request + onnxruntime's in-process
time for that many rows: the median of a loop over our server's own feed, pinned to core 0, taken
once a round with every server idle, the median of the rounds'); floor
+ model is the floor that also runs the model on that feed, prepared at start (a server doing
nothing but read the body and run the model: the ceiling measured instead of added up); FastAPI +
onnxruntime parses with pydantic and runs the same model.onnx (framework cost apart from model
cost); FastAPI + scikit-learn runs the joblib pickle through pandas (a typical baseline). Ours runs
as `make serve` does, small requests waiting at once sharing one model call (COALESCE_ROWS=256), so
at one row it can pass a ceiling that counts a model call per request; "each request alone" is the
same server with COALESCE_ROWS=0. Non-2xx answers are counted; our server's RSS is sampled every
second over a 60 s run at 64 rows. The last table splits a request's time, each request alone: the
floor, the model's run inside a server (floor + model minus the floor) beside the same run in a
loop in process, and what our server adds to floor + model beside its decoding and encoding timed
in process.
"""

import csv
import gc
import json
import os
import re
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import yaml
from cookiecutter.main import cookiecutter

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build/bench/serving"
# (rows, the body's form): records by feature name, or columns and data.
CASES = ((1, "records"), (64, "records"), (1000, "records"), (1000, "columns"), (1000, "binary"))
MODEL = "bench"  # our servers' model name: binary tensor data goes to /v2/models/bench/infer
# The servers that take each body form (the FastAPI ones do not speak OIP).
SPEAKS_OIP = ("floor", "model", "ours", "alone")
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
FLOOR_MODEL = textwrap.dedent(
    """
    from pathlib import Path

    from {module}.serve import ServedModel
    from {module}.serve.protocol import Codec
    from {module}.serve.settings import Limits

    served = ServedModel(Path("models/model.onnx").read_bytes(), "bench")
    codec = Codec(served, Limits())
    # Each bench body's feed, as our server builds it, by the body's length (no hashing per call).
    feeds = {{}}
    for path, header in {bodies}:
        body = Path(path).read_bytes()
        feed = codec.predict_feed(body) if header is None else codec.infer_feed(body, header)
        feeds[len(body)] = feed[0]


    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        size, more = 0, True
        while more:
            message = await receive()
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        served.run(feeds[size])
        headers = [(b"content-type", b"application/json"), (b"content-length", b"2")]
        await send({{"type": "http.response.start", "status": 200, "headers": headers}})
        await send({{"type": "http.response.body", "body": b"{{}}"}})
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


    class Body(BaseModel):
        records: list[dict[str, float | None]] | None = None
        columns: list[str] | None = None
        data: list[list[float | None]] | None = None


    @app.post("/predict")
    def predict(body: Body):
        if body.records is not None:
            block = np.array([[r.get(n) for n in names] for r in body.records], dtype=np.float32)
        else:
            order = [body.columns.index(n) for n in names]
            block = np.array(body.data, dtype=np.float32)[:, order]
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


    class Body(BaseModel):
        records: list[dict[str, float | None]] | None = None
        columns: list[str] | None = None
        data: list[list[float | None]] | None = None


    @app.post("/predict")
    def predict(body: Body):
        if body.records is not None:
            frame = pd.DataFrame.from_records(body.records).astype("float32")
        else:
            frame = pd.DataFrame(body.data, columns=body.columns).astype("float32")
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


def wrk(port: int, case: tuple[int, str], seconds: int) -> tuple[float, int]:
    """(requests per second, non-2xx answers) from one wrk run on core 1."""
    body = body_file(case)
    script = body.with_suffix(".lua")
    if case[1] == "binary":
        header = json_length(case)
        headers = f'wrk.headers["Inference-Header-Content-Length"] = "{header}"\n'
        path = f"/v2/models/{MODEL}/infer"
    else:
        headers, path = 'wrk.headers["Content-Type"] = "application/json"\n', "/predict"
    script.write_text(
        f'wrk.method = "POST"\n{headers}'
        f'local f = io.open("{body}", "rb")\nwrk.body = f:read("*a")\nf:close()\n'
    )
    command = [
        *("taskset", "-c", "1", "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s"),
        *("--timeout", "10s", "-s", str(script), f"http://127.0.0.1:{port}{path}"),
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


def cpu_seconds(pid: int) -> float:
    """The process's user and system CPU time so far (/proc/<pid>/stat, fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_idle(pid: int, limit: float = 120) -> None:
    """Until the server has finished the requests wrk left it (a slow server keeps working through
    those it had read after wrk stops, on core 0, where the next server is measured)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(0.5)
        if cpu_seconds(pid) - before < 0.05:
            return


def times(ours: float, other: float | None) -> str:
    """Ours over a comparator; a comparator that finished no request in the window says so, one
    that does not take the body's form gets a dash."""
    if other is None:
        return "—"
    return f"{ours / other:.1f}x" if other else "(it answered none)"


def number(value: float | None) -> str:
    """Requests per second, or a dash for a server that does not take the body's form."""
    return "—" if value is None else f"{value:,.0f}"


def json_length(case: tuple[int, str]) -> int:
    """A binary body's JSON length (its Inference-Header-Content-Length), kept beside it."""
    return int(body_file(case).with_suffix(".header").read_text())


def in_process(project: Path, case: tuple[int, str]) -> dict[str, float]:
    """Our server's steps for this body in a loop in process, pinned to core 0 like the servers:
    onnxruntime's run on our feed, decoding the body into that feed, encoding the answer."""
    if str(project / "src") not in sys.path:
        sys.path.insert(0, str(project / "src"))
    from mlops_actions.report.latency import median_seconds
    from mlops_actions.serve import ServedModel
    from mlops_actions.serve.app import INLINE_BODY_BYTES
    from mlops_actions.serve.protocol import Codec
    from mlops_actions.serve.settings import Limits

    served = ServedModel((project / "models/model.onnx").read_bytes(), MODEL)
    codec = Codec(served, Limits())
    rows, body = case[0], body_file(case).read_bytes()
    keep = rows <= Limits().inline_rows
    header = json_length(case) if case[1] == "binary" else None  # read once, not in the loop

    def decode() -> dict:
        """The body into the feed, as the server decodes it: a large body in the inference thread
        (`predict_feed`, `infer_feed`), a small one on the event loop."""
        if header is not None:
            return codec.infer_feed(body, header)[0]
        if len(body) > INLINE_BODY_BYTES:
            return codec.predict_feed(body)[0]
        decoded = codec.predict_rows(body)
        return codec.records_feed(decoded, len(decoded), keep)

    feed = decode()
    outputs = served.run(feed)
    if header is not None:
        wanted = codec.infer_feed(body, header)[2]

        def encode() -> Any:
            return codec.infer_reply(outputs, wanted, None)
    else:

        def encode() -> Any:
            return codec.predict_reply(outputs)

    runs = 200 if rows > 100 else 2000
    # As the server does once started (App's lifespan): what exists now is never collected again,
    # so the collector's passes do not walk this process's imports (pandas, cookiecutter, ...).
    gc.collect()
    gc.freeze()
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {0})
    try:
        return {
            "onnx": median_seconds(lambda: served.run(feed), runs),
            "decode": median_seconds(decode, runs),
            "encode": median_seconds(encode, runs),
        }
    finally:
        os.sched_setaffinity(0, allowed)


def body_file(case: tuple[int, str]) -> Path:
    rows, form = case
    return OUT / f"body-{rows}-{form}.{'bin' if form == 'binary' else 'json'}"


def label(case: tuple[int, str]) -> str:
    rows, form = case
    forms = {"records": "", "columns": ", columns and data", "binary": ", binary tensors (infer)"}
    return f"{rows:,}{forms[form]}"


def write_body(case: tuple[int, str], records: list[dict]) -> None:
    """A case's body: records, columns and data, or binary tensor data (and its JSON's length)."""
    rows, form = case
    batch, features = records[:rows], list(records[0])
    path = body_file(case)
    if form == "records":
        path.write_bytes(json.dumps({"records": batch}).encode())
    elif form == "columns":
        data = [list(row.values()) for row in batch]
        path.write_bytes(json.dumps({"columns": features, "data": data}).encode())
    else:
        size = rows * 4
        inputs = [
            {"name": name, "shape": [rows, 1], "datatype": "FP32",
             "parameters": {"binary_data_size": size}}
            for name in features
        ]  # fmt: skip
        document = json.dumps({"inputs": inputs, "parameters": {"binary_data_output": True}})
        values = [struct.pack(f"<{rows}f", *(row[name] for row in batch)) for name in features]
        path.write_bytes(document.encode() + b"".join(values))
        path.with_suffix(".header").write_text(str(len(document.encode())))


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
    with (project / "data/prepared/test.csv").open() as test:
        rows = [{name: float(row[name]) for name in features} for row in csv.DictReader(test)]
    records = (rows * (1000 // len(rows) + 1))[:1000]
    for case in CASES:
        write_body(case, records)
    (project / "floor.py").write_text(FLOOR.lstrip())
    bodies = [
        (str(body_file(case)), json_length(case) if case[1] == "binary" else None) for case in CASES
    ]
    (project / "floor_model.py").write_text(
        FLOOR_MODEL.format(module="mlops_actions", bodies=bodies).lstrip()
    )
    (project / "fastapi_onnx.py").write_text(
        FASTAPI_ONNX.format(model=project / "models/model.onnx", labels=labels).lstrip()
    )
    (project / "fastapi_sklearn.py").write_text(
        FASTAPI_SKLEARN.format(model=project / "models/model.joblib").lstrip()
    )
    return project


def main() -> None:
    project = prepare()
    python = sys.executable
    ports = {name: free_port() for name in ("floor", "model", "ours", "alone", "onnx", "sklearn")}
    servers = {
        "floor": [python, "-m", "uvicorn", "floor:app", *UVICORN, "--port", str(ports["floor"])],
        "model": [python, "-m", "uvicorn", "floor_model:app", *UVICORN,
                  "--port", str(ports["model"])],
        "ours": [python, "-m", "mlops_actions.serve", "--port", str(ports["ours"]),
                 "--name", MODEL],
        "alone": [python, "-m", "mlops_actions.serve", "--port", str(ports["alone"]),
                  "--name", MODEL, "--coalesce-rows", "0"],
        "onnx": [python, "-m", "uvicorn", "fastapi_onnx:app", *UVICORN,
                 "--port", str(ports["onnx"])],
        "sklearn": [python, "-m", "uvicorn", "fastapi_sklearn:app", *UVICORN,
                    "--port", str(ports["sklearn"])],
    }  # fmt: skip
    rate: dict[tuple[str, tuple[int, str]], float | None] = {}
    non_2xx = dict.fromkeys(servers, 0)
    rss: list[float] = []
    steps: dict[tuple[int, str], dict[str, float]] = {}
    running = {name: start(command, project, ports[name]) for name, command in servers.items()}
    try:
        # Rounds interleave the servers, so a change in the machine's load falls on all of them;
        # the median round counts. Idle servers cost the measured one nothing.
        for case in CASES:
            takers = [n for n in servers if case[1] != "binary" or n in SPEAKS_OIP]
            rates: dict[str, list[float]] = {name: [] for name in takers}
            measured_steps: list[dict[str, float]] = []
            for _ in range(ROUNDS):
                for name in takers:
                    wrk(ports[name], case, WARM_UP)
                    # The warm-up closed its connections with requests in flight: a server works
                    # through those it had read (ours at 1,000 rows: 64 x 8 ms), and measured
                    # at once it spent an eighth of the run on them.
                    wait_idle(running[name].pid)
                    measured, bad = wrk(ports[name], case, MEASURE)
                    wait_idle(running[name].pid)
                    rates[name].append(measured)
                    non_2xx[name] += bad
                # With every server idle: our steps in process, for the ceiling and the
                # breakdown, once a round like the servers' rates (one measurement after the
                # rounds swung with the machine: the same 1,000-row model run took 3.4 ms for
                # one case and 5.1 ms for the next in one run).
                measured_steps.append(in_process(project, case))
            for name in servers:
                rate[name, case] = statistics.median(rates[name]) if name in rates else None
            steps[case] = {
                step: statistics.median(each[step] for each in measured_steps)
                for step in measured_steps[0]
            }
        pid = running["ours"].pid
        rss.append(rss_mib(pid))
        soak = subprocess.Popen(
            ["taskset", "-c", "1", "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{SOAK}s", "-s",
             str(body_file((64, "records")).with_suffix(".lua")),
             f"http://127.0.0.1:{ports['ours']}/predict"],
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
        "| rows | floor | floor + model | ceiling | **ours** | ours, each request alone "
        "| FastAPI + onnxruntime | FastAPI + scikit-learn |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    ceilings = {case: 1 / (1 / rate["floor", case] + steps[case]["onnx"]) for case in CASES}
    for case in CASES:
        print(
            f"| {label(case)} | "
            + " | ".join(
                f"{rate[name, case]:,.0f}" if name != "ceiling" else f"{ceilings[case]:,.0f}"
                for name in ("floor", "model", "ceiling")
            )
            + f" | **{rate['ours', case]:,.0f}** | {rate['alone', case]:,.0f} | "
            f"{number(rate['onnx', case])} | {number(rate['sklearn', case])} |"
        )
    print()
    print("Requests per second. The same runs as ratios, ours over each comparator:\n")
    print(
        "| rows | ours / floor | ours / floor + model | **ours / ceiling** | each alone / ceiling "
        "| ours / FastAPI + ORT | ours / FastAPI + sklearn |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for case in CASES:
        ours = rate["ours", case]
        print(
            f"| {label(case)} | {ours / rate['floor', case]:.0%} | "
            f"{ours / rate['model', case]:.0%} | **{ours / ceilings[case]:.0%}** | "
            f"{rate['alone', case] / ceilings[case]:.0%} | "
            f"{times(ours, rate['onnx', case])} | {times(ours, rate['sklearn', case])} |"
        )
    print()
    names = {"floor": "floor", "model": "floor + model", "ours": "ours (with the 60 s run)",
             "alone": "ours, each alone", "onnx": "FastAPI + onnxruntime",
             "sklearn": "FastAPI + scikit-learn"}  # fmt: skip
    print("- Non-2xx answers: " + ", ".join(f"{names[n]} {c}" for n, c in non_2xx.items()) + ".")
    print(
        f"- Our server's RSS over {SOAK} s at 64 rows per request: {rss[0]:.0f} MiB at the start, "
        f"{rss[-1]:.0f} MiB at the end, {max(rss):.0f} MiB at most."
    )
    print()
    print(
        "Where a request's time goes with each request alone (`COALESCE_ROWS=0`), in µs (a "
        "server's time per request is 1 / its requests per second: each is busy all the time on "
        "its core; at 1,000 rows the body is decoded and the model run in the inference thread, "
        "so the rest holds the hand-off to it):\n"
    )
    print(
        "| rows | floor | model's run in a server | model's run in a loop | ours beyond floor + "
        "model | of which decoding, in a loop | of which encoding, in a loop | of which the rest |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for case in CASES:
        floor, model, alone = (1e6 / rate[name, case] for name in ("floor", "model", "alone"))
        decode, encode = steps[case]["decode"] * 1e6, steps[case]["encode"] * 1e6
        print(
            f"| {label(case)} | {floor:,.0f} | {model - floor:,.0f} "
            f"| {steps[case]['onnx'] * 1e6:,.0f} | {alone - model:,.0f} | {decode:,.0f} "
            f"| {encode:,.0f} | {alone - model - decode - encode:,.0f} |"
        )


if __name__ == "__main__":
    main()
