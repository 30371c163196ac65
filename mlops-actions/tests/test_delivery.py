"""Delivery's control flow, with the environment's commands recorded instead of run: a canary that
passes is promoted; any failure removes the canary and brings the previous release back; the
summary says what failed and what serves; a release tag's version is the one served and
smoke-tested, staging's build serves its own. (The template's act runs drive the same code through
the workflows with recording kubectl and gcloud.)"""

import json
from pathlib import Path

import pytest

from mlops_actions import delivery
from mlops_actions.delivery import Release, StepFailed, deliver, summary

NEW = "ghcr.io/acme/demo@sha256:" + "1" * 64
OLD = "ghcr.io/acme/demo@sha256:" + "0" * 64

# The steps of a canary of v1.3.0, in order: each a release tag's version, served and expected.
STEPS = [
    "deploy canary 111 as 1.3.0", "smoke canary new.json as 1.3.0",
    "share 10", "smoke canary new.json max 0.01 as 1.3.0",
    "promote 111 as 1.3.0", "remove canary", "smoke stable new.json as 1.3.0",
]  # fmt: skip


class Recording:
    """A target that records each action; `fail` names the action (and image) that fails."""

    name = "test"

    def __init__(self, fail: set[str] = frozenset()):
        self.calls: list[str] = []
        self.fail = fail

    def act(self, call: str) -> None:
        self.calls.append(call)
        if call in self.fail:
            raise StepFailed(f"smoke: http://x: {call} differed")

    def deploy(self, image, version, canary=False):
        self.act(f"deploy {'canary' if canary else 'stable'} {image[-3:]} as {version or 'build'}")

    def promote(self, image, version):
        self.act(f"promote {image[-3:]} as {version}")

    def remove_canary(self):
        self.act("remove canary")

    def share(self, percent):
        self.act(f"share {percent}")

    def roll_back(self, previous):
        self.remove_canary()
        if previous is not None:
            self.deploy(previous.image, previous.version)
        return ""

    def smoke(self, golden, version, canary=False, max_error_rate=None):
        rate = "" if max_error_rate is None else f" max {max_error_rate}"
        track = "canary" if canary else "stable"
        self.act(f"smoke {track} {golden.name}{rate} as {version or 'build'}")


@pytest.fixture
def releases(tmp_path) -> tuple[Release, Release]:
    for name in ("new.json", "old.json"):
        (tmp_path / name).write_text("{}")
    return Release("v1.3.0", NEW, tmp_path / "new.json"), Release(
        "v1.2.0", OLD, tmp_path / "old.json"
    )


def canary(target, releases, previous=True):
    new, old = releases
    return deliver(target, new, old if previous else None, True, 0, 10, 0.01)


def test_a_healthy_canary_is_promoted(releases):
    target = Recording()
    outcome = canary(target, releases)
    assert target.calls == STEPS
    assert outcome.failed is None and outcome.serving == f"v1.3.0 (`{NEW}`)"
    text = summary("Kubernetes", releases[0], outcome)
    assert text.startswith("## ✅ v1.3.0 serves (Kubernetes)") and "| rollout | ✅ passed |" in text


@pytest.mark.parametrize(
    ("failing", "done_before_rollback"),
    [(STEPS[1], STEPS[:2]), (STEPS[3], STEPS[:4]), (STEPS[6], STEPS)],
)
def test_any_failure_brings_the_previous_release_back(releases, failing, done_before_rollback):
    target = Recording(fail={failing})
    outcome = canary(target, releases)
    assert target.calls == [
        *done_before_rollback,
        "remove canary",
        "deploy stable 000 as 1.2.0",
        "smoke stable old.json as 1.2.0",
    ]
    assert outcome.failed.endswith(f"smoke: http://x: {failing} differed")
    assert outcome.serving == f"the previous release v1.2.0 (`{OLD}`), again"
    text = summary("Kubernetes", releases[0], outcome)
    assert text.startswith("## ❌ v1.3.0 was rolled back (Kubernetes)")
    assert f"**What failed:** {outcome.failed}" in text and "| rollback | ✅ passed |" in text


def test_without_an_earlier_release_only_the_canary_goes(releases):
    target = Recording(fail={STEPS[1]})
    outcome = canary(target, releases, previous=False)
    assert target.calls[-1] == "remove canary"
    assert outcome.serving == "nothing of v1.3.0: the canary is gone, and no release came before"


def test_a_failed_rollback_says_nobody_knows_what_serves(releases):
    target = Recording(fail={STEPS[1], "smoke stable old.json as 1.2.0"})
    outcome = canary(target, releases)
    assert outcome.serving.startswith("unknown: the rollback failed too; run rollback.yml")
    assert "| rollback | ❌ smoke: http://x: smoke stable old.json as 1.2.0 differed |" in summary(
        "Kubernetes", releases[0], outcome
    )


