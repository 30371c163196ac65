"""Live performance: once the labels come in, were the predictions right?

`make performance PREDICTIONS=<file or folder> LABELS=<csv>` joins ground truth to predictions by
the row's key and scores each model version on the rows it predicted, with 95% bootstrap intervals
(report/intervals.py), against a reference: the release's holdout metrics (metrics/holdout.json,
or a release's metrics.json with REFERENCE=).

- Predictions: prediction records (`make score`'s CSV or Parquet: key, model_version,
  model_sha256, scored_at, then label and proba_<label> columns, or value) and the server's
  prediction logs (JSON lines with features and outputs, PREDICTION_LOG), whose key is computed
  from the logged features as `make score` computes it (split.record_keys).
- Labels: a CSV with the target column and the key: the schema's id column, or every feature (the
  key is then hashed from them, as for a prediction).

Whatever does not join is counted, one line each, never a crash: labels without predictions,
predictions without labels, a key predicted twice by one model version (the latest is kept),
labels that contradict each other for one key, and labels the model cannot predict. The verdict
is the PR gate's metric (`report.gate` in params.yaml): a model version performs *significantly
below* its reference when even the favourable end of its 95% interval is worse than the reference
by more than `max_drop`; noise alone (a small or unlucky week) never trips it. Writes
performance/report.md and performance/report.json; exits 1 when the newest model version is
significantly below (PERFORMANCE_FAIL=off: never), 2 when the check could not run.
"""

import argparse
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .charts import table
from .errors import PipelineError
from .metrics import METRICS, Predictions, exact_scores, for_task
from .params import load_params
from .project import load_project
from .report.compare import fmt, span
from .report.intervals import Interval, bootstrap, rows_of
from .schema import Schema, csv_files, load_schema, read_csv
from .split import record_keys

PROBABILITY_PREFIX = "proba_"
RECORD_COLUMNS = ("key", "model_version", "model_sha256", "scored_at")
PREDICTION_SUFFIXES = (".csv", ".parquet", ".jsonl")
OUT = Path("performance")


@dataclass
class VersionResult:
    """One model version on the rows it predicted whose labels came in."""

    version: str
    rows: int
    scores: dict[str, float]
    intervals: dict[str, Interval]
    last_scored: str
    degraded: bool = False
    verdict: str = ""


@dataclass
class Outcome:
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # one line per thing that did not join
    versions: list[VersionResult] = field(default_factory=list)
    reference: dict[str, float] = field(default_factory=dict)
    reference_name: str = ""
    joined: pd.DataFrame | None = None  # each labelled prediction: its record and `actual`

    @property
    def newest(self) -> VersionResult | None:
        return max(self.versions, key=lambda v: v.last_scored) if self.versions else None


# --- reading


def prediction_files(source: Path) -> list[Path]:
    return csv_files(source, PREDICTION_SUFFIXES, "no prediction files (*.csv, *.parquet, *.jsonl)")


def records_from_logs(path: Path, schema: Schema) -> pd.DataFrame:
    """The server's prediction log lines as prediction records, keyed by their features."""
    features, rows = [], []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            outputs = entry["outputs"]
            row = {"model_version": str(entry["model_version"]), "scored_at": entry["time"]}
        except (ValueError, KeyError, TypeError):
            raise PipelineError(
                f"{path} line {number}: not a prediction log line (JSON with features, outputs, "
                "model_version and time)"
            ) from None
        if "value" in outputs:
            row["value"] = outputs["value"]
        else:
            row["label"] = str(outputs.get("label"))
            for label, share in (outputs.get("probabilities") or {}).items():
                row[f"{PROBABILITY_PREFIX}{label}"] = share
        features.append(entry.get("features") or {})
        rows.append(row)
    frame = pd.DataFrame(rows)
    logged = pd.DataFrame(features).reindex(columns=list(schema.features))
    frame.insert(0, "key", record_keys(logged, schema).to_numpy() if len(frame) else [])
    frame.insert(2, "model_sha256", None)
    return frame


def read_records(path: Path, schema: Schema) -> pd.DataFrame:
    if path.suffix == ".jsonl":
        return records_from_logs(path, schema)
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
    else:
        frame = pd.read_csv(path, dtype={"key": str, "label": str, "model_version": str})
    missing = [c for c in ("key", "model_version", "scored_at") if c not in frame.columns]
    answer = "value" if schema.labels is None else "label"
    if answer not in frame.columns:
        missing.append(answer)
    if missing:
        raise PipelineError(
            f"{path}: not prediction records (`make score`'s output): no column "
            f"{', '.join(missing)}"
        )
    return frame


