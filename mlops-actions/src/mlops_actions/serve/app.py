"""The ASGI app: a few routes, JSON in and out, every request's work bounded; no framework.

Small requests run start to end on the event loop: their inference takes less than a hand-off to
a thread would, and those waiting at the same time run as one batch (`batching`, COALESCE_ROWS).
A larger batch runs in the inference thread (decoding too, for a large body), so the loop keeps
answering health checks and small requests meanwhile.
"""

import asyncio
import gc
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import chain
from typing import Any

from . import binary, openapi
from .batching import Coalescer, join_feeds
from .errors import RequestError, cut, shown
from .metrics import CONTENT_TYPE as METRICS_TYPE
from .metrics import Metrics, PredictionLog
from .model import ServedModel
from .protocol import Codec, row_tuples
from .settings import Limits

JSON_TYPE = b"application/json"
# Infer's answer when binary tensor data follows its JSON, as Triton sends it.
BINARY_TYPE = b"application/octet-stream"
# Bodies up to this size are decoded on the event loop (about 0.2 ms for 64 KiB).
INLINE_BODY_BYTES = 64 * 1024
REQUEST_ID = re.compile(rb"[\x21-\x7e]{1,128}")
HEADER_LENGTH = binary.HEADER.lower().encode()  # as ASGI gives header names
# A request whose connection closed before its body was in: nothing is sent, and the metrics count
# it under nginx's "client closed request".
CLIENT_CLOSED = 499
Headers = list[tuple[bytes, bytes]]
# Status, body, content type, and headers beyond those every answer has.
Reply = tuple[int, bytes, bytes] | tuple[int, bytes, bytes, Headers]


@dataclass(slots=True)
class Request:
    params: dict[str, str]
    body: bytes
    request_id: str
    # Inference-Header-Content-Length (the binary tensor data extension's): the JSON's length
    header: bytes | None
    receive: Callable  # ASGI's: after the body, it answers only once the client has gone
    held: list[int]  # bytes it holds, counted against MAX_BUFFERED_BYTES (`App.reserve`)


@dataclass(frozen=True, slots=True)
class Route:
    template: str
    methods: frozenset[str]
    handler: Callable[[Request], Awaitable[Reply]]
    reads_body: bool
    # Takes application/octet-stream too (infer: binary tensor data may follow its JSON).
    binary: bool = False


