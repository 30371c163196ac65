"""The template's own release (publish.yml on a `v*` tag): `make release-check` refuses a tag that
is not the version every file names, in one line naming each file that differs, and gives the
GitHub Release the changelog's section; publish.yml checks before it builds or releases."""

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import TEMPLATE, load, run

release_check = load(TEMPLATE / "tools/release_check.py")
VERSION = json.loads((TEMPLATE / "cookiecutter.json").read_text())["_template_version"]
VERSION_FILES = [
    "pyproject.toml",
    "cookiecutter.json",
    "mlops-actions/pyproject.toml",
    "mlops-actions/src/mlops_actions/__init__.py",
    "CHANGELOG.md",
]


@pytest.fixture
def checkout(tmp_path) -> Path:
    """The files that name the version, as this checkout has them."""
    for name in VERSION_FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(TEMPLATE / name, tmp_path / name)
    return tmp_path


def test_the_tag_of_the_version_every_file_names_is_released_with_its_changelog_section(tmp_path):
    notes = tmp_path / "notes.md"
    done = run(["make", "--no-print-directory", "release-check", f"TAG=v{VERSION}"], TEMPLATE)
    assert done.stdout.splitlines()[-1] == (
        f"release-check: v{VERSION} is the version of every file that names one"
    )
    assert release_check.main([f"v{VERSION}", "--notes", str(notes)]) == 0
    changelog = (TEMPLATE / "CHANGELOG.md").read_text()
    section = changelog.split(f"## {VERSION} - ", 1)[1].split("\n", 1)[1].split("\n## ", 1)[0]
    assert notes.read_text() == section.strip() + "\n"
    assert not re.search(r"^## ", notes.read_text(), re.MULTILINE)


def test_a_mismatched_tag_is_refused_in_one_line_naming_every_file(checkout, capsys):
    assert release_check.main(["v9.9.9", "--root", str(checkout)]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line == (
        f"release-check: v9.9.9 cannot be released: pyproject.toml says {VERSION}; "
        f"cookiecutter.json _template_version says {VERSION}; mlops-actions/pyproject.toml says "
        f"{VERSION}; mlops_actions.__version__ says {VERSION}; CHANGELOG.md's top section says "
        f"{VERSION}"
    )
    assert release_check.main(["v1.0", "--root", str(checkout)]) == 1
    assert capsys.readouterr().err == (
        "release-check: v1.0 cannot be released: tag 'v1.0' is not vMAJOR.MINOR.PATCH\n"
    )


def test_one_file_left_behind_is_named(checkout, capsys):
    """A bump that forgot the package: the tag of the new version names that file alone."""
    context = json.loads((checkout / "cookiecutter.json").read_text())
    (checkout / "cookiecutter.json").write_text(
        json.dumps({**context, "_template_version": "9.0.0"})
    )
    for name in ("pyproject.toml", "mlops-actions/src/mlops_actions/__init__.py"):
        path = checkout / name
        path.write_text(path.read_text().replace(f'"{VERSION}"', '"9.0.0"', 1))
    changelog = checkout / "CHANGELOG.md"
    changelog.write_text(
        changelog.read_text().replace(f"## {VERSION} - ", "## 9.0.0 - 2027-01-01\n\n- New.\n\n"
                                      f"## {VERSION} - ", 1)
    )  # fmt: skip
    notes = checkout / "notes.md"
    assert release_check.main(["v9.0.0", "--root", str(checkout), "--notes", str(notes)]) == 1
    assert capsys.readouterr().err == (
        f"release-check: v9.0.0 cannot be released: mlops-actions/pyproject.toml says {VERSION}\n"
    )
    assert not notes.exists()
    path = checkout / "mlops-actions/pyproject.toml"
    path.write_text(path.read_text().replace(f'"{VERSION}"', '"9.0.0"', 1))
    assert release_check.main(["v9.0.0", "--root", str(checkout), "--notes", str(notes)]) == 0
    assert notes.read_text() == "- New.\n"


def test_publish_checks_the_tag_before_it_builds_or_releases():
    """Every `v*` tag starts publish.yml; its first command is the check, and the release and
    PyPI jobs wait for the job that ran it."""
    workflow = yaml.safe_load((TEMPLATE / ".github/workflows/publish.yml").read_text())
    assert workflow[True]["push"] == {"tags": ["v*"]}  # YAML 1.1 reads the key `on` as True
    jobs = workflow["jobs"]
    runs = [step["run"] for step in jobs["build"]["steps"] if "run" in step]
    assert runs[:2] == [
        'make release-check TAG="$GITHUB_REF_NAME"',
        'make package VERSION="${GITHUB_REF_NAME#v}"',
    ]
    assert jobs["github-release"]["needs"] == jobs["pypi"]["needs"] == "build"
    assert jobs["github-release"]["permissions"] == {"contents": "write"}
    release = jobs["github-release"]["steps"][-1]["run"]
    assert "--notes-file notes/release-notes.md" in release and "--verify-tag" in release
