"""The generated workflows, run by `act` in host mode on a baked project with git history.

Third-party actions are replaced by the stand-ins in tests/act/stubs (matched by their pinned SHA);
`cml` is a recording stand-in (CML itself cannot be installed here) that checks its arguments and
keeps the comment body. act copies the repository into its own workspace, so the project under
test is a temporary bake; the test venv stands in for setup-python.
"""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
import yaml
from conftest import OWNER_REPO, SHARED_VENV, TEMPLATE, assert_mermaid_parses, bake, git, make, run

ACT_DIR = TEMPLATE / "tests" / "act"
# act gives each step a pseudo-terminal and copies its output in the background; when the step
# fails, act returns without waiting for that copy (nektos/act, pkg/container/host_environment.go,
# HostEnvironment.exec), so on a loaded machine the ::error line a failing step prints last can be
# lost. Without a pty device act reads the step through a pipe and waits for every line: the tests
# run act in a mount namespace where /dev/ptmx is /dev/null (root, as on this project's machines).
NO_PTY = ["unshare", "--mount", "--propagation", "private", "sh", "-c"]
NO_PTY += ['mount --bind /dev/null /dev/ptmx && exec "$0" "$@"']
ACTIONS = json.loads((TEMPLATE / "cookiecutter.json").read_text())["__actions"]


def act(
    project: Path,
    event_name: str,
    event: dict,
    workflow: str,
    record: Path,
    secrets: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    variables: dict[str, str] | None = None,
    self_hosted: tuple[str, ...] = (),
    cancel_at: str | None = None,
):
    """Run one workflow under act; returns the completed process (output kept for asserts).
    The recording stand-ins in tests/act/bin (cml, gh, kubectl, aws) come first on PATH;
    `variables` are the repository's (and environments') `vars`; the `self_hosted` runner labels
    run on this machine too. With `cancel_at`, the run is cancelled as GitHub's cancel button does
    once act has printed that text: act's first SIGINT cancels the running step and job, then
    runs the jobs and steps whose condition holds after a cancellation (`always()`)."""
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
        *NO_PTY, str(SHARED_VENV / "bin" / "act"), event_name,
        "-e", str(event_file),
        "-W", f".github/workflows/{workflow}",
        "-P", "ubuntu-latest=-self-hosted",
        *[arg for label in self_hosted for arg in ("-P", f"{label}=-self-hosted")],
        *stubs,
        "-s", "GITHUB_TOKEN=stand-in-token",
        *[arg for key, value in (secrets or {}).items() for arg in ("-s", f"{key}={value}")],
        "--env", f"STUB_VENV={SHARED_VENV}",
        "--env", f"STUB_RECORD={record}",
        "--env", f"STUB_BIN={ACT_DIR / 'bin'}",
        *[arg for key, value in (env or {}).items() for arg in ("--env", f"{key}={value}")],
        *[arg for key, value in (variables or {}).items() for arg in ("--var", f"{key}={value}")],
    ]  # fmt: skip
    path = os.pathsep.join([str(ACT_DIR / "bin"), str(SHARED_VENV / "bin"), os.environ["PATH"]])
    if cancel_at is not None:
        return cancelled_act(command, project, {**os.environ, "PATH": path}, record, cancel_at)
    result = subprocess.run(
        command, cwd=project, env={**os.environ, "PATH": path}, capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    (record / "act.log").write_text(result.stdout + result.stderr)
    return result


def cancelled_act(command: list[str], project: Path, env: dict, record: Path, cancel_at: str):
    """act, sent SIGINT (one, as a cancel) once its output holds `cancel_at`. NO_PTY's unshare and
    sh exec act, so the process started is act's."""
    log = record / "act.log"
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=project, env=env, stdout=out, stderr=out, text=True)
        deadline = time.monotonic() + 900
        while process.poll() is None and cancel_at not in log.read_text():
            assert time.monotonic() < deadline, "act never reached the point to cancel at"
            time.sleep(0.5)
        assert process.poll() is None, f"act ended before {cancel_at!r}"
        process.send_signal(signal.SIGINT)
        process.wait(timeout=900)
    return subprocess.CompletedProcess(command, process.returncode, log.read_text(), "")


