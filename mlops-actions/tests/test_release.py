"""Release rules that need no pipeline run: which tags release, the promotion rule, and what the
model card says of the version."""

import json

import pytest

from mlops_actions.errors import PipelineError
from mlops_actions.metrics import METRICS
from mlops_actions.params import load_params
from mlops_actions.project import load_project
from mlops_actions.release import (
    commit_version,
    headline_scores,
    model_card,
    promote,
    version_of,
)


@pytest.mark.parametrize(
    ("tag", "version"),
    [
        ("v1.2.0", "1.2.0"),
        ("v0.0.1", "0.0.1"),
        ("v2.0.0-rc.1", "2.0.0-rc.1"),
        ("v1.0.0-alpha", "1.0.0-alpha"),
    ],
)
def test_release_tags_name_their_version(tag, version):
    assert version_of(tag) == version


@pytest.mark.parametrize(
    "tag", ["1.2.0", "v1.2", "v01.2.0", "v1.2.0+build.5", "v1.2.0-", "release"]
)
def test_other_tags_are_refused_with_the_rule(tag):
    with pytest.raises(PipelineError, match=r"use vMAJOR\.MINOR\.PATCH"):
        version_of(tag)


def metrics(tmp_path, name: str, version: str, value: float):
    gate = load_params()["report"]["gate"]
    path = tmp_path / name
    path.write_text(json.dumps({"version": version, "scores": {gate["metric"]: value}}))
    return path, gate


def worse_by(gate: dict, value: float, drop: float) -> float:
    """`value` made worse by `drop`, in the direction of the gate's metric."""
    return value - drop if METRICS[gate["metric"]].higher_is_better else value + drop


def test_promotion_refuses_a_worse_model_unless_allowed(tmp_path, in_project):
    latest, gate = metrics(tmp_path, "latest.json", "1.1.0", 0.90)
    worse = worse_by(gate, 0.90, 2 * gate["max_drop"])
    candidate, _ = metrics(tmp_path, "candidate.json", "1.2.0", worse)
    with pytest.raises(PipelineError) as refused:
        promote(candidate, latest, allow_worse=False)
    message = str(refused.value)
    assert message.startswith(
        "v1.2.0 against the champion v1.1.0 on their own metrics.json (not paired: no model "
        "file of the champion was given): "
    )
    assert "run release.yml by hand on tag v1.2.0 with allow-worse" in message
    assert "released anyway" in promote(candidate, latest, allow_worse=True)


def test_promotion_accepts_a_model_within_the_allowed_drop(tmp_path, in_project):
    latest, gate = metrics(tmp_path, "latest.json", "1.1.0", 0.90)
    close = worse_by(gate, 0.90, gate["max_drop"] / 2)
    candidate, _ = metrics(tmp_path, "candidate.json", "1.2.0", close)
    assert promote(candidate, latest, allow_worse=False).startswith("release: promotion: v1.2.0")


def test_a_build_before_any_tag_is_versioned_by_its_commit():
    assert commit_version("3f9a2c1d0e4b" + "7" * 28) == "3f9a2c1d0e4b"
    for not_a_commit in ("unknown", "3f9a2c1d0e4b", "G" * 40):
        with pytest.raises(PipelineError, match="no commit to version the build by"):
            commit_version(not_a_commit)


def test_promotion_names_the_tags_when_the_files_name_commits(tmp_path, in_project):
    """A staged build's metrics.json carries the commit's version; the rule speaks of tags."""
    latest, _ = metrics(tmp_path, "latest.json", "8f8f4fa3fb8d", 0.90)
    candidate, _ = metrics(tmp_path, "candidate.json", "3f9a2c1d0e4b", 0.90)
    said = promote(candidate, latest, False, release="v1.3.0", latest_release="v1.2.0")
    assert said.startswith("release: promotion: v1.3.0 against the champion v1.2.0 on their own")


def test_the_model_card_says_how_a_build_before_the_tag_is_served(schema, params, project):
    """A staged build's card (the release notes of the tag that promotes it) names the commit's
    version as the build and says the tag's version is the one served; a tag's build is that
    version."""
    sha = "3f9a2c1d0e4b" + "7" * 28
    facts = {
        "git_sha": sha, "data_version": "0a1b2c3d", "scores": {"accuracy": 0.9},
        "data": {"train": 80, "test": 20}, "onnx": {"max_abs_diff": 1e-7, "rows": 20},
        "params": params,
    }  # fmt: skip
    named = load_project(project / "pyproject.toml")
    staged = model_card({**facts, "version": "3f9a2c1d0e4b"}, schema, named)
    assert staged.splitlines()[0] == f"# Model card: {named.title} build 3f9a2c1d0e4b"
    assert named.title.startswith("Package ") and named.name == project.name
    assert f"ghcr.io/your-github-user/{project.name}:3f9a2c1d0e4b" in staged
    assert "| version | build `3f9a2c1d0e4b` (the commit's); a release tag of it serves" in staged
    assert "-e MODEL_VERSION=<version> " in staged and staged.count("MODEL_VERSION") == 2
    tagged = model_card({**facts, "version": "1.3.0"}, schema, named)
    assert tagged.splitlines()[0].endswith(" 1.3.0")
    assert "| version | `1.3.0` (commit `3f9a2c1d0e4b`) |" in tagged
    assert "MODEL_VERSION" not in tagged


def test_a_project_without_its_settings_is_one_line_naming_the_key(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "demo"\n')
    with pytest.raises(
        PipelineError, match=r"pyproject.toml: \[tool.mlops-actions\] has no 'image'"
    ):
        load_project(pyproject)
    pyproject.write_text("[tool.mlops-actions]\nimage = 'ghcr.io/a/b'\n")
    with pytest.raises(PipelineError, match=r"\[project\] has no 'name'"):
        load_project(pyproject)
    with pytest.raises(PipelineError, match="cannot read the project's settings"):
        load_project(tmp_path / "missing.toml")


def test_the_headline_numbers_are_the_holdout_s_when_there_is_one(schema, params, project):
    """metrics/holdout.json when it holds metrics (else scores.json, as before the holdout), and
    the card says which split they come from."""
    scores = {"accuracy": 0.9, "cv": {"folds": 5}}
    assert headline_scores(scores, {"accuracy": 0.8}) == ({"accuracy": 0.8}, "holdout")
    assert headline_scores(scores, {}) == ({"accuracy": 0.9}, "test")
    facts = {
        "version": "1.3.0", "git_sha": "3f9a2c1d0e4b" + "7" * 28, "data_version": "0a1b2c3d",
        "scores": {"accuracy": 0.8}, "scored_on": "holdout",
        "data": {"train": 70, "test": 20, "holdout": 10},
        "onnx": {"max_abs_diff": 1e-7, "rows": 20}, "params": params,
    }  # fmt: skip
    named = load_project(project / "pyproject.toml")
    card = model_card(facts, schema, named)
    assert "## Metrics (holdout: rows no training or tuning saw)" in card
    assert "| training / test / holdout rows | 70 / 20 / 10 |" in card
    assert "| accuracy | 0.8000 |" in card
    before = model_card({**facts, "scored_on": "test"}, schema, named)
    assert "## Metrics (test split)" in before and "| training / test rows | 70 / 20 |" in before
