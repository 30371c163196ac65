"""The template's own bump-pins.yml, run by act in host mode on a git copy of this repository whose
origin is a local bare repository. The pins' sources are local stand-ins (tests/test_bump_pins.py)
and `gh` is the recording stand-in of tests/act/bin: nothing reaches GitHub or PyPI."""

from pathlib import Path

import pytest
from conftest import git, git_copy_of_template
from test_act import act
from test_bump_pins import sources


@pytest.fixture
def template_repo(tmp_path: Path) -> Path:
    """A git copy of this checkout that has pushed main to a bare origin."""
    repo = git_copy_of_template(tmp_path / "cookiecutter-mlops-actions")
    git(tmp_path, "init", "--quiet", "--bare", "origin.git")
    git(repo, "remote", "add", "origin", str(tmp_path / "origin.git"))
    git(repo, "push", "--quiet", "origin", "main")
    return repo


@pytest.mark.xdist_group("act-setup")
def test_bump_pins_workflow_pushes_a_branch_opens_the_pr_and_starts_ci(template_repo, tmp_path):
    # Every action at its pinned tag on a stand-in commit (so each reads as a moved tag and stays);
    # every package current but ruff, which has a newer release.
    env = sources(tmp_path, template_repo, newer_releases={"ruff": {"0.18.0": False}}, repin=False)
    event = {"inputs": {}, "ref": "refs/heads/main"}
    record = tmp_path / "record"
    result = act(template_repo, "workflow_dispatch", event, "bump-pins.yml", record, env=env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    origin = tmp_path / "origin.git"
    assert (
        git(origin, "log", "-1", "--format=%s", "bump-pins").strip()
        == "Bump pins to their newest releases"
    )
    changed = git(origin, "diff", "--name-only", "main", "bump-pins").splitlines()
    assert changed == ["pyproject.toml", "{{cookiecutter.project_slug}}/pyproject.toml"]
    assert '"ruff==0.18.0"' in git(origin, "show", "bump-pins:pyproject.toml")
    calls = (record / "gh-calls.txt").read_text().splitlines()
    assert calls[0] == "auth setup-git"
    assert calls[1].startswith("pr view bump-pins")
    assert calls[2].startswith(
        "pr create --head bump-pins --title Bump pins to their newest releases"
    )
    assert calls[3] == "workflow run ci.yml --ref bump-pins"
    body = (record / "pr-body.md").read_text()
    assert "| `ruff` | 0.17.6 | 0.18.0 |" in body
    assert "now names" in body  # the stand-in tags do not name the pinned commits

    # A week later the PR is still open: the branch is pushed again and the PR edited, not doubled.
    again = tmp_path / "record-again"
    env = {**env, "STUB_GH_PR_STATE": "OPEN"}
    result = act(template_repo, "workflow_dispatch", event, "bump-pins.yml", again, env=env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    calls = (again / "gh-calls.txt").read_text().splitlines()
    assert [call.split(" --")[0] for call in calls] == [
        "auth setup-git", "pr view bump-pins", "pr edit bump-pins", "workflow run ci.yml",
    ]  # fmt: skip