class App:
    def __init__(
        self,
        model: ServedModel,
        limits: Limits | None = None,
        prediction_log: PredictionLog | None = None,
    ):
        self.model = model
        self.limits = limits or Limits()
        self.codec = Codec(model, self.limits)
        self.prediction_log = prediction_log
        self.ready = False
        self.metrics = Metrics(model)
        # One inference thread: onnxruntime releases the GIL while it computes; more threads
        # than cores would only queue. Replicas scale.
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="inference")
        self.buffered = 0  # request and response bytes held now, all requests together
        # Small requests waiting at once, one model call: /predict's records packed together,
        # infer's feeds joined input by input.
        self.predicts = Coalescer(self.records_feed, self.run_model, self.limits.coalesce_rows)
        self.infers = Coalescer(join_feeds, self.run_model, self.limits.coalesce_rows)
        self.metadata = self.codec.encode(model.metadata())
        self.openapi = self.codec.encode(openapi.document(model, self.limits))
        get, post = frozenset({"GET", "HEAD"}), frozenset({"POST"})
        self.exact = {
            "/v2/health/live": Route("/v2/health/live", get, self.live, False),
            "/v2/health/ready": Route("/v2/health/ready", get, self.server_ready, False),
            "/v2": Route("/v2", get, self.server_metadata, False),
            "/predict": Route("/predict", post, self.predict, True),
            "/metrics": Route("/metrics", get, self.prometheus, False),
            "/openapi.json": Route("/openapi.json", get, self.document, False),
        }
        self.exact["/v2/"] = self.exact["/v2"]
        model_path = r"/v2/models/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?"
        self.patterns = [
            (
                re.compile(model_path + suffix + r"\Z"),
                Route(template, methods, handler, body, binary=suffix == "/infer"),
            )
            for suffix, template, methods, handler, body in (
                ("", "/v2/models/{name}", get, self.model_metadata, False),
                ("/ready", "/v2/models/{name}/ready", get, self.model_ready, False),
                ("/infer", "/v2/models/{name}/infer", post, self.infer, True),
            )
        ]

    # --- routes ---------------------------------------------------------------------------------

    async def live(self, request: Request) -> Reply:
        return 200, b'{"live":true}', JSON_TYPE

    async def server_ready(self, request: Request) -> Reply:
        if self.ready:
            return 200, b'{"ready":true}', JSON_TYPE
        return 503, b'{"ready":false}', JSON_TYPE

    async def server_metadata(self, request: Request) -> Reply:
        body = {
            "name": self.model.name,
            "version": self.model.version,
            "extensions": ["binary_tensor_data"],
        }
        return 200, self.codec.encode(body), JSON_TYPE

    async def model_metadata(self, request: Request) -> Reply:
        self.check_model(request.params)
        return 200, self.metadata, JSON_TYPE

    async def model_ready(self, request: Request) -> Reply:
        self.check_model(request.params)
        body = self.codec.encode({"name": self.model.name, "ready": self.ready})
        return (200 if self.ready else 503), body, JSON_TYPE

    async def document(self, request: Request) -> Reply:
        return 200, self.openapi, JSON_TYPE

    async def prometheus(self, request: Request) -> Reply:
        return 200, self.metrics.exposition(), METRICS_TYPE

    async def infer(self, request: Request) -> Reply:
        self.check_model(request.params)
        body = self.non_empty(request.body)
        header = json_length(request.header)
        started = time.perf_counter()
        if len(body) > INLINE_BODY_BYTES:
            (reply, json_size), rows, log = await self.model_in_thread(
                request, self.infer_job, body, header, self.log_this()
            )
        else:
            feed, rows, wanted, request_id = self.codec.infer_feed(body, header)
            # Held until the model has run: counted, so requests waiting at once are bounded.
            echoed = 0 if request_id is None else len(request_id) * 4
            self.reserve(self.codec.feed_bytes(feed, rows) + echoed, request.held)
            if rows <= self.limits.inline_rows:
                outputs = await self.infers.submit(feed, rows)
            else:
                outputs = await self.model_in_thread(request, self.model.run, feed)
            reply, json_size = self.codec.infer_reply(outputs, wanted, request_id)
            log = (feed, outputs) if self.log_this() else None
        self.metrics.rows += rows
        if log:
            assert self.prediction_log is not None  # log_this() said to log
            feed, outputs = log
            features = {name: values.ravel().tolist() for name, values in feed.items()}
            predictions = self.codec.predictions(outputs)
            self.prediction_log.write(request.request_id, features, predictions, started)
        if json_size is None:
            return 200, reply, JSON_TYPE
        return 200, reply, BINARY_TYPE, [(HEADER_LENGTH, str(json_size).encode())]

    def infer_job(self, body: bytes, header: int | None, log: bool) -> tuple[Any, int, Any]:
        feed, rows, wanted, request_id = self.codec.infer_feed(body, header)
        outputs = self.model.run(feed)
        reply = self.codec.infer_reply(outputs, wanted, request_id)
        return reply, rows, (feed, outputs) if log else None

    async def predict(self, request: Request) -> Reply:
        if request.header is not None:
            raise RequestError(
                "Inference-Header-Content-Length is for binary tensor data, which only infer "
                "takes: send /predict a JSON body"
            )
        body = self.non_empty(request.body)
        started = time.perf_counter()
        if len(body) > INLINE_BODY_BYTES:
            reply, rows, log = await self.model_in_thread(
                request, self.predict_job, body, self.log_this()
            )
        else:
            records = self.codec.predict_rows(body)
            rows = len(records)
            # Held until the model has run: counted, so requests waiting at once are bounded.
            logged = self.log_this()
            held = self.codec.held_bytes(rows, len(body), logged)
            self.reserve(held, request.held)
            columns = self.codec.columns(records) if logged else None
            if rows <= self.limits.inline_rows:
                outputs = await self.predicts.submit(records, rows)
            else:
                feed = self.codec.records_feed(records, rows, keep=False)
                if not logged:  # the feed waits for the thread, not the decoded rows
                    del records
                    self.release(held - self.codec.feed_bytes(feed, rows), request.held)
                outputs = await self.model_in_thread(request, self.model.run, feed)
            reply = self.codec.predict_reply(outputs)
            log = None if columns is None else (columns, self.codec.predictions(outputs))
        self.metrics.rows += rows
        if log:
            assert self.prediction_log is not None  # log_this() said to log
            columns, predictions = log
            self.prediction_log.write(request.request_id, columns, predictions, started)
        return 200, reply, JSON_TYPE

    def predict_job(self, body: bytes, log: bool) -> tuple[bytes, int, Any]:
        feed, rows, records = self.codec.predict_feed(body)
        outputs = self.model.run(feed)
        log_lines = (self.codec.columns(records), self.codec.predictions(outputs)) if log else None
        return self.codec.predict_reply(outputs), rows, log_lines

    # --- helpers --------------------------------------------------------------------------------

    def run_model(self, feed: dict) -> dict:
        """The model on the event loop (the inference thread's runs are counted by the caller:
        the metrics are the loop's alone). Like theirs, only a call that completed is counted."""
        outputs = self.model.run(feed)
        self.metrics.runs += 1
        return outputs

    def records_feed(self, parts: list[list], rows: int) -> dict:
        """/predict requests' rows as one feed, in kept arrays (`Codec.numeric_feed`): the
        coalescer runs it on the loop at once."""
        records = parts[0] if len(parts) == 1 else [*chain.from_iterable(map(row_tuples, parts))]
        return self.codec.records_feed(records, rows, keep=True)

    async def model_in_thread(self, request: Request, job: Callable, *args: Any) -> Any:
        """A job that runs the model once, in the inference thread; counted here, on the loop."""
        result = await self.in_thread(request, job, *args)
        self.metrics.runs += 1
        return result

    async def in_thread(self, request: Request, job: Callable, *args: Any) -> Any:
        """`job` in the inference thread, unless the client has gone by the time it would start:
        a client that gave up (its timeout, a retry) costs no model run, so an overloaded server
        does not spend itself on answers no one reads (a 499 in the metrics)."""
        loop = asyncio.get_running_loop()
        watch = asyncio.ensure_future(request.receive())
        gone: list[bool] = []  # written on the loop, read by the thread
        watch.add_done_callback(lambda task: gone.extend(_left(task)))

        def unless_gone() -> Any:
            if gone:
                raise RequestError("client closed the connection", CLIENT_CLOSED)
            return job(*args)

        future = loop.run_in_executor(self.executor, unless_gone)
        try:
            return await asyncio.wait_for(future, self.limits.request_timeout)
        except TimeoutError:
            # A job not started yet is cancelled; one running finishes, its answer dropped.
            raise RequestError(
                f"no answer within {self.limits.request_timeout} s (REQUEST_TIMEOUT): the "
                "server is busy, retry",
                503,
            ) from None
        finally:
            watch.cancel()

    def log_this(self) -> bool:
        return self.prediction_log is not None and self.prediction_log.sampled()

    @staticmethod
    def non_empty(body: bytes) -> bytes:
        if not body:
            raise RequestError("empty body: send a JSON document")
        return body

    def check_model(self, params: dict[str, str]) -> None:
        name, version = params.get("name"), params.get("version")
        if name != self.model.name:
            raise RequestError(
                f"unknown model {shown(name)}: this server has {self.model.name!r}", 404
            )
        if version is not None and version != self.model.version:
            raise RequestError(
                f"unknown version {shown(version)}: this server has {self.model.version!r}", 404
            )

    def match(self, path: str) -> tuple[Route, dict[str, str]]:
        route = self.exact.get(path)
        if route is not None:
            return route, {}
        for pattern, route in self.patterns:
            found = pattern.match(path)
            if found:
                return route, {k: v for k, v in found.groupdict().items() if v is not None}
        raise RequestError(f"no route {path}", 404)

    # --- ASGI -----------------------------------------------------------------------------------

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self.lifespan(receive, send)
            return
        started = time.perf_counter()
        method, path = scope["method"], scope["path"]
        content_type = declared = request_id = header = encoding = None
        for key, value in scope["headers"]:
            if key == b"content-type":
                content_type = value
            elif key == b"content-length":
                declared = value
            elif key == b"x-request-id":
                request_id = value
            elif key == HEADER_LENGTH:
                header = value
            elif key == b"content-encoding":
                encoding = value
        if request_id is None or not REQUEST_ID.fullmatch(request_id):
            request_id = os.urandom(16).hex().encode()
        template, extra, held = "unmatched", [], [0]
        try:
            route, params = self.match(path)
            template = route.template
            if method not in route.methods:
                allowed = ", ".join(sorted(route.methods))
                extra.append((b"allow", allowed.encode()))
                raise RequestError(f"method {method} is not allowed on {path}: use {allowed}", 405)
            body = b""
            if route.reads_body:
                check_content_type(content_type, binary=route.binary)
                check_encoding(encoding)
                body = await self.read_body(declared, receive, held)
            status, reply, kind, *headers = await route.handler(
                Request(params, body, request_id.decode(), header, receive, held)
            )
            if headers:
                extra.extend(headers[0])
        except RequestError as err:
            status, kind = err.status, JSON_TYPE
            reply = self.codec.encode({"error": cut(str(err))})
            if status == 413:  # the rest of the body is not worth reading
                extra.append((b"connection", b"close"))
            elif status == 503:
                extra.append((b"retry-after", b"1"))
        except Exception as err:  # a bug of ours: say so without leaking internals
            print(f"serve: error on {method} {path}: {err!r}", file=sys.stderr)
            status, reply, kind = 500, b'{"error":"internal error; see the server log"}', JSON_TYPE
        try:
            if status != CLIENT_CLOSED:
                status = await self.respond(
                    send, method, status, reply, kind, request_id, extra, held
                )
        finally:
            self.buffered -= held[0]
            self.metrics.observe(template, method, status, time.perf_counter() - started)

    async def respond(
        self,
        send: Callable,
        method: str,
        status: int,
        reply: bytes,
        kind: bytes,
        request_id: bytes,
        extra: list[tuple[bytes, bytes]],
        held: list[int],
    ) -> int:
        """Send the answer (a 503 if holding it would pass MAX_BUFFERED_BYTES, a 413 if it
        would alone); its status."""
        try:
            self.reserve(len(reply), held)
        except RequestError as err:  # no room to hold the answer: say so briefly
            status, kind, reply = err.status, JSON_TYPE, self.codec.encode({"error": str(err)})
            # A binary answer's JSON length does not describe this one.
            extra = [item for item in extra if item[0] != HEADER_LENGTH]
            extra.append((b"retry-after", b"1") if status == 503 else (b"connection", b"close"))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", kind),
                    (b"content-length", str(len(reply)).encode()),
                    (b"x-request-id", request_id),
                    *extra,
                ],
            }
        )
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else reply})
        return status

    def reserve(self, size: int, held: list[int]) -> None:
        """Count bytes against MAX_BUFFERED_BYTES; the request's total is released at its end.
        A request that alone would pass it gets a 413: retrying cannot help."""
        limit = self.limits.max_buffered_bytes
        if held[0] + size > limit:
            raise RequestError(
                f"this request needs more than the {limit} bytes all requests may hold at once "
                "(MAX_BUFFERED_BYTES): send fewer rows",
                413,
            )
        if self.buffered + size > limit:
            raise RequestError(
                f"busy: {self.limits.max_buffered_bytes} bytes of requests and answers are held "
                "(MAX_BUFFERED_BYTES), retry",
                503,
            )
        self.buffered += size
        held[0] += size

    def release(self, size: int, held: list[int]) -> None:
        """Uncount bytes a request no longer holds (at most what it counted)."""
        size = min(max(size, 0), held[0])
        self.buffered -= size
        held[0] -= size

    async def read_body(self, declared: bytes | None, receive: Callable, held: list[int]) -> bytes:
        """The body, up to MAX_BODY_BYTES. How long it may take to arrive is bounded by the HTTP
        layer (BODY_TIMEOUT, in http.py): free for a body that arrives with its head, where a
        timer here cost each request about 4 µs."""
        limit = self.limits.max_body_bytes
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise RequestError(
                f"body of {int(declared)} bytes is above the limit of {limit} (MAX_BODY_BYTES)", 413
            )
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                # Closed before the body was in: by the client, or by the HTTP layer once
                # BODY_TIMEOUT passed (it answered 408 itself). No one is left to answer.
                raise RequestError("client closed the connection", CLIENT_CLOSED)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise RequestError(
                    f"body is above the limit of {limit} bytes (MAX_BODY_BYTES)", 413
                )
            self.reserve(len(chunk), held)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def lifespan(self, receive: Callable, send: Callable) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await asyncio.get_running_loop().run_in_executor(
                        self.executor, self.model.warm_up
                    )
                except Exception as err:
                    await send({"type": "lifespan.startup.failed", "message": f"warm-up: {err}"})
                    return
                # What start-up made (modules, the session, routes) lives as long as the process:
                # out of the collector's sight, each collection scans only what requests make
                # (about a sixth more requests per second at one row).
                gc.freeze()
                self.ready = True
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.ready = False
                await send({"type": "lifespan.shutdown.complete"})
                return


