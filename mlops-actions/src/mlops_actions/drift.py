"""Drift: is a batch of new inputs still like the data the model was trained on?

`make drift` compares a batch (BATCH=<csv>, by default every CSV in the DVC-tracked
data/incoming/) with the training reference the prepare stage saves (data/prepared/reference.csv):

- numeric features: the population stability index (PSI) over the reference's deciles, with the
  two-sample Kolmogorov-Smirnov test saying whether the change is more than sampling noise;
- categorical features: PSI over the categories, the chi-squared test of homogeneity, and the share
  of rows whose category the reference never had;
- every feature: the missing-value rate;
- the model's predictions on both (model.onnx): label shares, or deciles of the predicted value.

It writes drift/report.json and drift/report.md, then exits 1 when a threshold of params.yaml
`drift` was crossed. The tests are scipy's (installed with scikit-learn); PSI is written out here.

`make drift-batch LOGS=<log.jsonl>` (the `from-logs` command) turns the server's prediction logs
(PREDICTION_LOG) into such a batch.
"""

import argparse
import itertools
import json
import math
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from . import charts
from .errors import PipelineError
from .features import model_inputs, onnx_feed
from .params import load_params
from .project import load_project
from .schema import Schema, csv_files, load_schema, read_csv, validate_features

INCOMING = Path("data/incoming")
# The smallest share a bin counts with, so that an empty bin does not make PSI infinite.
EPSILON = 1e-4
DECILES = np.linspace(0.1, 0.9, 9)
# Categories drawn in a chart; the rest are summed as "other".
MAX_CHART_CATEGORIES = 12


@dataclass(frozen=True)
class Thresholds:
    psi: float
    p_value: float
    missing_increase: float
    new_category_share: float
    min_rows: int

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "Thresholds":
        """From load_params' dict, whose `drift` section, when there is one, is checked."""
        if "drift" not in params:
            raise PipelineError("params.yaml has no drift section (see the template's defaults)")
        return cls(**params["drift"])


@dataclass
class Check:
    """One column compared: a feature, or the model's prediction."""

    name: str
    kind: str
    test: str
    psi: float
    statistic: float
    p_value: float
    missing_reference: float = 0.0
    missing_batch: float = 0.0
    new_categories: list[str] = field(default_factory=list)
    new_category_share: float = 0.0
    bins: list[str] = field(default_factory=list)
    reference_shares: list[float] = field(default_factory=list)
    batch_shares: list[float] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        return bool(self.reasons)


def psi(reference: np.ndarray, batch: np.ndarray) -> float:
    """Population stability index of two share vectors: sum of (b - r) * ln(b / r)."""
    r = np.clip(np.asarray(reference, dtype=float), EPSILON, None)
    b = np.clip(np.asarray(batch, dtype=float), EPSILON, None)
    return float(np.sum((b - r) * np.log(b / r)))


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else np.zeros(len(counts))


def _missing(values: pd.Series) -> float:
    return float(values.isna().mean()) if len(values) else 0.0


def numeric_check(
    name: str, reference: pd.Series, batch: pd.Series, kind: str = "numeric"
) -> Check:
    """PSI over the reference's deciles (bins (-inf, q10], ..., (q90, inf)) and the KS test."""
    ref = reference.dropna().to_numpy(dtype=float)
    new = batch.dropna().to_numpy(dtype=float)
    edges = np.unique(np.quantile(ref, DECILES)) if len(ref) else np.array([])
    labels = (
        [f"<= {charts.number(edges[0], 2)}"]
        + [f"{charts.number(a, 2)}..{charts.number(b, 2)}" for a, b in itertools.pairwise(edges)]
        + [f"> {charts.number(edges[-1], 2)}"]
        if len(edges)
        else ["all"]
    )
    count = len(edges) + 1
    ref_shares = _shares(np.bincount(np.searchsorted(edges, ref), minlength=count))
    new_shares = _shares(np.bincount(np.searchsorted(edges, new), minlength=count))
    statistic, p_value, index = math.nan, 1.0, math.nan  # nothing to compare but missing rates
    if len(ref) and len(new):
        result = stats.ks_2samp(ref, new)
        statistic, p_value = float(result.statistic), float(result.pvalue)
        index = psi(ref_shares, new_shares)
    return Check(
        name=name,
        kind=kind,
        test="KS",
        psi=index,
        statistic=statistic,
        p_value=p_value,
        missing_reference=_missing(reference),
        missing_batch=_missing(batch),
        bins=labels,
        reference_shares=ref_shares.tolist(),
        batch_shares=new_shares.tolist(),
    )


