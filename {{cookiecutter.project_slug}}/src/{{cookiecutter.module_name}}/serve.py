"""Serve model.onnx over HTTP: the Open Inference Protocol v2 (REST) and a friendly /predict.

Only onnxruntime, numpy, uvicorn and prometheus_client load here, never scikit-learn or pandas: the
image installs the project's runtime dependencies alone, and one row costs microseconds.

Routes (OIP v2: https://kserve.github.io/website/docs/concepts/architecture/data-plane/v2-protocol):
  GET  /v2/health/live, /v2/health/ready, /v2
  GET  /v2/models/{name}[/versions/{version}], .../ready
  POST /v2/models/{name}[/versions/{version}]/infer
  POST /predict   {"records": [{"feature": value, ...}, ...]}
  GET  /metrics   Prometheus text format

With PREDICTION_LOG set (a file, or "-" for stdout), a sample of the predictions
(PREDICTION_LOG_SAMPLE, default all) is written as JSON lines; `make drift-batch` turns them into a
batch to check for drift.

Bad input is answered with 4xx and {"error": "<what is wrong>"}; it never reaches a 5xx.
"""

import argparse
import asyncio
import hashlib
import json
import os
import random
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import prometheus_client as prom

from .onnx_model import parse_metadata

DEFAULT_MODEL = Path("models/model.onnx")
DEFAULT_NAME = "{{ cookiecutter.project_slug }}"
# JSON datatypes of the OIP for the ONNX tensor types this project's models use.
OIP_DATATYPES = {
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(int64)": "INT64",
    "tensor(string)": "BYTES",
}
# Seconds; spans ONNX's microseconds and a large batch's tens of milliseconds.
FLOAT32_MAX = float(np.finfo(np.float32).max)
NUMBER_TYPES = {int, float}  # JSON numbers; bool is its own type, so true/false are refused
# Methods counted by name in the metrics; anything else is "other", so clients cannot add series.
KNOWN_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"}
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class RequestError(Exception):
    """A client mistake, answered with `status` and the message, never a 5xx."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class ModelLoadError(Exception):
    """The model file cannot be served; the server refuses to start."""


@dataclass(frozen=True)
class Limits:
    max_batch_rows: int = 1000
    max_body_bytes: int = 4 * 1024 * 1024


class ServedModel:
    """An onnxruntime session plus what the model's metadata says about its inputs and outputs."""

    def __init__(self, content: bytes, name: str, source: str = "<bytes>", threads: int = 1):
        self.name = name
        self.sha256 = hashlib.sha256(content).hexdigest()
        try:
            options = ort.SessionOptions()
            # One thread per inference by default: small models lose more to thread hand-offs
            # than they gain, and replicas (not threads) are how this server scales.
            options.intra_op_num_threads = threads
            self.session = ort.InferenceSession(
                content, options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # onnxruntime raises several types for a bad file
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err)
            raise ModelLoadError(f"{source} is not a loadable ONNX model: {first_line}") from None
        try:
            meta = parse_metadata(self.session.get_modelmeta().custom_metadata_map)
        except ValueError as err:
            raise ModelLoadError(f"{source}: {err}") from None
        self.version: str = meta.get("model_version", "unknown")
        self.task: str = meta["task"]
        self.labels: list[str] | None = meta["labels"]
        self.features: dict[str, str] = meta["features"]
        self.numeric = [name for name, kind in self.features.items() if kind != "categorical"]
        self.categorical = [name for name, kind in self.features.items() if kind == "categorical"]
        self.inputs = {
            item.name: OIP_DATATYPES.get(item.type) for item in self.session.get_inputs()
        }
        self.outputs = {
            item.name: OIP_DATATYPES.get(item.type) for item in self.session.get_outputs()
        }
        if list(self.inputs) != list(self.features):
            raise ModelLoadError(f"{source}: inputs do not match the features in its metadata")

    @classmethod
    def load(cls, path: Path, name: str, threads: int = 1) -> "ServedModel":
        try:
            content = Path(path).read_bytes()
        except FileNotFoundError:
            raise ModelLoadError(
                f"model file {path} not found: run `make repro` (or `make pull`), or set MODEL_PATH"
            ) from None
        except OSError as err:
            raise ModelLoadError(f"model file {path} cannot be read: {err.strerror}") from None
        return cls(content, name, source=str(path), threads=threads)

    def run(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = list(self.outputs)
        return dict(zip(names, self.session.run(names, feed), strict=True))

    def warm_up(self) -> None:
        """One prediction before reporting ready, so the first real request pays no set-up."""
        self.run(self.feed_from_records([dict.fromkeys(self.features)]))

    # --- /predict: records by feature name -------------------------------------------------

    def feed_from_records(self, records: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        expected = set(self.features)
        for row, record in enumerate(records):
            if not isinstance(record, dict):
                raise RequestError(f"record {row} must be an object of feature: value")
            if record.keys() == expected:
                continue
            unknown = sorted(set(record) - expected)
            if unknown:
                raise RequestError(f"record {row}: unknown feature {', '.join(unknown)}")
            missing = [name for name in self.features if name not in record]
            if missing:
                raise RequestError(
                    f"record {row}: missing feature {', '.join(missing)} (send null for a gap)"
                )
        numeric = self.numeric
        block = _numbers(
            numeric, [[record[name] for record in records] for name in numeric], allow_null=True
        )
        feed = {name: block[i].reshape(-1, 1) for i, name in enumerate(numeric)}
        for name in self.categorical:
            feed[name] = _categories(name, [record[name] for record in records])
        return feed

    def predictions(self, outputs: dict[str, np.ndarray]) -> list[dict[str, Any]]:
        if self.labels is None:
            return [{"value": float(value)} for value in outputs["variable"].ravel()]
        labels = outputs["label"].ravel().tolist()
        probabilities = outputs["probabilities"].tolist()
        return [
            {"label": label, "probabilities": dict(zip(self.labels, row, strict=True))}
            for label, row in zip(labels, probabilities, strict=True)
        ]

    # --- OIP v2 infer: one tensor per ONNX input -------------------------------------------

    def feed_from_tensors(self, tensors: Any, max_rows: int) -> dict[str, np.ndarray]:
        if not isinstance(tensors, list) or not tensors:
            raise RequestError("'inputs' must be a non-empty list of tensors")
        feed: dict[str, np.ndarray] = {}
        rows: int | None = None
        for position, tensor in enumerate(tensors):
            if not isinstance(tensor, dict):
                raise RequestError(f"inputs[{position}] must be an object")
            name = tensor.get("name")
            if name not in self.inputs:
                raise RequestError(f"inputs[{position}]: unknown input {name!r}")
            if name in feed:
                raise RequestError(f"input {name!r} is given twice")
            expected = self.inputs[name]
            if tensor.get("datatype") != expected:
                raise RequestError(
                    f"input {name!r}: datatype must be {expected}, got {tensor.get('datatype')!r}"
                )
            count = _shape_rows(name, tensor.get("shape"))
            data = _flatten(name, tensor.get("data"))
            if len(data) != count:
                raise RequestError(
                    f"input {name!r}: shape {tensor['shape']} needs {count} values, got {len(data)}"
                )
            if rows is not None and count != rows:
                raise RequestError(f"input {name!r} has {count} rows, other inputs have {rows}")
            rows = count
            _check_rows(rows, max_rows)
            if expected == "BYTES":
                feed[name] = _categories(name, data)
            else:
                feed[name] = _numbers([name], [data], allow_null=False).reshape(-1, 1)
        missing = [name for name in self.inputs if name not in feed]
        if missing:
            raise RequestError(f"missing input {', '.join(missing)}")
        return feed

    def metadata(self) -> dict[str, Any]:
        def tensors(types: dict[str, str | None], shapes: dict[str, list[int]]) -> list[dict]:
            return [
                {"name": name, "datatype": datatype, "shape": shapes[name]}
                for name, datatype in types.items()
            ]

        input_shapes = {item.name: [-1, 1] for item in self.session.get_inputs()}
        output_shapes = {
            item.name: [-1 if not isinstance(dim, int) else dim for dim in item.shape]
            for item in self.session.get_outputs()
        }
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": "onnxruntime_onnx",
            "inputs": tensors(self.inputs, input_shapes),
            "outputs": tensors(self.outputs, output_shapes),
            "parameters": {"task": self.task, "labels": self.labels, "sha256": self.sha256},
        }


def _check_rows(rows: int, max_rows: int) -> None:
    if rows == 0:
        raise RequestError("empty batch: send at least one row")
    if rows > max_rows:
        raise RequestError(f"batch of {rows} rows is above the maximum of {max_rows}", 413)


def _shape_rows(name: str, shape: Any) -> int:
    """Rows of a [N] or [N, 1] tensor; other shapes are not what the model takes."""
    if (
        not isinstance(shape, list)
        or not all(isinstance(dim, int) and not isinstance(dim, bool) for dim in shape)
        or len(shape) not in (1, 2)
        or (len(shape) == 2 and shape[1] != 1)
        or shape[0] < 0
    ):
        raise RequestError(f"input {name!r}: shape must be [rows] or [rows, 1], got {shape!r}")
    return shape[0]


def _flatten(name: str, data: Any) -> list[Any]:
    if not isinstance(data, list):
        raise RequestError(f"input {name!r}: 'data' must be a list")
    if data and all(isinstance(item, list) for item in data):
        if not all(len(item) == 1 for item in data):
            raise RequestError(f"input {name!r}: rows of 'data' must hold one value each")
        return [item[0] for item in data]
    return data


def _numbers(names: list[str], columns: list[list[Any]], allow_null: bool) -> np.ndarray:
    """Numeric columns as one float32 block, a row per column, checked in a few passes."""
    # Types first (one set of types is cheap): numpy would quietly read True or "1.5".
    allowed = NUMBER_TYPES | ({type(None)} if allow_null else set())
    if not {type(value) for column in columns for value in column} <= allowed:
        name, row, value = next(
            (name, row, value)
            for name, column in zip(names, columns, strict=True)
            for row, value in enumerate(column)
            if type(value) not in allowed
        )
        raise RequestError(f"feature {name!r} row {row}: expected a number, got {value!r:.40}")
    try:
        # None becomes NaN, and NaN (JSON's NaN literal) is a gap: the model imputes both.
        block = np.array(columns, dtype=np.float64)
        fits = not np.any(np.abs(block) > FLOAT32_MAX)
    except OverflowError:  # an integer beyond float64
        fits = False
    if not fits:
        name, row, value = next(
            (name, row, value)
            for name, column in zip(names, columns, strict=True)
            for row, value in enumerate(column)
            if abs(value or 0) > FLOAT32_MAX
        )
        raise RequestError(f"feature {name!r} row {row}: {value!r:.20} is beyond float32")
    return block.astype(np.float32)


def _categories(name: str, values: list[Any]) -> np.ndarray:
    for row, value in enumerate(values):
        if value is not None and not isinstance(value, str):
            raise RequestError(f"feature {name!r} row {row}: expected text, got {value!r:.40}")
    # "" is the missing category the model was trained with (features.MISSING_CATEGORY).
    return np.array(["" if value is None else value for value in values], dtype=object).reshape(
        -1, 1
    )


# --- the ASGI application ------------------------------------------------------------------

Handler = Callable[["Request"], Awaitable[tuple[int, Any]]]


@dataclass
class Request:
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes
    request_id: str

    def json(self) -> Any:
        if not self.body:
            raise RequestError("empty body: send a JSON document")
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, ValueError) as err:
            raise RequestError(f"malformed JSON: {err}") from None


