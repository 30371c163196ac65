"""`make github-check` against the gh stand-in (tests/act/bin/gh): in a bake of the issue's walk
(s3 remote, Kubernetes, an EC2 training runner), every required item is missing until the very
commands it prints have been run, in the order it prints them; then it exits 0. Logged in
without a repository, it says gh's error and exits 1. (Every bake of the matrix lists what its
workflows read: test_bake.py.)"""

import os
import re
from pathlib import Path

import pytest
from conftest import SHARED_VENV, TEMPLATE, bake, git, run

ACT_BIN = TEMPLATE / "tests/act/bin"
ANSWERS = {
    "task": "multiclass_classification",
    "model": "random_forest",
    "dvc_remote": "s3",
    "deploy_target": "kubernetes",
    "training_runner": "aws-ec2",
}
# An item's first line: its status, what it is, required or optional.
ITEM = re.compile(r"^  (missing|set|not set)\s+(\S.*?): (required|optional)", re.MULTILINE)
# The command under an item: what the user copies.
COMMAND = re.compile(r"^ {12}((?:gh|\.venv/bin/dvc) .*)$", re.MULTILINE)
# What the placeholders of the printed commands stand for here.
VALUES = {"<value>": "stand-in-value", "<bucket>": "acme-models"}


def exit_code(done) -> int:
    """The command's own exit code, under make (which exits 2 naming it: "Error 1")."""
    failed = re.search(r"\*\*\* \[.*\] Error (\d+)$", done.stderr, re.MULTILINE)
    return int(failed[1]) if done.returncode and failed else done.returncode


def github_check(project: Path, record: Path, token: str = "stand-in-token"):
    """`make github-check` with the gh stand-in first on PATH (logged in when `token` is set)."""
    env = {
        "PATH": f"{ACT_BIN}{os.pathsep}{os.environ['PATH']}",
        "STUB_RECORD": str(record),
        "STUB_BIN": str(ACT_BIN),
        "STUB_VENV": str(SHARED_VENV),
        "GH_TOKEN": token,
        "GITHUB_TOKEN": "",
        "GH_HOST": "",
        "GH_REPO": "",
    }
    command = ["make", "--no-print-directory", "github-check", f"VENV={SHARED_VENV}"]
    return run(command, cwd=project, env=env, check=False), env


def set_it(project: Path, command: str, env: dict[str, str]) -> None:
    """One printed command, as a user runs it: the placeholders filled in, a secret on stdin."""
    for placeholder, value in VALUES.items():
        command = command.replace(placeholder, value)
    words = command.split()
    if words[0] == ".venv/bin/dvc":
        words[0] = str(SHARED_VENV / "bin/dvc")
    else:
        words[0] = str(ACT_BIN / "gh")
    done = run(words, cwd=project, env=env, check=False)
    assert done.returncode == 0, f"{command}: {done.stderr}"


@pytest.fixture
def project(tmp_path) -> Path:
    project = bake(tmp_path / "bake", **ANSWERS)
    git(project, "init", "--quiet", "--initial-branch=main")
    git(project, "remote", "add", "origin", "https://github.com/acme/churn-model.git")
    return project


def test_required_items_are_missing_until_the_printed_commands_set_them(project, tmp_path):
    record = tmp_path / "record"
    record.mkdir()
    before, env = github_check(project, record)
    items = ITEM.findall(before.stdout)
    required = [what for state, what, need in items if need == "required"]
    assert exit_code(before) == 1, before.stdout + before.stderr
    assert {state for state, _, need in items if need == "required"} == {"missing"}
    assert {state for state, _, need in items if need == "optional"} == {"not set"}
    assert required == [
        "DVC remote storage",
        "variable AWS_REGION",
        "variable DVC_AWS_ROLE_ARN",
        # The EC2 runner's: the role and image, and the token that registers the runner (the
        # workflow token cannot).
        "variable TRAINING_AWS_AMI_ID",
        "variable TRAINING_AWS_REGION",
        "variable TRAINING_AWS_ROLE_ARN",
        "secret TRAINING_RUNNER_TOKEN",
        "environment production",
        "secret KUBECONFIG of environment production",
        "environment staging",
        "secret KUBECONFIG of environment staging",
    ]
    assert before.stderr.strip().splitlines()[-2] == (
        f"github-check: {len(required)} required missing: {', '.join(required)}"
    )
    commands = COMMAND.findall(before.stdout)
    assert len(commands) == len(items)  # one per item (a note's command is indented less)
    # Every command but the last required one, in the printed order: an environment's secret
    # after the environment (the stand-in refuses it before, as GitHub does).
    last = "gh secret set KUBECONFIG --env staging"
    for command in commands:
        if command != last:
            set_it(project, command, env)
    almost, _ = github_check(project, record)
    assert exit_code(almost) == 1
    assert almost.stderr.strip().splitlines()[-2] == (
        "github-check: 1 required missing: secret KUBECONFIG of environment staging"
    )
    set_it(project, last, env)
    after, _ = github_check(project, record)
    assert exit_code(after) == 0, after.stdout + after.stderr
    assert {state for state, _, _ in ITEM.findall(after.stdout)} == {"set"}
    verdict = after.stdout.strip().splitlines()[-1]
    assert verdict.startswith("github-check: everything required is set")
    # Names only: the check never asks for a value.
    calls = (record / "gh-calls.txt").read_text().splitlines()
    assert "auth status" in calls and "variable list --json name" in calls
    assert "secret list --env staging --json name" in calls
    assert not [call for call in calls if " get " in f" {call} "]


def test_logged_in_without_a_repository_says_why_and_fails(tmp_path):
    project = bake(tmp_path / "bake", **ANSWERS)
    git(project, "init", "--quiet", "--initial-branch=main")  # no origin, no GH_REPO
    record = tmp_path / "record"
    record.mkdir()
    done, _ = github_check(project, record)
    assert exit_code(done) == 1
    verdict = done.stderr.strip().splitlines()[-2]
    assert verdict.startswith("github-check: not checked against GitHub: gh api ")
    assert "no git remotes found" in verdict


def test_not_logged_in_lists_and_says_it_did_not_check(project, tmp_path):
    record = tmp_path / "record"
    record.mkdir()
    done, _ = github_check(project, record, token="")
    # The DVC remote is checked here all the same: its placeholder alone fails the command.
    assert exit_code(done) == 1
    assert ITEM.findall(done.stdout) == [("missing", "DVC remote storage", "required")]
    assert done.stderr.strip().splitlines()[-2] == (
        "github-check: not checked against GitHub: gh is not logged in (gh auth login); "
        "checked here, 1 required missing: DVC remote storage"
    )
    assert (record / "gh-calls.txt").read_text().splitlines() == ["auth status"]
