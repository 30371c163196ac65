"""Reading one side of the comparison: committed result files, from git or the working tree."""

import io
import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .intervals import Rows

FILES = {
    "scores": "metrics/scores.json",
    "holdout": "metrics/holdout.json",
    "data": "metrics/data.json",
    "onnx": "metrics/onnx.json",
    "params": "params.yaml",
    "lock": "dvc.lock",
    "schema": "data/schema.yaml",
}
PLOTS = ("confusion", "roc", "predictions", "importance")
RAW_DATA = "data/raw/dataset.csv"


@dataclass
class Results:
    """One side of the comparison, read from a git revision or from the working tree."""

    name: str
    scores: dict[str, Any] = field(default_factory=dict)
    holdout: dict[str, Any] = field(default_factory=dict)  # the holdout's metrics, if it has one
    data: dict[str, Any] = field(default_factory=dict)
    onnx: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    plots: dict[str, pd.DataFrame] = field(default_factory=dict)
    data_version: str | None = None
    labels: list[str] | None = None  # this side's own target labels (data/schema.yaml)
    cv: dict[str, Any] = field(default_factory=dict)  # cross-validated metrics, when computed
    problem: str | None = None  # why this side could not be read, when it could not
    # The base's per-row outputs on this change's test rows (its model re-scored here), and what
    # its numbers are: that, or its committed metrics (the fallback, with the reason).
    rows: Rows | None = None
    source: str | None = None

    @property
    def found(self) -> bool:
        return self.problem is None


def read_results(name: str, read: Callable[[str], str | None]) -> Results:
    """Parse every committed result file that `read` returns; a missing file leaves a gap."""
    results = Results(name=name)
    for key in ("scores", "holdout", "data", "onnx"):
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
    cv = results.scores.pop("cv", None)
    results.cv = cv if isinstance(cv, dict) else {}
    results.data_version = data_version(_yaml(read(FILES["lock"])))
    labels = (_yaml(read(FILES["schema"])).get("target") or {}).get("labels")
    results.labels = [str(label) for label in labels] if isinstance(labels, list) else None
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
