"""uvicorn's httptools protocol with the bounds it lacks (deadlines and a size for the request),
answers in order for a client that pipelines, room for new clients at the connection limit, and
JSON for every answer it gives itself.

uvicorn 0.54 closes a connection idle between requests (`timeout_keep_alive`), but arms nothing
on a new connection and nothing once a request's first byte has arrived, and httptools (llhttp)
puts no limit on header size (h11's `h11_max_incomplete_event_size` applies to h11 only): a client
sending its headers or its body a byte at a time, or never, kept a connection and a growing
buffer. Here the request line and headers must arrive within HEADER_TIMEOUT (408) and fit
MAX_HEADER_BYTES (431), and the body within BODY_TIMEOUT once the head is in (408).

A head still arriving is measured by its own bytes only: the read it began in counts whole when
that read began at a request's start (the usual case); when it also held the end of the requests
before it (pipelined), what llhttp has handed over of the head (URL, headers) and the line it still
holds count; every later read of the same head counts whole. A whole head is measured exactly,
when it ends. (Counting a whole read as the head gave 5,000 pipelined health checks a 431.)

A refusal (400, 408, 431) is answered after the requests before it on the connection, then the
connection closes; nothing after the refused request is read. uvicorn answers a malformed request
and its connection limit in plain text; these are `{"error": ...}` as the app's are, a malformed
request's naming llhttp's reason. A closed connection stops the request being answered and those
queued behind it (uvicorn told only the last one parsed: the one being answered wrote to the
closed transport, a RuntimeError in the log).

MAX_CONNECTIONS is enforced here, not by uvicorn's `limit_concurrency` (which counted connections
that never sent a byte: 260 of them made every new request a 503, readiness probes too, until
HEADER_TIMEOUT closed them). When a connection past the limit opens, the one open longest without
a whole request head (silent, or a head still arriving) is closed to make room; a request
arriving while more connections than the limit are open, or as many requests are in progress,
gets a JSON 503 with Retry-After.

One timer per connection, armed only when a read leaves a request unfinished: a request that
arrives in one read (any small one) costs no timer, where a timeout in the app cost about 4 µs
a request. Read from uvicorn/protocols/http/httptools_impl.py (HttpToolsProtocol) of uvicorn 0.54.0.
"""

import asyncio
import json
from collections import deque
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from .settings import Limits


class HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing a head over the limit."""


class Discard:
    """The parser of a connection whose request was refused: nothing after it is read."""

    def feed_data(self, data: bytes) -> None:
        pass


DISCARD = Discard()


class Pipeline(deque[tuple[RequestResponseCycle, Any]]):
    """uvicorn's queue of pipelined requests, remembering the one being answered while others
    wait (uvicorn keeps no reference to it): a closed connection must stop it writing too."""

    running: RequestResponseCycle | None = None

    def pop(self) -> tuple[RequestResponseCycle, Any]:  # type: ignore[override]
        # uvicorn takes the next request to answer with pop()
        item = super().pop()
        self.running = item[0]
        return item


def answer(status: int, message: str, retry: bool = False) -> tuple[list, bytes]:
    """An error's headers and body, as the app writes them: JSON, and the connection closed."""
    body = json.dumps({"error": message}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    if retry:
        headers.append((b"retry-after", b"1"))
    return headers, body


def reply_app(status: int, message: str, retry: bool = False) -> Any:
    """An ASGI app answering only this error: how an answer waits its turn on the connection."""
    headers, body = answer(status, message, retry)

    async def reply(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return reply


def malformed(err: Exception) -> str:
    """What a request llhttp (or uvicorn reading its URL) refused got wrong."""
    reason = str(err)
    if reason == "Pause on PRI/Upgrade":  # the HTTP/2 connection preface
        return "malformed HTTP request: HTTP/2 without upgrade is not supported, use HTTP/1.1"
    if isinstance(err, httptools.HttpParserCallbackError):  # uvicorn's on_headers_complete
        reason = f"{type(err.__context__).__name__} reading the request target"
    return f"malformed HTTP request: {reason}"


def guarded_protocol(limits: Limits) -> type[HttpToolsProtocol]:
    """A protocol class for uvicorn's `http=`, bound to these limits. uvicorn's
    `limit_concurrency` must be unset: MAX_CONNECTIONS is enforced here."""

    busy = reply_app(
        503,
        f"more than {limits.max_connections} connections or requests at once "
        "(MAX_CONNECTIONS), retry",
        retry=True,
    )

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        header_timeout = limits.header_timeout
        body_timeout = limits.body_timeout
        max_header_bytes = limits.max_header_bytes
        max_connections = limits.max_connections
        pipeline: Pipeline

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.limit_concurrency = None  # MAX_CONNECTIONS is ours (below), answered in JSON
            self.pipeline = Pipeline()
            self.head_bytes = 0
            self.in_head = self.in_body = self.ended = False
            self.opened = self.loop.time()
            # A new connection owes its first request line within the deadline, too.
            self.timer: asyncio.TimerHandle | None = self.loop.call_later(
                self.header_timeout, self.timed_out
            )
            if len(self.connections) > self.max_connections:
                self.make_room()

        def make_room(self) -> None:
            """Close the connection open longest without a whole request head (sent nothing,
            or part of a head), if any: it is this one's turn."""
            waiting: list[Any] = [
                other
                for other in self.connections
                if other is not self and getattr(other, "cycle", self) is None
            ]
            if not waiting:
                return  # every other connection has a request: new requests get a 503
            oldest = min(waiting, key=lambda other: other.opened)
            self.connections.discard(oldest)  # its slot is free now, before its close completes
            if oldest.in_head:
                oldest.refuse(503, "closed for a new connection (MAX_CONNECTIONS), retry", True)
            else:
                oldest.cancel_timer()
                oldest.transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            self.cancel_timer()
            # uvicorn tells only the last request parsed: with requests pipelined, the one being
            # answered wrote to the closed connection (a RuntimeError logged as "Exception in
            # ASGI application"), and those queued must not start.
            running = self.pipeline.running
            if running is not None and not running.response_complete:
                running.disconnected = True
                running.message_event.set()
            self.pipeline.clear()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            self._unset_keepalive_if_required()
            was_in_head = self.in_head
            self.ended = False
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserCallbackError as err:
                if isinstance(err.__context__, HeadTooLarge):
                    self.refuse_large_head()
                else:
                    self.refuse(400, malformed(err))
                return
            except httptools.HttpParserUpgrade:
                # The request was read and handed to the app (no upgrade is supported: it is
                # answered as HTTP/1.1); what follows it would be another protocol's.
                self.parser = DISCARD  # type: ignore[assignment]
                self.in_head = self.in_body = False
                self.cycle.keep_alive = False
                return
            except httptools.HttpParserError as err:
                self.refuse(400, malformed(err))
                return
            if self.in_head:
                if self.ended:  # it began after other requests ended in this read
                    self.head_bytes = self.pipelined_head(data)
                elif was_in_head:  # the same head since the last read: all of this one is head
                    self.head_bytes += len(data)
                else:  # it began this read (after blank lines at most)
                    self.head_bytes = len(data)
                if self.head_bytes > self.max_header_bytes:
                    self.refuse_large_head()
                    return
            elif not self.in_body:
                return
            # A request not whole after this read: it has the deadline to finish.
            if self.timer is None:
                timeout = self.header_timeout if self.in_head else self.body_timeout
                self.timer = self.loop.call_later(timeout, self.timed_out)

        def pipelined_head(self, data: bytes) -> int:
            """The bytes of a head that began in this read after the requests before it ended
            (pipelined), where llhttp cannot say: what it has handed over (the URL, the headers
            before the last) and the line it holds (the last header's, not handed over yet)."""
            head = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
            end = len(data) - 1 if data.endswith(b"\n") else len(data)
            line = data.rfind(b"\n", 0, end) + 1
            # That line is a header's if a header or the request line came before it; of the
            # request line itself only the URL counts, as the line may begin with the end of the
            # request before (a body with no line break).
            if (
                self.headers
                or data.endswith((b" HTTP/1.1\r\n", b" HTTP/1.0\r\n"), 0, line)
                or (self.url and data.find(b" " + self.url, line) < 0)
            ):
                head += len(data) - line
            return head

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self.in_head = True

        def on_headers_complete(self) -> None:
            # The whole head, counted once: a head that arrived in one read is measured here.
            size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
            if size > self.max_header_bytes:
                raise HeadTooLarge
            self.cancel_timer()
            previous = self.cycle
            if (
                len(self.connections) > self.max_connections
                or len(self.tasks) >= self.max_connections
            ):
                app, self.app = self.app, busy
                try:
                    super().on_headers_complete()
                finally:
                    self.app = app
            else:
                super().on_headers_complete()
            self.in_head, self.in_body = False, True
            if self.pipeline and len(self.pipeline) == 1:  # queued behind `previous`
                self.pipeline.running = previous

        def on_message_complete(self) -> None:
            self.in_body = False
            self.ended = True
            self.cancel_timer()
            super().on_message_complete()

        def refuse_large_head(self) -> None:
            self.refuse(
                431,
                f"request line and headers above {self.max_header_bytes} bytes (MAX_HEADER_BYTES)",
            )

        def cancel_timer(self) -> None:
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None

        def timed_out(self) -> None:
            self.timer = None
            if self.transport.is_closing():
                return
            if self.in_head:
                self.refuse(
                    408, f"headers not received within {self.header_timeout} s (HEADER_TIMEOUT)"
                )
            elif self.in_body and not (self.cycle and self.cycle.response_started):
                self.refuse(408, f"body not received within {self.body_timeout} s (BODY_TIMEOUT)")
            elif self.in_body or self.cycle is None:  # answered already, or never sent a byte
                self.transport.close()

        def refuse(self, status: int, message: str, retry: bool = False) -> None:
            """Answer outside the ASGI app, then close: the request cannot be trusted, nor
            anything after it. The answers to the requests before it go first."""
            refused_body = self.in_body  # of the last request parsed; else a new request's head
            self.in_head = self.in_body = False
            self.cancel_timer()
            self.parser = DISCARD  # type: ignore[assignment]
            cycle = self.cycle
            if refused_body and cycle.response_started:  # answered, or being answered
                if cycle.response_complete:
                    self.transport.close()
                else:
                    cycle.keep_alive = False  # closed once its answer is out
                return
            if refused_body and self.pipeline and self.pipeline[0][0] is cycle:
                self.pipeline[0] = (cycle, reply_app(status, message, retry))  # in its turn
                return
            if not refused_body and cycle is not None and not cycle.response_complete:
                self.queue(reply_app(status, message, retry))  # after the answers owed
                return
            # Nothing else to answer first (an app waiting for this body sees the close).
            headers, body = answer(status, message, retry)
            self.transport.write(
                b"".join([STATUS_LINE[status], *(b"%s: %s\r\n" % item for item in headers)])
                + b"\r\n"
                + body
            )
            self.transport.close()

        def queue(self, app: Any) -> None:
            """A refused request's answer, queued as uvicorn queues pipelined requests."""
            cycle = self.cycle  # being answered
            scope: dict[str, Any] = {
                "type": "http",
                "asgi": {"version": self.asgi_version, "spec_version": "2.3"},
                "http_version": "1.1",
                "server": self.server,
                "client": self.client,
                "scheme": self.scheme,
                "root_path": self.root_path,
                "method": "",
                "path": "",
                "raw_path": b"",
                "query_string": b"",
                "headers": [],
                "state": {},
            }
            self.cycle = RequestResponseCycle(
                scope=scope,  # type: ignore[arg-type]
                transport=self.transport,
                flow=self.flow,
                logger=self.logger,
                access_logger=self.access_logger,
                access_log=self.access_log,
                default_headers=self.server_state.default_headers,
                message_event=asyncio.Event(),
                expect_100_continue=False,
                keep_alive=False,
                on_response=self.on_response_complete,
            )
            self.cycle.more_body = False
            if not self.pipeline:
                self.pipeline.running = cycle
            self.pipeline.appendleft((self.cycle, app))

    return GuardedHttpToolsProtocol
