"""The promotion rule at release: the challenger (the tag's model) against the champion (the model
of GitHub's latest release, the one that serves), both scored on the same rows.

The rows are the tagged commit's holdout (the test split when the project keeps no holdout), so
the delta is paired and gets a 95% bootstrap interval (report/intervals.py), and the rule is the
PR gate's (`report.gate` in params.yaml: metric, max_drop, mode `threshold` or `significant`).
When the champion cannot be scored on these rows (it reads a feature the data no longer has, or
knows other labels), the rule falls back to the champion's own metrics.json, measured on its own
rows, and says so. The comparison is written for the release: champion.json, and a section of the
model card, which is the release's notes.
"""

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from . import champion
from .report.compare import Gate, Verdict, fmt, judge, span, verdict
from .report.intervals import Intervals, bootstrap, rows_of
from .report.results import Results
from .schema import Schema


@dataclass
class Comparison:
    champion: str  # the champion's tag, e.g. v1.1.0
    challenger: str  # the release's tag
    champion_scores: dict[str, float]
    challenger_scores: dict[str, float]
    result: Verdict
    gate: Gate | None
    split: str = "holdout"  # the rows both were scored on, or "own" (the fallback)
    rows: int = 0
    intervals: Intervals | None = None
    reason: str = ""  # why the fallback, when it is one
    facts: dict[str, Any] = field(default_factory=dict)  # each model's version and sha256

    @property
    def paired(self) -> bool:
        return self.intervals is not None and bool(self.intervals.paired)

    def summary(self) -> str:
        """One line: who against whom, on what, and the verdict."""
        if self.paired:
            on = f"on the same {self.rows:,} {self.split} rows"
        else:
            on = f"on their own metrics.json (not paired: {self.reason})"
        return f"{self.challenger} against the champion {self.champion} {on}: {self.result.text}"


def compare(
    champion_model: bytes,
    challenger_model: bytes,
    frame: pd.DataFrame,
    schema: Schema,
    gate: Gate | None,
    *,
    names: tuple[str, str],
    split: str,
    seed: int = 0,
) -> Comparison:
    """Both models on `frame`'s rows; `names` are the champion's and the challenger's tags. A
    PipelineError (one line) when the champion cannot be scored on them."""
    old = champion.onnx_predictions(champion_model, frame, schema, f"the champion {names[0]}")
    new = champion.onnx_predictions(challenger_model, frame, schema, f"the release {names[1]}")
    old_scores, new_scores = champion.scores(old, schema), champion.scores(new, schema)
    intervals = bootstrap(rows_of(old), rows_of(new), list(new_scores), seed=seed)
    interval = intervals.delta.get(gate.metric) if gate else None
    result = verdict(
        gate, Results(names[0], scores=old_scores), Results(names[1], scores=new_scores), interval
    )
    facts = {
        "champion": champion.model_facts(champion_model),
        "challenger": champion.model_facts(challenger_model),
    }
    return Comparison(
        names[0], names[1], old_scores, new_scores, result, gate, split, len(frame), intervals,
        facts=facts,
    )  # fmt: skip


def unpaired(
    old: dict[str, Any], new: dict[str, Any], gate: Gate | None, names: tuple[str, str], reason: str
) -> Comparison:
    """The fallback: each release's own metrics.json (their headline numbers, own rows)."""
    old_scores, new_scores = old.get("scores", {}), new.get("scores", {})
    result = verdict(
        gate, Results(names[0], scores=old_scores), Results(names[1], scores=new_scores)
    )
    return Comparison(
        names[0], names[1], old_scores, new_scores, result, gate, "own", 0, None, reason
    )


def as_json(comparison: Comparison) -> dict[str, Any]:
    """champion.json: what the rule saw and decided."""
    intervals = comparison.intervals
    delta = {}
    for name, value in comparison.challenger_scores.items():
        base = comparison.champion_scores.get(name)
        if isinstance(base, int | float) and isinstance(value, int | float):
            entry: dict[str, Any] = {"value": round(value - base, champion.DIGITS)}
            bounds = intervals.delta.get(name) if intervals else None
            if bounds is not None:
                entry["interval_95"] = [
                    round(bounds.low, champion.DIGITS),
                    round(bounds.high, champion.DIGITS),
                ]
            delta[name] = entry
    gate = comparison.gate
    return {
        "champion": {"release": comparison.champion, **comparison.facts.get("champion", {})},
        "challenger": {"release": comparison.challenger, **comparison.facts.get("challenger", {})},
        "rows": {"split": comparison.split, "count": comparison.rows},
        "paired": comparison.paired,
        "reason": comparison.reason or None,
        "scores": {
            "champion": comparison.champion_scores, "challenger": comparison.challenger_scores,
        },
        "delta": delta,
        "gate": None if gate is None else {
            "metric": gate.metric, "max_drop": gate.max_drop, "mode": gate.mode,
        },
        "passed": comparison.result.passed,
        "verdict": comparison.result.text,
    }  # fmt: skip


def card_section(comparison: Comparison) -> str:
    """The model card's (and release notes') account of the comparison."""
    rows = []
    for name, value in comparison.challenger_scores.items():
        base = comparison.champion_scores.get(name)
        bounds = comparison.intervals.delta.get(name) if comparison.intervals else None
        delta, symbol = judge(name, base, value, bounds)
        rows.append(
            f"| {name} | {fmt(base)} | {fmt(value)} | {delta} {symbol} | {span(bounds, True)} |"
        )
    if comparison.paired:
        resamples = comparison.intervals.resamples if comparison.intervals else 0
        how = (
            f"Both models scored with onnxruntime on the same {comparison.rows:,} "
            f"{comparison.split} rows of this release's data; Δ 95% intervals from {resamples:,} "
            "paired bootstrap resamples."
        )
    else:
        how = (
            "Not paired: each model's own metrics.json, measured on its own rows "
            f"({comparison.reason})."
        )
    header = f"| metric | champion {comparison.champion} | this release {comparison.challenger} |"
    result = comparison.result
    return f"""
## Champion and challenger

{how} The champion is the latest release, the model that serves.

{header} Δ | Δ 95% interval |
| --- | ---: | ---: | ---: | ---: |
{chr(10).join(rows)}

**Promotion rule** (`report.gate` in params.yaml): {result.symbol} {result.text}
"""
