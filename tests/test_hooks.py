"""Bad answers are refused with one line naming the answer and the rule, and leave nothing behind;
the recorded answers let cruft follow the template without noise."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TEMPLATE, bake, git, git_copy_of_template
from cookiecutter.hooks import run_script_with_context
from cookiecutter.main import cookiecutter

# The refused answers, and the one line each gives (the hook's, on stderr).
BAD_ANSWERS = {
    "empty project name": (
        {"project_name": ""},
        "project_name '': it must not be empty (the directory name comes from it)",
    ),
    "blank project name": (
        {"project_name": "   "},
        "project_name '   ': it must not be empty (the directory name comes from it)",
    ),
    "empty project name beside a slug": (
        {"project_name": "", "project_slug": "churn"},
        "project_name '': it must not be empty",
    ),
    "name starting with a digit": (
        {"project_name": "123 Model"},
        "project_name '123 Model' gives the project_slug '123-model': it must start with a letter",
    ),
    "name giving a keyword module": (
        {"project_name": "Class"},
        "project_name 'Class' gives the module_name 'class': it must not be a Python keyword",
    ),
    "name giving a stdlib module": (
        {"project_name": "JSON"},
        "project_name 'JSON' gives the module_name 'json': it must not shadow a module the "
        "project imports (standard library included)",
    ),
    "dollar in project name": (
        {"project_name": "Cash $ Model"},
        "project_name 'Cash $ Model': it must not hold \\ \" ` or $ (they break quoted strings)",
    ),
    "slug with spaces": (
        {"project_slug": "my project"},
        "project_slug 'my project': it may hold only a-z, 0-9 and dashes",
    ),
    "slug with capitals": (
        {"project_slug": "MyProject"},
        "project_slug 'MyProject': it may hold only a-z, 0-9 and dashes",
    ),
    "slug longer than a GitHub repository name": (
        {"project_slug": "a" * 101, "module_name": "long"},
        f"project_slug '{'a' * 101}': it must be at most 100 characters long",
    ),
    "slug with a double dash": (
        {"project_slug": "my--project"},
        "project_slug 'my--project': it must not end in a dash or hold two in a row",
    ),
    "slug giving a dependency's module": (
        {"project_slug": "sklearn"},
        "project_slug 'sklearn' gives the module_name 'sklearn': it must not shadow a module the "
        "project imports (standard library included)",
    ),
    "module not an identifier": (
        {"module_name": "my-module"},
        "module_name 'my-module': it must be a lowercase Python identifier (letters, digits, "
        "underscores)",
    ),
    "module is a keyword": (
        {"module_name": "class"},
        "module_name 'class': it must not be a Python keyword",
    ),
    "module shadows stdlib": (
        {"module_name": "json"},
        "module_name 'json': it must not shadow a module the project imports (standard library "
        "included)",
    ),
    "module name too long": (
        {"module_name": "m" * 41},
        f"module_name '{'m' * 41}': it must be at most 40 characters long",
    ),
    "quote in author name": (
        {"author_name": 'Ann "Ace" Lee'},
        'author_name \'Ann "Ace" Lee\': it must not hold \\ " ` or $ (they break quoted strings)',
    ),
    "bad email": (
        {"author_email": "nobody"},
        "author_email 'nobody': it must look like name@example.com",
    ),
    "bad github owner": (
        {"github_owner": "-bad-"},
        "github_owner '-bad-': it must be letters, digits and single dashes, not starting or "
        "ending in one",
    ),
    "retired training runner": (
        {"training_runner": "cml-aws"},
        "training_runner 'cml-aws': removed in 0.4.0 (its launcher no longer works): choose "
        'github-hosted, arc or aws-ec2, as docs/updating.md says under "training_runner=cml-aws"',
    ),
    "dataset for another task": (
        {"task": "regression", "dataset": "wine"},
        "dataset 'wine' does not fit task 'regression': choose diabetes or synthetic",
    ),
}
# cookiecutter 2.7.1 reports any failed hook in 12 lines of its own on stdout, and no option turns
# them off (hooks.py logs the exception with its 10-line traceback, cli.py echoes it). More than
# that means a traceback of ours (a crashing hook) or a problem told twice.
COOKIECUTTER_HOOK_REPORT = 12


def bake_cli(output_dir: Path, answers: dict[str, str]) -> subprocess.CompletedProcess:
    """The `cookiecutter` command a user runs, from the venv running the tests."""
    args = [f"{key}={value}" for key, value in answers.items()]
    cli = Path(sys.executable).parent / "cookiecutter"
    return subprocess.run(
        [cli, "--no-input", "-o", output_dir, TEMPLATE, *args], capture_output=True, text=True
    )


@pytest.mark.parametrize("answers, message", BAD_ANSWERS.values(), ids=BAD_ANSWERS.keys())
def test_bad_answer_is_refused_in_one_line_and_leaves_nothing(tmp_path, answers, message):
    result = bake_cli(tmp_path, answers)
    assert result.returncode != 0
    assert result.stderr.splitlines() == [f"ERROR: {message}"]
    assert len(result.stdout.splitlines()) <= COOKIECUTTER_HOOK_REPORT, result.stdout
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("answers", [{"python_version": "3.9"}, {"model": "svm"}])
def test_a_value_outside_a_choice_is_refused_by_cookiecutter(tmp_path, answers):
    """Before any hook runs: cookiecutter's own traceback, ending in the line that matters."""
    (key, value), *_ = answers.items()
    result = bake_cli(tmp_path, answers)
    assert result.returncode != 0
    last = result.stderr.splitlines()[-1]
    assert f"{value} provided for choice variable {key}, but the choices are" in last
    assert list(tmp_path.iterdir()) == []


