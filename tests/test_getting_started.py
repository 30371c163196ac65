"""docs/getting-started.md, walked as written for three bakes (default; s3 + kubernetes; gs +
cloud-run): every command of its fenced bash blocks runs, in page order, and must work, except the
blocks the page itself marks (an HTML comment before the block, invisible on the site):

- `<!-- walk: github: why -->`: needs GitHub or the network (a push, a PR): not run;
- `<!-- walk: skip: why -->`: not a command of the bake, or one that never ends: not run;
- `<!-- walk: cloud remote -->`: run only when the bake has a cloud DVC remote.

What stands in for what is not here: the template's URL is this checkout and `pipx run
cookiecutter` the shared venv's cookiecutter (no network); `gh` is the recording stand-in
(tests/act/bin/gh, logged in, its repository state in a local store), against which `make
github-check` checks, and the commands it prints are run as the page says; `gh repo create` is
skipped, so the walk adds the `origin` it would add. The placeholders get values
(`<owner>` acme, `<bucket>` acme-models), and a cloud remote's URL the bake's scheme.

Its wall time: section 7 (the loop: score, drift, live performance) reads no answer the three
differ in, so it is walked in the default bake only; the three bakes share one DVC cache
(`dvc cache dir --local`), so the first `make setup` runs the pipeline and the other two restore
every stage from DVC's run-cache."""

import json
import os
import re
from pathlib import Path

import pytest
from conftest import SHARED_VENV, TEMPLATE, bake, git, run
from test_github_check import ACT_BIN, COMMAND, set_it

PAGE = TEMPLATE / "docs/getting-started.md"
# A fenced bash block and the walk marker right above it, if any.
BLOCK = re.compile(
    r"(?:<!-- walk: (?P<marker>[^>]*?) -->\n)?```bash\n(?P<body>.*?)^```", re.M | re.S
)
OWNER = "acme"
COMBOS = {
    "default": {},
    "s3-kubernetes": {"dvc_remote": "s3", "deploy_target": "kubernetes"},
    "gs-cloud-run": {"dvc_remote": "gs", "deploy_target": "cloud-run"},
}
# The section whose commands depend on no answer the three bakes differ in (DVC remote, deploy
# target): walked in the default bake only, which keeps the test's wall time down.
LOOP = "7. Close the loop"
# One project name for the three: the same module, so the same stages for DVC's run-cache.
PROJECT_NAME = "Walk Demo"


def page_blocks(text: str, section: str = "") -> list[tuple[str | None, list[str]]]:
    """Each fenced bash block with its marker, as its command lines (a `\\` continuation
    joined, whole-line comments dropped); with `section`, only the blocks under the `## `
    heading that starts so."""
    blocks = []
    for found in BLOCK.finditer(text):
        heading = re.findall(r"^## (.*)$", text[: found.start()], re.M)
        if section and not (heading and heading[-1].startswith(section)):
            continue
        body = found["body"].replace("\\\n", " ")
        lines = [line.strip() for line in body.splitlines()]
        blocks.append((found["marker"], [line for line in lines if line and line[0] != "#"]))
    return blocks


def test_every_marker_is_one_the_walk_knows():
    """A marker the walk would not understand, or a block marked without a reason, fails here
    rather than silently skipping commands."""
    markers = [marker for marker, _ in page_blocks(PAGE.read_text()) if marker]
    assert markers and all(
        marker == "cloud remote" or re.fullmatch(r"(github|skip): \S.*", marker)
        for marker in markers
    ), markers
    # Every comment that starts like a marker is one (no typo leaves a block unmarked).
    assert len(re.findall(r"<!-- walk", PAGE.read_text())) == len(markers)


def substitute(command: str, project: Path, answers: dict[str, str]) -> str:
    scheme = answers.get("dvc_remote", "local")
    command = re.sub(r"(?<![\w/])\.venv/bin/", f"{SHARED_VENV}/bin/", command)
    command = command.replace("pipx run cookiecutter", str(SHARED_VENV / "bin/cookiecutter"))
    command = command.replace("gh:<owner>/cookiecutter-mlops-actions", str(TEMPLATE))
    if scheme != "local":
        command = command.replace("s3://", f"{scheme}://")
    for placeholder, value in {
        "<project_slug>": project.name, "<owner>": OWNER, "<bucket>": "acme-models",
    }.items():  # fmt: skip
        command = command.replace(placeholder, value)
    return command


