"""The PR model report: what a reviewer reads before merging a model change.

Compares the working tree's results with a base git revision: metrics with their 95% bootstrap
intervals, params, data, plots, ONNX parity and size, inference latency. The base's metrics are
its model re-scored on this change's test and holdout rows (base_model.py finds its model.onnx:
the DVC cache, the remote, or a rebuild), so every delta is paired, even when the data changed;
when its model cannot be had, they are its committed metrics, and the report says why. The rest
comes from committed files (metrics/, plots/, params.yaml, dvc.lock). The markdown is
deterministic for the same inputs, apart from the latency section between its markers.

`make report BASE=<rev>` writes report.md, then exits 1 when the primary metric dropped beyond the
allowed drop in params.yaml (the regression gate), so CI posts the report before failing.

The package, by responsibility: results (reading either side), intervals (the bootstrap),
compare (deltas and the gate), sections (the markdown), latency (timing); this module joins them.
"""

import argparse
import subprocess
import tomllib
from pathlib import Path
from typing import Any

from .. import champion
from ..errors import PipelineError
from ..params import load_params
from ..schema import Schema, load_frame, load_schema
from . import base_model
from .compare import Gate, Verdict, gate_from_params, reported_gate, verdict
from .intervals import bootstrap, rows_from_plots, rows_of
from .latency import measure_latency, median_seconds
from .results import Results, data_version, git, read_base, read_results, working_tree_reader
from .sections import (
    COMMENT_LIMIT,
    LATENCY_END,
    LATENCY_START,
    cv_section,
    data_section,
    details_section,
    fit,
    footer,
    headline,
    holdout_section,
    latency_section,
    metrics_section,
    onnx_section,
    params_section,
    plots_section,
)

__all__ = [
    "COMMENT_LIMIT",
    "LATENCY_END",
    "LATENCY_START",
    "Gate",
    "Results",
    "Verdict",
    "build",
    "data_version",
    "gate_from_params",
    "main",
    "median_seconds",
    "read_base",
    "read_results",
    "verdict",
]


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
    names = list(new.scores)
    seed = int((new.params.get("base") or {}).get("seed", 0) or 0)
    base_rows = base.rows
    if base_rows is None and base.found:
        base_rows = rows_from_plots(base.plots, base.labels)
    intervals = bootstrap(
        base_rows,
        rows_from_plots(new.plots, labels),
        names,
        seed=seed,
    )
    result = verdict(gate, base, new, intervals.delta.get(gate.metric) if gate else None)
    cv, holdout = cv_section(base, new), holdout_section(base, new)
    sections = [
        headline(project, task, base, new, result, sha),
        metrics_section(base, new, intervals),
        *([holdout] if holdout else []),
        *([cv] if cv else []),
        params_section(base, new),
        data_section(base, new),
        plots_section(base, new, labels),
        onnx_section(base, new),
        latency_section(latency, latency_note),
        *([details_section(diffs)] if diffs else []),
        footer(base_revision),
    ]
    return fit(sections), result


def rescore_base(
    base: Results,
    revision: str,
    root: Path,
    schema: Schema,
    new_params: dict[str, Any],
    mode: str = "auto",
) -> Results:
    """The base's model on this change's test rows (and holdout): its metrics and per-row
    outputs, measured where this change's are, so each delta is paired. Unchanged (its committed
    metrics) when its model cannot be had or read these rows, with the reason in `source`."""
    sha = git(root, "rev-parse", "--verify", "--quiet", revision + "^{commit}")
    if not base.found or not sha:
        return base
    prepared = root / "data" / "prepared"
    try:
        found = base_model.find(sha, git(root, "show", f"{sha}:dvc.lock"), root, mode)
        test = load_frame(prepared / "test.csv", schema)
        predictions = champion.onnx_predictions(found.model, test, schema, "the base model")
        holdout = None
        if base.holdout and (prepared / "holdout.csv").is_file():
            rows = load_frame(prepared / "holdout.csv", schema)
            holdout = champion.onnx_predictions(found.model, rows, schema, "the base model")
    except (PipelineError, OSError) as err:
        base.source = f"its committed metrics, since its model was not re-scored here: {err}"
        return base
    base.scores, base.rows = champion.scores(predictions, schema), rows_of(predictions)
    if holdout is not None:
        base.holdout = champion.scores(holdout, schema)
    rows = f"{len(test):,} test" + (f" and {len(rows):,} holdout" if holdout else "")
    base.source = f"its model.onnx from {found.source}, re-scored on this change's {rows} rows"
    moved = split_changes(base.params, new_params)
    if moved:
        base.source += (
            f". **The split changed** ({moved}): rows the base trained on may now be test rows, "
            "which flatters the base"
        )
    return base


def split_changes(base: dict[str, Any], new: dict[str, Any]) -> str:
    """The settings that decide each row's side (split.py), where they differ: appended rows
    move no row, but another seed or other shares move many."""
    keys = [("base", "seed"), ("prepare", "test_size"), ("prepare", "holdout_size")]
    changes = []
    for section, key in keys:
        old, now = ((side.get(section) or {}).get(key) for side in (base, new))
        if old != now:
            changes.append(f"`{section}.{key}` {old} → {now}")
    return ", ".join(changes)


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
    parser.add_argument(
        "--base-model",
        choices=base_model.MODES,
        default="auto",
        help="re-score the base's model on this change's rows: auto (from the DVC cache, the "
        "remote, else rebuilt), fetch (never rebuilt), off (its committed metrics)",
    )
    args = parser.parse_args(argv)
    root = Path.cwd()

    new = read_results("this change", working_tree_reader(root))
    base = read_base(args.base, root)
    # This change's params.yaml is validated (a typo stops the report in one line); the base's
    # is shown as it was committed. A gate metric the task does not compute fails the gate.
    params = load_params()
    schema = load_schema(root / "data/schema.yaml")
    gate = reported_gate(params, schema.task)
    if gate and args.no_gate:
        gate.enabled = False
    latency, note = None, "skipped (--no-latency)"
    if not args.no_latency:
        try:
            latency = measure_latency(root)
        except (OSError, ValueError, KeyError, PipelineError) as err:
            note = f"{type(err).__name__}: {err}"
    base = rescore_base(base, args.base, root, schema, new.params, args.base_model)
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
