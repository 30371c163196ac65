"""The report's sections: each a pure function of the two sides, and the fit to GitHub's limit."""

import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .. import charts
from ..charts import MISSING, table
from .compare import Verdict, flatten, fmt, is_number, judge, span
from .intervals import Intervals
from .results import Results

COMMENT_LIMIT = 65_536
# Room left for the CML watermark and the workflow's own lines around the report.
LIMIT = COMMENT_LIMIT - 2_000
LATENCY_START, LATENCY_END = "<!-- latency:start -->", "<!-- latency:end -->"
MAX_CELL = 80
TOP_FEATURES = 10


@dataclass
class Section:
    """Markdown in three parts, so a long body can be cut without breaking its fences."""

    head: str
    body: list[str] = field(default_factory=list)
    tail: str = ""
    trimmable: bool = False

    def render(self) -> str:
        return "\n".join(part for part in [self.head, *self.body, self.tail] if part != "")


def headline(
    project: str, task: str, base: Results, new: Results, result: Verdict, sha: str
) -> Section:
    train = new.params.get("train") or {}
    rows = [
        ("model", f"`{train.get('model', MISSING)}`"),
        ("task", f"`{task}`"),
        (
            "data version",
            f"`{new.data_version or MISSING}` (base `{base.data_version or MISSING}`)",
        ),
        ("commit", f"`{sha}`"),
        ("compared with", base.name if base.found else f"nothing: {base.problem}"),
    ]
    lines = [f"- **{key}**: {value}" for key, value in rows]
    return Section(
        f"## {result.symbol} Model report: {project}\n\n**Gate:** {result.text}\n", lines
    )


def metrics_section(base: Results, new: Results, intervals: Intervals) -> Section:
    names = list(new.scores) + [name for name in base.scores if name not in new.scores]
    rows = []
    for name in names:
        old_value, new_value = base.scores.get(name), new.scores.get(name)
        delta, symbol = judge(name, old_value, new_value, intervals.delta.get(name))
        if name not in new.scores:
            symbol = "removed"
        elif base.found and name not in base.scores:
            symbol = "new metric"
        rows.append(
            [
                f"`{name}`",
                fmt(old_value),
                fmt(new_value),
                delta,
                symbol,
                span(intervals.delta.get(name), signed=True),
                span(intervals.base.get(name)),
                span(intervals.new.get(name)),
            ]
        )
    head = "### Metrics\n"
    if base.problem is not None:
        head += "\n_No baseline: " + base.problem + "._\n"
    elif base.source:
        head += f"\n_Base: {base.source}._\n"
    header = ["metric", "base", "this change", "Δ", "", "Δ 95% interval", "base 95%", "change 95%"]
    body = [table(header, rows, "lrrrlrrr"), "\n" + interval_note(intervals, new)]
    return Section(head, body)


def interval_note(intervals: Intervals, new: Results) -> str:
    """How the intervals were made, and why some are missing."""
    base_rows, new_rows = intervals.rows
    if not new_rows:
        return "_No 95% intervals: this change has no per-row results in plots/._"
    seed = (new.params.get("base") or {}).get("seed", 0)
    text = (
        f"_95% intervals: bootstrap over the test rows ({intervals.resamples:,} resamples, "
        f"seed {seed}). "
    )
    if intervals.paired:
        text += (
            f"Δ paired: both models scored on the same resampled rows ({new_rows:,} rows). "
            "A Δ whose interval spans 0 is within noise._"
        )
    elif intervals.paired is False:
        text += (
            f"**Δ unpaired**: the test sets differ ({base_rows:,} base rows, {new_rows:,} now; "
            "the data or the split changed), so each side was resampled on its own: a wider, "
            "rougher interval._"
        )
    else:
        text += "No Δ intervals: the base has no per-row results in plots/._"
    return text


