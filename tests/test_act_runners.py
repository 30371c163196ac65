"""retrain.yml with training_runner=aws-ec2, run by act in host mode: one EC2 instance per run,
started with its time-to-live tag for a just-in-time runner, trains, and is terminated whether
training passed, failed or was cancelled.

Stand-ins (tests/act): `aws` records every call and keeps the account's instances in a JSON file;
configure-aws-credentials exports stand-in credentials; `gh api` registers and removes the runner
in the stand-in GitHub API. The training job's label, the runner the instance would bring up, is
mapped to this machine with act's -P: the job runs here, not on a new machine, so what is proven
is the order and arguments of the calls and that teardown runs, not that an instance boots.
"""

import json
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from conftest import SHARED_VENV, bake, git, make, run
from test_act import REPOSITORY, act, copy_of

# act's run: github.run_id and run_attempt are 1, so the runner's label is ec2-1-1.
LABEL = "ec2-1-1"
VARIABLES = {
    "TRAINING_AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/training-runner",
    "TRAINING_AWS_REGION": "eu-west-1",
    "TRAINING_AWS_AMI_ID": "ami-0123456789abcdef0",
}
SECRETS = {"TRAINING_RUNNER_TOKEN": "fine-grained-pat-stand-in"}
EC2_FILES = (".github/workflows/retrain.yml", ".github/ec2-runner/user-data.sh")


def ec2_project(set_up_project: Path, tmp_path: Path) -> Path:
    """A copy of the shared project with a DVC remote every clone reaches and the files an
    aws-ec2 bake of the same answers has instead (the other files are the same), committed."""
    project = copy_of(set_up_project, tmp_path)
    dvc = str(SHARED_VENV / "bin" / "dvc")
    run([dvc, "remote", "add", "--default", "team", str(tmp_path / "team-remote")], cwd=project)
    other = bake(
        tmp_path / "ec2-bake", project_name="Act Demo", deploy_target="kubernetes",
        training_runner="aws-ec2",
    )  # fmt: skip
    for name in EC2_FILES:
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text((other / name).read_text())
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--message", "Train on an EC2 runner")
    return project


def retrain(project: Path, record: Path, cancel_at: str | None = None):
    event = {"ref": "refs/heads/main", "repository": REPOSITORY}
    return act(
        project, "push", event, "retrain.yml", record, secrets=SECRETS, variables=VARIABLES,
        self_hosted=(LABEL,), cancel_at=cancel_at,
    )  # fmt: skip


def aws_calls(record: Path) -> list[str]:
    return (record / "aws-calls.txt").read_text().splitlines()


def assert_one_instance_started_and_terminated(record: Path) -> None:
    """The calls of one run, in order: start, wait, find by the run's tag, terminate, wait; the
    instance tagged with its time to live and booting this run's runner, the runner removed."""
    calls = aws_calls(record)
    assert [" ".join(call.split()[:2]) for call in calls] == [
        "ec2 run-instances",
        "ec2 wait",
        "ec2 describe-instances",
        "ec2 terminate-instances",
        "ec2 wait",
    ], calls
    state = json.loads((record / "ec2.json").read_text())
    [instance] = state["instances"]
    assert instance["State"] == {"Name": "terminated"}
    assert instance["ImageId"] == VARIABLES["TRAINING_AWS_AMI_ID"]
    assert instance["InstanceType"] == "m7i.2xlarge"
    assert instance["InstanceInitiatedShutdownBehavior"] == "terminate"
    tags = {tag["Key"]: tag["Value"] for tag in instance["Tags"]}
    assert tags.keys() == {"github-runner", "github-repository", "expires-at"}
    assert tags["github-runner"] == LABEL and tags["github-repository"] == "acme/act-demo"
    assert instance["VolumeTags"] == instance["Tags"]
    # The TTL: 120 minutes from just before the launch (read once, so no clock race).
    expires = datetime.fromisoformat(tags["expires-at"])
    launched = datetime.fromisoformat(instance["LaunchTime"])
    assert 110 * 60 < (expires - launched).total_seconds() <= 120 * 60
    assert calls[1] == f"ec2 wait instance-running --instance-ids {instance['InstanceId']}"
    assert calls[2] == (
        f"ec2 describe-instances --filters Name=tag:github-runner,Values={LABEL} "
        "Name=instance-state-name,Values=pending,running,stopping,stopped --output json"
    )
    assert (
        calls[3] == f"ec2 terminate-instances --instance-ids {instance['InstanceId']} --output json"
    )
    # The boot script carries this run's runner configuration and TTL, and the credentials came
    # from the OIDC role (twice: start and stop), never from stored keys.
    requests = (record / "github-requests.txt").read_text().splitlines()
    assert requests[0] == "POST /repos/acme/act-demo/actions/runners/generate-jitconfig"
    assert requests[1:] == [
        f"GET /repos/acme/act-demo/actions/runners?name={LABEL}",
        "DELETE /repos/acme/act-demo/actions/runners/21",
    ]
    lines = instance["UserData"].splitlines()
    assert lines[0] == "#!/bin/bash" and lines[2] == "TTL_MINUTES='120'"
    assert lines[1].startswith("JIT_CONFIG='") and "run.sh --jitconfig" in instance["UserData"]
    assert json.loads((record / "github.json").read_text())["runners"] == []
    role = f"role={VARIABLES['TRAINING_AWS_ROLE_ARN']} region=eu-west-1"
    assert (record / "aws-credentials.txt").read_text().splitlines() == [role, role]


