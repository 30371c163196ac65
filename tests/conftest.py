"""Baking helpers shared by the template's tests."""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from cookiecutter.main import cookiecutter

# Two xdist workers already fill both cores. Multi-threaded native code in their subprocesses
# (OpenMP in scikit-learn's gradient boosting, BLAS, onnxruntime) would oversubscribe them, and
# OpenMP's spinning threads then slow every stage several times over.
for _threads in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_threads, "1")

TEMPLATE = Path(__file__).resolve().parents[1]
# The venv running these tests also holds the generated project's pinned dependencies (see the
# Makefile), so every bake shares it instead of installing its own.
SHARED_VENV = Path(sys.prefix)
CHOICES = {
    key: value
    for key, value in json.loads((TEMPLATE / "cookiecutter.json").read_text()).items()
    if isinstance(value, list)
}


MERMAID = TEMPLATE / "tests" / "mermaid"


def assert_mermaid_parses(*markdown_files: Path) -> int:
    """Every ```mermaid block parses with mermaid's own parser; returns how many were checked."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed: mermaid charts were not parsed")
    result = subprocess.run(
        ["node", str(MERMAID / "parse.mjs"), *map(str, markdown_files)],
        capture_output=True,
        text=True,
    )
    blocks = [json.loads(line) for line in result.stdout.splitlines()]
    failures = [block for block in blocks if not block["ok"]]
    assert result.returncode == 0 and not failures, failures or result.stderr
    return len(blocks)


def bake(output_dir: Path, **answers: str) -> Path:
    """Bake without prompts; returns the project directory."""
    return Path(
        cookiecutter(
            str(TEMPLATE), no_input=True, output_dir=str(output_dir), extra_context=answers
        )
    )


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, check: bool = True):
    """Run a command; on failure show its output, which pytest otherwise hides."""
    result = subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"{' '.join(cmd)} exited {result.returncode} in {cwd}\n"
            f"--- stdout\n{result.stdout[-6000:]}\n--- stderr\n{result.stderr[-6000:]}"
        )
    return result


def git(project: Path, *args: str) -> str:
    """git in a baked project (or any test repository), with an identity for commits on machines
    that have none."""
    identity = ["-c", "user.name=Template Tests", "-c", "user.email=tests@example.com"]
    return run(["git", *identity, *args], cwd=project).stdout


def git_copy_of_template(repo: Path) -> Path:
    """This checkout's files (committed or not, minus what git ignores) as a fresh repository
    with one commit, as a user's clone of the template would be."""
    files = git(TEMPLATE, "ls-files", "--cached", "--others", "--exclude-standard").splitlines()
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
    return repo


# What the template's next release changes in every project (tagged_template): a Makefile line
# and a workflow line, with its changelog entry.
NEXT_RELEASE = {
    "Makefile": ("# `make help` lists them.", "# `make help` lists them, with what each does."),
    ".github/workflows/ci.yml": ("# Lint and test on every push", "# Lint and test, on every push"),
}


def release(template: Path, version: str, changes: dict[str, tuple[str, str]], entry: str):
    """Commit `changes` (file of the project: old text, new text) to the template with a changelog
    section `## <version>` holding `entry`, and tag the commit v<version>, as a release does."""
    for name, (old, new) in changes.items():
        path = template / "{{cookiecutter.project_slug}}" / name
        assert old in path.read_text(), (name, old)
        path.write_text(path.read_text().replace(old, new, 1))
    changelog = template / "CHANGELOG.md"
    head, _, rest = changelog.read_text().partition("\n## ")
    changelog.write_text(
        f"{head}\n## {version} - 2026-12-31\n\n### Fixed\n\n- {entry}\n\n## {rest}"
    )
    git(template, "commit", "--quiet", "--all", "--message", f"Release {version}")
    git(template, "tag", f"v{version}")


@pytest.fixture(scope="session")
def tagged_template(tmp_path_factory) -> Path:
    """A git copy of the template with two releases: this checkout as v0.4.0, then v0.4.1, which
    changes NEXT_RELEASE's lines (copier updates to the newest tag)."""
    template = git_copy_of_template(tmp_path_factory.mktemp("tagged") / "template")
    git(template, "tag", "v0.4.0")
    release(template, "0.4.1", NEXT_RELEASE, "The Makefile's help line says what each does.")
    return template


def load(path: Path) -> ModuleType:
    """A script of this repository (docs/, tools/) imported by path, to test its functions."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def in_venv(cmd: list[str], cwd: Path, check: bool = True):
    """A tool of the shared venv (dvc, python), as a user with the venv activated runs it."""
    path = f"{SHARED_VENV / 'bin'}{os.pathsep}{os.environ['PATH']}"
    return run(cmd, cwd=cwd, env={"PATH": path, "DVC_NO_ANALYTICS": "1"}, check=check)


# make's own line after a failed recipe: "make: *** ...", or "make[1]: *** ..." when the tests
# themselves run under make (make test).
MAKE_ERROR = re.compile(r"make(\[\d+\])?: \*\*\* ")


def make(project: Path, *targets: str, check: bool = True, **variables: str):
    """The generated project's own Makefile, using the shared venv."""
    settings = [f"{key}={value}" for key, value in {"VENV": str(SHARED_VENV), **variables}.items()]
    return run(["make", "--no-print-directory", *targets, *settings], cwd=project, check=check)


OWNER_REPO = "acme/act-demo"


@pytest.fixture(scope="session")
def set_up_project(tmp_path_factory) -> Path:
    """One baked project after `make setup` (its first commit holds the base metrics), with an
    origin that looks like GitHub's. Shared by the act runs and the serving tests (mark them
    xdist_group("act-setup") so one worker sets it up once); each test works on its own copy.
    It deploys to Kubernetes, so release.yml's deploy job runs too."""
    root = tmp_path_factory.mktemp("act-origin")
    project = bake(root, project_name="Act Demo", deploy_target="kubernetes")
    make(project, "setup", DVC_REMOTE_DIR=str(root / "local-remote"))
    git(project, "remote", "add", "origin", f"https://github.com/{OWNER_REPO}.git")
    git(project, "update-ref", "refs/remotes/origin/main", "HEAD")
    return project


def _expected_length(item: pytest.Item) -> int:
    """0 for the longest work: the shared act project's group and the corpus, then each task's
    lifecycle, the own-data runs, the other act runs (template-update's too), the DVC remote's;
    everything else is short."""
    if item.get_closest_marker("xdist_group"):
        return 0
    longest = (
        "test_project_lifecycle", "test_own_data", "test_act.py", "test_template_update_opens",
        "test_remote.py",
    )  # fmt: skip
    for rank, part in enumerate(longest, 1):
        if part in item.nodeid:
            return rank
    return len(longest) + 1


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # xdist hands out work in collection order: longest first, so both workers finish together.
    items.sort(key=_expected_length)