def read_predictions(source: Path, schema: Schema) -> pd.DataFrame:
    frames = [read_records(path, schema) for path in prediction_files(source)]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    frame["key"] = frame["key"].astype(str)
    frame["model_version"] = frame["model_version"].astype(str)
    frame["scored_at"] = frame["scored_at"].astype(str)
    return frame


def read_labels(source: Path, schema: Schema) -> pd.DataFrame:
    """key and actual of every labels CSV in `source` (a file or a folder)."""
    files = csv_files(source, none="no labels (*.csv)")
    return pd.concat([labels_of(path, schema) for path in files], ignore_index=True)


def labels_of(path: Path, schema: Schema) -> pd.DataFrame:
    """key and actual: the id column, or the features hashed as a prediction's key."""
    frame = read_csv(path)
    if schema.target not in frame.columns:
        raise PipelineError(f"{path}: no column `{schema.target}` (the labels)")
    if schema.id is not None and schema.id in frame.columns:
        keys = frame[schema.id].astype(str)
    else:
        missing = [name for name in schema.features if name not in frame.columns]
        if missing:
            need = f"the id column `{schema.id}` or " if schema.id else ""
            raise PipelineError(
                f"{path}: needs {need}every feature to find each row's prediction; missing "
                f"{', '.join(f'`{name}`' for name in missing[:5])}"
                + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            )
        keys = record_keys(frame, schema)
    return pd.DataFrame({"key": keys.to_numpy(), "actual": frame[schema.target].to_numpy()})


# --- joining


def clean_labels(labels: pd.DataFrame, schema: Schema, outcome: Outcome) -> pd.DataFrame:
    """One label a key: gaps, labels the model cannot predict and contradictions left out."""
    present = labels[labels["actual"].notna() & (labels["actual"].astype(str) != "")]
    _count(outcome, "labels_empty", len(labels) - len(present), "labels are empty (left out)")
    if schema.labels is None:
        values = pd.to_numeric(present["actual"], errors="coerce")
        _count(
            outcome, "labels_not_numbers", int(values.isna().sum()),
            "labels are not numbers (left out)",
        )  # fmt: skip
        present = present.assign(actual=values)[values.notna()]
    else:
        text = present["actual"].astype(str)
        known = text.isin(schema.labels)
        unknown = sorted(set(text[~known]))[:5]
        _count(
            outcome, "labels_unknown", int((~known).sum()),
            f"labels are none of the model's ({', '.join(unknown)}; left out)",
        )  # fmt: skip
        present = present.assign(actual=text)[known]
    distinct = present.drop_duplicates()
    conflicting = distinct["key"].duplicated(keep=False)
    _count(
        outcome, "labels_conflicting", int(distinct.loc[conflicting, "key"].nunique()),
        "keys have labels that contradict each other (left out)",
    )  # fmt: skip
    _count(
        outcome, "labels_repeated", len(present) - len(distinct),
        "labels repeat an identical one (counted once)",
    )  # fmt: skip
    return distinct[~conflicting]


def join(predictions: pd.DataFrame, labels: pd.DataFrame, schema: Schema) -> Outcome:
    """Predictions with their labels, and a count of everything that did not join."""
    outcome = Outcome()
    outcome.counts["predictions"], outcome.counts["labels"] = len(predictions), len(labels)
    ordered = predictions.sort_values("scored_at", kind="stable")
    latest = ordered.drop_duplicates(["key", "model_version"], keep="last")
    _count(
        outcome, "predictions_repeated", len(predictions) - len(latest),
        "predictions repeat a key one model version already scored (the latest is kept)",
    )  # fmt: skip
    usable = clean_labels(labels, schema, outcome)
    joined = latest.merge(usable, on="key", how="inner", validate="many_to_one")
    labelled = set(usable["key"])
    predicted = set(latest["key"])
    _count(
        outcome, "labels_without_predictions", len(labelled - predicted),
        "labels have no prediction (no model scored their row)",
    )  # fmt: skip
    _count(
        outcome, "predictions_without_labels", int((~latest["key"].isin(labelled)).sum()),
        "predictions have no label yet",
    )  # fmt: skip
    outcome.counts["joined"] = len(joined)
    outcome.joined = joined
    return outcome


