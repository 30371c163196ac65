"""Prometheus metrics and the sampled prediction log (JSON lines for `make drift-batch`)."""

import json
import random
import sys
import time
from bisect import bisect_left
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import prometheus_client as prom
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from .model import ServedModel

# Methods counted by name in the metrics; anything else is "other", so clients cannot add series.
KNOWN_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"}
# Seconds; spans ONNX's microseconds and a large batch's tens of milliseconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BUCKET_LABELS = [*map(floatToGoString, LATENCY_BUCKETS), "+Inf"]


class Latency:
    """One route and method's histogram: a count per bucket (the last one +Inf) and the sum."""

    __slots__ = ("counts", "created", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.total = 0.0
        self.created = time.time()


class Metrics:
    """Prometheus series named by its conventions: base units, `_total` counters, an info gauge.

    Requests are counted in plain integers and lists, on the event loop only (every caller runs
    there): prometheus_client's counters and histograms take a lock and walk the buckets in Python
    on each call, which cost about 4 µs of a one-row request. `collect` turns the counts into
    Prometheus families when /metrics is read, and prometheus_client writes the text format.
    """

    def __init__(self, model: ServedModel):
        self.started = time.time()
        self.rows = 0  # rows predicted
        self.runs = 0  # model calls: fewer than requests when waiting requests ran together
        # (route, method, status) -> [requests, when first counted, that route and method's Latency]
        self.series: dict[tuple[str, str, int], list[Any]] = {}
        self.latency: dict[tuple[str, str], Latency] = {}
        self.info = (model.name, model.version, model.sha256)
        self.registry = prom.CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        series = self.series.get((route, method, status))
        if series is None:
            series = self.new_series(route, method, status)
        series[0] += 1
        latency = series[2]
        latency.counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1  # bucket `le` bounds: <=
        latency.total += seconds

    def new_series(self, route: str, method: str, status: int) -> list[Any]:
        label = method if method in KNOWN_METHODS else "other"
        key = (route, label, status)
        series = self.series.get(key)
        if series is None:
            latency = self.latency.get((route, label))
            if latency is None:
                latency = self.latency[route, label] = Latency()
            series = self.series[key] = [0, time.time(), latency]
        return series

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "http_requests",
            "HTTP requests by route template, method and status code.",
            labels=["route", "method", "status"],
        )
        for (route, method, status), (count, created, _) in self.series.items():
            requests.add_metric([route, method, str(status)], count, created=created)
        yield requests
        latency = HistogramMetricFamily(
            "http_request_duration_seconds",
            "Time from request to response, by route template.",
            labels=["route", "method"],
        )
        for (route, method), histogram in self.latency.items():
            cumulative, buckets = 0, []
            for label, count in zip(BUCKET_LABELS, histogram.counts, strict=True):
                cumulative += count
                buckets.append((label, cumulative))
            latency.add_metric([route, method], buckets, histogram.total)
            created = {"route": route, "method": method}
            latency.samples.append(Sample(latency.name + "_created", created, histogram.created))
        yield latency
        yield CounterMetricFamily(
            "model_predicted_rows",
            "Rows predicted by the model.",
            value=self.rows,
            created=self.started,
        )
        yield CounterMetricFamily(
            "model_runs",
            "Model calls; small requests waiting at once share one (COALESCE_ROWS).",
            value=self.runs,
            created=self.started,
        )
        info = GaugeMetricFamily(
            "model_info",
            "The served model: always 1, the labels say which.",
            labels=["name", "version", "sha256"],
        )
        info.add_metric(list(self.info), 1)
        yield info

    def exposition(self) -> bytes:
        return prom.generate_latest(self.registry)


CONTENT_TYPE = prom.CONTENT_TYPE_LATEST.encode()


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
        features: dict[str, Any],
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
