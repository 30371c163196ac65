"""copier renders the same template as cookiecutter (issue 27, item 1): copier.yml is generated
from cookiecutter.json (tools/copier_yml.py) and current, and `copier copy` makes, byte for byte,
the project cookiecutter makes, for the default answers and the fewest rows of the bake matrix
(tests/matrix.py) that bake every value of every option. The
only difference allowed is each tool's own record of the answers: `.cruft.json` (cookiecutter's
post-generation hook) and `.copier-answers.yml` (copier's answers file). And `copier update` takes
a project made from an older release tag to the next one, keeping its owner's edits."""

import json
import re
import sys
from pathlib import Path

import pytest
from conftest import NEXT_RELEASE, TEMPLATE, git, git_copy_of_template, load, run
from cookiecutter.main import cookiecutter
from copier import run_copy
from matrix import CONTEXT, choices, matrix

ROWS = matrix()
RECORDS = {"cookiecutter": ".cruft.json", "copier": ".copier-answers.yml"}


def covering_rows(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Fewest rows of the bake matrix, picked greedily, that bake every value of every option."""
    unseen = {(key, value) for row in rows for key, value in row.items()}
    picked = []
    while unseen:
        best = max(rows, key=lambda row: len(unseen & set(row.items())))
        picked.append(best)
        unseen -= set(best.items())
    return picked


CASES = {"default": {}} | {f"row-{ROWS.index(row)}": row for row in covering_rows(ROWS)}


@pytest.fixture(scope="module")
def template_repo(tmp_path_factory) -> Path:
    """One git copy of this checkout (copier renders a git repository's HEAD) for every bake."""
    return git_copy_of_template(tmp_path_factory.mktemp("copier") / "template")


def tree(project: Path, record: str) -> dict[str, tuple[int, bytes | None]]:
    """Every path under the project but the tool's record: its mode, and a file's bytes."""
    return {
        str(path.relative_to(project)): (
            path.stat().st_mode,
            path.read_bytes() if path.is_file() else None,
        )
        for path in sorted(project.rglob("*"))
        if path.relative_to(project).parts[0] != record
    }


def test_copier_yml_is_current():
    generator = load(TEMPLATE / "tools" / "copier_yml.py")
    context = json.loads((TEMPLATE / "cookiecutter.json").read_text())
    assert (TEMPLATE / "copier.yml").read_text() == generator.render(context), (
        "copier.yml is stale: run python tools/copier_yml.py"
    )


def test_the_cases_bake_every_value_of_every_option():
    for option in ROWS[0]:  # every value a bake accepts (a retired one is refused, below)
        assert {row[option] for row in CASES.values() if row} == set(choices(option)), option


@pytest.mark.parametrize("case", CASES)
def test_copier_copy_makes_the_project_cookiecutter_makes(case, template_repo, tmp_path):
    answers = CASES[case]
    made = Path(
        cookiecutter(
            str(template_repo),
            no_input=True,
            output_dir=str(tmp_path / "cookiecutter"),
            extra_context=answers,
        )
    )
    copied = tmp_path / "copier" / made.name
    run_copy(str(template_repo), str(copied), data=answers, defaults=True, quiet=True)
    expected, got = tree(made, RECORDS["cookiecutter"]), tree(copied, RECORDS["copier"])
    assert sorted(got) == sorted(expected)
    differing = [name for name in expected if got[name] != expected[name]]
    assert not differing, differing
    recorded = (copied / RECORDS["copier"]).read_text()
    for key, value in answers.items():
        assert f"{key}: {value}" in recorded or f"{key}: '{value}'" in recorded, key


# Answers hooks/pre_gen_project.py refuses, and the words copier's validator refuses them with.
REFUSED = {
    "project_name": ("", "it must not be empty"),
    "description": ('say "hi"', "it must not hold"),
    "author_name": ("back\\slash", "it must not hold"),
    "project_slug": ("1-model", "it must start with a letter"),
    "module_name": ("class", "it must not be a Python keyword"),
    "author_email": ("nobody", "it must look like name@example.com"),
    "github_owner": ("-acme", "letters, digits and single dashes"),
    "dataset": ("iris", "does not fit task 'regression'"),
} | {  # a retired value: the message cookiecutter.json gives for it
    option: (value, message)
    for option, values in CONTEXT["__retired"].items()
    for value, message in values.items()
}


@pytest.mark.parametrize("answer", REFUSED)
def test_copier_refuses_what_the_hook_refuses(answer, template_repo, tmp_path):
    value, words = REFUSED[answer]
    answers = {answer: value, "task": "regression"} if answer == "dataset" else {answer: value}
    with pytest.raises(ValueError, match=re.escape(words)):
        run_copy(str(template_repo), str(tmp_path / "p"), data=answers, defaults=True, quiet=True)
    assert not (tmp_path / "p").exists()
    extra = ["task=regression"] if answer == "dataset" else []
    command = [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(tmp_path / "cc")]
    hook = run(
        [*command, str(template_repo), f"{answer}={value}", *extra], cwd=tmp_path, check=False
    )
    assert hook.returncode != 0 and f"ERROR: {answer}" in hook.stderr, hook.stderr


def test_copier_update_brings_the_next_release_and_keeps_the_owners_edit(tagged_template, tmp_path):
    """A project copied from v0.4.0 and committed, with its owner's edit to params.yaml, then
    `copier update --defaults` (the recorded answers, the newest tag: v0.4.1): the release's lines
    arrive, the edit stays, the answers file names the new tag, and nothing is left to resolve.
    The flags: https://copier.readthedocs.io/en/stable/updating/ and `copier update --help`."""
    project = tmp_path / "project"
    run_copy(str(tagged_template), str(project), defaults=True, quiet=True, vcs_ref="v0.4.0")
    answers = project / RECORDS["copier"]
    assert "_commit: v0.4.0" in answers.read_text()
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("seed: 42", "seed: 7", 1))
    git(project, "init", "--quiet", "--initial-branch=main")
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--message", "Baked from v0.4.0, seed 7")

    command = [sys.executable, "-m", "copier", "update", "--defaults", "--conflict", "inline"]
    run([*command, "--quiet"], cwd=project)

    for name, (old, new) in NEXT_RELEASE.items():
        text = (project / name).read_text()
        assert new in text and old not in text, name
    assert "seed: 7" in params.read_text()
    assert "_commit: v0.4.1" in answers.read_text()
    changed = git(project, "status", "--porcelain").splitlines()
    assert sorted(line[3:] for line in changed) == sorted([RECORDS["copier"], *NEXT_RELEASE])
    assert not list(project.rglob("*.rej"))
    markers = run(
        ["git", "grep", "-l", "-e", "^<<<<<<< ", "-e", "^>>>>>>> "], cwd=project, check=False
    )
    assert markers.stdout == "", markers.stdout


def test_make_template_update_runs_the_copier_and_cruft_these_tests_run():
    """The generated Makefile's pins (what `make template-update` installs) are the template's own
    (what these tests prove); tools/bump_pins.py moves both together."""
    makefile = (TEMPLATE / "{{cookiecutter.project_slug}}" / "Makefile").read_text()
    pyproject = (TEMPLATE / "pyproject.toml").read_text()
    for name in ("copier", "cruft"):
        pinned = re.search(rf'"{name}==([\d.]+)"', pyproject)[1]
        assert f"{name.upper()}_VERSION := {pinned}\n" in makefile, name
