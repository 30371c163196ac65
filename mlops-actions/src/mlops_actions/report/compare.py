"""Comparing the two sides: formatted deltas that know which way is better, and the gate."""

import math
from dataclasses import dataclass
from typing import Any, TypeGuard

from ..charts import MISSING
from ..errors import PipelineError
from ..metrics import METRICS, for_task
from .intervals import Interval
from .results import Results

GATE_MODES = ("threshold", "significant")


@dataclass
class Gate:
    metric: str  # a metric of the registry (metrics.py), which says which way is better
    max_drop: float = 0.0
    enabled: bool = True
    mode: str = "threshold"  # or "significant": the drop must also fall outside the noise
    problem: str = ""  # what params.yaml got wrong in report.gate (the gate fails with it)


@dataclass
class Verdict:
    passed: bool
    symbol: str
    text: str


def is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def fmt(value: Any) -> str:
    """Integers as they are, small numbers in exponent form, the rest with four decimals."""
    if value is None:
        return MISSING
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if is_number(value):
        if math.isnan(value):
            return "NaN"
        return f"{value:.2e}" if 0 < abs(value) < 1e-3 else f"{value:.4f}"
    return str(value)


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        flat: dict[str, Any] = {}
        for key, value in tree.items():
            flat.update(flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): tree}


def judge(metric: str, base: Any, new: Any, interval: Interval | None = None) -> tuple[str, str]:
    """Delta text and a symbol that knows which way is better for this metric (the registry's
    direction; other keys get a delta without a verdict); a delta whose 95% interval spans 0 is
    within noise, whichever way it points."""
    if not (is_number(base) and is_number(new)):
        return MISSING, ""
    if math.isnan(base) or math.isnan(new):
        return MISSING, "⚠️"
    delta = new - base
    if abs(delta) < 5e-5:
        return "0", "➖"
    text = f"{delta:+d}" if isinstance(delta, int) else f"{delta:+.4f}"
    if metric not in METRICS:
        return text, ""
    if interval is not None and interval.spans_zero():
        return text, "within noise"
    return text, "✅" if METRICS[metric].improvement(base, new) > 0 else "🔻"


def span(interval: Interval | None, signed: bool = False) -> str:
    """An interval as `[low, high]`, in the report's four decimals."""
    if interval is None:
        return MISSING
    sign = "+" if signed else ""
    return f"[{interval.low:{sign}.4f}, {interval.high:{sign}.4f}]"


def gate_from_params(params: dict[str, Any], task: str | None = None) -> Gate | None:
    """params.yaml's `report.gate`. Its metric must be one the evaluate stage computes for the
    task (any task's when None); which way is better is the metric's own. An old params.yaml's
    `higher_is_better` is ignored when it agrees with the metric, and refused when it does not."""
    settings = (params.get("report") or {}).get("gate") or {}
    if "metric" not in settings:
        return None
    gate = Gate(
        metric=str(settings["metric"]),
        max_drop=float(settings.get("max_drop", 0.0)),
        enabled=bool(settings.get("enabled", True)),
        mode=str(settings.get("mode", "threshold")),
    )
    valid = [metric.name for metric in for_task(task)] if task else list(METRICS)
    if gate.metric not in valid:
        scope = f" for {task}" if task else ""
        raise PipelineError(
            f"report.gate.metric `{gate.metric}` is not a metric the evaluate stage computes"
            f"{scope}: choose one of {', '.join(valid)}"
        )
    metric = METRICS[gate.metric]
    if "higher_is_better" in settings and bool(settings["higher_is_better"]) != (
        metric.higher_is_better
    ):
        raise PipelineError(
            f"report.gate.higher_is_better: {str(settings['higher_is_better']).lower()} "
            f"contradicts `{metric.name}`, for which {metric.direction}: delete the key (the "
            "direction comes from the metric)"
        )
    return gate


def reported_gate(params: dict[str, Any], task: str) -> Gate | None:
    """The gate as the report applies it: a report.gate that params.yaml got wrong still gets its
    report, whose gate fails with the error's one line (so does an unknown `mode`)."""
    try:
        return gate_from_params(params, task)
    except PipelineError as err:
        return Gate(str(params["report"]["gate"]["metric"]), problem=str(err))


def verdict(
    gate: Gate | None, base: Results, new: Results, interval: Interval | None = None
) -> Verdict:
    """The gate's decision. `interval`: the paired-bootstrap 95% interval of the gate metric's
    delta (this change - base), when both sides have per-row results."""
    if gate is None:
        return Verdict(True, "⚪", "no regression gate configured (`report.gate` in params.yaml)")
    if not gate.enabled:
        return Verdict(True, "⚪", f"regression gate on `{gate.metric}` is off")
    if gate.problem:
        return Verdict(False, "❌", gate.problem)
    if gate.mode not in GATE_MODES:
        modes = " or ".join(f"`{mode}`" for mode in GATE_MODES)
        return Verdict(False, "❌", f"`report.gate.mode` is `{gate.mode}`; expected {modes}")
    new_value = new.scores.get(gate.metric)
    if not is_number(new_value) or math.isnan(new_value):
        return Verdict(False, "❌", f"`{gate.metric}` is {fmt(new_value)} in this change")
    base_value = base.scores.get(gate.metric)
    if not is_number(base_value) or math.isnan(base_value):
        return Verdict(True, "⚪", f"no baseline for `{gate.metric}`: nothing to compare against")
    drop = -METRICS[gate.metric].improvement(base_value, new_value)
    change = f"`{gate.metric}` {fmt(base_value)} → {fmt(new_value)} ({new_value - base_value:+.4f}"
    change += f", 95% interval {span(interval, signed=True)})" if interval else ")"
    noise = interval is not None and interval.spans_zero()
    if drop > gate.max_drop + 1e-12:
        if gate.mode == "significant" and noise:
            return Verdict(
                True,
                "✅",
                f"{change}: beyond the allowed drop of {fmt(gate.max_drop)} but within noise "
                "(gate mode `significant`)",
            )
        unknown = gate.mode == "significant" and interval is None
        reason = " (no interval: the threshold rule applies)" if unknown else ""
        reason += " (within noise: its 95% interval spans 0)" if noise else ""
        return Verdict(
            False, "❌", f"{change}: worse than the allowed drop of {fmt(gate.max_drop)}{reason}"
        )
    within = "; within noise" if noise else ""
    return Verdict(True, "✅", f"{change}; allowed drop {fmt(gate.max_drop)}{within}")
