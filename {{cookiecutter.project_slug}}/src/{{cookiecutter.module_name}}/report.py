"""The PR model report: what a reviewer reads before merging a model change.

Compares the working tree's results with a base git revision: metrics, params, data, plots, ONNX
parity and size, inference latency. Everything but the latency comes from committed files
(metrics/, plots/, params.yaml, dvc.lock), so the base side needs no DVC remote. The markdown is
deterministic for the same inputs, apart from the latency section between its markers.

`make report BASE=<rev>` writes report.md, then exits 1 when the primary metric dropped beyond the
allowed drop in params.yaml (the regression gate), so CI posts the report before failing.
"""

import argparse
import io
import json
import math
import os
import statistics
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from . import charts
from .charts import MISSING, table
from .errors import PipelineError
from .schema import load_schema

# +1: higher is better; -1: lower is better. Other metrics get a delta but no verdict.
DIRECTIONS = {
    "accuracy": 1,
    "balanced_accuracy": 1,
    "f1": 1,
    "roc_auc": 1,
    "r2": 1,
    "rmse": -1,
    "mae": -1,
}
COMMENT_LIMIT = 65_536
# Room left for the CML watermark and the workflow's own lines around the report.
LIMIT = COMMENT_LIMIT - 2_000
LATENCY_START, LATENCY_END = "<!-- latency:start -->", "<!-- latency:end -->"
MAX_CELL = 80
TOP_FEATURES = 10
FILES = {
    "scores": "metrics/scores.json",
    "data": "metrics/data.json",
    "onnx": "metrics/onnx.json",
    "params": "params.yaml",
    "lock": "dvc.lock",
}
PLOTS = ("confusion", "roc", "predictions", "importance")
RAW_DATA = "data/raw/dataset.csv"


@dataclass
class Results:
    """One side of the comparison, read from a git revision or from the working tree."""

    name: str
    scores: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    onnx: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    plots: dict[str, pd.DataFrame] = field(default_factory=dict)
    data_version: str | None = None
    problem: str | None = None  # why this side could not be read, when it could not

    @property
    def found(self) -> bool:
        return self.problem is None


@dataclass
class Gate:
    metric: str
    higher_is_better: bool = True
    max_drop: float = 0.0
    enabled: bool = True


@dataclass
class Verdict:
    passed: bool
    symbol: str
    text: str


@dataclass
class Section:
    """Markdown in three parts, so a long body can be cut without breaking its fences."""

    head: str
    body: list[str] = field(default_factory=list)
    tail: str = ""
    trimmable: bool = False

    def render(self) -> str:
        return "\n".join(part for part in [self.head, *self.body, self.tail] if part != "")


# --- reading ---------------------------------------------------------------------------------


def read_results(name: str, read: Callable[[str], str | None]) -> Results:
    """Parse every committed result file that `read` returns; a missing file leaves a gap."""
    results = Results(name=name)
    for key in ("scores", "data", "onnx"):
        text = read(FILES[key])
        setattr(results, key, _json(text) if text else {})
    results.params = _yaml(read(FILES["params"]))
    for plot in PLOTS:
        text = read(f"plots/{plot}.csv")
        if text:
            try:
                results.plots[plot] = pd.read_csv(io.StringIO(text))
            except (ValueError, pd.errors.ParserError):
                continue
    results.data_version = data_version(_yaml(read(FILES["lock"])))
    if not results.scores:
        results.problem = f"no {FILES['scores']} in {name}"
    return results


def _yaml(text: str | None) -> dict[str, Any]:
    try:
        value = yaml.safe_load(text) if text else None
    except yaml.YAMLError:
        return {}
    return value if isinstance(value, dict) else {}


def _json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def data_version(lock: dict[str, Any] | None) -> str | None:
    """The DVC hash of the raw data, as the pipeline last read it."""
    for stage in (lock or {}).get("stages", {}).values():
        for dep in stage.get("deps", []) + stage.get("outs", []):
            if dep.get("path") == RAW_DATA and dep.get("md5"):
                return str(dep["md5"])[:8]
    return None


def working_tree_reader(root: Path) -> Callable[[str], str | None]:
    def read(path: str) -> str | None:
        target = root / path
        return target.read_text() if target.is_file() else None

    return read