def test_every_problem_is_reported_at_once(tmp_path):
    result = bake_cli(tmp_path, {"module_name": "class", "author_email": "nobody"})
    assert [line.split()[1] for line in result.stderr.splitlines()] == [
        "module_name",
        "author_email",
    ]


def test_answers_are_recorded_for_cruft(tmp_path):
    project = bake(tmp_path, project_name="Churn Model", task="regression", model="linear")
    record = json.loads((project / ".cruft.json").read_text())
    answers = record["context"]["cookiecutter"]
    assert answers["project_slug"] == "churn-model"
    assert answers["module_name"] == "churn_model"
    assert answers["task"] == "regression" and answers["model"] == "linear"
    # Machine-specific paths stay out of a file that is committed.
    assert not {"_output_dir", "_repo_dir"} & set(answers)
    assert record["template"] == answers["_template"] == str(TEMPLATE)


def test_a_github_abbreviation_is_recorded_as_the_url_cruft_clones(tmp_path):
    """`cookiecutter gh:owner/repo` (the documented bake); git cannot clone `gh:...`."""
    context = {"project_name": "Demo", "_template": "gh:acme/cookiecutter-mlops-actions"}
    context |= {"_output_dir": str(tmp_path), "_repo_dir": str(TEMPLATE), "_checkout": None}
    run_script_with_context(
        TEMPLATE / "hooks/post_gen_project.py", tmp_path, {"cookiecutter": context}
    )
    record = json.loads((tmp_path / ".cruft.json").read_text())
    url = "https://github.com/acme/cookiecutter-mlops-actions.git"
    assert record["template"] == record["context"]["cookiecutter"]["_template"] == url


def cruft(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cruft", *args], cwd=project, capture_output=True, text=True
    )


def bake_from(template: Path, output_dir: Path, **answers: str) -> Path:
    return Path(
        cookiecutter(
            str(template), no_input=True, output_dir=str(output_dir), extra_context=answers
        )
    )


