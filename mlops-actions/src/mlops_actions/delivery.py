"""Deliver one image, pinned by digest: straight to an environment (staging, a rollback), or as a
canary first (production). On any failure of a canary delivery the previous release comes back.

  delivery kubernetes --image <name>@sha256:<digest> --golden dist/smoke.json --release v1.3.0
      [--canary --previous-image ... --previous-golden ... --previous-release v1.2.0]
  delivery cloud-run --service <name> --region <region> ...(the same)

A canary delivery, each step stopping at its first failure:
  1. canary: the new image beside the serving one (Kubernetes: the canary Deployment, one replica
     behind the same Service; Cloud Run: a revision with no traffic, reached by its `canary` tag
     URL), then `make smoke` on it with the release's golden file;
  2. share: the canary takes its share of real requests (Cloud Run: --canary-percent of the
     traffic; Kubernetes: its replica among the stable ones) for --canary-seconds, then the smoke
     test again, which also fails when more than --max-error-rate of the canary's requests were
     answered 5xx (its /metrics);
  3. rollout: the new image everywhere, the canary gone, the smoke test on the stable track.
On a failure: the canary goes and the previous release comes back (Kubernetes: its image applied
again by digest; Cloud Run: the revisions that served before the canary take their traffic
back), it is smoke-tested with its own golden file, and the command exits 1. Either way the step
summary ($GITHUB_STEP_SUMMARY) says what failed and what serves now.

The version served: a release tag's (v1.2.0 serves as 1.2.0), set by the server's MODEL_VERSION,
since the image was built on main before the tag and its model.onnx carries the commit's version
(its build, still shown as parameters.build); the smoke test expects the tag's. A release that is
not a tag (staging: the commit's version) serves the version stamped in its model, MODEL_VERSION
unset.

The commands are the project's own (`make deploy-kubernetes`, `make smoke-kubernetes`,
`make smoke`) and gcloud's; standard library only, so it runs on a bare runner.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .release import SEMVER_TAG, version_of

CANARY_TAG = "canary"  # the Cloud Run traffic tag of the canary revision
# What the Cloud Run service runs with, as the Kubernetes Deployment does (requests/limits).
CLOUD_RUN_FLAGS = ["--port=8080", "--cpu=1", "--memory=512Mi"]
# make's own line after a failed recipe, at any nesting: the line before it says what failed.
MAKE_ERROR = re.compile(r"make(\[\d+\])?: \*\*\* ")


class StepFailed(Exception):
    """A command of a step failed; the message is its last line of error output."""


def run(command: list[str], env: dict[str, str] | None = None, secret: bool = False) -> str:
    """Run a command, its output shown as it comes (not when it is a `secret`, such as a token);
    returns stdout. Fails with the command's last line on stderr (our tools print one line
    saying what went wrong)."""
    print(f"$ {' '.join(command)}", flush=True)
    done = subprocess.run(
        command, capture_output=True, text=True,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    if not secret:
        sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        ours = [line for line in lines if not MAKE_ERROR.match(line)]
        raise StepFailed((ours or lines or [f"{command[0]} exited {done.returncode}"])[-1])
    return done.stdout


@dataclass
class Release:
    label: str  # the tag, or the version for staging
    image: str
    golden: Path | None  # its smoke.json; None for a release made before smoke tests

    @property
    def version(self) -> str:
        """The version the server names (MODEL_VERSION): a tag's; "" for staging, whose label is
        the version its model already carries."""
        return version_of(self.label) if SEMVER_TAG.fullmatch(self.label) else ""

    def smoke_golden(self) -> Path | None:
        return self.golden if self.golden and self.golden.is_file() else None


class Kubernetes:
    """`make deploy-kubernetes`, `make undeploy-canary` and `make smoke-kubernetes`: kubectl with
    the kubeconfig (and NAMESPACE) of the environment. MODEL_VERSION goes into the written
    overlay (the Deployment's env), empty or not, so none is left from an earlier apply."""

    name = "Kubernetes"

    def deploy(self, image: str, version: str, canary: bool = False) -> None:
        track = ["TRACK=canary"] if canary else []
        run([
            "make", "--no-print-directory", "deploy-kubernetes", f"IMAGE={image}",
            f"MODEL_VERSION={version}", *track,
        ])  # fmt: skip

    def promote(self, image: str, version: str) -> None:
        self.deploy(image, version)

    def remove_canary(self) -> None:
        run(["make", "--no-print-directory", "undeploy-canary"])

    def share(self, percent: int) -> None:
        """The canary's replica already takes its share through the Service."""

    def roll_back(self, previous: Release | None) -> str:
        """The canary goes and the previous release's image is applied again, by digest."""
        self.remove_canary()
        if previous is not None:
            self.deploy(previous.image, previous.version)
        return ""

    def smoke(
        self, golden: Path, version: str, canary: bool = False, max_error_rate: float | None = None
    ):
        settings = [f"GOLDEN={golden}", *(["TRACK=canary"] if canary else [])]
        if version:
            settings.append(f"VERSION={version}")
        if max_error_rate is not None:
            settings.append(f"MAX_ERROR_RATE={max_error_rate}")
        run(["make", "--no-print-directory", "smoke-kubernetes", *settings])


@dataclass
class CloudRun:
    """gcloud run: revisions of one service, the canary reached by its traffic tag URL.

    What each gcloud flag does was read in the Google Cloud CLI's own source (578.0.0:
    lib/googlecloudsdk/command_lib/run/config_changes.py and api_lib/run/traffic.py, mirrored
    at github.com/google-cloud-sdk-unofficial/google-cloud-sdk) and its reference pages
    (cloud.google.com/sdk/gcloud/reference/run/deploy, .../run/services/update-traffic);
    docs/deploy-targets.md says what was checked and what a live project has not confirmed."""

    service: str
    region: str
    name: str = "Cloud Run"
    audiences: list[str] = field(default_factory=list)
    invoker: str = ""  # the service account whose ID token the smoke test sends
    serving_before: dict[str, int] = field(default_factory=dict)  # revision -> percent

    def gcloud(self, *args: str) -> str:
        return run(["gcloud", "run", *args, f"--region={self.region}", "--quiet"])

    def exists(self) -> bool:
        """False only for gcloud's answer about a missing service (`Cannot find service
        [NAME]`); any other failure (credentials, permissions) stops the delivery."""
        try:
            self.gcloud("services", "describe", self.service, "--format=value(status.url)")
        except StepFailed as err:
            if f"Cannot find service [{self.service}]" in str(err):
                return False
            raise
        return True

    def described(self) -> dict:
        return json.loads(self.gcloud("services", "describe", self.service, "--format=json"))

    def deploy(self, image: str, version: str, canary: bool = False) -> None:
        audiences = [f"--add-custom-audiences={','.join(self.audiences)}"] if self.audiences else []
        # A deploy keeps the service's environment and changes only what it is told (gcloud's
        # EnvVarLiteralChanges), so the version is set, or removed, every time: a revision
        # never inherits another release's.
        if version:
            env = [f"--update-env-vars=MODEL_VERSION={version}"]
        else:
            env = ["--remove-env-vars=MODEL_VERSION"]
        if canary:
            # The revisions serving now, by name (status.traffic names the revision behind
            # LATEST too): a failure gives them their traffic back.
            self.serving_before = {}
            for target in self.described().get("status", {}).get("traffic", []):
                if target.get("percent"):
                    revision = target["revisionName"]
                    self.serving_before[revision] = (
                        self.serving_before.get(revision, 0) + target["percent"]
                    )
            # --no-traffic moves what LATEST had to the revision serving now, so the new one
            # takes no request but through its tag URL (gcloud refuses it on a service that does
            # not exist yet: main() deploys a first release straight).
            self.gcloud(
                "deploy", self.service, f"--image={image}", "--no-traffic", f"--tag={CANARY_TAG}",
                *CLOUD_RUN_FLAGS, *env, *audiences,
            )  # fmt: skip
            return
        self.gcloud(
            "deploy", self.service, f"--image={image}", *CLOUD_RUN_FLAGS, *env, *audiences
        )  # fmt: skip
        # After a --no-traffic deploy the traffic stays pinned to revisions by name, and a
        # plain deploy gives the new revision none: all of it to the latest.
        self.gcloud("services", "update-traffic", self.service, "--to-latest")

    def promote(self, image: str, version: str) -> None:
        """All traffic to the revision the canary tag names, the one smoke-tested: no new
        revision, and none created meanwhile by someone else can slip in as LATEST."""
        self.gcloud("services", "update-traffic", self.service, f"--to-tags={CANARY_TAG}=100")

    def remove_canary(self) -> None:
        if CANARY_TAG in self.urls():
            self.gcloud("services", "update-traffic", self.service, f"--remove-tags={CANARY_TAG}")

    def share(self, percent: int) -> None:
        """The canary's revision takes `percent`; the revisions serving now keep the rest, in
        proportion to what they had (gcloud rescales the targets it was not given)."""
        self.gcloud("services", "update-traffic", self.service, f"--to-tags={CANARY_TAG}={percent}")

    def roll_back(self, previous: Release | None) -> str:
        """The revisions that served before the canary take their traffic back and the canary
        tag goes, in one update (gcloud removes tags before it sets the percentages): no new
        revision to start, and none of the canary's requests left. The smoke test with the
        previous release's golden file then checks what they serve."""
        if not self.serving_before:  # no canary was deployed
            self.remove_canary()
            return ""
        split = ",".join(f"{name}={percent}" for name, percent in self.serving_before.items())
        self.gcloud(
            "services", "update-traffic", self.service, f"--to-revisions={split}",
            f"--remove-tags={CANARY_TAG}",
        )  # fmt: skip
        shares = ", ".join(f"`{name}` {percent}%" for name, percent in self.serving_before.items())
        return f"revisions {shares}, as before the canary"

    def urls(self) -> dict[str, str]:
        """The service URL ("") and each tagged revision's URL, from `services describe`."""
        status = self.described().get("status", {})
        urls = {"": status.get("url", "")}
        for target in status.get("traffic", []):
            if target.get("tag"):
                urls[target["tag"]] = target.get("url", "")
        return urls

    def id_token(self, url: str) -> str:
        """An ID token minted just before each smoke test: google-github-actions/auth's own
        `id_token` lives at most 10 minutes (its README), less than a canary may take. From the
        workload identity credentials that action leaves, gcloud mints one for an audience only
        by impersonating a service account (it refuses --audiences for external accounts: seen
        with gcloud 528.0.0), here the deploying account itself. The audience is the custom one
        every deploy adds, which Cloud Run applies to all serving revisions; without one, the
        URL called."""
        command = ["gcloud", "auth", "print-identity-token"]
        if self.invoker:
            audience = self.audiences[0] if self.audiences else url
            command += [
                f"--impersonate-service-account={self.invoker}", f"--audiences={audience}",
                "--include-email",
            ]  # fmt: skip
        return run(command, secret=True).strip()

    def smoke(
        self, golden: Path, version: str, canary: bool = False, max_error_rate: float | None = None
    ):
        url = self.urls().get(CANARY_TAG if canary else "")
        if not url:
            raise StepFailed(f"{self.service} has no {'canary tag ' if canary else ''}URL")
        settings = [f"URL={url}", f"GOLDEN={golden}", *([f"VERSION={version}"] if version else [])]
        if max_error_rate is not None:
            settings.append(f"MAX_ERROR_RATE={max_error_rate}")
        run(
            ["make", "--no-print-directory", "smoke", *settings],
            env={"SMOKE_BEARER_TOKEN": self.id_token(url)},
        )


@dataclass
class Outcome:
    steps: list[tuple[str, str]] = field(default_factory=list)  # (step, "passed" or the error)
    failed: str | None = None
    serving: str = ""

    def attempt(self, step: str, action: Callable[[], None]) -> bool:
        if self.failed:
            return False
        try:
            action()
        except StepFailed as err:
            self.steps.append((step, f"❌ {err}"))
            self.failed = f"{step}: {err}"
            return False
        self.steps.append((step, "✅ passed"))
        return True


def smoke_or_note(target, release: Release, **options) -> None:
    golden = release.smoke_golden()
    if golden is None:
        print(f"::warning title=No smoke test::{release.label} has no smoke.json: not checked")
        return
    target.smoke(golden, release.version, **options)


def deliver(
    target,
    new: Release,
    previous: Release | None,
    canary: bool,
    canary_seconds: float,
    canary_percent: int,
    max_error_rate: float,
) -> Outcome:
    outcome = Outcome()

    def canary_step() -> None:
        target.deploy(new.image, new.version, canary=True)
        smoke_or_note(target, new, canary=True)

    def share_step() -> None:
        target.share(canary_percent)
        print(f"The canary takes its share of requests for {canary_seconds:g} s", flush=True)
        time.sleep(canary_seconds)
        smoke_or_note(target, new, canary=True, max_error_rate=max_error_rate)

    def rollout_step() -> None:
        if canary:
            target.promote(new.image, new.version)
        else:
            target.deploy(new.image, new.version)
        target.remove_canary()
        smoke_or_note(target, new)

    if canary:
        outcome.attempt("canary", canary_step)
        outcome.attempt("canary share", share_step)
    outcome.attempt("rollout", rollout_step)
    if not outcome.failed:
        outcome.serving = f"{new.label} (`{new.image}`)"
        return outcome
    if not canary:
        outcome.serving = "unknown: the delivery failed part-way; check the environment"
        return outcome

    restored = ""  # what the target brought back, in its own words (Cloud Run: revisions)

    def rollback_step() -> None:
        nonlocal restored
        restored = target.roll_back(previous)
        if previous is not None:
            smoke_or_note(target, previous)

    outcome.failed, failure = None, outcome.failed  # let the rollback run, then restore
    rolled_back = outcome.attempt("rollback", rollback_step)
    outcome.failed = failure
    detail = f": {restored}" if restored else ""
    if rolled_back and previous is not None:
        outcome.serving = (
            f"the previous release {previous.label} (`{previous.image}`), again{detail}"
        )
    elif rolled_back:
        outcome.serving = (
            f"nothing of {new.label}: the canary is gone, and no release came before{detail}"
        )
    else:
        outcome.serving = (
            "unknown: the rollback failed too; run rollback.yml for the previous release"
        )
    return outcome


def summary(target_name: str, new: Release, outcome: Outcome) -> str:
    icon, verdict = ("✅", "serves") if not outcome.failed else ("❌", "was rolled back")
    if outcome.failed and not any(step == "rollback" for step, _ in outcome.steps):
        verdict = "failed to deploy"
    rows = "\n".join(f"| {step} | {result} |" for step, result in outcome.steps)
    lines = [
        f"## {icon} {new.label} {verdict} ({target_name})",
        "",
        f"**Now serving:** {outcome.serving}",
        "",
    ]
    if outcome.failed:
        lines += [f"**What failed:** {outcome.failed}", ""]
    return "\n".join([*lines, "| step | result |", "| --- | --- |", rows, ""])


def main(argv: list[str] | None = None) -> int:
    def setting(name: str, default: str = "") -> str:
        return os.environ.get(name, default)

    # Every option also reads the environment variable of its name (`make deliver` passes them).
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", choices=["kubernetes", "cloud-run"])
    parser.add_argument("--image", default=setting("IMAGE"))
    parser.add_argument("--golden", type=Path, default=setting("GOLDEN", "dist/smoke.json"))
    parser.add_argument("--release", default=setting("RELEASE"), help="the tag, or the version")
    parser.add_argument(
        "--canary", action="store_true", default=setting("CANARY") == "true",
        help="canary first; on failure, back to the previous release",
    )  # fmt: skip
    parser.add_argument("--previous-image", default=setting("PREVIOUS_IMAGE"))
    parser.add_argument("--previous-golden", type=Path, default=setting("PREVIOUS_GOLDEN") or None)
    parser.add_argument("--previous-release", default=setting("PREVIOUS_RELEASE"))
    parser.add_argument("--canary-seconds", type=float, default=setting("CANARY_SECONDS", "300"))
    parser.add_argument("--canary-percent", type=int, default=setting("CANARY_PERCENT", "10"))
    parser.add_argument("--max-error-rate", type=float, default=setting("MAX_ERROR_RATE", "0.01"))
    parser.add_argument("--service", default=setting("CLOUD_RUN_SERVICE"), help="Cloud Run")
    parser.add_argument("--region", default=setting("CLOUD_RUN_REGION"), help="Cloud Run")
    parser.add_argument(
        "--audience", action="append", default=[a for a in [setting("CLOUD_RUN_AUDIENCE")] if a],
        help="Cloud Run: a custom audience the smoke test's ID token is for",
    )  # fmt: skip
    parser.add_argument(
        "--invoker", default=setting("CLOUD_RUN_INVOKER"),
        help="Cloud Run: the service account the smoke test's ID token is minted for",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if not (args.image and args.release):
        parser.error("IMAGE (--image) and RELEASE (--release) are needed")
    if not 0 < args.canary_percent < 100 or args.canary_seconds < 0:
        parser.error("CANARY_PERCENT is between 1 and 99, CANARY_SECONDS at least 0")
    target: CloudRun | Kubernetes
    if args.target == "cloud-run":
        if not (args.service and args.region):
            parser.error("cloud-run needs --service and --region")
        target = CloudRun(args.service, args.region, audiences=args.audience, invoker=args.invoker)
    else:
        target = Kubernetes()
    new = Release(args.release, args.image, args.golden)
    previous = (
        Release(args.previous_release or "the previous release", args.previous_image,
                args.previous_golden)
        if args.previous_image else None
    )  # fmt: skip
    canary = args.canary
    if canary and isinstance(target, CloudRun):
        try:
            canary = target.exists()
        except StepFailed as err:
            print(f"::error title=Delivery failed::{err}; nothing was deployed")
            return 1
        if not canary:
            print(f"::notice title=First deploy::{args.service} does not exist yet: no canary")
    outcome = deliver(
        target, new, previous, canary, args.canary_seconds, args.canary_percent,
        args.max_error_rate,
    )  # fmt: skip
    text = summary(target.name, new, outcome)
    print(text)
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(os.environ["GITHUB_STEP_SUMMARY"], "a") as out:
            out.write(text + "\n")
    if outcome.failed:
        print(f"::error title=Delivery failed::{outcome.failed}; now serving: {outcome.serving}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
