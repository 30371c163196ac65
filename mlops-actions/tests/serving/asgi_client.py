"""Requests to the serving app in process, through ASGI (fast enough for fuzzing, no sockets),
or over a real uvicorn server configured as `make serve` configures it; test rows as clients send
them."""

import asyncio
import contextlib
import json
import math
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any

import uvicorn

from mlops_actions.serve import App, Limits, ServedModel
from mlops_actions.serve.cli import uvicorn_options

MODEL_NAME = "served-model"
INFER = f"/v2/models/{MODEL_NAME}/infer"


def records_of(frame, schema) -> list[dict]:
    """Test rows as a client sends them: JSON values, null for a gap."""
    rows = frame[list(schema.features)].astype(object).to_dict("records")
    return [
        {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
        for row in rows
    ]


def tensors_of(records: list[dict], served: ServedModel) -> list[dict]:
    return [
        {
            "name": name,
            "shape": [len(records), 1],
            "datatype": served.inputs[name],
            "data": [record[name] if record[name] is not None else "" for record in records]
            if served.inputs[name] == "BYTES"
            else [record[name] for record in records],
        }
        for name in served.features
    ]


def binary_body(tensors: list[dict], **fields: Any) -> tuple[bytes, dict[str, str]]:
    """An infer body with every tensor's data as binary data after the JSON, as the binary tensor
    data extension lays it out (little-endian float32; a BYTES element as its 4-byte length and
    its UTF-8 bytes; a null as NaN), and the header giving the JSON's length."""
    described, chunks = [], []
    for tensor in tensors:
        values = tensor["data"]
        if tensor["datatype"] == "BYTES":
            encoded = [value.encode() for value in values]
            data = b"".join(struct.pack("<I", len(item)) + item for item in encoded)
        else:
            data = struct.pack(f"<{len(values)}f", *[math.nan if v is None else v for v in values])
        chunks.append(data)
        rest = {key: value for key, value in tensor.items() if key != "data"}
        described.append({**rest, "parameters": {"binary_data_size": len(data)}})
    document = json.dumps({"inputs": described, **fields}).encode()
    return document + b"".join(chunks), {"Inference-Header-Content-Length": str(len(document))}


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(app: App, method: str, path: str, body: Any = None, headers: dict | None = None):
    """One request through the ASGI app, in process: bytes go as they are, anything else as JSON."""
    return asyncio.run(request(app, method, path, body, headers))


def model_runs(app: App) -> int:
    """model_runs_total, as /metrics reports it: the model calls made so far."""
    metrics = call(app, "GET", "/metrics").body.decode()
    return int(float(re.search(r"^model_runs_total (\S+)$", metrics, re.M).group(1)))


def call_together(app: App, requests: list[tuple]) -> list[Response]:
    """Requests (each `call`'s arguments after the app) started at once in one event loop, as a
    server starts those that arrived together; their responses in the same order."""

    async def together():
        return await asyncio.gather(*(request(app, *arguments) for arguments in requests))

    return asyncio.run(together())


async def request(app: App, method: str, path: str, body: Any = None, headers: dict | None = None):
    raw = body if isinstance(body, bytes) else (b"" if body is None else json.dumps(body).encode())
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [
            (key.lower().encode(), value.encode())
            for key, value in {"content-length": str(len(raw)), **(headers or {})}.items()
        ],
    }
    await app(scope, receive, send)
    start, content = sent
    return Response(
        start["status"],
        {key.decode(): value.decode() for key, value in start["headers"]},
        content["body"],
    )


def start_up(app: App) -> App:
    """Run the app's lifespan start-up (warm-up, then ready) as a server would."""
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive():
        return next(messages)

    async def send(message):
        assert message["type"] != "lifespan.startup.failed", message

    asyncio.run(app({"type": "lifespan"}, receive, send))
    app.ready = True  # the shutdown message above cleared it; the app stays in use
    return app


@contextlib.contextmanager
def running(app: App, limits: Limits):
    """The app behind a real uvicorn server on a free loopback port, configured as `make serve`
    configures it; yields (host, port)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, **uvicorn_options(limits))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    try:
        yield "127.0.0.1", port
    finally:
        server.should_exit = True
        thread.join(timeout=10)