def test_a_release_without_a_golden_file_is_deployed_with_a_warning(releases, capsys):
    new = releases[0]
    target = Recording()
    deliver(target, new, Release("v0.9.0", OLD, None), False, 0, 10, 0.01)
    assert target.calls == ["deploy stable 111 as 1.3.0", "remove canary", STEPS[-1]]
    deliver(target, Release("v0.9.0", OLD, Path("absent.json")), None, False, 0, 10, 0.01)
    assert target.calls[-2:] == ["deploy stable 000 as 0.9.0", "remove canary"]
    assert "v0.9.0 has no smoke.json: not checked" in capsys.readouterr().out


class FakeCloudRun:
    """What `gcloud run` and `gcloud auth print-identity-token` answer for a service `demo`
    whose revision demo-00001-abc serves everything; each command line is recorded, and each
    smoke test's environment. A smoke test of `failing_url` fails."""

    def __init__(self, failing_url: str = "", exists: bool = True):
        self.calls: list[str] = []
        self.smoke_env: list[dict] = []
        self.failing_url = failing_url
        self.exists = exists
        self.traffic = [{"latestRevision": True, "revisionName": "demo-00001-abc", "percent": 100}]

    def run(self, command, env=None, secret=False):
        self.calls.append(" ".join(command))
        if command[:3] == ["gcloud", "auth", "print-identity-token"]:
            assert secret, "a token is never printed"
            return "token-of-the-deploying-account\n"
        if command[:2] == ["gcloud", "run"]:
            if command[2] == "deploy":
                assert self.exists or "--no-traffic" not in command, "gcloud refuses it"
                self.exists = True
            if not self.exists:
                raise StepFailed("ERROR: (gcloud.run.services.describe) Cannot find service [demo]")
            if "--tag=canary" in command:
                self.traffic.append(
                    {"tag": "canary", "revisionName": "demo-00002-def", "percent": 0,
                     "url": "https://canary---demo.run.app"}
                )  # fmt: skip
            if any(arg.startswith("--remove-tags") for arg in command):
                self.traffic = [target for target in self.traffic if not target.get("tag")]
            service = {"status": {"url": "https://demo.run.app", "traffic": self.traffic}}
            return json.dumps(service) if "--format=json" in command else ""
        self.smoke_env.append(env)
        if f"URL={self.failing_url}" in command:
            raise StepFailed(f"smoke: {self.failing_url}: row 0: predicted label 'a', golden 'b'")
        return ""


def test_cloud_run_canary_is_a_tagged_revision_without_traffic(releases, monkeypatch):
    """The gcloud commands of a canary that fails its smoke test, then the rollback: the
    revision that served before takes its traffic back as the canary tag goes, in one update."""
    fake = FakeCloudRun(failing_url="https://canary---demo.run.app")
    monkeypatch.setattr(delivery, "run", fake.run)
    target = delivery.CloudRun("demo", "europe-west1", audiences=["demo"], invoker="deploy@p.iam")
    outcome = canary(target, releases)
    region = "--region=europe-west1 --quiet"
    new, old = releases
    token = "gcloud auth print-identity-token --impersonate-service-account=deploy@p.iam "
    token += "--audiences=demo --include-email"
    assert fake.calls == [
        f"gcloud run services describe demo --format=json {region}",
        f"gcloud run deploy demo --image={NEW} --no-traffic --tag=canary --port=8080 --cpu=1 "
        f"--memory=512Mi --update-env-vars=MODEL_VERSION=1.3.0 --add-custom-audiences=demo "
        f"{region}",
        f"gcloud run services describe demo --format=json {region}",
        token,
        f"make --no-print-directory smoke URL=https://canary---demo.run.app GOLDEN={new.golden} "
        "VERSION=1.3.0",
        f"gcloud run services update-traffic demo --to-revisions=demo-00001-abc=100 "
        f"--remove-tags=canary {region}",
        f"gcloud run services describe demo --format=json {region}",
        token,
        f"make --no-print-directory smoke URL=https://demo.run.app GOLDEN={old.golden} "
        "VERSION=1.2.0",
    ]
    assert fake.smoke_env == [{"SMOKE_BEARER_TOKEN": "token-of-the-deploying-account"}] * 2
    assert (
        outcome.failed
        == "canary: smoke: https://canary---demo.run.app: row 0: predicted label 'a', golden 'b'"
    )
    assert outcome.serving == (
        f"the previous release v1.2.0 (`{OLD}`), again: revisions `demo-00001-abc` 100%, "
        "as before the canary"
    )