class PredictionLog:
    """Sampled predictions as JSON lines: request id, model version, features, outputs, latency."""

    def __init__(self, target: str, sample: float, model_version: str):
        # Line-buffered: each prediction reaches the file (or the container log) as it happens.
        self.stream = sys.stdout if target == "-" else open(target, "a", buffering=1)  # noqa: SIM115
        self.sample = sample
        self.model_version = model_version

    def sampled(self) -> bool:
        """Whether this request is logged: decided before its lines are put together."""
        return random.random() < self.sample

    def write(
        self,
        request_id: str,
        features: dict[str, list[Any]],
        outputs: list[dict[str, Any]],
        started: float,
    ) -> None:
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        for row, output in enumerate(outputs):
            line = {
                "time": now,
                "request_id": request_id,
                "model_version": self.model_version,
                "features": {name: _plain(values[row]) for name, values in features.items()},
                "outputs": output,
                "latency_ms": latency_ms,
            }
            self.stream.write(json.dumps(line) + "\n")


def _plain(value: Any) -> Any:
    """A JSON value for a logged feature: NaN and "" (gaps as the model sees them) become null."""
    if isinstance(value, float) and value != value:
        return None
    return None if value == "" else value


class Metrics:
    """Prometheus series named by its conventions: base units, `_total` counters, an info gauge."""

    def __init__(self, model: ServedModel):
        self.registry = prom.CollectorRegistry(auto_describe=True)
        self.requests = prom.Counter(
            "http_requests",
            "HTTP requests by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = prom.Histogram(
            "http_request_duration_seconds",
            "Time from request to response, by route template.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rows = prom.Counter(
            "model_predicted_rows", "Rows predicted by the model.", registry=self.registry
        )
        info = prom.Gauge(
            "model_info",
            "The served model: always 1, the labels say which.",
            ["name", "version", "sha256"],
            registry=self.registry,
        )
        info.labels(model.name, model.version, model.sha256).set(1)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        method = method if method in KNOWN_METHODS else "other"
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)


