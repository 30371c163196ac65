"""The leaderboard of `make tune`: every candidate's cross-validated score, its costs, and whether
it is distinguishable from the best at all.

Ranking by the top row of a table picks noise when candidates are close: on a few hundred rows,
the best mean is often luck. Every candidate predicted the same training rows out of fold
(trial.py), so the difference between a candidate and the best is paired: the report's bootstrap
(report/intervals.py) resamples the same rows for both, and a candidate whose 95% interval of that
difference reaches past 0 towards better is *within noise* of the best: it beat the best in more
than 2.5% of the resamples (or predicted exactly as it did). An interval that only touches 0, as
[-0.0324, +0.0000] on 238 penguins, means the candidate was never better in any resample: it is
worse, not within noise. The rule, said in the table too: among the
candidates within noise of the best (the best included), the one with the smallest ONNX model
(the simplest: fewer or smaller trees, fewer coefficients), which also serves fastest; ties go to
the better score. The metric is the PR gate's (`report.gate.metric`), or the task's first.
"""

from dataclasses import dataclass, field
from typing import Any

from ..metrics import Metric
from ..report.compare import fmt, span
from ..report.intervals import Interval, Rows, bootstrap

RULE = (
    "Chosen: among the candidates within noise of the best cross-validated score (their paired "
    "95% interval against it reaches past 0 towards better), the smallest ONNX model, which "
    "serves fastest; ties go to the better score. Only the train rows were used: the test split "
    "and the holdout stay unseen until `make tune-apply` and `make repro`."
)


@dataclass
class Candidate:
    name: str  # the DVC experiment's
    cv: dict[str, Any]  # tune/cv.json
    rows: Rows | None = None  # out-of-fold predictions, tune/oof.csv
    error: str = ""  # why it has no result (a failed experiment)
    delta: Interval | None = None  # against the best, paired
    within_noise: bool = False

    def score(self, metric: str) -> float:
        return float(self.cv["cv"][metric]["mean"])


@dataclass
class Board:
    metric: Metric
    candidates: list[Candidate]  # ranked, best first; failed ones last
    chosen: str
    best: str
    current: str = ""  # the candidate of params.yaml's own settings, when it ran
    notes: list[str] = field(default_factory=list)


def within_noise(delta: Interval | None, higher_is_better: bool) -> bool:
    """Not distinguishable from the best: the paired interval of (candidate - best) reaches past 0
    towards better, or both predicted exactly alike."""
    if delta is None:
        return False
    if delta.low == delta.high == 0:
        return True
    return delta.high > 0 if higher_is_better else delta.low < 0


def rank(candidates: list[Candidate], metric: Metric, current: str = "", seed: int = 0) -> Board:
    """The board: ranked by mean CV score, each compared with the best, the rule applied."""
    scored = [c for c in candidates if not c.error]
    failed = [c for c in candidates if c.error]
    if not scored:
        raise ValueError("no candidate has a result")
    sign = 1 if metric.higher_is_better else -1
    scored.sort(key=lambda c: -sign * c.score(metric.name))
    best = scored[0]
    best.within_noise = True
    for candidate in scored[1:]:
        if best.rows is not None and candidate.rows is not None:
            intervals = bootstrap(best.rows, candidate.rows, [metric.name], seed=seed)
            if intervals.paired:
                candidate.delta = intervals.delta.get(metric.name)
        candidate.within_noise = within_noise(candidate.delta, metric.higher_is_better)
    close = [c for c in scored if c.within_noise]
    chosen = min(close, key=lambda c: (c.cv.get("onnx_bytes", 0), -sign * c.score(metric.name)))
    return Board(metric, scored + failed, chosen.name, best.name, current)


def as_json(board: Board) -> dict[str, Any]:
    return {
        "metric": board.metric.name,
        "higher_is_better": board.metric.higher_is_better,
        "chosen": board.chosen,
        "best": board.best,
        "current": board.current,
        "rule": RULE,
        "candidates": [
            {
                "name": c.name,
                "error": c.error or None,
                "hyperparameters": c.cv.get("hyperparameters"),
                "cv": c.cv.get("cv"),
                "fit_seconds": c.cv.get("fit_seconds"),
                "onnx_bytes": c.cv.get("onnx_bytes"),
                "onnx_latency_us": c.cv.get("onnx_latency_us"),
                "delta_interval": [c.delta.low, c.delta.high] if c.delta else None,
                "within_noise": c.within_noise,
            }
            for c in board.candidates
        ],
    }


def markdown(board: Board) -> str:
    """tune/leaderboard.md: one table, the rule under it."""
    metric = board.metric.name
    scored = [c for c in board.candidates if not c.error]
    first = scored[0].cv
    lines = [
        "## Tuning leaderboard",
        "",
        f"{len(scored)} candidates of `{first['model']}`, {first['folds']}-fold cross-validation "
        f"on the {first['rows']:,} train rows; `{metric}` ({board.metric.direction}), mean ± std "
        "over the folds; Δ against the best with its paired 95% interval over the rows.",
        "",
        "| | experiment | hyperparameters | "
        f"`{metric}` | Δ best | 95% interval | within noise | fit s | ONNX KB | µs/row |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in scored:
        mark = (
            "✅ chosen" if c.name == board.chosen else ("🥇 best" if c.name == board.best else "")
        )
        if c.name == board.current:
            mark = f"{mark} (current)".strip()
        settings = ", ".join(f"{k}={fmt(v)}" for k, v in c.cv["hyperparameters"].items())
        score = c.cv["cv"][metric]
        delta = "" if c.name == board.best else fmt(c.score(metric) - scored[0].score(metric))
        interval = "" if c.name == board.best else span(c.delta, signed=True)
        lines.append(
            f"| {mark} | `{c.name}` | {settings} | {score['mean']:.4f} ± {score['std']:.4f} "
            f"| {delta} | {interval} | {'yes' if c.within_noise else 'no'} "
            f"| {c.cv['fit_seconds']:.3f} | {c.cv['onnx_bytes'] / 1000:,.0f} "
            f"| {c.cv['onnx_latency_us']:,.0f} |"
        )
    for c in board.candidates:
        if c.error:
            lines.append(f"| ❌ | `{c.name}` | | {c.error} | | | | | | |")
    lines += ["", RULE, ""]
    lines += [f"- {note}" for note in board.notes]
    return "\n".join(lines).rstrip() + "\n"
