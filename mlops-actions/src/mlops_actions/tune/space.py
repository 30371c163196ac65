"""The search space of `make tune` (params.yaml `tune.space`), checked and drawn from.

Each family names its hyperparameters, each either a list of values to choose from or a range
`{low: , high: }` (`log: true` draws evenly on a log scale, `integer: true` draws whole numbers).
Candidates are drawn by scikit-learn's ParameterSampler with `tune.seed`: from a space of lists
alone without repeats (all of them when the grid is smaller than `trials`), otherwise with
scipy's distributions for the ranges.

A space is refused in one line before any trial runs: a family it does not name, a list without
values, a range whose low is not below its high, a log range that is not positive, a name the
estimator does not know, or a value scikit-learn's own parameter checks refuse (each list value
and each end of a range is set on the estimator and checked, as `fit` would).
"""

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scipy import stats
from sklearn.base import BaseEstimator
from sklearn.model_selection import ParameterSampler
from sklearn.utils._param_validation import InvalidParameterError

from ..errors import PipelineError

RANGE_KEYS = {"low", "high", "log", "integer"}
# Drawn floats keep this many significant digits: a readable `-S` value and experiment table.
DIGITS = 4


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    log: bool = False
    integer: bool = False

    def distribution(self) -> Any:
        if self.integer and self.log:
            return _LogInt(int(self.low), int(self.high))
        if self.integer:
            return stats.randint(int(self.low), int(self.high) + 1)
        if self.log:
            return stats.loguniform(self.low, self.high)
        return stats.uniform(self.low, self.high - self.low)

    @property
    def ends(self) -> list[Any]:
        if self.integer:
            return [int(self.low), int(self.high)]
        return [self.low, self.high]


@dataclass(frozen=True)
class _LogInt:
    """Whole numbers drawn evenly on a log scale (tree counts, leaf counts)."""

    low: int
    high: int

    def rvs(self, random_state: Any = None) -> int:
        value = stats.loguniform(self.low, self.high + 1).rvs(random_state=random_state)
        return min(int(value), self.high)


Space = dict[str, list[Any] | Range]


def parse(raw: dict[str, Any], family: str) -> Space:
    """`tune.space` of `family` (params.yaml's train.model), typed; PipelineError names what is
    wrong."""
    where = f"tune.space.{family}"
    if family not in raw or not raw[family]:
        named = ", ".join(sorted(raw)) or "none"
        raise PipelineError(f"{where}: no search space for {family!r} (families with one: {named})")
    space: Space = {}
    for name, spec in raw[family].items():
        if isinstance(spec, list):
            if not spec:
                raise PipelineError(f"{where}.{name}: an empty list: give at least one value")
            space[name] = spec
        elif isinstance(spec, dict):
            space[name] = _range(spec, f"{where}.{name}")
        else:
            raise PipelineError(
                f"{where}.{name}: {spec!r} is neither a list of values nor a range "
                "{low: , high: } (one fixed value belongs in train.hyperparameters)"
            )
    return space


def _range(spec: dict[str, Any], where: str) -> Range:
    unknown = sorted(set(spec) - RANGE_KEYS)
    if unknown or not {"low", "high"} <= set(spec):
        problem = f"unknown keys {', '.join(unknown)}" if unknown else "needs low and high"
        raise PipelineError(f"{where}: a range {problem} (keys: low, high, log, integer)")
    low, high = spec["low"], spec["high"]
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high))
    if not numbers or not all(math.isfinite(v) for v in (low, high)):
        raise PipelineError(f"{where}: low {low!r} and high {high!r} must be numbers")
    if not low < high:
        raise PipelineError(f"{where}: an empty range: low {low} is not below high {high}")
    if spec.get("log") and low <= 0:
        raise PipelineError(f"{where}: a log range needs low above 0, not {low}")
    integer = bool(spec.get("integer", isinstance(low, int) and isinstance(high, int)))
    if integer and (int(low) != low or int(high) != high):
        raise PipelineError(f"{where}: an integer range needs whole low and high ({low}, {high})")
    return Range(low, high, bool(spec.get("log")), integer)


def check(space: Space, family: str, build: Callable[[dict[str, Any]], BaseEstimator]) -> None:
    """Every value of `space` (each list value, each end of a range) set alone on the estimator
    `build` makes from hyperparameters, and checked by scikit-learn as `fit` would check it."""
    for name, spec in space.items():
        for value in spec.ends if isinstance(spec, Range) else spec:
            where = f"tune.space.{family}.{name}"
            try:
                estimator = build({name: value})
            except PipelineError as err:  # a name the estimator does not know
                raise PipelineError(f"{where}: {err}") from None
            try:
                estimator._validate_params()  # scikit-learn's own checks (its fit runs them)
            except InvalidParameterError as err:
                raise PipelineError(f"{where}: {value!r} refused: {err}") from None


def draw(space: Space, trials: int, seed: int) -> list[dict[str, Any]]:
    """`trials` candidates, the same for the same space and seed; fewer when the space's lists
    hold fewer combinations (each once)."""
    distributions = {
        name: spec.distribution() if isinstance(spec, Range) else spec
        for name, spec in space.items()
    }
    grid = math.prod(len(spec) for spec in space.values() if isinstance(spec, list))
    if all(isinstance(spec, list) for spec in space.values()):
        trials = min(trials, grid)
    drawn = ParameterSampler(distributions, n_iter=trials, random_state=seed)
    candidates: list[dict[str, Any]] = []
    for candidate in drawn:
        plain = {name: _plain(value) for name, value in sorted(candidate.items())}
        if plain not in candidates:
            candidates.append(plain)
    return candidates


def _plain(value: Any) -> Any:
    """numpy scalars as Python's, floats to DIGITS significant digits."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float):
        return float(f"{value:.{DIGITS}g}")
    return value


def name_of(family: str, hyperparameters: dict[str, Any]) -> str:
    """An experiment's name from its family and hyperparameters: the same settings, the same
    name."""
    settings = {"model": family, "hyperparameters": hyperparameters}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
    return f"tune-{digest[:8]}"
