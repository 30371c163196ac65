"""Bad answers are refused with one line naming the field, and leave no directory behind."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TEMPLATE, bake, git, git_copy_of_template
from cookiecutter.main import cookiecutter

BAD_ANSWERS = {
    "slug with spaces": ({"project_slug": "my project"}, "project_slug 'my project'"),
    "slug with capitals": ({"project_slug": "MyProject"}, "project_slug 'MyProject'"),
    "module not an identifier": ({"module_name": "my-module"}, "module_name 'my-module'"),
    "module is a keyword": ({"module_name": "class"}, "module_name 'class'"),
    "module shadows stdlib": ({"module_name": "json"}, "module_name 'json': shadows"),
    "module shadows a dependency": ({"module_name": "sklearn"}, "module_name 'sklearn': shadows"),
    "quote in author name": ({"author_name": 'Ann "Ace" Lee'}, "author_name 'Ann \"Ace\" Lee'"),
    "dollar in project name": ({"project_name": "Cash $ Model"}, "project_name 'Cash $ Model'"),
    "module name too long": ({"module_name": "m" * 41}, "longer than 40 characters"),
    "bad email": ({"author_email": "nobody"}, "author_email 'nobody'"),
    "bad github owner": ({"github_owner": "-bad-"}, "github_owner '-bad-'"),
    "dataset for another task": (
        {"task": "regression", "dataset": "wine"},
        "dataset 'wine' does not fit task 'regression': choose diabetes or synthetic",
    ),
    # Choice options: cookiecutter itself refuses values outside the list.
    "unknown python version": ({"python_version": "3.9"}, "choices are"),
    "unknown model": ({"model": "svm"}, "choices are"),
}


def bake_cli(output_dir: Path, answers: dict[str, str]) -> subprocess.CompletedProcess:
    args = [f"{key}={value}" for key, value in answers.items()]
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "cookiecutter",
            "--no-input",
            "-o",
            str(output_dir),
            str(TEMPLATE),
            *args,
        ],
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize("answers, message", BAD_ANSWERS.values(), ids=BAD_ANSWERS.keys())
def test_bad_answer_is_refused_and_leaves_nothing(tmp_path, answers, message):
    result = bake_cli(tmp_path, answers)
    assert result.returncode != 0
    assert message in result.stderr + result.stdout
    assert list(tmp_path.iterdir()) == []


def test_every_problem_is_reported_at_once(tmp_path):
    result = bake_cli(tmp_path, {"module_name": "class", "author_email": "nobody"})
    errors = [
        line
        for line in result.stderr.splitlines()
        if line.startswith("ERROR: ") and "hook" not in line
    ]
    assert [line.split()[1] for line in errors] == ["module_name", "author_email"]


def test_answers_are_recorded_for_cruft(tmp_path):
    project = bake(tmp_path, project_name="Churn Model", task="regression", model="linear")
    record = json.loads((project / ".cruft.json").read_text())
    answers = record["context"]["cookiecutter"]
    assert answers["project_slug"] == "churn-model"
    assert answers["module_name"] == "churn_model"
    assert answers["task"] == "regression" and answers["model"] == "linear"
    # Machine-specific paths stay out of a file that is committed.
    assert not {"_output_dir", "_repo_dir"} & set(answers)
    assert record["template"] == str(TEMPLATE)


def test_cruft_follows_a_template_change(tmp_path):
    """What docs/updating.md promises: a project baked from a git checkout of the template knows
    when it is behind (`cruft check`) and takes the template's next commit with `cruft update`,
    keeping the project's own edits."""
    template = git_copy_of_template(tmp_path / "template")
    project = Path(
        cookiecutter(
            str(template),
            no_input=True,
            output_dir=str(tmp_path / "out"),
            extra_context={"project_name": "Follower"},
        )
    )
    record = json.loads((project / ".cruft.json").read_text())
    assert (
        record["template"] == str(template)
        and record["commit"] == git(template, "rev-parse", "HEAD").strip()
    )
    git(project, "init", "--quiet", "--initial-branch=main")
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("test_size: 0.2", "test_size: 0.25"))  # the user's
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--message", "baked")
    cruft = [sys.executable, "-m", "cruft"]

    check = subprocess.run([*cruft, "check"], cwd=project, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr  # up to date

    readme = template / "{{cookiecutter.project_slug}}/README.md"
    readme.write_text(readme.read_text() + "\nA line the template added later.\n")
    git(template, "commit", "--quiet", "--all", "--message", "template v2")
    check = subprocess.run([*cruft, "check"], cwd=project, capture_output=True, text=True)
    assert check.returncode == 1, check.stdout + check.stderr

    update = subprocess.run(
        [*cruft, "update", "--skip-apply-ask"], cwd=project, capture_output=True, text=True
    )
    assert update.returncode == 0, update.stdout + update.stderr
    assert "A line the template added later." in (project / "README.md").read_text()
    assert "test_size: 0.25" in params.read_text()  # the user's edit survives
    record = json.loads((project / ".cruft.json").read_text())
    assert record["commit"] == git(template, "rev-parse", "HEAD").strip()
    check = subprocess.run([*cruft, "check"], cwd=project, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