def test_cruft_json_is_what_cruft_create_writes(tmp_path):
    """Same bytes as `cruft create` (cruft/_commands/create.py, utils/cruft.py `json_dumps`):
    cruft's later rewrites change only what changed, and a fresh bake has no `cruft diff`."""
    template = git_copy_of_template(tmp_path / "template")
    answers = {"project_name": "Follower", "author_name": "Zoë Ångström", "task": "regression"}
    project = bake_from(template, tmp_path / "out", **answers)
    created = cruft(
        tmp_path,
        *("create", "--no-input", "--output-dir", "by-cruft", str(template)),
        *("--extra-context", json.dumps(answers)),
    )
    assert created.returncode == 0, created.stdout + created.stderr
    by_cruft = tmp_path / "by-cruft" / project.name / ".cruft.json"
    assert (project / ".cruft.json").read_bytes() == by_cruft.read_bytes()

    git(project, "init", "--quiet", "--initial-branch=main")
    diff = cruft(project, "diff", "--exit-code")
    assert diff.returncode == 0 and diff.stdout == "", diff.stdout + diff.stderr


def template_and_project(tmp_path: Path) -> tuple[Path, Path]:
    template = git_copy_of_template(tmp_path / "template")
    project = bake_from(template, tmp_path / "out", project_name="Follower")
    git(project, "init", "--quiet", "--initial-branch=main")
    return template, project


def test_cruft_follows_a_template_change(tmp_path):
    """What docs/updating.md promises: a project baked from a git checkout of the template knows
    when it is behind (`cruft check`) and takes the template's next commit with `cruft update`,
    keeping the project's own edits and leaving no `.rej` file."""
    template, project = template_and_project(tmp_path)
    record = json.loads((project / ".cruft.json").read_text())
    assert record["commit"] == git(template, "rev-parse", "HEAD").strip()
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("test_size: 0.2", "test_size: 0.25"))  # the user's
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--message", "baked")
    check = cruft(project, "check")
    assert check.returncode == 0, check.stdout + check.stderr  # up to date

    readme = template / "{{cookiecutter.project_slug}}/README.md"
    readme.write_text(readme.read_text() + "\nA line the template added later.\n")
    git(template, "commit", "--quiet", "--all", "--message", "template v2")
    check = cruft(project, "check")
    assert check.returncode == 1, check.stdout + check.stderr

    update = cruft(project, "update", "--skip-apply-ask")
    assert update.returncode == 0, update.stdout + update.stderr
    assert list(project.rglob("*.rej")) == []
    assert "A line the template added later." in (project / "README.md").read_text()
    assert "test_size: 0.25" in params.read_text()  # the user's edit survives
    assert git(project, "status", "--short").split() == ["M", ".cruft.json", "M", "README.md"]
    diff = git(project, "diff", ".cruft.json").splitlines()
    changed = [line for line in diff if line.startswith(("+", "-"))]
    new = git(template, "rev-parse", "HEAD").strip()
    assert [line.split('"')[1] for line in changed[2:]] == ["commit"] * 2 + ["_commit"] * 2
    assert json.loads((project / ".cruft.json").read_text())["commit"] == new
    check = cruft(project, "check")
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize("history", ["edited before the first commit", "committed as baked"])
def test_a_conflicting_template_change_is_left_to_resolve(tmp_path, history):
    """The user and the template change the same line. cruft exits 0 either way; what the user
    finds depends on whether the project's git history holds the file as baked (docs/updating.md):
    if not, a `.rej` file next to it; if it does, git's conflict markers in it."""
    template, project = template_and_project(tmp_path)
    params = project / "params.yaml"
    if history == "committed as baked":
        git(project, "add", "--all")
        git(project, "commit", "--quiet", "--message", "baked")
    params.write_text(params.read_text().replace("  seed: 42\n", "  seed: 7\n"))  # the user's
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--message", "my seed")
    template_params = template / "{{cookiecutter.project_slug}}/params.yaml"
    assert "  seed: 42\n" in template_params.read_text()
    template_params.write_text(template_params.read_text().replace("seed: 42", "seed: 1234"))
    git(template, "commit", "--quiet", "--all", "--message", "template v2: another seed")

    update = cruft(project, "update", "--skip-apply-ask")
    assert update.returncode == 0, update.stdout + update.stderr
    conflict = "<<<<<<< ours\n  seed: 7\n=======\n  seed: 1234\n>>>>>>> theirs\n"
    if history == "committed as baked":
        assert list(project.rglob("*.rej")) == []
        assert conflict in params.read_text()
        assert "UU params.yaml" in git(project, "status", "--short")
        params.write_text(params.read_text().replace(conflict, "  seed: 1234\n"))  # resolved
    else:
        assert "Project directory may have *.rej files" in update.stdout
        assert list(project.rglob("*.rej")) == [project / "params.yaml.rej"]
        rejected = (project / "params.yaml.rej").read_text()
        assert rejected.startswith("diff a/params.yaml b/params.yaml\t(rejected hunks)\n@@ ")
        assert "\n-  seed: 42\n+  seed: 1234\n" in rejected
        assert "  seed: 7\n" in params.read_text()
        params.write_text(params.read_text().replace("  seed: 7\n", "  seed: 1234\n"))  # by hand
        (project / "params.yaml.rej").unlink()
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--message", "template v2, seed resolved")
    assert "  seed: 1234\n" in params.read_text()
    update = cruft(project, "update", "--skip-apply-ask")
    assert "Nothing to do" in update.stdout, update.stdout + update.stderr
    check = cruft(project, "check")
    assert check.returncode == 0, check.stdout + check.stderr


