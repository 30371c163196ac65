"""tools/bump_pins.py against local stand-ins for GitHub (bare git repositories with tags), PyPI and
the npm registry (JSON files in their formats): what moves, what stays, and that a failed lookup
changes nothing."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import git, load

ROOT = Path(__file__).resolve().parents[1]
COPIER_YML = ROOT / "tools" / "copier_yml.py"
TOOL = ROOT / "tools/bump_pins.py"
TEMPLATE = "{{cookiecutter.project_slug}}"
bump_pins = load(TOOL)
# Newer releases for the "newer" scenario: an annotated newer minor, a pre-release and a floating
# major tag for checkout, a new major for setup-uv; for ruff a newer final, a yanked one above it
# and a release candidate; protobuf 7 exists, but its line says below 7; a newer uv.
NEWER_TAGS = {
    "actions/checkout": [("v7.2.0", True), ("v8.0.0-beta.1", False), ("v7", False)],
    "astral-sh/setup-uv": [("v11.0.0", False)],
}
NEWER_RELEASES = {
    "ruff": {"0.17.6": False, "0.18.0": False, "0.18.1": True, "0.19.0rc1": False},
    "protobuf": {"6.33.6": False, "6.34.1": False, "7.1.0": False},
    "uv": {"99.0.0": False},
    "copier": {"9.20.0": False},
}
NEWER_NPM = {"@dvcorg/cml": "0.21.0"}


def fake_action(folder: Path, tags: list[tuple[str, bool]]) -> dict[str, str]:
    """A repository with one commit per tag (annotated when asked); returns tag -> commit."""
    folder.mkdir(parents=True)
    git(folder, "init", "--quiet", "--initial-branch=main")
    commits = {}
    for tag, annotated in tags:
        git(folder, "commit", "--quiet", "--allow-empty", "--message", tag)
        git(folder, "tag", *(["--annotate", "--message", tag] if annotated else []), tag)
        commits[tag] = git(folder, "rev-parse", "HEAD").strip()
    return commits


def fake_npm(folder: Path, name: str, latest: str) -> None:
    """The npm registry's JSON for a package: its `dist-tags` (what the tool reads) and versions."""
    path = folder / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"dist-tags": {"latest": latest}, "versions": {latest: {}}}))