def _count(outcome: Outcome, name: str, count: int, text: str) -> None:
    outcome.counts[name] = int(count)
    if count:
        outcome.notes.append(f"{count:,} {text}")


# --- scoring


def predictions_of(rows: pd.DataFrame, schema: Schema) -> Predictions:
    if schema.labels is None:
        return Predictions(
            rows["actual"].to_numpy(dtype=float), rows["value"].to_numpy(dtype=float)
        )
    columns = [f"{PROBABILITY_PREFIX}{label}" for label in schema.labels]
    probabilities = None
    if all(column in rows.columns for column in columns):
        probabilities = rows[columns].to_numpy(dtype=float)
    return Predictions(
        rows["actual"].astype(str).to_numpy(),
        rows["label"].astype(str).to_numpy(),
        probabilities,
        tuple(schema.labels) if probabilities is not None else (),
        schema.labels[-1],
    )


def score_versions(joined: pd.DataFrame, schema: Schema, seed: int) -> list[VersionResult]:
    results = []
    for version, rows in joined.groupby("model_version", sort=True):
        predictions = predictions_of(rows, schema)
        names = [metric.name for metric in for_task(schema.task)]
        if predictions.probabilities is None:  # records without probabilities: no AUC
            names = [name for name in names if name != "roc_auc"]
        with np.errstate(all="ignore"):
            exact = exact_scores(predictions, schema.task) if len(rows) > 1 else {}
        scores = {name: float(exact[name]) for name in names if name in exact}
        intervals = (
            bootstrap(None, rows_of(predictions), names, seed=seed).new if len(rows) > 1 else {}
        )
        results.append(
            VersionResult(str(version), len(rows), scores, intervals, str(rows["scored_at"].max()))
        )
    return results


def judge(result: VersionResult, reference: dict[str, Any], metric: str, max_drop: float) -> None:
    """Significantly below: the interval's favourable end is worse than the reference beyond
    `max_drop`. Sets `degraded` and a one-line `verdict`."""
    live, interval, base = (
        result.scores.get(metric),
        result.intervals.get(metric),
        reference.get(metric),
    )
    if live is None or interval is None or not isinstance(base, int | float):
        result.verdict = f"`{metric}`: not enough to judge ({result.rows} rows)"
        return
    direction = METRICS[metric]
    best = interval.high if direction.higher_is_better else interval.low
    if math.isnan(best):
        result.verdict = f"`{metric}`: not enough to judge ({result.rows} rows)"
        return
    result.degraded = direction.improvement(base, best) < -max_drop - 1e-12
    said = f"`{metric}` {fmt(live)} (95% interval {span(interval)}) against {fmt(base)}"
    if result.degraded:
        result.verdict = f"{said}: significantly below, beyond the allowed drop of {fmt(max_drop)}"
    else:
        result.verdict = f"{said}: within the allowed drop of {fmt(max_drop)} or within noise"


# --- output


def render(outcome: Outcome, schema: Schema, metric: str, project: str) -> str:
    """The report; its first line is the title of performance.yml's issue."""
    newest = outcome.newest
    if newest is None:
        head = f"## ⚪ Live performance: no labelled predictions yet ({project})\n"
    elif newest.degraded:
        head = (
            f"## ❌ Live performance: `{metric}` of model {newest.version} significantly below "
            f"its reference ({project})\n"
        )
    else:
        head = f"## ✅ Live performance: model {newest.version} as expected ({project})\n"
    if newest:
        head += f"\n**Newest model version `{newest.version}`:** {newest.verdict}\n"
    else:
        head += "\nNo prediction has a label yet: nothing to score.\n"
    counts = outcome.counts
    joined = (
        f"- **joined**: {counts.get('joined', 0):,} predictions with their label "
        f"(of {counts.get('predictions', 0):,} predictions and {counts.get('labels', 0):,} labels)"
    )
    lines = [head, "### Join\n", joined, *[f"- {note}" for note in outcome.notes], ""]
    names = [m.name for m in for_task(schema.task)]
    rows = []
    for result in outcome.versions:
        for name in names:
            if name not in result.scores:
                continue
            symbol = (
                ("🔻" if result.degraded else "✅") if name == metric and result.verdict else ""
            )
            rows.append([
                f"`{result.version}`", f"`{name}`", f"{result.rows:,}", fmt(result.scores[name]),
                span(result.intervals.get(name)), fmt(outcome.reference.get(name)), symbol,
            ])  # fmt: skip
    if rows:
        lines += [
            "### Metrics per model version\n",
            f"_Reference: {outcome.reference_name}. 95% intervals: bootstrap over the joined "
            f"rows. The verdict reads `{metric}` (`report.gate`)._\n",
            table(
                ["model version", "metric", "rows", "live", "live 95%", "reference", ""],
                rows,
                "llrrrrl",
            ),
        ]
    return "\n".join(lines) + "\n"