def copy_of(project: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(project, tmp_path / project.name, symlinks=True))


REPOSITORY = {"full_name": OWNER_REPO, "name": "act-demo", "owner": {"login": "acme"}}


def pull_request_event(branch: str, number: int = 7) -> dict:
    """A same-repository PR's `synchronize` event, from `branch` into main."""
    return {
        "action": "synchronize",
        "number": number,
        "pull_request": {
            "number": number,
            "base": {"ref": "main"},
            "head": {"ref": branch, "repo": {"full_name": OWNER_REPO, "fork": False}},
        },
        "repository": REPOSITORY,
    }


def test_act_keeps_every_line_a_failing_step_prints(tmp_path):
    """The reason for NO_PTY: with a pseudo-terminal, act drops the tail of a failing step's
    output (2,707 and 2,760 of these 3,000 lines in two of three runs on an idle machine)."""
    repo = tmp_path / "repo"
    (repo / ".github/workflows").mkdir(parents=True)
    (repo / ".github/workflows/fail.yml").write_text(
        "on: push\njobs:\n  fail:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: |\n"
        '          for i in $(seq 1 3000); do echo "line $i"; done\n'
        '          echo "::error title=Last::the last word"\n'
        "          exit 1\n"
    )
    git(repo, "init", "--quiet")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--message", "a step that fails")
    result = act(repo, "push", {}, "fail.yml", tmp_path / "record")
    assert result.returncode != 0
    printed = re.findall(r"\| line (\d+)$", result.stdout, re.MULTILINE)
    assert printed == [str(i) for i in range(1, 3001)]
    assert "::error title=Last::the last word" in result.stdout


@pytest.mark.xdist_group("act-setup")
def test_pr_report_posts_one_comment_then_the_gate_fails(set_up_project, tmp_path):
    project = copy_of(set_up_project, tmp_path)
    git(project, "switch", "--quiet", "--create", "tune")
    params = project / "params.yaml"
    text = params.read_text().replace("learning_rate: 0.1", "learning_rate: 0.3")
    # A threshold no model can meet, so this PR exercises the gate's failure path.
    params.write_text(text.replace("max_drop: 0.01", "max_drop: -1.0"))
    git(project, "commit", "--quiet", "--all", "--message", "Tune the learning rate")
    event = pull_request_event("tune")
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


def shared_remote(set_up_project: Path, tmp_path: Path) -> Path:
    """A copy whose commit carries a DVC remote every clone reaches (the runner has no
    config.local), with everything pushed to it. The origin's owner is mixed case, as GitHub
    allows and GHCR does not."""
    project = copy_of(set_up_project, tmp_path)
    dvc = str(SHARED_VENV / "bin" / "dvc")
    run([dvc, "remote", "add", "--default", "team", str(tmp_path / "team-remote")], cwd=project)
    run([dvc, "push", "--remote", "team"], cwd=project)  # config.local still names `local`
    git(project, "commit", "--quiet", "--all", "--message", "Share the DVC remote")
    git(project, "remote", "set-url", "origin", "https://github.com/Acme/Act-Demo.git")
    return project


def release_event(tag: str) -> dict:
    repository = {"full_name": "Acme/Act-Demo", "name": "Act-Demo", "owner": {"login": "Acme"}}
    return {"ref": f"refs/tags/{tag}", "ref_type": "tag", "repository": repository}


def none_release_workflow(project: Path, tmp_path: Path) -> None:
    """release.yml as a project without a deploy target has it (build at the tag, deploy nothing),
    put in place of this Kubernetes project's (which promotes what staging built: see
    test_act_delivery.py) and committed; the other files of the two bakes are the same."""
    other = bake(tmp_path / "none-bake", project_name="Act Demo", deploy_target="none")
    workflow = ".github/workflows/release.yml"
    (project / workflow).write_text((other / workflow).read_text())
    git(project, "commit", "--quiet", "--all", "--message", "release.yml of deploy_target none")