def categorical_check(
    name: str, reference: pd.Series, batch: pd.Series, kind: str = "categorical"
) -> Check:
    """PSI over the categories, the chi-squared test of homogeneity, and categories never seen."""
    ref = reference.dropna().astype(str)
    new = batch.dropna().astype(str)
    categories = sorted(set(ref) | set(new))
    ref_counts = ref.value_counts().reindex(categories, fill_value=0).to_numpy()
    new_counts = new.value_counts().reindex(categories, fill_value=0).to_numpy()
    if len(categories) > 1 and ref_counts.sum() and new_counts.sum():
        result = stats.chi2_contingency(np.vstack([ref_counts, new_counts]), correction=False)
        statistic, p_value = float(result.statistic), float(result.pvalue)
    else:  # one category on both sides, or an empty side: no evidence of a difference
        statistic, p_value = 0.0, 1.0
    unseen = [
        category for category, count in zip(categories, ref_counts, strict=True) if count == 0
    ]
    ref_shares, new_shares = _shares(ref_counts), _shares(new_counts)
    return Check(
        name=name,
        kind=kind,
        test="chi²",
        psi=psi(ref_shares, new_shares) if len(ref) and len(new) else math.nan,
        statistic=statistic,
        p_value=p_value,
        missing_reference=_missing(reference),
        missing_batch=_missing(batch),
        new_categories=unseen,
        new_category_share=float(new.isin(unseen).sum() / len(batch)) if len(batch) else 0.0,
        bins=categories,
        reference_shares=ref_shares.tolist(),
        batch_shares=new_shares.tolist(),
    )


def judge(check: Check, thresholds: Thresholds, alpha: float) -> Check:
    """Fill in why a check counts as drift (no reasons: no drift)."""
    # Both an effect size and significance: PSI alone fires on small batches' noise (a 100-row
    # batch of unchanged data reaches PSI 0.2 about 1 time in 13), a p-value alone on shifts
    # too small to matter once batches are large.
    large = math.isfinite(check.psi) and check.psi >= thresholds.psi
    if large and check.p_value < alpha:
        check.reasons.append(
            f"PSI {check.psi:.2f} ≥ {thresholds.psi:g} and {check.test} p {check.p_value:.2g} "
            f"< {alpha:.2g}"
        )
    rise = check.missing_batch - check.missing_reference
    if rise > thresholds.missing_increase:
        check.reasons.append(f"missing {check.missing_reference:.0%} → {check.missing_batch:.0%}")
    if check.new_category_share > thresholds.new_category_share:
        shown = ", ".join(repr(category) for category in check.new_categories[:3])
        check.reasons.append(f"new categories in {check.new_category_share:.0%} of rows: {shown}")
    return check


