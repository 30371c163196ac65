"""uvicorn's httptools protocol with the bounds it lacks: deadlines and a size for the request.

uvicorn 0.54 closes a connection idle between requests (`timeout_keep_alive`), but arms nothing
on a new connection and nothing once a request's first byte has arrived, and httptools (llhttp)
puts no limit on header size (h11's `h11_max_incomplete_event_size` applies to h11 only): a client
sending its headers or its body a byte at a time, or never, kept a connection and a growing
buffer. Here the request line and headers must arrive within HEADER_TIMEOUT (408) and fit
MAX_HEADER_BYTES (431), and the body within BODY_TIMEOUT once the head is in (408).

One timer per connection, armed only when a read leaves a request unfinished: a request that
arrives in one read (any small one) costs no timer, where a timeout in the app cost about 4 µs
a request. Read from uvicorn/protocols/http/httptools_impl.py (HttpToolsProtocol) of uvicorn 0.54.0.
"""

import asyncio
import json

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from .settings import Limits


class HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing a head over the limit."""


def guarded_protocol(limits: Limits) -> type[HttpToolsProtocol]:
    """A protocol class for uvicorn's `http=`, bound to these limits."""

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        header_timeout = limits.header_timeout
        body_timeout = limits.body_timeout
        max_header_bytes = limits.max_header_bytes

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.head_bytes = 0
            self.in_head = self.in_body = False
            # A new connection owes its first request line within the deadline, too.
            self.timer: asyncio.TimerHandle | None = self.loop.call_later(
                self.header_timeout, self.timed_out
            )

        def connection_lost(self, exc: Exception | None) -> None:
            self.cancel_timer()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            self._unset_keepalive_if_required()
            was_in_head = self.in_head
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserCallbackError as err:
                if isinstance(err.__context__, HeadTooLarge):
                    self.refuse_large_head()
                else:
                    self.send_400_response("Invalid HTTP request received.")
                return
            except httptools.HttpParserError:
                self.send_400_response("Invalid HTTP request received.")
                return
            except httptools.HttpParserUpgrade:
                self.send_400_response("Protocol upgrades are not supported.")
                return
            if self.in_head:
                # The head so far, by whole reads (a read may also hold the previous request's
                # last bytes): a head that never ends is cut off at the limit.
                self.head_bytes = self.head_bytes + len(data) if was_in_head else len(data)
                if self.head_bytes > self.max_header_bytes:
                    self.refuse_large_head()
                    return
            elif not self.in_body:
                return
            # A request not whole after this read: it has the deadline to finish.
            if self.timer is None:
                timeout = self.header_timeout if self.in_head else self.body_timeout
                self.timer = self.loop.call_later(timeout, self.timed_out)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self.in_head = True

        def on_headers_complete(self) -> None:
            self.in_head, self.in_body = False, True
            self.cancel_timer()
            # The whole head, counted once: a head that arrived in one read is measured here.
            size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
            if size > self.max_header_bytes:
                raise HeadTooLarge
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self.in_body = False
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

        def refuse(self, status: int, message: str) -> None:
            """Answer outside the ASGI app, then close: the request cannot be trusted. An app
            waiting for the body sees the connection close."""
            body = json.dumps({"error": message}).encode()
            self.transport.write(
                STATUS_LINE[status]
                + b"content-type: application/json\r\ncontent-length: "
                + str(len(body)).encode()
                + b"\r\nconnection: close\r\n\r\n"
                + body
            )
            self.transport.close()

    return GuardedHttpToolsProtocol
