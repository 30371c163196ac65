"""The cost of the report's 95% intervals (bootstrap over the test rows, 1,000 resamples).

Times mlops-actions' `report.intervals.bootstrap` (what every project's report runs) on generated
per-row results of both sides: the metric intervals of base and change plus the paired (same rows)
or unpaired (changed test set) delta intervals, for every task's metrics. Median of 3 runs, one
thread (OMP_NUM_THREADS=1), then the paired case again on every core of the machine (the report
shares 10 million weights or more among up to 4 threads; below that it runs one). The budget is 2 s
for 100,000 test rows.
"""

import os
from functools import partial

os.environ["OMP_NUM_THREADS"] = "1"

import numpy as np

SIZES = (114, 10_000, 100_000)
REPEATS = 3


def classified(intervals, rows: int, classes: list[str], seed: int):
    """Two models' outputs on the same rows: probabilities rounded to 4 decimals, as written."""
    rng = np.random.default_rng(seed)
    actual = rng.integers(0, len(classes), rows)
    sides = []
    for noise in (1.0, 1.1):
        logits = rng.normal(0, noise, (rows, len(classes)))
        logits[np.arange(rows), actual] += 1.5
        probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        labels = np.array(classes)
        sides.append(
            intervals.Rows(
                labels[actual],
                labels[probabilities.argmax(axis=1)],
                classes,
                probabilities.round(4),
            )
        )
    return sides


def regressed(intervals, rows: int, seed: int):
    rng = np.random.default_rng(seed)
    actual = rng.normal(100, 20, rows)
    return [intervals.Rows(actual, actual + rng.normal(0, s, rows)) for s in (8.0, 8.5)]


def main() -> None:
    intervals = __import__("mlops_actions.report.intervals", fromlist=["bootstrap"])
    # The report's own timer (report/latency.py), median of REPEATS calls.
    latency = __import__("mlops_actions.report.latency", fromlist=["median_seconds"])
    seconds = partial(latency.median_seconds, repeats=REPEATS)

    classification = ["accuracy", "balanced_accuracy", "f1", "roc_auc"]
    cases = {
        "binary classification": (lambda n: classified(intervals, n, ["no", "yes"], 1)),
        "multiclass (3 classes)": (lambda n: classified(intervals, n, ["a", "b", "c"], 2)),
        "regression": (lambda n: regressed(intervals, n, 3)),
    }
    cores = len(os.sched_getaffinity(0))
    print(
        "| task | test rows | paired Δ (same rows) | unpaired Δ (rows changed) "
        f"| paired Δ, {cores} cores |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    for task, make in cases.items():
        names = ["rmse", "mae", "r2"] if task == "regression" else classification
        for rows in SIZES:
            base, new = make(rows)
            fewer = intervals.Rows(
                new.actual[:-1],
                new.predicted[:-1],
                new.classes,
                None if new.probabilities is None else new.probabilities[:-1],
            )
            paired = seconds(lambda b=base, n=new, m=names: intervals.bootstrap(b, n, m, seed=42))
            unpaired = seconds(
                lambda b=base, n=fewer, m=names: intervals.bootstrap(b, n, m, seed=42)
            )
            os.environ["OMP_NUM_THREADS"] = str(cores)
            shared = seconds(lambda b=base, n=new, m=names: intervals.bootstrap(b, n, m, seed=42))
            os.environ["OMP_NUM_THREADS"] = "1"
            print(f"| {task} | {rows:,} | {paired:.2f} s | {unpaired:.2f} s | {shared:.2f} s |")


if __name__ == "__main__":
    main()