def compare(
    reference: pd.DataFrame,
    batch: pd.DataFrame,
    schema: Schema,
    thresholds: Thresholds,
    predictions: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[Check]:
    """Every feature (and the predictions, when given), judged with one Bonferroni-corrected
    significance level across all of them."""
    checks = [
        categorical_check(name, reference[name], batch[name])
        if kind == "categorical"
        else numeric_check(name, reference[name], batch[name])
        for name, kind in schema.features.items()
    ]
    if predictions is not None:
        ref_pred, new_pred = (pd.Series(values) for values in predictions)
        checks.append(
            categorical_check("prediction", ref_pred, new_pred, kind="prediction")
            if schema.is_classification
            else numeric_check("prediction", ref_pred, new_pred, kind="prediction")
        )
    alpha = thresholds.p_value / len(checks)
    return [judge(check, thresholds, alpha) for check in checks]


def load_model(model_path: Path):
    """An onnxruntime session for model.onnx, or one line saying why there is none."""
    import onnxruntime as ort

    try:
        return ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises several types for a missing or bad file
        raise PipelineError(f"{model_path}: cannot load the model ({str(err)[:120]})") from None


def predict(session: Any, frame: pd.DataFrame, schema: Schema) -> np.ndarray:
    """The ONNX model's label (classification) or value (regression) for every row."""
    return session.run(None, onnx_feed(model_inputs(frame, schema)))[0].ravel()


def read_batch(source: Path, schema: Schema) -> pd.DataFrame:
    """A CSV, or every CSV of a folder, as typed feature columns (a target column is ignored)."""
    frames = [
        validate_features(read_csv(path), schema, source=str(path)) for path in csv_files(source)
    ]
    return pd.concat(frames, ignore_index=True)


# --- the report -------------------------------------------------------------------------------


def _fmt(value: float, digits: int = 3) -> str:
    return charts.MISSING if value is None or not math.isfinite(value) else f"{value:.{digits}g}"


def _chart(check: Check) -> str:
    bins, ref, new = check.bins, check.reference_shares, check.batch_shares
    if len(bins) > MAX_CHART_CATEGORIES:
        order = sorted(range(len(bins)), key=lambda i: -(ref[i] + new[i]))
        kept, rest = order[: MAX_CHART_CATEGORIES - 1], order[MAX_CHART_CATEGORIES - 1 :]
        bins = [bins[i] for i in kept] + ["other"]
        ref = [ref[i] for i in kept] + [sum(ref[i] for i in rest)]
        new = [new[i] for i in kept] + [sum(new[i] for i in rest)]
    return charts.xychart(
        f"{check.name}: % of rows (bars: batch, line: reference)",
        x_labels=bins,
        bars=[[100 * share for share in new]],
        lines=[[100 * share for share in ref]],
        y_title="% of rows",
    )


def render(result: dict[str, Any], checks: list[Check]) -> str:
    drifted = [check for check in checks if check.drifted]
    features = [check for check in checks if check.kind != "prediction"]
    prediction = next((check for check in checks if check.kind == "prediction"), None)
    if drifted:
        moved = sum(check.kind != "prediction" for check in drifted)
        head = f"## ❌ Drift: {moved} of {len(features)} features"
        head += " and the predictions" if prediction and prediction.drifted else ""
    else:
        head = "## ✅ No drift"
    lines = [
        f"{head} ({result['project']})",
        "",
        f"**batch**: `{result['batch']}` ({result['rows']['batch']:,} rows) · **reference**: "
        f"training sample ({result['rows']['reference']:,} rows) · **model**: "
        f"`{result['model_version']}`",
        "",
        "### Features",
        "",
        charts.table(
            ["feature", "kind", "PSI", "test", "statistic", "p-value", "missing", "verdict"],
            [
                [
                    f"`{check.name}`",
                    check.kind,
                    _fmt(check.psi),
                    check.test,
                    _fmt(check.statistic),
                    _fmt(check.p_value, 2),
                    f"{check.missing_reference:.0%} → {check.missing_batch:.0%}",
                    "❌ " + "; ".join(check.reasons) if check.drifted else "✅",
                ]
                for check in sorted(features, key=lambda c: (not c.drifted, -_sortable(c.psi)))
            ],
            align="llrlrrrl",
        ),
    ]
    if prediction is not None:
        verdict = "❌ " + "; ".join(prediction.reasons) if prediction.drifted else "✅ stable"
        numbers = f"PSI {_fmt(prediction.psi)}, {prediction.test} p {_fmt(prediction.p_value, 2)}"
        lines += ["", "### Predictions", "", f"{verdict} ({numbers})", "", _chart(prediction)]
    shown = [check for check in drifted if check.kind != "prediction"][:5]
    if shown:
        lines += ["", "### Drifted features", ""]
        for check in shown:
            lines += [_chart(check), ""]
    t = result["thresholds"]
    lines += [
        "",
        f"<sub>Drift when PSI ≥ {t['psi']:g} with p < {t['p_value']:g} / {len(checks)} tests "
        f"(Bonferroni), the missing rate up by more than {t['missing_increase']:.0%}, or unseen "
        f"categories in more than {t['new_category_share']:.0%} of rows (params.yaml `drift`). "
        f"Reproduce: `make drift BATCH={result['batch']}`.</sub>",
    ]
    return "\n".join(lines) + "\n"


def _sortable(value: float) -> float:
    return value if math.isfinite(value) else -1.0


# --- commands -------------------------------------------------------------------------------------


def check_command(args: argparse.Namespace) -> int:
    params = load_params()
    thresholds = Thresholds.from_params(params)
    schema = load_schema(args.schema)
    result: dict[str, Any]
    if args.batch is None and not INCOMING.exists():
        result = {"status": "no-batch", "batch": str(INCOMING), "reason": "no data/incoming/ yet"}
        _write(
            args, result, "## ➖ No batch to check\n\nAdd CSVs to `data/incoming/` (see README).\n"
        )
        print(f"drift: no batch: {INCOMING}/ does not exist (nothing to check)")
        return 0
    source = args.batch or INCOMING
    batch = read_batch(source, schema)
    if len(batch) < thresholds.min_rows:
        raise PipelineError(
            f"{source}: {len(batch)} rows; drift needs at least {thresholds.min_rows} (params.yaml)"
        )
    reference = validate_features(read_csv(args.reference), schema, source=str(args.reference))
    predictions, model_version = None, "no model"
    if args.model.exists():
        session = load_model(args.model)  # once: both sides' predictions and the version
        predictions = (predict(session, reference, schema), predict(session, batch, schema))
        meta = session.get_modelmeta().custom_metadata_map
        model_version = meta.get("model_version", "unknown")
    checks = compare(reference, batch, schema, thresholds, predictions)
    drifted = [check.name for check in checks if check.drifted]
    result = {
        "status": "drift" if drifted else "ok",
        "project": load_project().name,
        "batch": str(source),
        "rows": {"batch": len(batch), "reference": len(reference)},
        "model_version": model_version,
        "drifted": drifted,
        "thresholds": asdict(thresholds),
        "checks": [{**asdict(check), "drifted": check.drifted} for check in checks],
    }
    _write(args, result, render(result, checks))
    verdict = f"drift in {', '.join(drifted)}" if drifted else "no drift"
    print(f"drift: {len(batch)} rows of {source} vs the training reference: {verdict}")
    return 1 if drifted and not args.no_fail else 0


def _write(args: argparse.Namespace, result: dict[str, Any], markdown: str) -> None:
    args.out_json.parent.mkdir(parents=True, exist_ok=True)
    args.out_json.write_text(json.dumps(_finite(result), indent=2, allow_nan=False) + "\n")
    args.out_md.parent.mkdir(parents=True, exist_ok=True)
    args.out_md.write_text(markdown)
    if os.environ.get("GITHUB_OUTPUT"):  # in a workflow: the next steps branch on the status
        with open(os.environ["GITHUB_OUTPUT"], "a") as output:
            output.write(f"status={result['status']}\n")


def _finite(value: Any) -> Any:
    """JSON has no NaN: a statistic that could not be computed is null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def batch_from_logs(paths: list[Path], schema: Schema) -> pd.DataFrame:
    """The features of every logged prediction, one row each, in the schema's column order."""
    rows = []
    for path in paths:
        try:
            lines = path.read_text().splitlines()
        except FileNotFoundError:
            raise PipelineError(f"{path}: file not found") from None
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                features = json.loads(line)["features"]
            except (ValueError, KeyError, TypeError):
                raise PipelineError(
                    f"{path} line {number}: not a prediction log line (JSON with 'features')"
                ) from None
            rows.append(features)
    if not rows:
        raise PipelineError(f"{', '.join(map(str, paths))}: no predictions logged")
    return pd.DataFrame(rows).reindex(columns=list(schema.features))


def main(argv: list[str] | None = None) -> int:
    """Exit code: 0 no drift, 1 drift, 2 the check could not run (named in one line)."""
    try:
        return _main(argv)
    except PipelineError as err:
        print(f"drift: {err}", file=sys.stderr)
        return 2


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="compare a batch with the training reference")
    check.add_argument(
        "--batch", type=Path, help="a CSV or a folder of CSVs (default data/incoming)"
    )
    check.add_argument("--reference", type=Path, default=Path("data/prepared/reference.csv"))
    check.add_argument("--model", type=Path, default=Path("models/model.onnx"))
    check.add_argument("--schema", type=Path, default=Path("data/schema.yaml"))
    check.add_argument("--out-json", type=Path, default=Path("drift/report.json"))
    check.add_argument("--out-md", type=Path, default=Path("drift/report.md"))
    check.add_argument("--no-fail", action="store_true", help="exit 0 even when drift is found")
    logs = commands.add_parser("from-logs", help="turn prediction logs into a batch CSV")
    logs.add_argument("logs", type=Path, nargs="+")
    logs.add_argument("--schema", type=Path, default=Path("data/schema.yaml"))
    logs.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "check":
        return check_command(args)
    frame = batch_from_logs(args.logs, load_schema(args.schema))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False)
    print(f"drift: {len(frame)} logged predictions -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