@pytest.mark.xdist_group("act-setup")
def test_release_publishes_and_attests_the_tagged_model(set_up_project, tmp_path):
    """deploy_target none: the tag builds the release files and the image, nothing is deployed."""
    project = shared_remote(set_up_project, tmp_path)
    none_release_workflow(project, tmp_path)
    git(project, "tag", "v1.2.0")
    record = tmp_path / "record"
    # The champion, v1.1.0, the latest release: its metrics and its model (the committed one, so
    # both models score the holdout alike).
    latest = tmp_path / "latest-metrics.json"
    scores = json.loads((project / "metrics/scores.json").read_text())
    latest.write_text(json.dumps({"version": "1.1.0", "scores": {**scores, "roc_auc": 0.999}}))
    champion = {
        "STUB_GH_LATEST": "v1.1.0",
        "STUB_GH_LATEST_METRICS": str(latest),
        "STUB_GH_MODEL": str(project / "models/model.onnx"),
    }
    result = act(project, "push", release_event("v1.2.0"), "release.yml", record, env=champion)
    log = result.stdout + result.stderr
    assert result.returncode == 0, result.stdout[-6000:]
    holdout = len(pd.read_csv(project / "data/prepared/holdout.csv"))
    assert (
        f"release: promotion: v1.2.0 against the champion v1.1.0 on the same {holdout} holdout "
        "rows: `roc_auc`"
    ) in log
    gh = (record / "gh-calls.txt").read_text().splitlines()
    assert (
        "release download v1.1.0 --pattern metrics.json --pattern model.onnx --dir latest-release"
        in gh
    )
    assert "7 files fetched" in log and "Stage 'export' didn't change, skipping" in log

    # The release files, checked against their SHA256SUMS, reached `gh release create`.
    released = record / "release"
    names = {"model.onnx", "model-card.md", "metrics.json", "sbom.cdx.json", "image.txt"}
    names |= {"smoke.json", "champion.json"}
    assert {path.name for path in released.iterdir()} == {*names, "SHA256SUMS"}
    listed = {}
    for line in (released / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ")
        listed[name] = digest
        assert hashlib.sha256((released / name).read_bytes()).hexdigest() == digest, name
    assert set(listed) == names
    args = (record / "gh-args.txt").read_text().splitlines()
    assert args[:3] == ["release", "create", "v1.2.0"] and "--verify-tag" in args
    assert "--latest" in args and "--prerelease" not in args
    assert (record / "gh-env.txt").read_text().startswith("GH_REPO=Acme/Act-Demo GH_TOKEN=set")

    # The exact model of the tagged commit (from the DVC remote), stamped with the version.
    released_model = onnx.load(released / "model.onnx")
    committed_model = onnx.load(project / "models/model.onnx")
    assert released_model.graph == committed_model.graph
    metadata = {prop.key: prop.value for prop in released_model.metadata_props}
    assert metadata["model_version"] == "1.2.0"
    card = (released / "model-card.md").read_text()
    assert card.startswith("# Model card: Act Demo 1.2.0") and "## Limitations" in card
    assert "| metric | champion v1.1.0 | this release v1.2.0 | Δ | Δ 95% interval |" in card
    compared = json.loads((released / "champion.json").read_text())
    assert compared["paired"] is True and compared["passed"] is True
    assert compared["rows"] == {"split": "holdout", "count": holdout}
    sbom = json.loads((released / "sbom.cdx.json").read_text())
    components = {component["name"].lower() for component in sbom["components"]}
    assert {"onnxruntime", "numpy", "uvicorn"} <= components
    assert not components & {"scikit-learn", "pandas", "dvc"}, "the SBOM is of the runtime set"

    # The image: a lowercase GHCR name, semver tags, the version as build arg, then attested.
    assert (record / "metadata-images.txt").read_text().strip() == "ghcr.io/acme/act-demo"
    patterns = (record / "metadata-tags.txt").read_text()
    for pattern in ("{{version}}", "{{major}}.{{minor}}", "{{major}}"):
        assert f"type=semver,pattern={pattern}" in patterns
    assert "org.opencontainers.image.version=1.2.0" in (record / "metadata-labels.txt").read_text()
    build = (record / "docker-build.txt").read_text()
    assert "push=true" in build and "MODEL_VERSION=1.2.0" in build
    assert "tags=ghcr.io/acme/act-demo:from-metadata-stand-in" in build
    digest = "sha256:" + hashlib.sha256((released / "model.onnx").read_bytes()).hexdigest()
    assert (record / "attest-images.txt").read_text().strip() == (
        f"ghcr.io/acme/act-demo@{digest} push=true"
    )
    assert set((record / "attest-files.txt").read_text().split()) == {*names, "SHA256SUMS"}
    # The release names the image it shipped, for rollback.yml.
    assert (released / "image.txt").read_text().strip() == f"ghcr.io/acme/act-demo@{digest}"
    # The image job's login and the champion job's, which moves the `champion` tag to the digest.
    assert (record / "docker-login.txt").read_text().splitlines() == ["ghcr.io password=set"] * 2
    assert (record / "docker-calls.txt").read_text().splitlines() == [
        "buildx imagetools create --prefer-index=false --tag ghcr.io/acme/act-demo:champion "
        f"ghcr.io/acme/act-demo@{digest}"
    ]
    assert not (record / "kubectl-calls.txt").exists(), "deploy_target none deploys nothing"


@pytest.mark.xdist_group("act-setup")
def test_release_refuses_a_tag_that_is_not_semver(set_up_project, tmp_path):
    project = copy_of(set_up_project, tmp_path)
    git(project, "tag", "v1.2")
    record = tmp_path / "record"
    result = act(project, "push", release_event("v1.2"), "release.yml", record)
    log = result.stdout + result.stderr
    assert result.returncode != 0
    assert "tag 'v1.2' is not a release tag: use vMAJOR.MINOR.PATCH" in log
    assert "make release-assets" not in log and not (record / "gh-args.txt").exists()


def with_incoming_batch(project: Path, scale: float) -> None:
    """data/incoming/batch.csv tracked with DVC and pushed: the test split, with the tumour-size
    columns multiplied by `scale` (1.0: unchanged data)."""
    test_split = (project / "data/prepared/test.csv").read_text().splitlines()
    header = test_split[0].split(",")
    sized = {i for i, name in enumerate(header) if name.endswith(("radius", "perimeter", "area"))}
    rows = [
        ",".join(
            str(float(value) * scale) if i in sized else value
            for i, value in enumerate(line.split(","))
        )
        for line in test_split[1:]
    ]
    (project / "data/incoming").mkdir()
    (project / "data/incoming/batch.csv").write_text("\n".join([test_split[0], *rows]) + "\n")
    dvc = str(SHARED_VENV / "bin" / "dvc")
    run([dvc, "add", "data/incoming"], cwd=project)
    run([dvc, "push", "--remote", "team"], cwd=project)
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--message", "A new batch")


SCHEDULE = {"schedule": "17 6 * * *", "repository": REPOSITORY}


@pytest.mark.xdist_group("act-setup")
def test_drift_opens_one_issue_when_the_batch_drifted(set_up_project, tmp_path):
    project = shared_remote(set_up_project, tmp_path)
    with_incoming_batch(project, scale=1.5)
    record = tmp_path / "record"
    result = act(project, "schedule", SCHEDULE, "drift.yml", record)
    assert result.returncode == 0, result.stdout[-6000:]

    report = json.loads((record / "artifacts/drift-report/report.json").read_text())
    test_rows = len(pd.read_csv(project / "data/prepared/test.csv"))
    assert report["status"] == "drift" and report["rows"]["batch"] == test_rows
    assert {"mean_radius", "worst_area"} <= set(report["drifted"])
    assert not {"mean_texture", "smoothness_error"} & set(report["drifted"])
    calls = (record / "gh-calls.txt").read_text().splitlines()
    assert calls[0].startswith("issue list --label drift --state open")
    assert calls[1].startswith("label create drift")
    title = (record / "issue-title.txt").read_text().strip()
    assert calls[2] == f"issue create --title {title} --label drift --body-file issue.md"
    assert re.fullmatch(r"Drift: \d+ of 30 features( and the predictions)? \(act-demo\)", title)
    body = (record / "issue-body.md").read_text()
    assert body.startswith("## ❌ Drift: ") and "Found by https://github.com/" in body
    assert_mermaid_parses(record / "issue-body.md")
    assert not any(call.startswith("workflow run") for call in calls), "DRIFT_RETRAINS is unset"


@pytest.mark.xdist_group("act-setup")
def test_drift_closes_the_issue_when_the_batch_is_clean(set_up_project, tmp_path):
    project = shared_remote(set_up_project, tmp_path)
    with_incoming_batch(project, scale=1.0)
    record = tmp_path / "record"
    result = act(
        project, "schedule", SCHEDULE, "drift.yml", record, env={"STUB_GH_OPEN_ISSUE": "12"}
    )
    assert result.returncode == 0, result.stdout[-6000:]
    report = json.loads((record / "artifacts/drift-report/report.json").read_text())
    assert report["status"] == "ok" and report["drifted"] == []
    calls = (record / "gh-calls.txt").read_text().splitlines()
    assert calls[1].startswith("issue close 12 --comment Drift cleared: https://github.com/")
    assert not any(call.startswith(("issue create", "issue edit")) for call in calls)


def with_outcomes(project: Path, flipped_share: float) -> None:
    """The loop's data, tracked with DVC and pushed: the test split scored by the committed model
    (`make score`: data/predictions/), its labels with `flipped_share` of them turned to the other
    class (data/labels/: concept drift, the inputs unchanged), and the same rows as the batch
    drift.yml checks (data/incoming/)."""
    test = pd.read_csv(project / "data/prepared/test.csv")
    (project / "data/predictions").mkdir(exist_ok=True)
    make(project, "score", INPUT="data/prepared/test.csv", OUT="data/predictions/scored.csv")
    turn = np.random.default_rng(0).random(len(test)) < flipped_share
    labels = test.copy()
    other = test["diagnosis"].map({"benign": "malignant", "malignant": "benign"})
    labels["diagnosis"] = np.where(turn, other, test["diagnosis"])
    (project / "data/labels").mkdir(exist_ok=True)
    labels.to_csv(project / "data/labels/labels.csv", index=False)
    (project / "data/incoming").mkdir(exist_ok=True)
    test.drop(columns=["diagnosis"]).to_csv(project / "data/incoming/batch.csv", index=False)
    dvc = str(SHARED_VENV / "bin" / "dvc")
    run([dvc, "add", "data/predictions", "data/labels", "data/incoming"], cwd=project)
    run([dvc, "push", "--remote", "team"], cwd=project)
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--message", f"Labels came in ({flipped_share:.0%} turned)")


@pytest.mark.xdist_group("act-setup")
def test_performance_opens_an_issue_on_turned_labels_that_drift_cannot_see(
    set_up_project, tmp_path
):
    """The loop closed: predictions of the served model, labels that came in for them, 60% of
    them turned while the inputs did not move. performance.yml opens its issue, drift.yml on the
    same rows stays quiet; once the labels are right again the issue is closed."""
    project = shared_remote(set_up_project, tmp_path)
    with_outcomes(project, flipped_share=0.6)
    record = tmp_path / "turned"
    result = act(project, "schedule", SCHEDULE, "performance.yml", record)
    assert result.returncode == 0, result.stdout[-6000:]
    report = json.loads((record / "artifacts/performance-report/report.json").read_text())
    test_rows = len(pd.read_csv(project / "data/prepared/test.csv"))
    assert report["degraded"] is True and report["counts"]["joined"] == test_rows, report["notes"]
    calls = (record / "gh-calls.txt").read_text().splitlines()
    assert calls[0].startswith("issue list --label performance --state open")
    assert calls[1].startswith("label create performance")
    title = (record / "issue-title.txt").read_text().strip()
    assert calls[2] == f"issue create --title {title} --label performance --body-file issue.md"
    assert title.startswith("Live performance: `roc_auc` of model ") and title.endswith(
        "significantly below its reference (act-demo)"
    )
    assert "Found by https://github.com/" in (record / "issue-body.md").read_text()
    assert not any(call.startswith("workflow run") for call in calls), "PERFORMANCE_RETRAINS unset"

    quiet = tmp_path / "drift"
    result = act(project, "schedule", SCHEDULE, "drift.yml", quiet)
    assert result.returncode == 0, result.stdout[-6000:]
    drift = json.loads((quiet / "artifacts/drift-report/report.json").read_text())
    assert drift["status"] == "ok" and drift["drifted"] == [], "the inputs did not move"
    assert not any(
        call.startswith(("issue create", "issue edit"))
        for call in (quiet / "gh-calls.txt").read_text().splitlines()
    )

    with_outcomes(project, flipped_share=0.0)
    record = tmp_path / "recovered"
    result = act(
        project, "schedule", SCHEDULE, "performance.yml", record,
        env={"STUB_GH_OPEN_ISSUE": "12"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:]
    report = json.loads((record / "artifacts/performance-report/report.json").read_text())
    assert report["degraded"] is False
    calls = (record / "gh-calls.txt").read_text().splitlines()
    assert calls[1].startswith("issue close 12 --comment Recovered: https://github.com/")


def with_incoming_files(project: Path) -> None:
    """data/incoming/ as two CSVs of unequal size (the test split without its target, cut after
    its first 60% of rows), and data/predictions/ holding an earlier batch's records, both
    tracked with DVC and pushed."""
    test = pd.read_csv(project / "data/prepared/test.csv").drop(columns=["diagnosis"])
    (project / "data/incoming").mkdir()
    cut = len(test) * 3 // 5
    test.iloc[:cut].to_csv(project / "data/incoming/2026-12-06.csv", index=False)
    test.iloc[cut:].to_csv(project / "data/incoming/2026-12-07.csv", index=False)
    (project / "data/predictions").mkdir()
    make(project, "score", INPUT="data/incoming/2026-12-06.csv", OUT="data/predictions/earlier.csv")
    dvc = str(SHARED_VENV / "bin" / "dvc")
    run([dvc, "add", "data/incoming", "data/predictions"], cwd=project)
    run([dvc, "push", "--remote", "team"], cwd=project)
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--message", "Two batches came in")


@pytest.mark.xdist_group("act-setup")
def test_batch_score_joins_three_shards_into_one_score_run(set_up_project, tmp_path):
    """batch-score.yml, dispatched with 3 shards and no release: the champion's (the latest
    release's) model from its release assets, checked against its SHA256SUMS; three shard jobs
    over the matrix; the join is the file one `make score` run writes with that model, kept in
    data/predictions/ and pushed to the DVC remote."""
    project = shared_remote(set_up_project, tmp_path)
    with_incoming_files(project)
    # The champion, v1.1.0: a model the pipeline did not build here (the committed one, stamped
    # with the release's version), and its SHA256SUMS, which lists other files too.
    released = tmp_path / "v1.1.0"
    run(
        [str(SHARED_VENV / "bin" / "python"), "-m", "mlops_actions.release", "build",
         "--tag", "v1.1.0", "--out", str(released)],
        cwd=project,
    )  # fmt: skip
    model = released / "model.onnx"
    sums = released / "SHA256SUMS"
    sums.write_text(
        f"{hashlib.sha256(model.read_bytes()).hexdigest()}  model.onnx\n{'0' * 64}  metrics.json\n"
    )
    stand_ins = {
        "STUB_GH_LATEST": "v1.1.0",
        "STUB_GH_MODEL": str(model),
        "STUB_GH_SHA256SUMS": str(sums),
    }
    event = {"inputs": {"release": "", "shards": "3"}, "repository": REPOSITORY}
    record = tmp_path / "record"
    result = act(project, "workflow_dispatch", event, "batch-score.yml", record, env=stand_ins)
    assert result.returncode == 0, result.stdout[-6000:]

    rows = len(pd.read_csv(project / "data/prepared/test.csv"))
    shards = sorted(path.name for path in (record / "artifacts").glob("batch-shard-*"))
    assert shards == ["batch-shard-00", "batch-shard-01", "batch-shard-02"]
    calls = (record / "gh-calls.txt").read_text().splitlines()
    assert calls[0] == "release view --json tagName --jq .tagName"
    assert (
        calls[1:]
        == ["release download v1.1.0 --pattern model.onnx --pattern SHA256SUMS --dir release"] * 3
    )
    kept = record / "artifacts/predictions"
    [joined] = kept.glob("batch-*.csv")
    scored_at = pd.read_csv(joined, dtype=str)["scored_at"]
    assert scored_at.nunique() == 1, "one time for the whole batch"
    whole = tmp_path / "whole.csv"
    make(
        project, "score", INPUT="data/incoming", OUT=str(whole), MODEL=str(model),
        SCORED_AT=scored_at[0],
    )  # fmt: skip
    assert joined.read_bytes() == whole.read_bytes()
    records = pd.read_csv(joined, dtype={"key": str})
    assert len(records) == rows and set(records["model_version"]) == {"1.1.0"}

    summary = (kept / "summary.md").read_text()
    assert summary.startswith(f"## Batch scoring: {rows:,} rows in 3 shard(s)")
    assert "- **release**: `v1.1.0`" in summary
    assert f"sha256 `{hashlib.sha256(model.read_bytes()).hexdigest()}`" in summary
    for label, count in records["label"].value_counts().items():
        assert f"| {label} | {count:,} |" in summary
    # data/predictions/ as DVC tracks it after the run: the earlier records and these, in the
    # team's remote.
    pointer = yaml.safe_load((kept / "predictions.dvc").read_text())
    digest = pointer["outs"][0]["md5"]
    listing = tmp_path / "team-remote/files/md5" / digest[:2] / digest[2:]
    relpaths = {entry["relpath"] for entry in json.loads(listing.read_text())}
    assert relpaths == {"earlier.csv", joined.name}


# The commit an earlier release was staged from: its model carries this commit's version.
EARLIER_COMMIT = "8f8f4fa3fb8d" + "5" * 28


def earlier_release(project: Path, folder: Path, registry: Path) -> str:
    """An earlier release, v1.1.0, of the committed model as staging built it on an earlier commit
    (so its model.onnx names that commit's version, 8f8f4fa3fb8d, and serves as 1.1.0 only when
    told): its files in `folder` (`release build`, so with its smoke.json), its image in the
    registry stand-in (the model under the digest the build-push stand-in gives it). Returns that
    image, by digest."""
    command = [str(SHARED_VENV / "bin" / "python"), "-m", "mlops_actions.release", "build"]
    env = {"GITHUB_SHA": EARLIER_COMMIT}
    run([*command, "--out", str(folder)], cwd=project, env=env)
    digest = hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest()
    (registry / digest).mkdir(parents=True)
    shutil.copy(folder / "model.onnx", registry / digest / "model.onnx")
    return f"ghcr.io/acme/act-demo@sha256:{digest}"


def served_version(kustomization: dict) -> str | None:
    """The MODEL_VERSION an overlay written by `make deploy-kubernetes` gives the server."""
    for entry in kustomization.get("patches", []):
        containers = yaml.safe_load(entry["patch"])["spec"]["template"]["spec"]["containers"]
        for variable in containers[0].get("env", []):
            if variable["name"] == "MODEL_VERSION":
                return variable["value"]
    return None


@pytest.mark.xdist_group("act-setup")
def test_rollback_redeploys_the_release_digest_and_smoke_tests_it(set_up_project, tmp_path):
    project = copy_of(set_up_project, tmp_path)
    registry = tmp_path / "registry"
    image = earlier_release(project, tmp_path / "v1.1.0", registry)
    stand_ins = {
        "STUB_GH_RELEASES": "v1.1.0 v1.2.0",
        "STUB_GH_IMAGE": image,
        "STUB_GH_SMOKE": str(tmp_path / "v1.1.0/smoke.json"),
        "STUB_REGISTRY": str(registry),
    }
    secrets = {"KUBECONFIG": "apiVersion: v1\\nkind: Config\\n"}

    def rollback(version: str, record: Path):
        event = {"inputs": {"version": version}, "repository": REPOSITORY}
        return act(project, "workflow_dispatch", event, "rollback.yml", record, secrets, stand_ins)

    refused = rollback("v1.2", tmp_path / "bad")
    assert refused.returncode != 0
    assert (
        "tag 'v1.2' is not a release tag: use vMAJOR.MINOR.PATCH" in refused.stdout + refused.stderr
    )
    unknown = rollback("v9.9.9", tmp_path / "unknown")
    assert unknown.returncode != 0 and "v9.9.9 has no GitHub Release" in unknown.stdout
    for record in (tmp_path / "bad", tmp_path / "unknown"):
        assert not (record / "kubectl-calls.txt").exists(), "nothing was deployed"

    record = tmp_path / "good"
    result = rollback("1.1.0", record)
    assert result.returncode == 0, result.stdout[-6000:]
    kustomization = yaml.safe_load((record / "kustomization.yaml").read_text())
    assert kustomization["images"] == [
        {"name": "serving-image", "newName": image.split("@")[0], "digest": image.split("@")[1]}
    ]
    assert served_version(kustomization) == "1.1.0"
    assert (record / "kubectl-calls.txt").read_text().splitlines() == [
        "apply -k deploy/k8s/overlays/release",
        "rollout status deployment/act-demo --timeout=5m",
        "delete deployment/act-demo-canary --ignore-not-found --wait=true",
        "port-forward deployment/act-demo 18080:8080",
    ]
    # The smoke test, on the pod kubectl port-forward reached: v1.1.0's model and golden rows,
    # the server naming 1.1.0 (MODEL_VERSION) over its model's own version, the commit's.
    sha = hashlib.sha256((tmp_path / "v1.1.0/model.onnx").read_bytes()).hexdigest()[:12]
    build = EARLIER_COMMIT[:12]
    smoke = f"smoke: http://127.0.0.1:18080 serves act-demo 1.1.0 (build {build}, sha256 {sha}…)"
    assert smoke in result.stdout
    served = (record / "port-forward-served.txt").read_text().split()
    assert served == ["act-demo", image, "MODEL_VERSION=1.1.0"]
    assert "## ✅ v1.1.0 serves (Kubernetes)" in result.stdout
    calls = (record / "gh-calls.txt").read_text().splitlines()
    assert calls == [
        "release view v1.1.0 --json tagName",
        "release download v1.1.0 --pattern image.txt --dir release",
        "release download v1.1.0 --pattern smoke.json --dir release",
        "release edit v1.1.0 --latest",
    ]
    assert "docker-build.txt" not in {path.name for path in record.iterdir()}, "never rebuilds"
    # The image's `champion` tag goes back with the release: a copy by digest.
    assert (record / "docker-calls.txt").read_text().splitlines() == [
        "buildx imagetools create --prefer-index=false "
        f"--tag {image.split('@')[0]}:champion {image}"
    ]