def fake_pypi(folder: Path, name: str, versions: dict[str, bool]) -> None:
    """PyPI's JSON for a project: version -> whether its only file is yanked."""
    folder.mkdir(parents=True, exist_ok=True)
    releases = {v: [{"filename": f"{name}-{v}.tar.gz", "yanked": y}] for v, y in versions.items()}
    (folder / f"{name}.json").write_text(json.dumps({"releases": releases}))


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The files the tool edits, copied from this checkout."""
    root = tmp_path / "template"
    for relative in (
        "cookiecutter.json",
        "copier.yml",
        "hooks/pre_gen_project.py",  # copier.yml's refusals come from it
        "pyproject.toml",
        "mlops-actions/pyproject.toml",
        ".github/workflows",
    ):
        source, target = ROOT / relative, root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy)(source, target)
    (root / TEMPLATE).mkdir()
    for name in ("pyproject.toml", "Makefile"):
        shutil.copy(ROOT / TEMPLATE / name, root / TEMPLATE / name)
    return root


def sources(
    tmp_path: Path,
    root: Path,
    newer_tags: dict[str, list[tuple[str, bool]]] | None = None,
    newer_releases: dict[str, dict[str, bool]] | None = None,
    repin: bool = True,
    newer_npm: dict[str, str] | None = None,
) -> dict[str, str]:
    """Stand-ins for every pin's source at its pinned version, plus the newer tags and releases
    given; the environment that points tools/bump_pins.py at them. With `repin` the checkout's
    action pins are rewritten to the stand-ins' commits (so an unchanged tag is not a moved one);
    without, every action reads as a moved tag and stays."""
    git_dir, pypi_dir = tmp_path / "github", tmp_path / "pypi"
    files = bump_pins.Files()
    commits: dict[str, dict[str, str]] = {}
    for path in bump_pins.action_files(root):
        for match in bump_pins.ACTION.finditer(files[path]):
            repo = match["repo"]
            if repo not in commits:
                extra = (newer_tags or {}).get(repo, [])
                commits[repo] = fake_action(git_dir / repo, [(match["tag"], False), *extra])
        if repin:
            path.write_text(
                bump_pins.ACTION.sub(
                    lambda m: f"{m['action']}@{commits[m['repo']][m['tag']]} # {m['tag']}",
                    files[path],
                )
            )
    if repin and (root / "copier.yml").exists():  # generated from the pins just rewritten
        context = json.loads((root / "cookiecutter.json").read_text())
        (root / "copier.yml").write_text(load(COPIER_YML).render(context, root))
    current = {
        match["name"]: match["version"]
        for path in bump_pins.package_files(root)
        for match in bump_pins.PACKAGE.finditer(files[path])
    }
    current["uv"] = bump_pins.UV.search((root / TEMPLATE / "Makefile").read_text())["version"]
    for name, version in current.items():
        fake_pypi(pypi_dir, name, {version: False, **(newer_releases or {}).get(name, {})})
    context = json.loads((root / "cookiecutter.json").read_text())
    for key, name in bump_pins.NPM_PINS.items():
        fake_npm(tmp_path / "npm", name, (newer_npm or {}).get(name, context[key]))
    return {
        "BUMP_PINS_GIT_URL": f"file://{git_dir}/{{repo}}",
        "BUMP_PINS_PYPI_URL": f"file://{pypi_dir}/{{name}}.json",
        "BUMP_PINS_NPM_URL": f"file://{tmp_path / 'npm'}/{{name}}.json",
    }


def run_tool(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TOOL), "--root", str(root), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def test_current_pins_stay(tmp_path, checkout):
    env = sources(tmp_path, checkout)
    before = snapshot(checkout)
    done = run_tool(checkout, env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Every pin is at its newest release.\n"
    assert snapshot(checkout) == before


def test_newer_releases_move_every_copy_of_a_pin(tmp_path, checkout):
    env = sources(tmp_path, checkout, NEWER_TAGS, NEWER_RELEASES, newer_npm=NEWER_NPM)
    checkout_commit = git(tmp_path / "github/actions/checkout", "rev-list", "-n1", "v7.2.0").strip()
    summary = tmp_path / "summary.md"
    done = run_tool(checkout, env, "--summary", str(summary))
    assert done.returncode == 0, done.stderr
    context = json.loads((checkout / "cookiecutter.json").read_text())
    # The annotated tag is peeled to its commit; the generated and the template's own workflows
    # move together.
    assert context["__actions"]["checkout"] == f"actions/checkout@{checkout_commit} # v7.2.0"
    assert (
        f"actions/checkout@{checkout_commit} # v7.2.0"
        in (checkout / ".github/workflows/ci.yml").read_text()
    )
    assert context["__actions"]["setup_uv"].endswith("# v11.0.0")
    assert context["__cml_version"] == "0.21.0"  # the npm registry's dist-tags.latest
    # copier.yml, generated from cookiecutter.json, is written again with the new pins.
    assert (checkout / "copier.yml").read_text() == load(COPIER_YML).render(context, checkout)
    assert f"actions/checkout@{checkout_commit} # v7.2.0" in (checkout / "copier.yml").read_text()
    template_pyproject = (checkout / TEMPLATE / "pyproject.toml").read_text()
    package_pyproject = (checkout / "mlops-actions/pyproject.toml").read_text()
    assert (
        '"ruff==0.18.0"' in template_pyproject
        and '"ruff==0.18.0"' in (checkout / "pyproject.toml").read_text()
    )
    # The package's pins (what generated projects install) move with the rest.
    assert '"protobuf==6.34.1",  # bump: below 7' in package_pyproject
    makefile = (checkout / TEMPLATE / "Makefile").read_text()
    assert "UV_VERSION := 99.0.0" in makefile
    # copier moves in the template's tools and in what make template-update runs, one row.
    assert "COPIER_VERSION := 9.20.0" in makefile and "CRUFT_VERSION := 2.16.0" in makefile
    assert '"copier==9.20.0"' in (checkout / "pyproject.toml").read_text()
    # Only those lines changed.
    assert '"scikit-learn==1.9.1"' in package_pyproject
    text = summary.read_text()
    assert text == done.stdout
    assert "| `actions/checkout` | v7.0.1 | v7.2.0 |" in text
    assert "| `astral-sh/setup-uv` | v10.0.1 | **v11.0.0** (major) |" in text
    assert "| `protobuf (below 7)` | 6.33.6 | 6.34.1 |" in text
    assert "| `uv` | " in text
    assert (
        "| `copier` | 9.19.1 | 9.20.0 | pyproject.toml, {{cookiecutter.project_slug}}/Makefile |"
        in text
    )
    assert "| `@dvcorg/cml` | 0.20.6 | 0.21.0 | cookiecutter.json |" in text


@pytest.mark.parametrize("latest", ["0.19.0", "1.0.0-rc.1"], ids=["older", "pre-release"])
def test_cml_moves_only_to_a_newer_final_release(tmp_path, checkout, latest):
    env = sources(tmp_path, checkout, newer_npm={"@dvcorg/cml": latest})
    before = snapshot(checkout)
    done = run_tool(checkout, env)
    if latest == "0.19.0":
        assert done.returncode == 0 and done.stdout == "Every pin is at its newest release.\n"
    else:  # the job fails rather than pin what npm calls latest but is not a release
        assert done.returncode == 1 and "not a final release" in done.stderr
    assert snapshot(checkout) == before


def test_a_moved_tag_is_reported_not_followed(tmp_path, checkout):
    env = sources(tmp_path, checkout)
    # setup-python's v7.0.0 is moved to a commit that is not the pinned one.
    repo = tmp_path / "github/actions/setup-python"
    git(repo, "commit", "--quiet", "--allow-empty", "--message", "moved")
    git(repo, "tag", "--force", "v7.0.0")
    before = snapshot(checkout)
    done = run_tool(checkout, env)
    assert done.returncode == 0
    assert "`actions/setup-python` tag `v7.0.0` now names" in done.stdout
    assert "left alone" in done.stdout
    assert snapshot(checkout) == before


def test_a_failed_lookup_changes_nothing(tmp_path, checkout):
    env = sources(tmp_path, checkout, NEWER_TAGS, NEWER_RELEASES)
    (tmp_path / "pypi/pytest.json").unlink()
    before = snapshot(checkout)
    done = run_tool(checkout, env)
    assert done.returncode == 1
    assert done.stderr.startswith("bump-pins: pytest: cannot read file://")
    assert len(done.stderr.strip().splitlines()) == 1
    assert snapshot(checkout) == before
