"""AGENTS.md, the generated project's page for coding agents, names only commands that exist
and run: every bake checks that each `make <target>` it names is a target of its Makefile
(test_bake.py); here every named command runs, on the project the act and serving tests already
set up, or is found in the test that already runs it, so nothing is run twice."""

import re
import shutil
from pathlib import Path

import pytest
from conftest import TEMPLATE, git, make

# The command AGENTS.md names -> the test file that runs it on a set-up bake.
RUN_ELSEWHERE = {
    "setup": "test_pipeline.py",
    "repro": "test_pipeline.py",
    "test": "test_pipeline.py",
    "lint": "test_pipeline.py",
    "report": "test_pipeline.py",
    "schema": "test_own_data.py",
    "restore": "test_own_data.py",
    "push": "test_own_data.py",
    "pull": "test_own_data.py",
    "tune": "test_tune.py",
    "tune-apply": "test_tune.py",
}
# Run by `make setup` (a prerequisite of it), so wherever setup runs.
RUN_BY_SETUP = {"install"}
# Run by no other test: run here.
RUN_HERE = {"help", "metrics", "format"}


def named_targets(agents_md: str) -> list[str]:
    """The targets of every `make <target> ...` command in the text, in order, once each."""
    return list(dict.fromkeys(re.findall(r"`make ([a-z][\w-]*)", agents_md)))


def runs_target(test_source: str, target: str) -> bool:
    """Whether a test file runs `make <target>` through conftest's make() or a make command line."""
    return bool(
        re.search(rf'\bmake\(\w+, "{target}"', test_source)
        or re.search(rf'"make", "--no-print-directory", "{target}"', test_source)
    )


def test_named_targets_reads_each_make_command():
    text = "`make setup` ... `make push` / `make pull`, `make report BASE=main`; `make setup` again"
    assert named_targets(text) == ["setup", "push", "pull", "report"]
    assert runs_target('make(project, "report", BASE=b)', "report")
    assert not runs_target('make(project, "reporting")', "report")


@pytest.mark.xdist_group("act-setup")
def test_every_command_agents_md_names_runs(set_up_project, tmp_path):
    project = Path(shutil.copytree(set_up_project, tmp_path / "project", symlinks=True))
    named = named_targets((project / "AGENTS.md").read_text())
    assert set(named) == set(RUN_ELSEWHERE) | RUN_BY_SETUP | RUN_HERE, (
        "a command AGENTS.md names must be run by a test: add it to RUN_HERE or RUN_ELSEWHERE"
    )

    listed = re.findall(r"^  ([a-z][\w-]*) ", make(project, "help").stdout, re.M)
    assert not set(named) - set(listed), "AGENTS.md names a command make help does not list"

    for target, test_file in RUN_ELSEWHERE.items():
        source = (TEMPLATE / "tests" / test_file).read_text()
        assert runs_target(source, target), f"{test_file} does not run make {target}"
    makefile = (project / "Makefile").read_text()
    for target in RUN_BY_SETUP:
        assert re.search(rf"^setup: (.* )?{target}( |$)", makefile, re.M), target

    shown = make(project, "metrics").stdout
    assert "roc_auc" in shown and "max_abs_diff" in shown  # scores, holdout, ONNX parity
    make(project, "format")  # on the project as baked: ruff finds nothing to change
    assert git(project, "status", "--porcelain") == ""