class App:
    """A small ASGI app: a few routes, JSON in and out, no framework on the hot path."""

    def __init__(
        self,
        model: ServedModel,
        limits: Limits | None = None,
        prediction_log: PredictionLog | None = None,
    ):
        self.model = model
        self.limits = limits or Limits()
        self.prediction_log = prediction_log
        self.ready = False
        self.metrics = Metrics(model)
        model_path = r"/v2/models/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?"
        routes: list[tuple[str, str, str, Handler]] = [
            ("GET", "/v2/health/live", r"/v2/health/live", self.live),
            ("GET", "/v2/health/ready", r"/v2/health/ready", self.server_ready),
            ("GET", "/v2", r"/v2/?", self.server_metadata),
            ("GET", "/v2/models/{name}", model_path, self.model_metadata),
            ("GET", "/v2/models/{name}/ready", model_path + "/ready", self.model_ready),
            ("POST", "/v2/models/{name}/infer", model_path + "/infer", self.infer),
            ("POST", "/predict", r"/predict", self.predict),
            ("GET", "/metrics", r"/metrics", self.prometheus),
        ]
        self.routes = [
            (method, template, re.compile(pattern + r"\Z"), handler)
            for method, template, pattern, handler in routes
        ]

    # --- routes -----------------------------------------------------------------------------

    async def live(self, request: Request) -> tuple[int, Any]:
        return 200, {"live": True}

    async def server_ready(self, request: Request) -> tuple[int, Any]:
        return (200 if self.ready else 503), {"ready": self.ready}

    async def server_metadata(self, request: Request) -> tuple[int, Any]:
        return 200, {"name": self.model.name, "version": self.model.version, "extensions": []}

    async def model_metadata(self, request: Request) -> tuple[int, Any]:
        self.check_model(request)
        return 200, self.model.metadata()

    async def model_ready(self, request: Request) -> tuple[int, Any]:
        self.check_model(request)
        return (200 if self.ready else 503), {"name": self.model.name, "ready": self.ready}

    async def infer(self, request: Request) -> tuple[int, Any]:
        self.check_model(request)
        if "inference-header-content-length" in request.headers:
            raise RequestError(
                "the binary tensor extension is not supported: send tensors as JSON "
                "(tritonclient: binary_data=False)"
            )
        body = request.json()
        if not isinstance(body, dict):
            raise RequestError("the infer request must be a JSON object with 'inputs'")
        started = time.perf_counter()
        feed = self.model.feed_from_tensors(body.get("inputs"), self.limits.max_batch_rows)
        wanted = self.requested_outputs(body.get("outputs"))
        outputs = self.model.run(feed)
        self.metrics.rows.inc(len(next(iter(feed.values()))))
        if self.prediction_log and self.prediction_log.sampled():
            features = {name: values.ravel().tolist() for name, values in feed.items()}
            predictions = self.model.predictions(outputs)
            self.prediction_log.write(request.request_id, features, predictions, started)
        response = {
            "model_name": self.model.name,
            "model_version": self.model.version,
            "outputs": [
                {
                    "name": name,
                    "datatype": self.model.outputs[name],
                    "shape": list(outputs[name].shape),
                    "data": outputs[name].ravel().tolist(),
                }
                for name in wanted
            ],
        }
        if "id" in body:
            response["id"] = body["id"]
        return 200, response

    async def predict(self, request: Request) -> tuple[int, Any]:
        body = request.json()
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list):
            raise RequestError('send {"records": [{"<feature>": <value>, ...}, ...]}')
        _check_rows(len(records), self.limits.max_batch_rows)
        started = time.perf_counter()
        outputs = self.model.run(self.model.feed_from_records(records))
        self.metrics.rows.inc(len(records))
        predictions = self.model.predictions(outputs)
        if self.prediction_log and self.prediction_log.sampled():
            features = {name: [record[name] for record in records] for name in self.model.features}
            self.prediction_log.write(request.request_id, features, predictions, started)
        return 200, {"model_version": self.model.version, "predictions": predictions}

    async def prometheus(self, request: Request) -> tuple[int, Any]:
        return 200, prom.generate_latest(self.metrics.registry)

    # --- helpers ----------------------------------------------------------------------------

    def check_model(self, request: Request) -> None:
        name, version = request.params.get("name"), request.params.get("version")
        if name != self.model.name:
            raise RequestError(f"unknown model {name!r}: this server has {self.model.name!r}", 404)
        if version is not None and version != self.model.version:
            raise RequestError(
                f"unknown version {version!r}: this server has {self.model.version!r}", 404
            )

    def requested_outputs(self, requested: Any) -> list[str]:
        if requested is None:
            return list(self.model.outputs)
        if not isinstance(requested, list) or not all(isinstance(o, dict) for o in requested):
            raise RequestError("'outputs' must be a list of {\"name\": ...}")
        names = [item.get("name") for item in requested]
        unknown = [name for name in names if name not in self.model.outputs]
        if unknown:
            raise RequestError(
                f"unknown output {unknown[0]!r}: has {', '.join(self.model.outputs)}"
            )
        return names

    def match(self, method: str, path: str) -> tuple[str, Handler, dict[str, str]]:
        allowed = False
        for route_method, template, pattern, handler in self.routes:
            found = pattern.match(path)
            if found:
                if route_method == method or (route_method == "GET" and method == "HEAD"):
                    params = {k: v for k, v in found.groupdict().items() if v is not None}
                    return template, handler, params
                allowed = True
        if allowed:
            raise RequestError(f"method {method} is not allowed on {path}", 405)
        raise RequestError(f"no route {path}", 404)

    # --- ASGI ---------------------------------------------------------------------------------

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        headers = {
            key.decode("latin-1").lower(): value.decode("latin-1")
            for key, value in scope["headers"]
        }
        request_id = headers.get("x-request-id") or uuid.uuid4().hex
        route, method = "unmatched", scope["method"]
        try:
            route, handler, params = self.match(method, scope["path"])
            body = await self.read_body(headers, receive)
            request = Request(params, headers, body, request_id)
            status, payload = await handler(request)
        except RequestError as err:
            status, payload = err.status, {"error": str(err)}
        except Exception as err:  # a bug of ours: say so without leaking internals
            print(f"serve: error on {method} {scope['path']}: {err!r}", file=sys.stderr)
            status, payload = 500, {"error": "internal error; see the server log"}
        await self.respond(send, status, payload, request_id, head=method == "HEAD")
        self.metrics.observe(route, method, status, time.perf_counter() - started)

    async def read_body(self, headers: dict[str, str], receive: Callable) -> bytes:
        limit = self.limits.max_body_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise RequestError(f"body of {declared} bytes is above the limit of {limit}", 413)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RequestError("client disconnected", 400)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise RequestError(f"body is above the limit of {limit} bytes", 413)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def respond(
        self, send: Callable, status: int, payload: Any, request_id: str, head: bool
    ) -> None:
        if isinstance(payload, bytes):  # /metrics
            body, content_type = payload, prom.CONTENT_TYPE_LATEST.encode()
        else:
            body, content_type = json.dumps(payload).encode(), b"application/json"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-request-id", request_id.encode("latin-1", "replace")),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b"" if head else body})

    async def lifespan(self, receive: Callable, send: Callable) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await asyncio.to_thread(self.model.warm_up)
                except Exception as err:
                    await send({"type": "lifespan.startup.failed", "message": f"warm-up: {err}"})
                    return
                self.ready = True
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.ready = False
                await send({"type": "lifespan.shutdown.complete"})
                return