def cv_section(base: Results, new: Results) -> Section | None:
    """k-fold cross-validated metrics (evaluate.cv_folds), with their spread over the folds."""
    if not new.cv and not base.cv:
        return None

    def spread(cv: dict[str, Any], name: str) -> str:
        value = cv.get(name)
        if not isinstance(value, dict) or not is_number(value.get("mean")):
            return MISSING
        return f"{fmt(value['mean'])} ± {fmt(value.get('std'))}"

    def extent(cv: dict[str, Any], name: str) -> str:
        value = cv.get(name)
        if not isinstance(value, dict):
            return MISSING
        return f"{fmt(value.get('min'))} to {fmt(value.get('max'))}"

    names = [name for name in new.cv if name != "folds"]
    names += [name for name in base.cv if name != "folds" and name not in names]
    rows = [
        [f"`{name}`", spread(base.cv, name), spread(new.cv, name), extent(new.cv, name)]
        for name in names
    ]
    folds = f"{new.cv.get('folds', MISSING)} folds (base {base.cv.get('folds', MISSING)})"
    header = ["metric", "base mean ± std", "this change mean ± std", "this change min to max"]
    return Section(
        f"### Cross-validated metrics\n\n_{folds}, every prepared row (`evaluate.cv_folds`)._\n",
        [table(header, rows)],
    )


def holdout_section(base: Results, new: Results) -> Section | None:
    """The metrics on the holdout (metrics/holdout.json), when either side has one: a table of
    its own, since the gate and the intervals are the test split's."""
    if not new.holdout and not base.holdout:
        return None
    names = list(new.holdout) + [name for name in base.holdout if name not in new.holdout]
    rows = []
    for name in names:
        old_value, new_value = base.holdout.get(name), new.holdout.get(name)
        delta, symbol = judge(name, old_value, new_value)
        rows.append([f"`{name}`", fmt(old_value), fmt(new_value), delta, symbol])
    held = new.data.get("holdout")
    count = f" ({held:,} rows)" if is_number(held) else ""
    return Section(
        f"### Holdout metrics\n\n_The rows no training or tuning sees{count}, "
        "`prepare.holdout_size`: the release's headline numbers. The gate reads the test "
        "split's._\n",
        [table(["metric", "base", "this change", "Δ", ""], rows, "lrrrl")],
    )


def params_section(base: Results, new: Results) -> Section:
    old, now = flatten(base.params), flatten(new.params)
    changed = [key for key in sorted(set(old) | set(now)) if old.get(key) != now.get(key)]
    if not base.found:
        return Section("### Params\n", ["_No baseline to compare params with._"])
    if not changed:
        return Section("### Params\n", ["No params changed."])
    rows = [[f"`{key}`", _cell(old.get(key)), _cell(now.get(key))] for key in changed]
    return Section(
        "### Params changed\n",
        table(["param", "base", "this change"], rows, "lll").split("\n"),
        trimmable=True,
    )


def _cell(value: Any) -> str:
    if value is None:
        return MISSING
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def data_section(base: Results, new: Results) -> Section:
    def summary(results: Results) -> dict[str, Any]:
        facts = dict(results.data.get("all") or {})
        flat = {key: facts.get(key) for key in ("rows", "features", "missing_cells")}
        flat.update({f"share of `{k}`": v for k, v in (facts.get("class_share") or {}).items()})
        flat.update({f"target {k}": v for k, v in (facts.get("target") or {}).items()})
        return flat

    old, now = summary(base), summary(new)
    rows = []
    for key in list(now) + [k for k in old if k not in now]:
        delta, _ = judge(key, old.get(key), now.get(key))
        rows.append([key, fmt(old.get(key)), fmt(now.get(key)), delta])
    rows.append(["data version", base.data_version or MISSING, new.data_version or MISSING, ""])
    return Section("### Data\n", [table(["", "base", "this change", "Δ"], rows)])


