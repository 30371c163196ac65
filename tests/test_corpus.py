"""Real public tables (tests/corpus.py) through a baked project's own code: every estimator family
trains, exports to ONNX and matches scikit-learn on every row of both splits, scores clearly
better than a trivial model, and docs/corpus.md shows these very results.

One bake and one process for all of it (importing scikit-learn alone costs seconds): the tests
share an xdist group, so one worker runs them, in collection order.
"""

import functools
import re
from collections.abc import Callable
from pathlib import Path

import corpus
import pytest
from conftest import load

ROOT = Path(__file__).resolve().parents[1]
# Rows whose target is empty, which the runner drops before validation.
EMPTY_TARGETS = {"penguins_body_mass": 2, "hitters_salary": 59}

pytestmark = [
    pytest.mark.xdist_group("corpus"),
    # As the generated project's pytest config: skl2onnx 1.20 hands protobuf booleans for ints.
    pytest.mark.filterwarnings("ignore:Field onnx.AttributeProto.ints:DeprecationWarning"),
]


@pytest.fixture(scope="session")
def corpus_project(tmp_path_factory) -> corpus.Project:
    return corpus.bake_project(tmp_path_factory.mktemp("corpus-bake"))


@pytest.fixture(scope="session")
def corpus_result(corpus_project, tmp_path_factory) -> Callable[[str], corpus.DatasetResult]:
    """Each dataset's results, computed once per session and shared by its test and the page's."""
    workdir = tmp_path_factory.mktemp("corpus-data")

    @functools.cache
    def result(name: str) -> corpus.DatasetResult:
        return corpus.run(corpus.DATASETS[name], corpus_project, workdir)

    return result


def test_corpus_scores_the_report_gates_metric(corpus_project):
    """The bake's own task (its starter schema) and its report gate agree with the corpus."""
    task = corpus_project.schema.load_schema(corpus_project.root / "data/schema.yaml").task
    gate = corpus_project.params["report"]["gate"]["metric"]
    assert corpus.primary_metric(task) == gate


@pytest.mark.parametrize("name", corpus.DATASETS)
def test_every_family_exports_with_parity_on_every_row(name, corpus_result):
    result = corpus_result(name)
    dataset = result.dataset
    schema = result.schema
    assert schema.task == dataset.task, "the draft schema reads another task from the data"
    assert corpus.measured_traits(result.raw, schema) == dataset.traits
    assert result.dropped == EMPTY_TARGETS.get(name, 0)
    assert (
        result.train_rows + result.test_rows + result.holdout_rows + result.dropped == result.rows
    )
    assert list(schema.features) == [
        column for column in result.raw.columns if column != schema.target
    ], "the draft left a column out"
    split_rows = {"train": result.train_rows, "test": result.test_rows}
    failures = []
    for family in result.families:
        for split, parity in family.parity.items():
            assert parity["rows"] == split_rows[split]
            if not parity["passed"]:
                failures.append(
                    f"{family.family}: ONNX differs from scikit-learn on the {split} split by up "
                    f"to {parity['max_abs_diff']:.3g}, beyond atol {result.tolerance['atol']} + "
                    f"rtol {result.tolerance['rtol']} x |sklearn| on some row"
                )
            if schema.is_classification and parity["label_agreement"] != 1.0:
                failures.append(
                    f"{family.family}: labels agree on {parity['label_agreement']:.4f} of the "
                    f"{split} split"
                )
        if not family.metric > dataset.floor:
            failures.append(
                f"{family.family}: {result.metric} {family.metric:.3f} is not above the floor "
                f"{dataset.floor}"
            )
    assert not failures, f"{name}:\n" + "\n".join(failures)


# A results row's two max |diff| cells. Their last digits follow onnxruntime's float32 kernels,
# which differ between processors (AVX2, AVX-512), so the staleness check leaves them out; the
# parity verdict next to them is compared.
MAX_DIFF_CELLS = re.compile(r"^(\| `[^|]+` \| `[^|]+` \|[^|]+\|)[^|]+\|[^|]+\|", re.MULTILINE)


def test_corpus_page_shows_these_results(corpus_result):
    page = load(ROOT / "docs/corpus.py")
    results = [corpus_result(name) for name in corpus.DATASETS]
    written, rendered = (ROOT / "docs/corpus.md").read_text(), page.render(results)
    assert len(MAX_DIFF_CELLS.findall(rendered)) == 3 * len(results)
    assert MAX_DIFF_CELLS.sub(r"\1", written) == MAX_DIFF_CELLS.sub(r"\1", rendered), (
        "docs/corpus.md is stale: run .venv/bin/python docs/corpus.py"
    )
