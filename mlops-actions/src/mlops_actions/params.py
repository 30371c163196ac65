"""Read params.yaml, the one file of settings that DVC tracks for every stage, and validate it once.

Each section the template writes is a msgspec Struct: an unknown key (a typo), a wrong type
(`enabled: "false"`), a value out of range or a missing key stops the command in one line naming
the file and the key (`params.yaml: Object contains unknown field `hyperparameter` - at `$.train``).
Top-level sections it does not know pass through unchecked, as do `train.hyperparameters` (the
estimator checks those).
"""

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import yaml
from msgspec import UNSET, Meta, Struct, UnsetType

from .errors import PipelineError

PARAMS_FILE = Path("params.yaml")

NonNegative = Annotated[float, Meta(ge=0)]
Share = Annotated[float, Meta(ge=0, le=1)]


class Section(Struct, forbid_unknown_fields=True):
    """A section the template writes: a key it does not define is refused, not ignored."""


class Base(Section):
    seed: Annotated[int, Meta(ge=0, lt=2**32)]  # scikit-learn's random_state range


class Data(Section):
    """Optional: a project that brings its own CSV deletes it with the data stage."""

    dataset: str
    rows: Annotated[int, Meta(ge=0)] = 0  # synthetic data only


class Prepare(Section):
    # Shares of all rows (split.py); the rest trains. holdout_size 0: no holdout. Projects made
    # before the holdout have no holdout_size: they get 0.1.
    test_size: Annotated[float, Meta(gt=0, lt=1)]
    holdout_size: Annotated[float, Meta(ge=0, lt=1)] = 0.1
    drop_empty_target: bool = False

    def __post_init__(self) -> None:
        if self.test_size + self.holdout_size >= 1:
            raise ValueError(
                f"test_size {self.test_size} + holdout_size {self.holdout_size} leave no rows "
                "to train on: their sum must be below 1"
            )


class Train(Section):
    model: str
    # Free: scikit-learn validates them. An empty `hyperparameters:` (YAML null) means none.
    hyperparameters: dict[str, Any] | None = {}

    def __post_init__(self) -> None:
        if self.hyperparameters is None:
            self.hyperparameters = {}


class Evaluate(Section):
    cv_folds: Annotated[int, Meta(ge=0)] = 0

    def __post_init__(self) -> None:
        if self.cv_folds == 1:
            raise ValueError("cv_folds is 1: use 0 (off) or 2 or more folds")


# The largest model.onnx export converts, in MB (10^6 bytes), estimated from the trees before
# converting (export.py, `check_size`). Converting takes about 25 times the file's size in memory:
# about 3 GB at this limit. The template's default forest stays below 45 MB at any row count, a
# forest grown without max_leaf_nodes does not (issue 28: 791 MB from 200,000 rows).
MAX_MODEL_MB = 100.0


class Export(Section):
    atol: NonNegative
    rtol: NonNegative
    # Projects made before the check have no max_model_mb: they get the default.
    max_model_mb: Annotated[float, Meta(gt=0)] = MAX_MODEL_MB


class Gate(Section):
    metric: str
    mode: Literal["threshold", "significant"] = "threshold"
    # Old params.yaml files: the direction is the metric's (metrics.py); a contradiction is refused.
    higher_is_better: bool | UnsetType = UNSET
    max_drop: float = 0.0
    enabled: bool = True


class Report(Section):
    gate: Gate | UnsetType = UNSET


class Drift(Section):
    psi: Annotated[float, Meta(gt=0)]
    p_value: Annotated[float, Meta(gt=0, lt=1)]
    missing_increase: Share
    new_category_share: Share
    min_rows: Annotated[int, Meta(ge=1)]


class Tune(Section):
    """`make tune` (tune/): how many candidates, the folds that score them, and each family's
    search space; the space itself is checked against the estimator (tune/space.py)."""

    trials: Annotated[int, Meta(ge=1, le=64)] = 8
    folds: Annotated[int, Meta(ge=2, le=20)] = 5
    seed: Annotated[int, Meta(ge=0, lt=2**32)] = 42
    space: dict[str, dict[str, Any] | None] = {}


class Params(Struct):
    """The whole file. Unknown top-level sections are allowed (and kept by `validate`)."""

    base: Base
    prepare: Prepare
    train: Train
    export: Export
    data: Data | UnsetType = UNSET
    evaluate: Evaluate = msgspec.field(default_factory=Evaluate)
    report: Report | UnsetType = UNSET
    drift: Drift | UnsetType = UNSET
    tune: Tune | UnsetType = UNSET


def validate(raw: dict[str, Any], source: str = str(PARAMS_FILE)) -> dict[str, Any]:
    """`raw` (params.yaml as YAML reads it) typed and checked: a plain dict with the defaults
    filled in and unknown top-level sections kept as they are; PipelineError names a problem."""
    try:
        params = msgspec.convert(raw, Params)
    except msgspec.ValidationError as err:
        raise PipelineError(f"{source}: {err}{_yaml_number_hint(raw, str(err))}") from None
    return {**raw, **msgspec.to_builtins(params)}


def load_params(path: Path = PARAMS_FILE) -> dict[str, Any]:
    """params.yaml, validated (see `validate`)."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise PipelineError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise PipelineError(f"{path}: cannot read it ({err})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise PipelineError(f"{path}: not valid YAML ({_one_line(err)})") from None
    if raw is None:
        raise PipelineError(f"{path}: file is empty")
    return validate(raw, str(path))


def _yaml_number_hint(raw: dict[str, Any], message: str) -> str:
    """YAML 1.1 (PyYAML) reads `1e-4`, without a dot, as text: say so when that is the problem."""
    path = re.search(r"got `str` - at `\$((?:\.\w+)+)`$", message)
    if path is None:
        return ""
    value: Any = raw
    for key in path[1].split(".")[1:]:
        value = value.get(key) if isinstance(value, dict) else None
    if not (isinstance(value, str) and re.fullmatch(r"[-+]?\d+[eE][-+]?\d+", value)):
        return ""
    return f" (YAML reads {value!r} as text: write a number with a dot, e.g. 1.0e-4)"


def _one_line(err: yaml.YAMLError) -> str:
    """PyYAML's error with its position, in one line."""
    if isinstance(err, yaml.MarkedYAMLError) and err.problem_mark is not None:
        mark = err.problem_mark
        return f"{err.problem or err.context} at line {mark.line + 1}, column {mark.column + 1}"
    return " ".join(str(err).split())