def last_commit_of_version(version: str) -> str | None:
    """The newest commit of this repository whose cookiecutter.json is at `version`, if the
    checkout has that history."""
    commits = git(TEMPLATE, "rev-list", "HEAD", "--", "cookiecutter.json").split()
    for commit in commits:
        context = json.loads(git(TEMPLATE, "show", f"{commit}:cookiecutter.json"))
        if context["_template_version"] == version:
            return commit
    return None


def test_a_0_3_project_updates_to_the_package_layout(tmp_path):
    """CHANGELOG "Moving to 0.4.0": a project baked from the v0.3.0 tag takes `cruft update
    --checkout v0.4.0` cleanly, and ends up with the files a fresh 0.4.0 bake has: the moved
    modules gone from src/ and tests/, the package required instead."""
    old = last_commit_of_version("0.3.0")
    if old is None:
        pytest.skip("this checkout has no 0.3.0 history (a shallow clone)")
    template = tmp_path / "template"
    template.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(TEMPLATE), "archive", old], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(template)], input=archive, check=True)
    git(template, "init", "--quiet", "--initial-branch=main")
    git(template, "add", "--all")
    git(template, "commit", "--quiet", "--message", "0.3.0")
    git(template, "tag", "v0.3.0")
    project = bake_from(template, tmp_path / "out", project_name="Follower")
    assert (project / "src/follower/serve/http.py").is_file()
    git(project, "init", "--quiet", "--initial-branch=main")
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--message", "baked from 0.3.0")

    git(template, "rm", "--quiet", "-r", ".")
    new = git_copy_of_template(tmp_path / "new")
    shutil.rmtree(new / ".git")
    shutil.copytree(new, template, dirs_exist_ok=True)
    git(template, "add", "--all")
    git(template, "commit", "--quiet", "--message", "0.4.0")
    git(template, "tag", "v0.4.0")
    update = cruft(project, "update", "--skip-apply-ask", "--checkout", "v0.4.0")
    assert update.returncode == 0, update.stdout + update.stderr
    assert list(project.rglob("*.rej")) == []
    assert "<<<<<<<" not in git(project, "diff")

    fresh = bake_from(template, tmp_path / "fresh", project_name="Follower")
    ignored = {".git", ".cruft.json"}
    files = {
        str(p.relative_to(project)): p.read_bytes()
        for p in project.rglob("*")
        if p.is_file() and ignored.isdisjoint(p.relative_to(project).parts)
    }
    fresh_files = {
        str(p.relative_to(fresh)): p.read_bytes()
        for p in fresh.rglob("*")
        if p.is_file() and p.name != ".cruft.json"
    }
    assert sorted(files) == sorted(fresh_files)
    assert files == fresh_files
    assert not (project / "src/follower/serve").exists()
    requirement = f'"mlops-actions[serve] @ file://{template}/mlops-actions"'
    assert requirement in (project / "pyproject.toml").read_text()