@pytest.mark.xdist_group("act-setup")
def test_retrain_on_an_ec2_runner_pushes_what_main_needs_and_terminates_it(
    set_up_project, tmp_path
):
    project = ec2_project(set_up_project, tmp_path)
    remote = tmp_path / "team-remote"
    make(project, "push")
    before = {path for path in remote.rglob("*") if path.is_file()}
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("learning_rate: 0.1", "learning_rate: 0.2"))
    git(project, "commit", "--quiet", "--all", "--message", "Retrain with a new learning rate")
    record = tmp_path / "record"
    result = retrain(project, record)
    log = result.stdout + result.stderr

    assert result.returncode == 0, result.stdout[-4000:]
    assert_one_instance_started_and_terminated(record)
    jit_config = json.loads((record / "ec2.json").read_text())["instances"][0]["UserData"]
    jit_config = jit_config.splitlines()[1].removeprefix("JIT_CONFIG='").removesuffix("'")
    assert jit_config not in log, "the runner's configuration is a credential: masked"
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
        "data/prepared/holdout.csv",
        "data/prepared/reference.csv",
        "models/model.joblib",
        "models/model.onnx",
    }
    for path, md5 in cached.items():
        assert md5 in stored, f"{path} ({md5}) is not in the remote"
    assert {path for path in remote.rglob("*") if path.is_file()} > before


@pytest.mark.xdist_group("act-setup")
def test_a_failed_training_still_terminates_the_ec2_runner(set_up_project, tmp_path):
    project = ec2_project(set_up_project, tmp_path)
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("learning_rate: 0.1", "learning_rate: fast"))
    git(project, "commit", "--quiet", "--all", "--message", "A parameter training refuses")
    record = tmp_path / "record"
    result = retrain(project, record)
    log = result.stdout + result.stderr

    assert result.returncode != 0
    assert "❌  Failure - Main Reproduce the pipeline" in log
    assert "Job 'reproduce and push to the DVC remote' failed" in log
    assert_one_instance_started_and_terminated(record)


@pytest.mark.xdist_group("act-setup")
def test_a_cancelled_run_still_terminates_the_ec2_runner(set_up_project, tmp_path):
    """Cancelled while the training job installs the project, on the runner the instance brought."""
    project = ec2_project(set_up_project, tmp_path)
    record = tmp_path / "record"
    result = retrain(project, record, cancel_at="⭐ Run Main make install")
    log = result.stdout

    assert result.returncode != 0
    assert "this step has been cancelled" in log
    assert "Main Reproduce the pipeline" not in log, "cancelled before training"
    assert_one_instance_started_and_terminated(record)


def test_the_sweeper_terminates_only_this_repositorys_expired_instances(tmp_path):
    """No pipeline run needed: an aws-ec2 bake in its own git repository, and an account holding
    one instance of this repository past its time to live, one within it, and one of another
    repository past it."""
    project = bake(tmp_path, project_name="Act Demo", training_runner="aws-ec2")
    git(project, "init", "--quiet", "--initial-branch=main")
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--message", "Baked")
    git(project, "remote", "add", "origin", "https://github.com/acme/act-demo.git")  # act's repo
    record = tmp_path / "record"
    record.mkdir()

    def instance(number: int, repository: str, expires: str) -> dict:
        tags = {"github-runner": f"ec2-{number}-1", "github-repository": repository}
        return {
            "InstanceId": f"i-{number:017x}",
            "State": {"Name": "running"},
            "Tags": [{"Key": k, "Value": v} for k, v in {**tags, "expires-at": expires}.items()],
        }

    (record / "ec2.json").write_text(
        json.dumps(
            {
                "instances": [
                    instance(1, "acme/act-demo", "2020-01-01T00:00:00Z"),
                    instance(2, "acme/act-demo", "2999-01-01T00:00:00Z"),
                    instance(3, "acme/other", "2020-01-01T00:00:00Z"),
                ]
            }
        )
    )
    event = {"repository": REPOSITORY}
    result = act(
        project, "workflow_dispatch", event, "training-runner-sweeper.yml", record,
        variables=VARIABLES,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout[-4000:]
    assert aws_calls(record) == [
        "ec2 describe-instances --filters Name=tag:github-repository,Values=acme/act-demo "
        "Name=tag-key,Values=expires-at "
        "Name=instance-state-name,Values=pending,running,stopping,stopped --output json",
        f"ec2 terminate-instances --instance-ids i-{1:017x} --output json",
    ]
    states = [
        i["State"]["Name"] for i in json.loads((record / "ec2.json").read_text())["instances"]
    ]
    assert states == ["shutting-down", "running", "running"]
