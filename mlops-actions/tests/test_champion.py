"""Two models on the same rows (champion.py): a model file scored with onnxruntime gives the
evaluate stage's numbers; a base model re-scored on a change's new test rows gives paired deltas
where the committed metrics could not; a model that cannot read the rows is refused in one line."""

import dataclasses
import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from mlops_actions import champion
from mlops_actions.errors import PipelineError
from mlops_actions.evaluate import score
from mlops_actions.export import convert
from mlops_actions.release import promote
from mlops_actions.report.intervals import bootstrap, rows_of

from .conftest import split_as_prepare


@pytest.fixture(scope="session")
def grown(starter, params, schema):
    """The starter data before and after 15% more rows are appended, each split as prepare does."""
    before = starter.iloc[: int(len(starter) * 0.85)]
    return split_as_prepare(before, schema, params), split_as_prepare(starter, schema, params)


def exported(train, frame, schema, params) -> tuple[object, bytes]:
    model = train(frame, schema, params["train"], params["base"]["seed"])
    return model, convert(model, schema, model_version="test", git_sha="0" * 40)


def test_a_model_file_scores_as_the_evaluate_stage(train, train_test, schema, params):
    fitted_rows, test = train_test
    model, onnx_model = exported(train, fitted_rows, schema, params)
    by_onnx = champion.scores(champion.onnx_predictions(onnx_model, test, schema), schema)
    by_sklearn = score(model, test, schema)
    assert by_onnx.keys() == by_sklearn.keys()
    for name, value in by_sklearn.items():
        assert by_onnx[name] == pytest.approx(value, abs=1e-4), name


def test_the_base_model_re_scored_on_new_rows_gives_a_paired_delta(train, grown, schema, params):
    before, after = grown
    # Appended rows move no row: the old test rows are all still test rows.
    assert set(before.test.index) <= set(after.test.index) and len(after.test) > len(before.test)
    _, base_model = exported(train, before.train, schema, params)
    _, new_model = exported(train, after.train, schema, params)
    names = list(champion.scores(champion.onnx_predictions(new_model, after.test, schema), schema))
    new_rows = rows_of(champion.onnx_predictions(new_model, after.test, schema))

    # The committed-metrics comparison: each model on its own test rows, so unpaired.
    own_rows = rows_of(champion.onnx_predictions(base_model, before.test, schema))
    unpaired = bootstrap(own_rows, new_rows, names, seed=1, resamples=300)
    # The base model re-scored on the change's rows: paired, and at least as sharp.
    rescored = rows_of(champion.onnx_predictions(base_model, after.test, schema, "the base model"))
    paired = bootstrap(rescored, new_rows, names, seed=1, resamples=300)
    assert unpaired.paired is False and paired.paired is True
    assert paired.rows == (len(after.test), len(after.test))
    for name in names:
        width = paired.delta[name].high - paired.delta[name].low
        assert width <= unpaired.delta[name].high - unpaired.delta[name].low + 1e-9, name


def test_a_model_that_cannot_read_the_rows_is_refused_in_one_line(
    train, train_test, schema, params
):
    fitted_rows, test = train_test
    _, onnx_model = exported(train, fitted_rows, schema, params)
    first = next(iter(schema.features))
    with pytest.raises(PipelineError) as lacking:
        champion.onnx_predictions(onnx_model, test.drop(columns=[first]), schema, "the base model")
    assert str(lacking.value) == f"the base model reads `{first}`, which these rows lack"

    other = (
        dataclasses.replace(schema, labels=None)
        if schema.is_classification
        else dataclasses.replace(schema, labels=("a", "b"))
    )
    with pytest.raises(PipelineError, match=r"^the champion is a .* model, the rows' task is "):
        champion.onnx_predictions(onnx_model, test, other, "the champion")
    if schema.labels:
        relabelled = dataclasses.replace(schema, labels=(*schema.labels[:-1], "zzz"))
        with pytest.raises(PipelineError, match=r"^the model knows the labels .*; these rows have"):
            champion.onnx_predictions(onnx_model, test, relabelled)
    with pytest.raises(PipelineError, match=r"^the model cannot be loaded: "):
        champion.onnx_predictions(b"not a model", test, schema)


@pytest.fixture(scope="session")
def good_and_bad(train, train_test, schema, params) -> tuple[bytes, bytes]:
    """A model of the project's settings, and one trained on shuffled targets (no better than
    chance), both exported."""
    fitted_rows, _ = train_test
    _, good = exported(train, fitted_rows, schema, params)
    shuffled = fitted_rows[schema.target].sample(frac=1.0, random_state=0).to_numpy()
    _, bad = exported(train, fitted_rows.assign(**{schema.target: shuffled}), schema, params)
    return good, bad


