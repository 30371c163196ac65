"""uvicorn's httptools protocol with the two bounds it lacks: a deadline and a size for the head.

uvicorn 0.54 closes a connection idle between requests (`timeout_keep_alive`), but arms nothing
on a new connection and nothing once a request's first byte has arrived, and httptools (llhttp)
puts no limit on header size (h11's `h11_max_incomplete_event_size` applies to h11 only): a client
sending its headers a byte at a time, or forever, kept a connection and a growing buffer. Here the
request line and headers must arrive within HEADER_TIMEOUT (408) and fit MAX_HEADER_BYTES (431).
Read from uvicorn/protocols/http/httptools_impl.py (HttpToolsProtocol) of uvicorn 0.54.0.
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
        max_header_bytes = limits.max_header_bytes

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.head_bytes = 0
            self.in_head = False
            # A new connection owes its first request line within the deadline, too.
            self.head_timer: asyncio.TimerHandle | None = self.loop.call_later(
                self.header_timeout, self.head_timed_out
            )

        def connection_lost(self, exc: Exception | None) -> None:
            self.cancel_head_timer()
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
            if not self.in_head:
                return
            # The callbacks count whole header lines; a line still arriving is counted here, by
            # the whole read (a pipelined read may also hold the previous request's last bytes).
            self.head_bytes = self.head_bytes + len(data) if was_in_head else len(data)
            if self.head_bytes > self.max_header_bytes:
                self.refuse_large_head()
                return
            # A head that did not arrive whole in this read: it has the deadline to finish.
            if self.head_timer is None:
                self.head_timer = self.loop.call_later(self.header_timeout, self.head_timed_out)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self.in_head, self.head_bytes = True, 0

        def on_url(self, url: bytes) -> None:
            self.count_head(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self.count_head(len(name) + len(value) + 4)
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self.in_head = False
            self.cancel_head_timer()
            super().on_headers_complete()

        def count_head(self, size: int) -> None:
            self.head_bytes += size
            if self.head_bytes > self.max_header_bytes:
                raise HeadTooLarge

        def refuse_large_head(self) -> None:
            self.refuse(
                431,
                f"request line and headers above {self.max_header_bytes} bytes (MAX_HEADER_BYTES)",
            )

        def cancel_head_timer(self) -> None:
            if self.head_timer is not None:
                self.head_timer.cancel()
                self.head_timer = None

        def head_timed_out(self) -> None:
            self.head_timer = None
            if self.transport.is_closing():
                return
            if self.in_head:
                self.refuse(
                    408, f"headers not received within {self.header_timeout} s (HEADER_TIMEOUT)"
                )
            elif self.cycle is None:  # connected, and never sent a byte
                self.transport.close()

        def refuse(self, status: int, message: str) -> None:
            """Answer before any ASGI task exists, then close: the head cannot be trusted."""
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