def plots_section(base: Results, new: Results, labels: list[str] | None) -> Section:
    parts: list[str] = []
    if "confusion" in new.plots and labels:
        parts.append("**Confusion matrix** (this change)\n")
        parts.append(charts.confusion_table(new.plots["confusion"], labels))
        if "confusion" in base.plots:
            # The base's own labels: a change of labels must not blank the base's counts.
            pairs = base.plots["confusion"]
            seen = sorted(set(pairs["actual"].astype(str)) | set(pairs["predicted"].astype(str)))
            parts.append("\n<details><summary>Confusion matrix of the base</summary>\n")
            parts.append(charts.confusion_table(pairs, base.labels or seen))
            parts.append("\n</details>")
    if "roc" in new.plots:
        grid = np.linspace(0, 1, 21)
        lines = [charts.roc_points(new.plots["roc"], grid)]
        if "roc" in base.plots:
            lines.append(charts.roc_points(base.plots["roc"], grid))
        parts.append("\n**ROC curve**: true positive rate (y) by false positive rate (x, 0 to 1)")
        parts.append(_legend(len(lines) > 1, "line", "line"))
        parts.append(charts.xychart("ROC", x_range=(0, 1), lines=lines, y_title="TPR"))
    if "predictions" in new.plots:
        parts += _regression_plots(base, new)
    if "importance" in new.plots:
        parts += _importance_plot(base, new)
    return Section("### Plots\n", parts or ["_No plot data found._"])


def _legend(has_base: bool, new_kind: str, base_kind: str) -> str:
    if not has_base:
        return f"_{new_kind}: this change (no base data)_\n"
    return f"_first {new_kind}: this change; second {base_kind}: base_\n"


def _regression_plots(base: Results, new: Results) -> list[str]:
    now, old = new.plots["predictions"], base.plots.get("predictions")
    series = [now["residual"].to_numpy()] + (
        [old["residual"].to_numpy()] if old is not None else []
    )
    labels, counts = charts.histogram(series)
    parts = ["\n**Residuals** (actual − predicted): rows per range"]
    parts.append(
        "_bars: this change; line: base_\n" if old is not None else "_bars: this change_\n"
    )
    parts.append(
        charts.xychart(
            "Residuals", x_labels=labels, bars=counts[:1], lines=counts[1:], y_title="rows"
        )
    )
    deciles = [_by_decile(now, "actual"), _by_decile(now, "predicted")]
    if old is not None:
        deciles.append(_by_decile(old, "predicted"))
    parts.append("\n**Predicted vs actual**: test rows sorted by actual value, mean per tenth")
    parts.append(
        "_lines: actual, predicted by this change"
        + (", predicted by the base_\n" if old is not None else "_\n")
    )
    tenths = [f"{i}/10" for i in range(1, 11)]
    parts.append(
        charts.xychart("Predicted vs actual", x_labels=tenths, lines=deciles, y_title="mean")
    )
    return parts


def _by_decile(frame: pd.DataFrame, column: str) -> list[float]:
    ordered = frame.sort_values("actual", kind="stable")[column].to_numpy(dtype=float)
    return [float(np.mean(chunk)) if len(chunk) else 0.0 for chunk in np.array_split(ordered, 10)]


def _importance_plot(base: Results, new: Results) -> list[str]:
    top = new.plots["importance"].head(TOP_FEATURES)
    features = top["feature"].astype(str).tolist()
    bars = [top["importance"].astype(float).tolist()]
    lines = []
    if "importance" in base.plots:
        old = base.plots["importance"].set_index("feature")["importance"]
        lines.append([float(old.get(feature, 0.0)) for feature in features])
    parts = [f"\n**Top {len(features)} features**: drop in score when the feature is shuffled"]
    parts.append("_bars: this change; line: base_\n" if lines else "_bars: this change_\n")
    parts.append(
        charts.xychart(
            "Permutation importance",
            x_labels=features,
            bars=bars,
            lines=lines,
            y_title="score drop",
        )
    )
    return parts