def git(root: Path, *args: str) -> str | None:
    result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else None


def git_reader(revision: str, root: Path) -> Callable[[str], str | None]:
    return lambda path: git(root, "show", f"{revision}:{path}")


def read_base(revision: str, root: Path) -> Results:
    sha = git(root, "rev-parse", "--verify", "--quiet", revision + "^{commit}")
    if not sha:
        return Results(
            name=revision,
            problem=f"revision `{revision}` not found here (fetch it first, e.g. "
            f"`git fetch origin {revision.removeprefix('origin/')}`)",
        )
    return read_results(f"`{revision}` ({sha[:7]})", git_reader(sha, root))


# --- comparing -------------------------------------------------------------------------------


def is_number(value: Any) -> bool:
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


def judge(metric: str, base: Any, new: Any) -> tuple[str, str]:
    """Delta text and a symbol that knows which way is better for this metric."""
    if not (is_number(base) and is_number(new)):
        return MISSING, ""
    if math.isnan(base) or math.isnan(new):
        return MISSING, "⚠️"
    delta = new - base
    direction = DIRECTIONS.get(metric, 0)
    if abs(delta) < 5e-5:
        return "0", "➖"
    text = f"{delta:+d}" if isinstance(delta, int) else f"{delta:+.4f}"
    if direction == 0:
        return text, ""
    return text, "✅" if delta * direction > 0 else "🔻"


def gate_from_params(params: dict[str, Any]) -> Gate | None:
    settings = (params.get("report") or {}).get("gate") or {}
    if "metric" not in settings:
        return None
    return Gate(
        metric=str(settings["metric"]),
        higher_is_better=bool(settings.get("higher_is_better", True)),
        max_drop=float(settings.get("max_drop", 0.0)),
        enabled=bool(settings.get("enabled", True)),
    )


def verdict(gate: Gate | None, base: Results, new: Results) -> Verdict:
    if gate is None:
        return Verdict(True, "⚪", "no regression gate configured (`report.gate` in params.yaml)")
    if not gate.enabled:
        return Verdict(True, "⚪", f"regression gate on `{gate.metric}` is off")
    new_value = new.scores.get(gate.metric)
    if not is_number(new_value) or math.isnan(new_value):
        return Verdict(False, "❌", f"`{gate.metric}` is {fmt(new_value)} in this change")
    base_value = base.scores.get(gate.metric)
    if not is_number(base_value) or math.isnan(base_value):
        return Verdict(True, "⚪", f"no baseline for `{gate.metric}`: nothing to compare against")
    drop = (base_value - new_value) if gate.higher_is_better else (new_value - base_value)
    change = f"`{gate.metric}` {fmt(base_value)} → {fmt(new_value)} ({new_value - base_value:+.4f})"
    if drop > gate.max_drop + 1e-12:
        return Verdict(
            False, "❌", f"{change}: worse than the allowed drop of {fmt(gate.max_drop)}"
        )
    return Verdict(True, "✅", f"{change}; allowed drop {fmt(gate.max_drop)}")


# --- sections --------------------------------------------------------------------------------


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


def metrics_section(base: Results, new: Results) -> Section:
    names = list(new.scores) + [name for name in base.scores if name not in new.scores]
    rows = []
    for name in names:
        old_value, new_value = base.scores.get(name), new.scores.get(name)
        delta, symbol = judge(name, old_value, new_value)
        if name not in new.scores:
            symbol = "removed"
        elif base.found and name not in base.scores:
            symbol = "new metric"
        rows.append([f"`{name}`", fmt(old_value), fmt(new_value), delta, symbol])
    head = "### Metrics\n"
    if not base.found:
        head += "\n_No baseline: " + base.problem + "._\n"
    return Section(head, [table(["metric", "base", "this change", "Δ", ""], rows, "lrrrl")])


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
            parts.append("\n<details><summary>Confusion matrix of the base</summary>\n")
            parts.append(charts.confusion_table(base.plots["confusion"], labels))
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