def main(argv: list[str] | None = None) -> None:
    def setting(name: str, default: str) -> str:
        return os.environ.get(name, default)

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # Every option also reads its environment variable (the image sets them); argparse turns a
    # bad value into one line, e.g. "argument --port: invalid int value: 'eighty'".
    parser.add_argument("--model", type=Path, default=setting("MODEL_PATH", str(DEFAULT_MODEL)))
    parser.add_argument("--name", default=setting("MODEL_NAME", DEFAULT_NAME))
    parser.add_argument("--host", default=setting("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=setting("PORT", "8080"))
    parser.add_argument("--max-batch-rows", type=int, default=setting("MAX_BATCH_ROWS", "1000"))
    parser.add_argument(
        "--max-body-bytes", type=int, default=setting("MAX_BODY_BYTES", str(4 * 1024 * 1024))
    )
    parser.add_argument("--threads", type=int, default=setting("ORT_THREADS", "1"))
    parser.add_argument("--prediction-log", default=setting("PREDICTION_LOG", ""))
    parser.add_argument(
        "--prediction-log-sample", type=float, default=setting("PREDICTION_LOG_SAMPLE", "1")
    )
    args = parser.parse_args(argv)
    if args.threads < 1 or args.max_batch_rows < 1 or args.max_body_bytes < 1:
        parser.error("ORT_THREADS, MAX_BATCH_ROWS and MAX_BODY_BYTES must be positive")
    try:
        model = ServedModel.load(args.model, args.name, args.threads)
    except ModelLoadError as err:
        sys.exit(f"serve: {err}")
    if not 0 <= args.prediction_log_sample <= 1:
        sys.exit("serve: PREDICTION_LOG_SAMPLE must be between 0 and 1")
    try:
        log = (
            PredictionLog(args.prediction_log, args.prediction_log_sample, model.version)
            if args.prediction_log
            else None
        )
    except OSError as err:
        sys.exit(f"serve: cannot write the prediction log {args.prediction_log}: {err.strerror}")
    import uvicorn  # only the server process needs it, not the tests that build an App

    print(
        f"serve: {model.name} {model.version} ({model.task}, sha256 {model.sha256[:12]}) "
        f"on http://{args.host}:{args.port}",
        flush=True,
    )
    uvicorn.run(
        App(model, Limits(args.max_batch_rows, args.max_body_bytes), log),
        host=args.host,
        port=args.port,
        access_log=False,
        log_level="warning",
        server_header=False,
    )


if __name__ == "__main__":
    main()