def test_cloud_run_promotes_the_tagged_revision_itself(releases, monkeypatch):
    fake = FakeCloudRun()
    monkeypatch.setattr(delivery, "run", fake.run)
    outcome = canary(delivery.CloudRun("demo", "europe-west1"), releases)
    traffic = [call for call in fake.calls if "update-traffic" in call]
    assert [call.split()[5] for call in traffic] == [
        "--to-tags=canary=10", "--to-tags=canary=100", "--remove-tags=canary",
    ]  # fmt: skip
    assert "gcloud auth print-identity-token" in fake.calls, "no account: gcloud's own token"
    assert outcome.failed is None


def test_cloud_run_first_deploy_has_no_canary_and_other_errors_stop(monkeypatch, capsys, tmp_path):
    (tmp_path / "smoke.json").write_text("{}")
    argv = ["cloud-run", "--service=demo", "--region=europe-west1", f"--image={NEW}",
            "--release=v1.0.0", f"--golden={tmp_path / 'smoke.json'}", "--canary",
            "--canary-seconds=0"]  # fmt: skip
    fake = FakeCloudRun(exists=False)
    monkeypatch.setattr(delivery, "run", fake.run)
    assert delivery.main(argv) == 0
    assert "demo does not exist yet: no canary" in capsys.readouterr().out
    assert [" ".join(call.split()[2:5]) for call in fake.calls if "gcloud run" in call] == [
        "services describe demo",  # Cannot find service [demo]
        f"deploy demo --image={NEW}",
        "services update-traffic demo",
        "services describe demo",  # any canary tag to remove?
        "services describe demo",  # the URL to smoke-test
    ]

    def no_credentials(command, env=None, secret=False):
        raise StepFailed(
            "ERROR: (gcloud.run.services.describe) You do not currently have an active account "
            "selected."
        )

    monkeypatch.setattr(delivery, "run", no_credentials)
    assert delivery.main(argv) == 1
    out = capsys.readouterr().out
    assert "::error title=Delivery failed::ERROR: (gcloud.run.services.describe) You do not " in out
    assert out.rstrip().endswith("nothing was deployed")


def test_a_tag_is_served_as_its_version_and_staging_as_its_build(tmp_path, monkeypatch):
    """MODEL_VERSION for each deploy and VERSION for each smoke test, as the Makefile and gcloud
    get them: the tag's version in production (and the previous tag's after a rollback); staging,
    whose release is the commit's version, sets none and removes any left on its service."""
    assert Release("v1.3.0-rc.1", NEW, None).version == "1.3.0-rc.1"
    assert Release("3f9a2c1d0e4b", NEW, None).version == ""
    golden = tmp_path / "smoke.json"
    golden.write_text("{}")
    commands: list[str] = []

    def recorded(command, env=None, secret=False):
        commands.append(" ".join(command))
        if "TRACK=canary" in command and "smoke-kubernetes" in command:
            raise StepFailed("smoke: http://127.0.0.1:18080: row 0 differed")
        return ""

    monkeypatch.setattr(delivery, "run", recorded)
    new, old = Release("v1.3.0", NEW, golden), Release("v1.2.0", OLD, golden)
    deliver(delivery.Kubernetes(), new, old, True, 0, 10, 0.01)
    make = "make --no-print-directory"
    assert commands == [
        f"{make} deploy-kubernetes IMAGE={NEW} MODEL_VERSION=1.3.0 TRACK=canary",
        f"{make} smoke-kubernetes GOLDEN={golden} TRACK=canary VERSION=1.3.0",
        f"{make} undeploy-canary",
        f"{make} deploy-kubernetes IMAGE={OLD} MODEL_VERSION=1.2.0",
        f"{make} smoke-kubernetes GOLDEN={golden} VERSION=1.2.0",
    ]
    commands.clear()
    deliver(delivery.Kubernetes(), Release("3f9a2c1d0e4b", NEW, golden), None, False, 0, 10, 0.01)
    assert commands == [
        f"{make} deploy-kubernetes IMAGE={NEW} MODEL_VERSION=",
        f"{make} undeploy-canary",
        f"{make} smoke-kubernetes GOLDEN={golden}",
    ]
    fake = FakeCloudRun()
    monkeypatch.setattr(delivery, "run", fake.run)
    staging = Release("3f9a2c1d0e4b", NEW, golden)
    deliver(delivery.CloudRun("demo-staging", "europe-west1"), staging, None, False, 0, 10, 0.01)
    [deploy] = [call for call in fake.calls if call.startswith("gcloud run deploy")]
    assert "--remove-env-vars=MODEL_VERSION" in deploy.split()
    assert not any("VERSION=" in call for call in fake.calls if call.startswith("make"))


def test_a_failed_command_is_named_by_its_own_last_line_not_makes():
    script = (
        "echo 'smoke: http://x: row 0 differed' >&2; "
        "echo 'make[2]: *** [Makefile:9: smoke] Error 1' >&2; exit 2"
    )
    with pytest.raises(StepFailed, match=r"^smoke: http://x: row 0 differed$"):
        delivery.run(["sh", "-c", script])