def build(
    project: str,
    task: str,
    base: Results,
    new: Results,
    gate: Gate | None,
    *,
    base_revision: str,
    sha: str,
    labels: list[str] | None,
    diffs: dict[str, str],
    latency: dict[str, dict[str, float]] | None = None,
    latency_note: str = "not requested",
) -> tuple[str, Verdict]:
    """The whole report and the gate's verdict. Pure: the same inputs give the same text."""
    result = verdict(gate, base, new)
    sections = [
        headline(project, task, base, new, result, sha),
        metrics_section(base, new),
        params_section(base, new),
        data_section(base, new),
        plots_section(base, new, labels),
        onnx_section(base, new),
        latency_section(latency, latency_note),
        *([details_section(diffs)] if diffs else []),
        footer(base_revision),
    ]
    return fit(sections), result


# --- measuring and I/O -----------------------------------------------------------------------


def median_seconds(call: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure_latency(root: Path, batch_rows: int = 1000) -> dict[str, dict[str, float]]:
    """scikit-learn vs onnxruntime on one row and on a batch drawn from the test split."""
    import joblib
    import onnxruntime as ort

    from .features import model_inputs, onnx_feed
    from .schema import load_frame

    schema = load_schema(root / "data/schema.yaml")
    test = load_frame(root / "data/prepared/test.csv", schema)
    model = joblib.load(root / "models/model.joblib")
    session = ort.InferenceSession(
        str(root / "models/model.onnx"), providers=["CPUExecutionProvider"]
    )
    predict = model.predict_proba if schema.is_classification else model.predict
    results = {}
    for case, rows in (
        ("1 row", test.head(1)),
        (f"{batch_rows:,} rows", test.sample(batch_rows, replace=True, random_state=0)),
    ):
        inputs = model_inputs(rows, schema)
        feed = onnx_feed(inputs)
        results[case] = {
            "sklearn": median_seconds(lambda inputs=inputs: predict(inputs), 50),
            "onnx": median_seconds(lambda feed=feed: session.run(None, feed), 200),
        }
    return results


def dvc_diffs(base_revision: str, root: Path) -> dict[str, str]:
    outputs = {}
    for kind in ("metrics", "params"):
        command = ["dvc", kind, "diff", "--md", base_revision]
        try:
            done = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as err:
            outputs[" ".join(command)] = f"not run: {err}"
            continue
        lines = (done.stderr or "").strip().splitlines()
        failure = f"failed: {lines[-1] if lines else done.returncode}"
        outputs[" ".join(command)] = done.stdout if done.returncode == 0 else failure
    return outputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the PR model report.")
    parser.add_argument("--base", default="main", help="git revision to compare with")
    parser.add_argument("--out", type=Path, default=Path("report.md"))
    parser.add_argument("--no-gate", action="store_true", help="report only; always exit 0")
    parser.add_argument("--no-latency", action="store_true", help="skip the latency measurement")
    args = parser.parse_args(argv)
    root = Path.cwd()

    new = read_results("this change", working_tree_reader(root))
    base = read_base(args.base, root)
    gate = gate_from_params(new.params)
    if gate and args.no_gate:
        gate.enabled = False
    latency, note = None, "skipped (--no-latency)"
    if not args.no_latency:
        try:
            latency = measure_latency(root)
        except (OSError, ValueError, KeyError, PipelineError) as err:
            note = f"{type(err).__name__}: {err}"
    schema = load_schema(root / "data/schema.yaml")
    labels = [str(label) for label in schema.labels] if schema.labels else None
    sha = git(root, "rev-parse", "--short", "HEAD") or "no commit yet"
    # The pipeline's own results change with every repro; only other edits count as uncommitted.
    results = [f":!{path}" for path in ("dvc.lock", "metrics", "plots")]
    if git(root, "status", "--porcelain", "--untracked-files=no", "--", ".", *results):
        sha += " with uncommitted changes"
    text, result = build(
        project=tomllib.loads((root / "pyproject.toml").read_text())["project"]["name"],
        task=schema.task,
        base=base,
        new=new,
        gate=gate,
        base_revision=args.base,
        sha=sha,
        labels=labels,
        diffs=dvc_diffs(args.base, root) if base.found else {},
        latency=latency,
        latency_note=note,
    )
    args.out.write_text(text)
    print(f"report: {args.out} ({len(text):,} characters); gate: {result.text}")
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
