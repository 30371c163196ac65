"""Requests that wait at the same time run as one batch: one model call for all their rows.

onnxruntime's call has a fixed cost that dwarfs a row's: for the default model one row takes
about 35 µs in a loop (60 µs inside a busy server, its caches cold), 64 rows about 240 µs and
256 rows about 0.9 ms. With many clients, small requests arrive together: those the event loop
has started by the time it gets back to the batch run together, up to COALESCE_ROWS rows (256),
and each gets its own rows of the answer. The loop runs the batch itself, as it runs a request of
up to INLINE_ROWS rows: a batch is at most COALESCE_ROWS rows, so the pause is bounded.
Nothing waits on a timer: a request alone runs after one turn of the event loop, so a quiet
server answers as fast as before, and a busy one does a fraction of the model calls.
Triton's dynamic batcher with its defaults does the same: no queue delay, batches as large as the
waiting requests make them up to a maximum
(https://docs.nvidia.com/deeplearning/triton-inference-server/user-guide/docs/batcher.html).

Rows are independent in every model the pipeline exports (trees, linear models, their
preprocessing), so a row's answer does not depend on its batch, up to float rounding in a linear
model's matrix product (within the export's parity tolerance, as any batch size is).
"""

import asyncio
from collections.abc import Callable
from typing import Any

import numpy as np

Outputs = dict[str, np.ndarray]


class Coalescer:
    """Collects parts (each a request's rows, in whatever form `join` takes) and runs them as one
    feed. `join(parts, rows)` makes the feed; `run(feed)` is the model call. A part of more than
    half of `max_rows` rows runs alone, at once (with `max_rows` 0 or 1, every part does)."""

    def __init__(
        self, join: Callable[[list[Any], int], dict], run: Callable[[dict], Outputs], max_rows: int
    ):
        self.join, self.run, self.max_rows = join, run, max_rows
        self.parts: list[Any] = []
        self.sizes: list[int] = []
        self.futures: list[asyncio.Future] = []
        self.rows = 0

    async def submit(self, part: Any, rows: int) -> Outputs:
        if rows * 2 > self.max_rows:  # nothing else would fit beside it
            return self.run(self.join([part], rows))
        if self.rows + rows > self.max_rows:
            self.flush()  # full: what waits runs now, this part starts the next batch
        loop = asyncio.get_running_loop()
        if not self.parts:
            loop.call_soon(self.flush)
        future = loop.create_future()
        self.parts.append(part)
        self.sizes.append(rows)
        self.futures.append(future)
        self.rows += rows
        return await future

    def flush(self) -> None:
        if not self.parts:
            return
        parts, sizes, futures, rows = self.parts, self.sizes, self.futures, self.rows
        self.parts, self.sizes, self.futures, self.rows = [], [], [], 0
        try:
            outputs = self.run(self.join(parts, rows))
        except Exception as err:  # a bug of ours: every request of the batch hears of it
            for future in futures:
                if not future.done():
                    future.set_exception(err)
            return
        start = 0
        for size, future in zip(sizes, futures, strict=True):
            if not future.done():  # a request given up on meanwhile has no one to answer
                end = start + size
                future.set_result({name: values[start:end] for name, values in outputs.items()})
            start += size


def join_feeds(feeds: list[dict[str, np.ndarray]], rows: int) -> dict[str, np.ndarray]:
    """OIP infer feeds (already arrays) one after the other, input by input."""
    if len(feeds) == 1:
        return feeds[0]
    return {name: np.concatenate([feed[name] for feed in feeds]) for name in feeds[0]}