def _left(watch: asyncio.Task) -> list[bool]:
    """[True] once the client has gone: what ASGI's receive answers after the body."""
    if watch.cancelled() or watch.exception() is not None:
        return []
    return [True] if watch.result().get("type") == "http.disconnect" else []


def check_content_type(value: bytes | None, binary: bool = False) -> None:
    """JSON bodies only: application/json or any +json type; with `binary` (infer),
    application/octet-stream too, with or without the Inference-Header-Content-Length header:
    the extension asks for the header when binary data follow the JSON, and without it the whole
    body is the JSON, whatever its type (as Triton reads it, and as the document says, which
    gives both types one schema). None given reads as JSON, since OIP clients (tritonclient among
    them) send none."""
    if value is None:
        return
    media = value.split(b";", 1)[0].strip().lower()
    if media == JSON_TYPE or (media.endswith(b"+json") and b"/" in media):
        return
    if binary and media == BINARY_TYPE:
        return
    shown = value.decode("latin-1")[:60]
    raise RequestError(f"Content-Type {shown!r} is not JSON: send application/json", 415)


def check_encoding(value: bytes | None) -> None:
    """Bodies are read as sent: a compressed one (tritonclient's request_compression_algorithm)
    is refused by name rather than misread as malformed JSON."""
    if value is not None and value.strip().lower() != b"identity":
        shown = value.decode("latin-1")[:40]
        raise RequestError(f"Content-Encoding {shown!r} is not supported: send the body as is", 415)


def json_length(header: bytes | None) -> int | None:
    """Inference-Header-Content-Length's value: the length of the JSON before binary data."""
    if header is None:
        return None
    if not header.isdigit() or len(header) > 18:
        shown = header.decode("latin-1")[:40]
        raise RequestError(f"Inference-Header-Content-Length must be a byte count, got {shown!r}")
    return int(header)
