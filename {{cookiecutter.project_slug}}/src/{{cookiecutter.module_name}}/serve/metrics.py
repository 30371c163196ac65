"""Prometheus metrics and the sampled prediction log (JSON lines for `make drift-batch`)."""

import json
import random
import sys
import time
from datetime import UTC, datetime
from typing import Any

import prometheus_client as prom

from .model import ServedModel

# Methods counted by name in the metrics; anything else is "other", so clients cannot add series.
KNOWN_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"}
# Seconds; spans ONNX's microseconds and a large batch's tens of milliseconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


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
        # Label lookups cost more than the increments: each series' children are kept once found.
        # Routes are templates and methods a fixed set, so this stays small.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        children = self._children.get((route, method, status))
        if children is None:
            label = method if method in KNOWN_METHODS else "other"
            children = (
                self.requests.labels(route, label, str(status)),
                self.latency.labels(route, label),
            )
            if label == method:
                self._children[route, method, status] = children
        children[0].inc()
        children[1].observe(seconds)

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
