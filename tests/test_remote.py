"""The DVC remote through the generated Makefile. A cloud bake's placeholder URL stops `make push`
and `make pull` with one line naming the value to set, `make setup` says the same line after its
offline first run, and CI's targets name it too; CI's pull names why it got less than everything.

No cloud plugin (dvc-s3, ...) is in the shared venv, and these tests install none: that needs the
network and would change the venv every test shares. So "DVC could not use the remote" is an S3 URL
DVC cannot use here (without dvc-s3 it says so; with it, the closed loopback endpoint refuses) and a
file where the remote's directory should be; "outputs missing" is an empty local directory.
"""

import hashlib
import re
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import CHOICES, MAKE_ERROR, bake, git, in_venv, make

CLOUD_REMOTES = [remote for remote in CHOICES["dvc_remote"] if remote != "local"]
# The value each placeholder URL stands for, as the template's .dvc/config spells it.
PLACEHOLDER = re.compile(r"url = (\w+)://CHANGE-ME-(\w+)/\S+")


def advice(project: Path) -> str:
    """The one line that names what to set, built from the bake's own .dvc/config."""
    match = PLACEHOLDER.search((project / ".dvc/config").read_text())
    url, scheme, value = match.group(0).removeprefix("url = "), match.group(1), match.group(2)
    return (
        f"DVC remote 'storage' is still {url}: set your {value} in .dvc/config "
        f"(url = {scheme}://<{value}>/<path>) and commit it; see README, 'DVC remote'"
    )


def snapshot(project: Path) -> dict[str, str]:
    return {
        str(path.relative_to(project)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in project.rglob("*")
        if path.is_file() and ".git" not in path.relative_to(project).parts
    }


@pytest.mark.parametrize("remote", CLOUD_REMOTES)
def test_a_placeholder_remote_is_named_in_one_line(remote, tmp_path):
    project = bake(tmp_path, project_name=f"Placeholder {remote}", dvc_remote=remote)
    line = advice(project)
    before = snapshot(project)

    for target in ("push", "pull"):
        result = make(project, target, check=False)
        assert result.returncode != 0 and result.stdout == ""
        mine, make_error = result.stderr.splitlines()
        assert mine == line and MAKE_ERROR.match(make_error), result.stderr

    # CI: the placeholder comes before the credentials (a fork PR's run says it too).
    for credentials in ("success", "skipped"):
        result = make(project, "pull-if-reachable", check=False, CREDENTIALS=credentials)
        assert result.returncode == 0
        assert result.stdout == f"::warning title=DVC remote not set::{line}\n"
    result = make(project, "push-if-reachable", check=False, CREDENTIALS="success")
    assert result.returncode != 0
    assert result.stdout == f"::error title=DVC remote not set::{line}\n"

    assert snapshot(project) == before


def test_without_a_remote_ci_says_so_and_goes_on(tmp_path):
    """A local bake on a runner: its remote lives in .dvc/config.local, never committed."""
    project = bake(tmp_path, project_name="No Remote Here")
    pull = make(project, "pull-if-reachable")
    assert pull.stdout == (
        "::notice title=No DVC remote::none is configured here; "
        "the pipeline rebuilds what it needs\n"
    )
    push = make(project, "push-if-reachable")
    assert push.stdout == (
        "::notice title=No DVC remote::none is configured here; "
        "set one (README) to keep what CI trains\n"
    )


def cached_outputs(project: Path) -> list[str]:
    """The outputs DVC keeps in its cache and remote (metrics and plots are committed to git)."""
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    return sorted(
        out["path"]
        for stage in lock["stages"].values()
        for out in stage.get("outs", [])
        if not out["path"].startswith(("metrics/", "plots/"))
    )


def pull_if_reachable(project: Path, url: str, **settings: str) -> str:
    """CI's pull with the remote's URL set in .dvc/config.local, as `dvc remote modify --local`
    sets it, from a clone's state: no cache and no outputs."""
    in_venv(["dvc", "remote", "modify", "--local", "storage", "url", url], cwd=project)
    for option, value in settings.items():
        in_venv(["dvc", "remote", "modify", "--local", "storage", option, value], cwd=project)
    shutil.rmtree(project / ".dvc/cache", ignore_errors=True)
    for output in cached_outputs(project):
        (project / output).unlink(missing_ok=True)
    result = make(project, "pull-if-reachable", CREDENTIALS="success")
    return result.stdout


def test_setup_runs_offline_then_ci_pull_names_why_it_fell_short(tmp_path):
    """`make setup` without its install step: the shared venv already holds the pipeline's
    packages, and installing this bake would add dvc[s3] to it. PYTHONPATH gives its stages the
    bake's package instead."""
    project = bake(tmp_path, project_name="Remote Causes", dvc_remote="s3")
    line = advice(project)
    config = (project / ".dvc/config").read_bytes()

    setup = make(project, "-o", "install", "setup", PYTHONPATH="src")
    assert "Committed the first pipeline run" in setup.stdout
    assert setup.stderr == f"{line}\n"  # the only line it writes to stderr, after the first run
    assert git(project, "status", "--porcelain") == ""

    outputs = cached_outputs(project)
    count = len(outputs)
    named = ", ".join(outputs[:5]) + (f" and {count - 5} more" if count > 5 else "")
    # A remote with everything: make push passes the check and uploads.
    full = tmp_path / "full-remote"
    in_venv(["dvc", "remote", "modify", "--local", "storage", "url", str(full)], cwd=project)
    assert make(project, "push").stderr == ""
    assert any(full.rglob("*"))

    empty = tmp_path / "empty-remote"
    empty.mkdir()
    assert pull_if_reachable(project, str(empty)).endswith(
        f"::notice title=Incomplete DVC pull::{count} outputs are not in the remote yet "
        f"({named}); dvc repro rebuilds them\n"
    )

    not_a_directory = tmp_path / "a-file"
    not_a_directory.write_text("")
    unusable = {
        str(not_a_directory): {},
        "s3://remote-causes-bucket/data": {"endpointurl": "http://127.0.0.1:9"},
    }
    for url, settings in unusable.items():
        stdout = pull_if_reachable(project, url, **settings)
        errors = [line for line in stdout.splitlines() if line.startswith("ERROR: ")]
        dvc_error = errors[0].removeprefix("ERROR: ")  # DVC's own first error line, quoted
        assert stdout.endswith(
            f"::warning title=DVC remote error::dvc pull failed: {dvc_error}; "
            "the pipeline rebuilds from what it can get "
            "(check the remote's URL and credentials; see README, 'DVC remote')\n"
        )

    # No credentials in the job (a fork PR) is its own line; a complete pull writes none.
    assert make(project, "pull-if-reachable", CREDENTIALS="skipped").stdout == (
        "::notice title=DVC remote not reachable::no credentials here (fork PRs never get them); "
        "the pipeline rebuilds from what it can get\n"
    )
    in_venv(["dvc", "remote", "modify", "--local", "--unset", "storage", "endpointurl"], project)
    stdout = pull_if_reachable(project, str(full))
    assert "::" not in stdout and all((project / output).is_file() for output in outputs)
    assert make(project, "pull").stderr == ""

    assert git(project, "status", "--porcelain") == ""
    assert (project / ".dvc/config").read_bytes() == config
