"""Mermaid charts and markdown tables that GitHub renders in a PR comment, with no image upload.

GitHub rejects a whole chart for one bad token, so every number is written in fixed-point notation
(mermaid's parser refuses `1e-05` and `NaN`) and every label is quoted and stripped of quotes.
The template's tests run each chart the report emits through mermaid's own parser.
"""

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

MISSING = "—"


def number(value: float, digits: int = 4) -> str:
    """Fixed-point text for a chart value; non-finite values become 0 (charts have no gaps)."""
    if value is None or not math.isfinite(value):
        return "0"
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _label(text: object) -> str:
    return '"' + str(text).replace('"', "'") + '"'


def xychart(
    title: str,
    x_labels: Sequence[object] | None = None,
    x_range: tuple[float, float] | None = None,
    bars: Sequence[Sequence[float]] = (),
    lines: Sequence[Sequence[float]] = (),
    y_title: str = "",
) -> str:
    """A mermaid `xychart-beta` block: categorical x (labels) or a numeric x range."""
    rows = ["```mermaid", "xychart-beta", f"  title {_label(title)}"]
    if x_labels is not None:
        rows.append("  x-axis [" + ", ".join(_label(label) for label in x_labels) + "]")
    elif x_range is not None:
        rows.append(f"  x-axis {number(x_range[0])} --> {number(x_range[1])}")
    values = [value for series in [*bars, *lines] for value in series]
    finite = [value for value in values if value is not None and math.isfinite(value)]
    if finite:
        low, high = min(0.0, *finite), max(finite)
        high = high if high > low else low + 1
        rows.append(f"  y-axis {_label(y_title or ' ')} {number(low)} --> {number(high)}")
    for kind, series_list in (("bar", bars), ("line", lines)):
        for series in series_list:
            rows.append(f"  {kind} [" + ", ".join(number(value) for value in series) + "]")
    rows.append("```")
    return "\n".join(rows)


def escape(text: object) -> str:
    """A table cell: pipes escaped, newlines flattened."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(header: Sequence[str], rows: Sequence[Sequence[object]], align: str = "") -> str:
    """A markdown table; `align` has one of l, r per column (default: first left, rest right)."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---:" if side == "r" else "---" for side in align]
    lines = [
        "| " + " | ".join(escape(cell) for cell in header) + " |",
        "| " + " | ".join(rule) + " |",
    ]
    lines += ["| " + " | ".join(escape(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def confusion_table(pairs: pd.DataFrame, labels: Sequence[str]) -> str:
    """Rows: actual label; columns: predicted label; counts."""
    counts = pd.crosstab(pairs["actual"].astype(str), pairs["predicted"].astype(str))
    counts = counts.reindex(index=labels, columns=labels, fill_value=0)
    header = ["actual \\ predicted", *labels]
    rows = [[f"**{label}**", *(int(v) for v in counts.loc[label])] for label in labels]
    return table(header, rows)


def roc_points(roc: pd.DataFrame, grid: np.ndarray) -> list[float]:
    """True positive rate at evenly spaced false positive rates: xychart spaces points evenly."""
    ordered = roc.sort_values(["fpr", "tpr"], kind="stable")
    return list(np.interp(grid, ordered["fpr"], ordered["tpr"]))


def histogram(values: Sequence[np.ndarray], bins: int = 10) -> tuple[list[str], list[list[int]]]:
    """Counts of each series over shared bins, with their range labels."""
    joined = np.concatenate([np.asarray(v, dtype=float) for v in values])
    joined = joined[np.isfinite(joined)]
    low, high = (joined.min(), joined.max()) if len(joined) else (0.0, 1.0)
    edges = np.linspace(low, high if high > low else low + 1, bins + 1)
    labels = [f"{number(edges[i], 1)}..{number(edges[i + 1], 1)}" for i in range(bins)]
    counts = [np.histogram(np.asarray(v, dtype=float), bins=edges)[0].tolist() for v in values]
    return labels, counts