@pytest.fixture(scope="module")
def dvc_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("walk-dvc-cache")


@pytest.mark.xdist_group("walk")
@pytest.mark.parametrize("combo", COMBOS)
def test_getting_started_works_as_written(combo, dvc_cache, tmp_path):
    answers = {"project_name": PROJECT_NAME, **COMBOS[combo]}
    cloud = answers.get("dvc_remote", "local") != "local"
    project = bake(tmp_path / "projects", **answers)
    run([str(SHARED_VENV / "bin/dvc"), "cache", "dir", "--local", str(dvc_cache)], project)
    record = tmp_path / "gh-record"
    record.mkdir()
    env = {
        "VENV": str(SHARED_VENV),  # the Makefile's `VENV ?= .venv`: the shared venv instead
        "DVC_REMOTE_DIR": str(tmp_path / "dvc-remote"),
        "DVC_NO_ANALYTICS": "1",
        "PATH": f"{ACT_BIN}{os.pathsep}{os.environ['PATH']}",
        "STUB_RECORD": str(record),
        "STUB_BIN": str(ACT_BIN),
        "STUB_VENV": str(SHARED_VENV),
        "GH_TOKEN": "stand-in-token",
        "GITHUB_TOKEN": "",
        "GH_HOST": "",
        "GH_REPO": "",
        **{f"GIT_{who}_NAME": "Template Tests" for who in ("AUTHOR", "COMMITTER")},
        **{f"GIT_{who}_EMAIL": "tests@example.com" for who in ("AUTHOR", "COMMITTER")},
    }
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    cwd, walked, skipped, printed = scratch, [], [], []
    for marker, commands in page_blocks(PAGE.read_text()):
        if combo != "default" and commands in [c for _, c in page_blocks(PAGE.read_text(), LOOP)]:
            continue  # the loop's commands read no answer of these: walked in the default bake
        if marker and marker.split(":")[0] in ("github", "skip"):
            skipped += commands
            if commands[0].startswith("gh repo create"):  # what it does to the clone
                git(
                    project,
                    "remote",
                    "add",
                    "origin",
                    f"https://github.com/{OWNER}/{project.name}.git",
                )
            continue
        if marker == "cloud remote" and not cloud:
            continue
        for command in commands:
            if command.startswith("cd "):  # the bake this walk follows, in place of the page's
                cwd = project
                walked.append(command)
                continue
            shell = substitute(command, project, answers)
            github_check = command.split("#")[0].strip() == "make github-check"
            if github_check and printed:  # "run each command it prints, in its order"
                for printed_command in printed:
                    set_it(project, printed_command, env)
                printed = []
            done = run(["bash", "-c", shell], cwd, env=env, check=False)
            output = done.stdout + done.stderr
            walked.append(command)
            if github_check and not printed and "required missing" in done.stderr:
                printed = [c for c in COMMAND.findall(done.stdout) if c.startswith("gh ")]
                continue  # the first check names what is missing: exit 1 is its answer
            assert done.returncode == 0, f"{command!r} failed in {cwd}:\n{output[-4000:]}"
            if "# prints nothing" in command:
                assert done.stdout == "", f"{command!r} printed:\n{done.stdout}"
            if github_check:
                assert "github-check: everything required is set" in done.stdout, output
    # The walk went through every section: the bake, setup, the checks, a commit, the loop.
    assert any(c.startswith("pipx run cookiecutter --no-input") for c in walked)
    assert {"make setup", "make github-check", "git commit -am"} <= {
        " ".join(c.split("#")[0].split()[: 2 if c.startswith("make") else 3]) for c in walked
    }
    assert "git push -u origin main" in skipped
    assert (scratch / "churn-model/.cruft.json").exists()  # the page's --no-input bake
    if combo == "default":
        assert any(c.startswith("make drift") for c in walked)
        # make metrics (make demo's last step) shows ONNX parity with its digits: DVC's default
        # rounding showed a max_abs_diff of 6.6e-07 as 0.0.
        shown = run(["make", "--no-print-directory", "metrics"], project, env=env).stdout
        table = shown.split("| metrics/onnx.json", 1)[0].splitlines()[-2].split("|")
        row = shown.split("| metrics/onnx.json", 1)[1].splitlines()[0].split("|")
        column = [name.strip() for name in table].index("max_abs_diff") - 1
        parity = json.loads((project / "metrics/onnx.json").read_text())["max_abs_diff"]
        assert parity > 0 and float(row[column]) == pytest.approx(parity, rel=1e-3)
        assert (project / "drift/report.md").exists() and (
            project / "performance/report.md"
        ).exists()
    changed = git(project, "diff", "--name-only", "main", "HEAD").split()
    assert changed == ["params.yaml"]
    assert git(project, "status", "--porcelain") == ""