def onnx_section(base: Results, new: Results) -> Section:
    check = new.onnx
    if not check:
        return Section("### ONNX\n", ["_No ONNX check found (metrics/onnx.json)._"])
    tolerance = f"atol {fmt(check.get('atol'))} + rtol {fmt(check.get('rtol'))}"
    diff = check.get("max_abs_diff")
    parity = "✅ matches" if check.get("passed") else "❌ differs"
    size, old_size = check.get("onnx_bytes"), base.onnx.get("onnx_bytes")
    size_change = MISSING
    if is_number(size) and is_number(old_size) and old_size:
        size_change = f"{(size - old_size) / old_size:+.1%}"
    rows = [
        ["parity with scikit-learn", f"{parity} on {check.get('rows', MISSING)} test rows"],
        [
            "max abs difference",
            f"{diff:.2e} (allowed: {tolerance})" if is_number(diff) else MISSING,
        ],
        ["model.onnx size", f"{_kib(size)} (base {_kib(old_size)}, {size_change})"],
    ]
    return Section("### ONNX\n", [table(["", ""], rows, "ll")])


def _kib(size: Any) -> str:
    return f"{size / 1024:.1f} KiB" if is_number(size) else MISSING


def latency_section(latency: dict[str, dict[str, float]] | None, note: str) -> Section:
    head = f"{LATENCY_START}\n### Inference latency (measured in this run)\n"
    if latency is None:
        return Section(head, [f"_Not measured: {note}._"], LATENCY_END)
    rows = []
    for case, timing in latency.items():
        speedup = timing["sklearn"] / timing["onnx"] if timing["onnx"] else float("nan")
        rows.append([case, _ms(timing["sklearn"]), _ms(timing["onnx"]), f"{speedup:.0f}×"])
    body = [
        table(["", "scikit-learn", "ONNX Runtime", "speed-up"], rows),
        "\n_Medians on the CI runner; they vary from run to run._",
    ]
    return Section(head, body, LATENCY_END)


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms" if seconds < 0.01 else f"{seconds * 1e3:.1f} ms"


def details_section(diffs: dict[str, str]) -> Section:
    body = []
    for title, output in diffs.items():
        body += [f"\n**{title}**\n", *(output.strip() or "(no differences)").split("\n")]
    return Section(
        "<details><summary>Full <code>dvc metrics diff</code> and "
        "<code>dvc params diff</code></summary>\n",
        body,
        "\n</details>",
        trimmable=True,
    )


def footer(base_revision: str) -> Section:
    lines = [
        f"Reproduce on this branch: `make setup && make repro && make report BASE={base_revision}`"
    ]
    server, repo, run_id = (
        os.environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    )
    if server and repo and run_id:
        lines.append(f"Workflow run: {server}/{repo}/actions/runs/{run_id}")
    return Section("---", ["<sub>" + " · ".join(lines) + "</sub>"])


def fit(sections: list[Section], limit: int = LIMIT) -> str:
    """Join the sections; if too long for a PR comment, cut the longest trimmable bodies."""
    text = "\n\n".join(section.render() for section in sections) + "\n"
    while len(text) > limit:
        candidates = [s for s in sections if s.trimmable and len(s.body) > 1]
        if not candidates:
            return text[: limit - 200] + "\n\n_… cut to fit GitHub's comment limit._\n"
        longest = max(candidates, key=lambda s: len("\n".join(s.body)))
        excess = len(text) - limit + 200
        removed = 0
        while longest.body and excess > 0 and len(longest.body) > 1:
            excess -= len(longest.body.pop()) + 1
            removed += 1
        longest.body.append(
            f"\n_… {removed} lines cut to stay under GitHub's 65,536-character limit._"
        )
        longest.trimmable = False
        text = "\n\n".join(section.render() for section in sections) + "\n"
    return text
