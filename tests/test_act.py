"""The generated workflows, run by `act` in host mode on a baked project with git history.

Third-party actions are replaced by the stand-ins in tests/act/stubs (matched by their pinned SHA);
`cml` is a recording stand-in (CML itself cannot be installed here) that checks its arguments and
keeps the comment body. act copies the repository into its own workspace, so the project under
test is a temporary bake; the test venv stands in for setup-python.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import SHARED_VENV, TEMPLATE, bake, git, make, run

ACT_DIR = TEMPLATE / "tests" / "act"
OWNER_REPO = "acme/act-demo"
ACTIONS = json.loads((TEMPLATE / "cookiecutter.json").read_text())["__actions"]


def act(project: Path, event_name: str, event: dict, workflow: str, record: Path):
    """Run one workflow under act; returns the completed process (output kept for asserts)."""
    record.mkdir(parents=True, exist_ok=True)
    event_file = record / "event.json"
    event_file.write_text(json.dumps(event))
    stubs = []
    for pin in ACTIONS.values():
        ref = pin.split(" #")[0]
        stub = ACT_DIR / "stubs" / ref.split("@")[0].split("/")[1]
        if stub.is_dir():
            stubs += ["--local-repository", f"{ref}={stub}"]
    command = [
        str(SHARED_VENV / "bin" / "act"), event_name,
        "-e", str(event_file),
        "-W", f".github/workflows/{workflow}",
        "-P", "ubuntu-latest=-self-hosted",
        *stubs,
        "-s", "GITHUB_TOKEN=stand-in-token",
        "--env", f"STUB_VENV={SHARED_VENV}",
        "--env", f"STUB_RECORD={record}",
        "--env", f"STUB_BIN={ACT_DIR / 'bin'}",
    ]  # fmt: skip
    env = {**os.environ, "PATH": f"{SHARED_VENV / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        command, cwd=project, env=env, capture_output=True, text=True, timeout=900
    )
    (record / "act.log").write_text(result.stdout + result.stderr)
    return result


@pytest.fixture(scope="session")
def set_up_project(tmp_path_factory) -> Path:
    """One baked project after `make setup` (its first commit holds the base metrics), with an
    origin that looks like GitHub's. Each test works on its own copy."""
    root = tmp_path_factory.mktemp("act-origin")
    project = bake(root, project_name="Act Demo")
    make(project, "setup", DVC_REMOTE_DIR=str(root / "local-remote"))
    git(project, "remote", "add", "origin", f"https://github.com/{OWNER_REPO}.git")
    git(project, "update-ref", "refs/remotes/origin/main", "HEAD")
    return project


def copy_of(project: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(project, tmp_path / project.name, symlinks=True))


REPOSITORY = {"full_name": OWNER_REPO, "name": "act-demo", "owner": {"login": "acme"}}


@pytest.mark.xdist_group("act-setup")
def test_pr_report_posts_one_comment_then_the_gate_fails(set_up_project, tmp_path):
    project = copy_of(set_up_project, tmp_path)
    git(project, "switch", "--quiet", "--create", "tune")
    params = project / "params.yaml"
    text = params.read_text().replace("learning_rate: 0.1", "learning_rate: 0.3")
    # A threshold no model can meet, so this PR exercises the gate's failure path.
    params.write_text(text.replace("max_drop: 0.01", "max_drop: -1.0"))
    git(project, "commit", "--quiet", "--all", "--message", "Tune the learning rate")
    event = {
        "action": "synchronize",
        "number": 7,
        "pull_request": {
            "number": 7,
            "base": {"ref": "main"},
            "head": {"ref": "tune", "repo": {"full_name": OWNER_REPO, "fork": False}},
        },
        "repository": REPOSITORY,
    }
    record = tmp_path / "record"
    result = act(project, "pull_request", event, "pr-report.yml", record)
    log = result.stdout + result.stderr

    assert result.returncode != 0, "the gate job must fail"
    assert "Regression gate" in log and "🏁  Job succeeded" in log
    assert "No DVC remote" in log  # the local remote does not exist on a runner: rebuilt instead
    args = (record / "cml-args.txt").read_text().split("\n")
    assert args[:4] == ["--target", "pr/7", "--watermark-title", "model-report"]
    assert "--no-publish" in args and f"https://github.com/{OWNER_REPO}" in args
    assert "ITERATIVE_DO_NOT_TRACK=1" in (record / "cml-env.txt").read_text()
    comment = (record / "cml-comment.md").read_text()
    assert comment == (record / "artifacts/pr-report/report.md").read_text()
    assert (record / "artifacts/pr-report/pr-number").read_text().strip() == "7"
    assert comment.startswith("## ❌ Model report: act-demo")
    assert "| `train.hyperparameters.learning_rate` | 0.1 | 0.3 |" in comment
    assert "compared with**: `origin/main`" in comment
    deltas = [
        line.split("|")[4].strip()
        for line in comment.split("### Metrics")[1].split("###")[0].splitlines()
        if line.startswith("| `")
    ]
    assert any(delta not in ("0", "—") for delta in deltas), deltas


@pytest.mark.xdist_group("act-setup")
def test_retrain_pushes_what_main_needs_to_the_remote(set_up_project, tmp_path):
    project = copy_of(set_up_project, tmp_path)
    remote = tmp_path / "team-remote"
    # A remote every clone can reach, committed as a team would (the runner has no config.local).
    run(
        [str(SHARED_VENV / "bin" / "dvc"), "remote", "add", "--default", "team", str(remote)],
        cwd=project,
    )
    make(project, "push")
    before = {path for path in remote.rglob("*") if path.is_file()}
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("learning_rate: 0.1", "learning_rate: 0.2"))
    git(project, "commit", "--quiet", "--all", "--message", "Retrain with a new learning rate")
    event = {"ref": "refs/heads/main", "repository": REPOSITORY}
    record = tmp_path / "record"
    result = act(project, "push", event, "retrain.yml", record)

    assert result.returncode == 0, result.stdout[-4000:]
    lock = yaml.safe_load((record / "artifacts/retrained/dvc.lock").read_text())
    cached = {  # metrics and plots are committed to git (cache: false), not pushed
        out["path"]: out["md5"]
        for stage in lock["stages"].values()
        for out in stage.get("outs", [])
        if not out["path"].startswith(("metrics/", "plots/"))
    }
    stored = {path.parent.name + path.name for path in remote.rglob("*") if path.is_file()}
    assert set(cached) == {
        "data/raw/dataset.csv",
        "data/prepared/train.csv",
        "data/prepared/test.csv",
        "models/model.joblib",
        "models/model.onnx",
    }
    for path, md5 in cached.items():
        assert md5 in stored, f"{path} ({md5}) is not in the remote"
    assert {path for path in remote.rglob("*") if path.is_file()} > before


def test_ci_lints_and_tests(tmp_path):
    """No pipeline run needed: a fresh bake in its own git repository."""
    project = bake(tmp_path, project_name="Act Ci")
    git(project, "init", "--quiet", "--initial-branch=main")
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--message", "Baked")
    git(project, "remote", "add", "origin", f"https://github.com/{OWNER_REPO}.git")
    event = {"ref": "refs/heads/main", "repository": REPOSITORY}
    result = act(project, "push", event, "ci.yml", tmp_path / "record")
    assert result.returncode == 0, result.stdout[-4000:]
    assert "make lint" in result.stdout and " passed" in result.stdout