def test_the_hyperparameter_change_exists_for_every_family(tmp_path):
    """Section 5's `sed` changes a line for every family and task (linear: `alpha` or `C`), so
    the page's `git commit -am` that follows has something to commit."""
    [(_, commands)] = [
        (marker, commands)
        for marker, commands in page_blocks(PAGE.read_text())
        if any(c.startswith("git commit -am") for c in commands)
    ]
    # Only linear's hyperparameters differ by task (logistic regression's C, ridge's alpha).
    families = [("hist_gradient_boosting", "binary_classification"), ("linear", "regression")]
    families += [("random_forest", "binary_classification"), ("linear", "binary_classification")]
    for model, task in families:
        project = bake(tmp_path / f"{model}-{task}", model=model, task=task)
        git(project, "init", "--quiet", "--initial-branch=main")
        git(project, "add", "--all")
        git(project, "commit", "--quiet", "-m", "baked")
        for command in commands:
            env = {f"GIT_{w}_{k}": v for w in ("AUTHOR", "COMMITTER")
                   for k, v in (("NAME", "Tests"), ("EMAIL", "tests@example.com"))}  # fmt: skip
            done = run(["bash", "-c", command], project, env=env, check=False)
            assert done.returncode == 0, f"{model}, {task}: {command}\n{done.stdout}"
        diff = git(project, "diff", "--unified=0", "HEAD~1", "HEAD")
        changed = [line for line in diff.splitlines() if re.match(r"^[-+] ", line)]
        assert len(changed) == 2, (model, task, diff)


def test_a_bad_answer_shows_what_the_page_says(tmp_path):
    """What getting-started says cookiecutter prints for a refused answer and for a value that
    is not a choice, line counts included, and that nothing is written."""
    page = PAGE.read_text()
    hook_line = re.search(r"`(ERROR: project_slug 'Churn Model': [^`]+)`", page)[1]
    stdout_lines = int(re.search(r"cookiecutter prints\s+(\d+) lines on stdout", page)[1])
    choice_line = re.search(r"`(ValueError: foo provided [^`]+)`", page)[1]
    traceback_lines = int(re.search(r"with a (\d+)-line Python traceback", page)[1])
    cookiecutter = [str(SHARED_VENV / "bin/cookiecutter"), "--no-input", str(TEMPLATE)]

    refused = run([*cookiecutter, "project_slug=Churn Model"], tmp_path, check=False)
    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [hook_line]
    assert len(refused.stdout.splitlines()) == stdout_lines
    assert refused.stdout.startswith(
        "ERROR: Stopping generation because pre_gen_project hook script didn't exit successfully"
    )
    assert refused.stdout.splitlines()[-1] == "Hook script failed (exit status: 1)"

    not_a_choice = run([*cookiecutter, "task=foo"], tmp_path, check=False)
    assert not_a_choice.returncode == 1 and not_a_choice.stdout == ""
    assert len(not_a_choice.stderr.splitlines()) == traceback_lines
    assert not_a_choice.stderr.splitlines()[-1] == choice_line
    assert list(tmp_path.iterdir()) == []