def release_folder(
    root: Path, project: Path, holdout, schema, champion_model, challenger_model
) -> Path:
    """A project folder as release.yml's promotion step sees it: params, schema, this commit's
    holdout, dist/ (the challenger's files) and latest-release/ (the champion's)."""
    (root / "data/prepared").mkdir(parents=True)
    shutil.copy(project / "params.yaml", root / "params.yaml")
    shutil.copy(project / "data/schema.yaml", root / "data/schema.yaml")
    holdout.to_csv(root / "data/prepared/holdout.csv", index=False)
    for folder, version, model in [
        ("latest-release", "1.1.0", champion_model),
        ("dist", "1.2.0", challenger_model),
    ]:
        (root / folder).mkdir()
        (root / folder / "model.onnx").write_bytes(model)
        # Headline numbers, for the fallback (the same for both: within any allowed drop).
        scores = dict.fromkeys(
            champion.scores(champion.onnx_predictions(model, holdout, schema), schema), 0.5
        )
        facts = {"version": version, "scores": scores}
        (root / folder / "metrics.json").write_text(json.dumps(facts))
    (root / "dist/model-card.md").write_text("# Model card: 1.2.0\n")
    return root


def promote_in(root: Path, monkeypatch, champion_model: str | None = "latest-release/model.onnx"):
    monkeypatch.chdir(root)
    return promote(
        Path("dist/metrics.json"),
        Path("latest-release/metrics.json"),
        allow_worse=False,
        champion_model=Path(champion_model) if champion_model else None,
    )


def test_a_release_worse_than_the_champion_on_the_holdout_is_refused(
    tmp_path, monkeypatch, project, starter, schema, params, good_and_bad
):
    good, bad = good_and_bad
    holdout = split_as_prepare(starter, schema, params).holdout
    root = release_folder(
        tmp_path, project, holdout, schema, champion_model=good, challenger_model=bad
    )
    with pytest.raises(PipelineError) as refused:
        promote_in(root, monkeypatch)
    gate = params["report"]["gate"]
    said = str(refused.value)
    assert said.startswith(
        f"v1.2.0 against the champion v1.1.0 on the same {len(holdout)} holdout rows: "
        f"`{gate['metric']}` "
    ), said
    # Both numbers, the paired delta's interval, the rule, and the way out.
    both = r"`\w+` -?\d\.\d{4} → -?\d\.\d{4} \([-+]\d\.\d{4}, 95% interval \["
    assert re.search(both, said), said
    assert "worse than the allowed drop" in said and "with allow-worse" in said
    recorded = json.loads((root / "dist/champion.json").read_text())
    assert recorded["paired"] is True and recorded["passed"] is False
    assert recorded["rows"] == {"split": "holdout", "count": len(holdout)}
    assert recorded["champion"]["sha256"] == hashlib.sha256(good).hexdigest()
    low, high = recorded["delta"][gate["metric"]]["interval_95"]
    assert low <= recorded["delta"][gate["metric"]]["value"] <= high
    card = (root / "dist/model-card.md").read_text()
    assert "## Champion and challenger" in card and "| metric | champion v1.1.0 |" in card
    sums = dict(
        line.split("  ")[::-1]
        for line in (root / "dist/SHA256SUMS").read_text().split("\n")
        if line
    )
    assert sums["model-card.md"] == hashlib.sha256(card.encode()).hexdigest()


def test_a_release_better_than_the_champion_is_promoted(
    tmp_path, monkeypatch, project, starter, schema, params, good_and_bad
):
    good, bad = good_and_bad
    holdout = split_as_prepare(starter, schema, params).holdout
    root = release_folder(
        tmp_path, project, holdout, schema, champion_model=bad, challenger_model=good
    )
    said = promote_in(root, monkeypatch)
    assert said.startswith(
        f"release: promotion: v1.2.0 against the champion v1.1.0 on the same {len(holdout)} "
        "holdout rows: "
    ), said
    recorded = json.loads((root / "dist/champion.json").read_text())
    assert recorded["passed"] is True and recorded["paired"] is True


def test_a_champion_that_cannot_read_this_data_falls_back_to_its_own_metrics(
    tmp_path, monkeypatch, project, starter, schema, params, good_and_bad
):
    good, _ = good_and_bad
    first = next(iter(schema.features))
    holdout = split_as_prepare(starter, schema, params).holdout
    root = release_folder(
        tmp_path, project, holdout, schema, champion_model=good, challenger_model=good
    )
    # This commit's data dropped a feature the champion reads (and the challenger too: it is
    # the fallback's reason that matters here, the first model to fail names it).
    holdout.drop(columns=[first]).to_csv(root / "data/prepared/holdout.csv", index=False)
    schema_file = root / "data/schema.yaml"
    text = yaml.safe_load(schema_file.read_text())
    del text["features"][first]
    schema_file.write_text(yaml.safe_dump(text))
    said = promote_in(root, monkeypatch)
    assert (
        f"on their own metrics.json (not paired: the champion v1.1.0 reads `{first}`, which "
        "these rows lack)"
    ) in said
    assert json.loads((root / "dist/champion.json").read_text())["paired"] is False