def as_json(outcome: Outcome, metric: str) -> dict[str, Any]:
    newest = outcome.newest
    return {
        "degraded": bool(newest and newest.degraded),
        "metric": metric,
        "newest_version": newest.version if newest else None,
        "verdict": newest.verdict if newest else "no labelled predictions",
        "counts": outcome.counts,
        "notes": outcome.notes,
        "reference": {"source": outcome.reference_name, "scores": outcome.reference},
        "versions": [
            {
                "version": r.version, "rows": r.rows, "scores": r.scores,
                "intervals": {k: [v.low, v.high] for k, v in r.intervals.items()},
                "last_scored": r.last_scored, "degraded": r.degraded, "verdict": r.verdict,
            }
            for r in outcome.versions
        ],
    }  # fmt: skip


def load_reference(path: Path | None) -> tuple[dict[str, float], str]:
    """A release's metrics.json (its `scores`) or metrics/holdout.json (flat); by default the
    holdout's, else the test split's."""
    candidates = [path] if path else [Path("metrics/holdout.json"), Path("metrics/scores.json")]
    for candidate in candidates:
        try:
            data = json.loads(candidate.read_text())
        except FileNotFoundError:
            if path:
                raise PipelineError(f"{path}: file not found") from None
            continue
        except ValueError:
            raise PipelineError(f"{candidate}: not JSON") from None
        scores = data.get("scores", data) if isinstance(data, dict) else {}
        scores = {k: v for k, v in scores.items() if isinstance(v, int | float)}
        if scores:
            scored_on = data.get("scored_on") if isinstance(data, dict) else None
            return scores, f"`{candidate}`" + (f" ({scored_on})" if scored_on else "")
    raise PipelineError("no reference metrics: run `make repro` or name REFERENCE=<metrics.json>")


def check(predictions: Path, labels: Path, reference: Path | None, out: Path) -> Outcome:
    schema = load_schema(Path("data/schema.yaml"))
    params = load_params()
    gate = (params.get("report") or {}).get("gate") or {}
    metric = str(gate.get("metric") or for_task(schema.task)[0].name)
    max_drop = float(gate.get("max_drop", 0.0))
    outcome = join(read_predictions(predictions, schema), read_labels(labels, schema), schema)
    outcome.reference, outcome.reference_name = load_reference(reference)
    seed = int((params.get("base") or {}).get("seed", 0))
    assert outcome.joined is not None  # join() sets it
    outcome.versions = score_versions(outcome.joined, schema, seed)
    for result in outcome.versions:
        judge(result, outcome.reference, metric, max_drop)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(render(outcome, schema, metric, load_project().name))
    (out / "report.json").write_text(json.dumps(as_json(outcome, metric), indent=2) + "\n")
    return outcome


def main(argv: list[str] | None = None) -> int:
    """Exit code: 0 fine, 1 the newest version is significantly below, 2 could not run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--predictions", type=Path, required=True)
    parser.add_argument("--labels", type=Path, required=True)
    parser.add_argument("--reference", type=Path, help="a release's metrics.json")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--no-fail", action="store_true", help="exit 0 even when degraded")
    args = parser.parse_args(argv)
    try:
        outcome = check(args.predictions, args.labels, args.reference, args.out)
    except PipelineError as err:
        print(f"performance: {err}", file=sys.stderr)
        return 2
    newest = outcome.newest
    status = "no-labels" if newest is None else "degraded" if newest.degraded else "ok"
    if os.environ.get("GITHUB_OUTPUT"):  # in a workflow: the next jobs branch on the status
        with open(os.environ["GITHUB_OUTPUT"], "a") as output:
            output.write(f"status={status}\n")
    print(f"performance: {args.out}/report.md; " + (newest.verdict if newest else "no labels"))
    return 1 if status == "degraded" and not args.no_fail else 0


if __name__ == "__main__":
    sys.exit(main())
