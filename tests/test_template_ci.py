"""The template's own bump-pins.yml, run by act in host mode on a git copy of this repository whose
origin is a local bare repository. The pins' sources are local stand-ins (tests/test_bump_pins.py)
and `gh` is the recording stand-in of tests/act/bin: nothing reaches GitHub or PyPI."""

import subprocess
from pathlib import Path

import pytest
from conftest import TEMPLATE
from test_act import act
from test_bump_pins import bump_pins, fake_action, fake_pypi, git


@pytest.fixture
def template_repo(tmp_path: Path) -> Path:
    """This checkout's files (committed or not, minus ignored ones) as a fresh repository that
    has pushed main to a bare origin."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=TEMPLATE, capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    repo = tmp_path / "cookiecutter-mlops-actions"
    for name in files:
        source = TEMPLATE / name
        if source.is_file():
            target = repo / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
            target.chmod(source.stat().st_mode)
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--message", "template")
    git(tmp_path, "init", "--quiet", "--bare", "origin.git")
    git(repo, "remote", "add", "origin", str(tmp_path / "origin.git"))
    git(repo, "push", "--quiet", "origin", "main")
    return repo


def stand_in_sources(tmp_path: Path, repo: Path) -> dict[str, str]:
    """Every action at its pinned tag (a stand-in commit, so each is reported as a moved tag and
    left alone) and every package current, except ruff, which has a newer release."""
    git_dir, pypi_dir = tmp_path / "github", tmp_path / "pypi"
    files = bump_pins.Files()
    for path in bump_pins.action_files(repo):
        for match in bump_pins.ACTION.finditer(files[path]):
            if not (git_dir / match["repo"]).exists():
                fake_action(git_dir / match["repo"], [(match["tag"], False)])
    for path in bump_pins.package_files(repo):
        for match in bump_pins.PACKAGE.finditer(files[path]):
            fake_pypi(pypi_dir, match["name"], {match["version"]: False})
    makefile = (repo / "{{cookiecutter.project_slug}}/Makefile").read_text()
    fake_pypi(pypi_dir, "uv", {bump_pins.UV.search(makefile)["version"]: False})
    fake_pypi(pypi_dir, "ruff", {"0.17.6": False, "0.18.0": False})
    return {
        "BUMP_PINS_GIT_URL": f"file://{git_dir}/{{repo}}",
        "BUMP_PINS_PYPI_URL": f"file://{pypi_dir}/{{name}}.json",
    }


@pytest.mark.xdist_group("act-setup")
def test_bump_pins_workflow_pushes_a_branch_opens_the_pr_and_starts_ci(template_repo, tmp_path):
    env = stand_in_sources(tmp_path, template_repo)
    event = {"inputs": {}, "ref": "refs/heads/main"}
    record = tmp_path / "record"
    result = act(template_repo, "workflow_dispatch", event, "bump-pins.yml", record, env=env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    origin = tmp_path / "origin.git"
    assert (
        git(origin, "log", "-1", "--format=%s", "bump-pins") == "Bump pins to their newest releases"
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
