"""Progressive delivery under act, on a project deploying to Kubernetes and on one deploying to
Cloud Run: staging.yml on a push to main, then release.yml on tags of that commit, once with a
healthy canary (promoted) and once with a canary whose image holds another model (rolled back).
Staging serves the commit's version (the one stamped in its model); production serves each tag's
(1.2.0, and 1.1.0 again after a rollback) from the same image, through the server's MODEL_VERSION
that each deploy sets (the kustomize overlay's env patch; gcloud's --update-env-vars).

The stand-ins (tests/act): build-push keeps each image's model in a registry folder under its
digest; the recording kubectl keeps a cluster folder (namespace/Deployment -> image) and, for
`kubectl port-forward deployment/NAME`, serves that image's model with the project's own server,
so `make smoke` runs for real against what the Deployment would run. The recording gcloud keeps a
Cloud Run folder (services, revisions, tags, traffic) whose service and tag URLs are served the
same way, behind fronts that check the smoke test's ID token. The stand-in GitHub API keeps the
commit status staging.yml writes, which release.yml reads; the download-artifact stand-in hands
release.yml the staging run's release files by run id.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import SHARED_VENV, bake, git
from test_act import (
    ACT_DIR,
    EARLIER_COMMIT,
    act,
    earlier_release,
    release_event,
    served_version,
    shared_remote,
)

KUBECONFIG = {"KUBECONFIG": "apiVersion: v1\nkind: Config\n"}
STAGING_RUN = "4242"
PUSH_TO_MAIN = {
    "ref": "refs/heads/main",
    "repository": {"full_name": "Acme/Act-Demo", "name": "Act-Demo", "owner": {"login": "Acme"}},
}


def latest_release(folder: Path, image: str) -> dict[str, str]:
    """What the gh stand-in answers when the release in `folder` (earlier_release) is the latest."""
    return {
        "STUB_GH_LATEST": folder.name,
        "STUB_GH_IMAGE": image,
        "STUB_GH_SMOKE": str(folder / "smoke.json"),
        "STUB_GH_LATEST_METRICS": str(folder / "metrics.json"),
        "STUB_GH_MODEL": str(folder / "model.onnx"),
    }


def tagged(project: Path, tag: str, tmp_path: Path, secrets, env: dict, variables: dict):
    """Tag the staged commit and run release.yml on it, the canary's share lasting 0 s; returns
    (the record folder, act's result)."""
    git(project, "tag", tag)
    record = tmp_path / tag
    done = act(
        project, "push", release_event(tag), "release.yml", record, secrets, env,
        {**variables, "CANARY_SECONDS": "0"},
    )  # fmt: skip
    return record, done


def calls_of(record: Path, tool: str) -> list[str]:
    path = record / f"{tool}-calls.txt"
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.xdist_group("act-setup")
def test_staging_then_a_canary_promoted_and_a_canary_rolled_back(set_up_project, tmp_path):
    project = shared_remote(set_up_project, tmp_path)
    sha = git(project, "rev-parse", "HEAD").strip()
    registry, cluster, runs = tmp_path / "registry", tmp_path / "cluster", tmp_path / "runs"
    stand_ins = {
        "STUB_REGISTRY": str(registry),
        "STUB_CLUSTER": str(cluster),
        "STUB_RUNS": str(runs),
        "STUB_GITHUB_STORE": str(tmp_path / "github.json"),
    }
    # Production serves v1.1.0, an earlier release of the committed model, as release.yml
    # deployed it: its image, whose model names its commit, told to serve as 1.1.0.
    previous = earlier_release(project, tmp_path / "v1.1.0", registry)
    (cluster / "default").mkdir(parents=True)
    (cluster / "default/act-demo").write_text(f"{previous}\nMODEL_VERSION=1.1.0\n")
    latest = latest_release(tmp_path / "v1.1.0", previous)
    earlier = EARLIER_COMMIT[:12]

    # --- staging: release files versioned by the commit, one image, deployed and smoke-tested.
    staging = runs / STAGING_RUN
    result = act(
        project, "push", PUSH_TO_MAIN, "staging.yml", staging, KUBECONFIG,
        {**stand_ins, "GITHUB_RUN_ID": STAGING_RUN}, {"K8S_NAMESPACE": "act-demo-staging"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:]
    version = sha[:12]
    files = staging / "artifacts/release-assets"
    golden = json.loads((files / "smoke.json").read_text())
    model_sha = hashlib.sha256((files / "model.onnx").read_bytes()).hexdigest()
    assert golden["model"] == {"name": "act-demo", "version": version, "sha256": model_sha}
    assert (staging / "metadata-tags.txt").read_text().strip() == f"type=raw,value={version}"
    digest = "sha256:" + model_sha  # the build-push stand-in's digest: the model's
    image = f"ghcr.io/acme/act-demo@{digest}"
    assert calls_of(staging, "kubectl") == [
        f"--namespace=act-demo-staging {call}"
        for call in (
            "apply -k deploy/k8s/overlays/release",
            "rollout status deployment/act-demo --timeout=5m",
            "delete deployment/act-demo-canary --ignore-not-found --wait=true",
            "port-forward deployment/act-demo 18080:8080",
        )
    ]
    # Staging serves the version its model carries, the commit's: no MODEL_VERSION.
    assert served_version(yaml.safe_load((staging / "kustomization.yaml").read_text())) is None
    assert (cluster / "act-demo-staging/act-demo").read_text().strip() == image
    assert f"smoke: http://127.0.0.1:18080 serves act-demo {version} (sha256 " in result.stdout
    [status] = json.loads((tmp_path / "github.json").read_text())["statuses"][sha]
    assert {k: status[k] for k in ("state", "context", "description")} == {
        "state": "success", "context": "staging", "description": digest,
    }  # fmt: skip
    assert status["target_url"].endswith(f"/Acme/Act-Demo/actions/runs/{STAGING_RUN}")

    def release(tag: str):
        """Tag the staged commit and run release.yml on it; production serves v1.1.0."""
        return tagged(project, tag, tmp_path, KUBECONFIG, {**stand_ins, **latest}, {})

    # --- v1.2.0: the staged digest as a canary, the smoke test, its share, then the rollout.
    record, result = release("v1.2.0")
    assert result.returncode == 0, result.stdout[-6000:]
    assert calls_of(record, "kubectl") == [
        "apply -k deploy/k8s/overlays/release-canary",
        "rollout status deployment/act-demo-canary --timeout=5m",
        "port-forward deployment/act-demo-canary 18080:8080",
        "port-forward deployment/act-demo-canary 18080:8080",
        "apply -k deploy/k8s/overlays/release",
        "rollout status deployment/act-demo --timeout=5m",
        "delete deployment/act-demo-canary --ignore-not-found --wait=true",
        "port-forward deployment/act-demo 18080:8080",
    ]
    pinned = {"name": "serving-image", "newName": "ghcr.io/acme/act-demo", "digest": digest}
    for name in ("kustomization-canary.yaml", "kustomization.yaml"):
        written = yaml.safe_load((record / name).read_text())
        assert written["images"] == [pinned], name
        assert served_version(written) == "1.2.0", name
    assert yaml.safe_load((record / "kustomization-canary.yaml").read_text())["resources"] == [
        "../canary"
    ]
    # The staged image, byte for byte, serving as 1.2.0; its model's own version stays visible.
    assert (cluster / "default/act-demo").read_text().splitlines() == [image, "MODEL_VERSION=1.2.0"]
    assert not (cluster / "default/act-demo-canary").exists()
    assert "## ✅ v1.2.0 serves (Kubernetes)" in result.stdout
    smoked = [line for line in result.stdout.splitlines() if "smoke: http://127.0.0.1:" in line]
    assert len(smoked) == 3 and all("; 0 of " in line for line in smoked), smoked
    serves = f"smoke: http://127.0.0.1:18080 serves act-demo 1.2.0 (build {version}, sha256 "
    assert all(serves in line for line in smoked), smoked
    gh = calls_of(record, "gh")
    assert "api repos/Acme/Act-Demo/commits/" + sha + "/statuses --paginate --jq" in " ".join(gh)
    # The champion (v1.1.0, the latest release) and v1.2.0 scored on the commit's holdout.
    champion = "release download v1.1.0 --pattern metrics.json --pattern model.onnx"
    assert f"{champion} --dir latest-release" in gh
    holdout = len(pd.read_csv(project / "data/prepared/holdout.csv"))
    promoted = f"v1.2.0 against the champion v1.1.0 on the same {holdout} holdout rows: `roc_auc`"
    assert promoted in result.stdout
    [create] = [call for call in gh if call.startswith("release create v1.2.0")]
    assert "--latest=false" in create
    assert gh[-2:] == [
        "release download v1.1.0 --pattern image.txt --pattern smoke.json --dir previous",
        "release edit v1.2.0 --latest",
    ]
    released = record / "release"
    assert (released / "image.txt").read_text().strip() == image
    assert (released / "model.onnx").read_bytes() == (files / "model.onnx").read_bytes()
    assert not (record / "docker-build.txt").exists(), "promoted, never rebuilt"
    # Once it serves, the image's `champion` tag names it (a copy by digest).
    assert calls_of(record, "docker") == [
        "buildx imagetools create --prefer-index=false --tag ghcr.io/acme/act-demo:champion "
        f"{image}"
    ]

    # --- v1.2.1: the image's model is not the release's; the canary fails, v1.1.0 comes back.
    (cluster / "default/act-demo").write_text(f"{previous}\nMODEL_VERSION=1.1.0\n")
    shutil.copy(tmp_path / "v1.1.0/model.onnx", registry / model_sha / "model.onnx")
    record, result = release("v1.2.1")
    assert result.returncode != 0
    assert calls_of(record, "kubectl") == [
        "apply -k deploy/k8s/overlays/release-canary",
        "rollout status deployment/act-demo-canary --timeout=5m",
        "port-forward deployment/act-demo-canary 18080:8080",
        "delete deployment/act-demo-canary --ignore-not-found --wait=true",
        "apply -k deploy/k8s/overlays/release",
        "rollout status deployment/act-demo --timeout=5m",
        "port-forward deployment/act-demo 18080:8080",
    ]
    back = {"name": "serving-image", "newName": "ghcr.io/acme/act-demo", "digest": previous[-71:]}
    canary_overlay = yaml.safe_load((record / "kustomization-canary.yaml").read_text())
    assert served_version(canary_overlay) == "1.2.1"
    stable_overlay = yaml.safe_load((record / "kustomization.yaml").read_text())
    assert stable_overlay["images"] == [back] and served_version(stable_overlay) == "1.1.0"
    # Nothing is left on the bad version: the stable Deployment runs v1.1.0 as 1.1.0, no canary.
    assert (cluster / "default/act-demo").read_text().splitlines() == [
        previous, "MODEL_VERSION=1.1.0",
    ]  # fmt: skip
    assert not (cluster / "default/act-demo-canary").exists()
    log = result.stdout
    # The canary names 1.2.1 as told; its model file is another one.
    expected = (
        f"the served model file's sha256 is {previous[-64:][:12]}…, the release's model.onnx is "
        f"{model_sha[:12]}…: a different model under the same version"
    )
    assert f"smoke: http://127.0.0.1:18080: {expected}" in log
    assert "## ❌ v1.2.1 was rolled back (Kubernetes)" in log
    assert f"**What failed:** canary: smoke: http://127.0.0.1:18080: {expected}" in log
    assert f"**Now serving:** the previous release v1.1.0 (`{previous}`), again" in log
    assert f"smoke: http://127.0.0.1:18080 serves act-demo 1.1.0 (build {earlier}, sha256 " in log
    assert "release edit v1.2.1 --latest" not in calls_of(record, "gh"), "it never served"
    assert ":champion" not in " ".join(calls_of(record, "docker")), "the champion stays v1.1.0"


# --- Cloud Run

GCP = {  # the variables of the staging and production environments
    "GCP_WORKLOAD_IDENTITY_PROVIDER": (
        "projects/123456/locations/global/workloadIdentityPools/github/providers/act-demo"
    ),
    "GCP_SERVICE_ACCOUNT": "deploy@act-project.iam.gserviceaccount.com",
    "GCP_REGION": "europe-west1",
    "GCP_ARTIFACT_REPOSITORY": "europe-west1-docker.pkg.dev/act-project/images",
}
ARTIFACT_REGISTRY = "europe-west1-docker.pkg.dev/act-project/images/act-demo"
IN_REGION = "--region=europe-west1 --quiet"


def cloud_run_project(set_up_project: Path, tmp_path: Path) -> Path:
    """The shared project as deploy_target cloud-run bakes it: the files that differ from the
    Kubernetes bake (workflows, deploy action, Makefile, README) put in place and committed."""
    project = shared_remote(set_up_project, tmp_path)
    other = bake(tmp_path / "cloud-run-bake", project_name="Act Demo", deploy_target="cloud-run")
    differ = [
        ".github/actions/deploy/action.yml", ".github/workflows/release.yml",
        ".github/workflows/staging.yml", ".github/workflows/rollback.yml", "Makefile", "README.md",
    ]  # fmt: skip
    for name in differ:
        (project / name).write_text((other / name).read_text())
    git(project, "commit", "--quiet", "--all", "--message", "deploy_target cloud-run")
    return project


@pytest.fixture
def cloud_run(tmp_path):
    """The stand-in Cloud Run's folder; its instances and fronts end with the test."""
    folder = tmp_path / "cloud-run"
    yield folder
    python = str(SHARED_VENV / "bin" / "python")
    subprocess.run([python, str(ACT_DIR / "cloud_run" / "instances.py"), "stop", str(folder)])


def service(cloud_run: Path, name: str) -> dict:
    return json.loads((cloud_run / "europe-west1" / f"{name}.json").read_text())


def status_of(url: str, token: str = "") -> int:
    request = urllib.request.Request(
        url, headers={"Authorization": f"Bearer {token}"} if token else {}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as err:
        return err.code


@pytest.mark.xdist_group("act-setup")
def test_cloud_run_staging_then_a_canary_promoted_and_a_canary_rolled_back(
    set_up_project, tmp_path, cloud_run
):
    project = cloud_run_project(set_up_project, tmp_path)
    sha = git(project, "rev-parse", "HEAD").strip()
    registry, runs = tmp_path / "registry", tmp_path / "runs"
    stand_ins = {
        "STUB_REGISTRY": str(registry),
        "STUB_CLOUD_RUN": str(cloud_run),
        "STUB_RUNS": str(runs),
        "STUB_GITHUB_STORE": str(tmp_path / "github.json"),
    }
    account = GCP["GCP_SERVICE_ACCOUNT"]
    credentials = tmp_path / "operator-credentials.json"
    credentials.write_text('{"type": "external_account"}')

    def operator(command: str) -> str:
        """The gcloud stand-in, as someone at a terminal runs it in the project."""
        record = tmp_path / "operator"
        record.mkdir(exist_ok=True)
        env = {
            **os.environ, **stand_ins, "STUB_RECORD": str(record), "STUB_VENV": str(SHARED_VENV),
            "STUB_BIN": str(ACT_DIR / "bin"), "CLOUDSDK_CORE_PROJECT": "act-project",
            "CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE": str(credentials),
        }  # fmt: skip
        done = subprocess.run(
            [str(ACT_DIR / "bin" / "gcloud"), *command.split()],
            cwd=project, env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    # Production serves v1.1.0, an earlier release of the committed model, deployed by hand as
    # release.yml deploys it: its model names its commit, the service is told 1.1.0.
    previous = earlier_release(project, tmp_path / "v1.1.0", registry)
    previous_copy = f"{ARTIFACT_REGISTRY}@{previous.split('@')[1]}"
    audience, env = "--add-custom-audiences=act-demo", "--update-env-vars=MODEL_VERSION=1.1.0"
    operator(f"run deploy act-demo --image={previous_copy} {env} {audience} {IN_REGION}")
    operator(f"run services update-traffic act-demo --to-latest {IN_REGION}")
    latest = latest_release(tmp_path / "v1.1.0", previous)
    earlier = EARLIER_COMMIT[:12]

    # --- staging: a service of its own, created by the first deploy (so no canary), smoke-tested.
    staging = runs / STAGING_RUN
    result = act(
        project, "push", PUSH_TO_MAIN, "staging.yml", staging, None,
        {**stand_ins, "GITHUB_RUN_ID": STAGING_RUN}, GCP,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:]
    version = sha[:12]
    files = staging / "artifacts/release-assets"
    model_sha = hashlib.sha256((files / "model.onnx").read_bytes()).hexdigest()
    digest = "sha256:" + model_sha
    copy = f"{ARTIFACT_REGISTRY}@{digest}"
    assert calls_of(staging, "docker") == [
        f"buildx imagetools create --prefer-index=false --tag {ARTIFACT_REGISTRY}:{model_sha} "
        f"ghcr.io/acme/act-demo@{digest}"
    ]
    token = (
        f"auth print-identity-token --impersonate-service-account={account} "
        "--audiences={} --include-email"
    )
    describe = "run services describe {} --format=json " + IN_REGION
    assert calls_of(staging, "gcloud") == [
        "auth configure-docker europe-west1-docker.pkg.dev --quiet",
        f"run deploy act-demo-staging --image={copy} --port=8080 --cpu=1 --memory=512Mi "
        f"--remove-env-vars=MODEL_VERSION --add-custom-audiences=act-demo-staging {IN_REGION}",
        f"run services update-traffic act-demo-staging --to-latest {IN_REGION}",
        describe.format("act-demo-staging"),  # a canary tag to remove?
        describe.format("act-demo-staging"),  # the URL to smoke-test
        token.format("act-demo-staging"),
    ]
    assert (staging / "gcp-auth.txt").read_text().split() == [
        f"provider={GCP['GCP_WORKLOAD_IDENTITY_PROVIDER']}", f"account={account}",
        "project=act-project",
    ]  # fmt: skip
    staged = service(cloud_run, "act-demo-staging")
    [revision] = staged["revisions"].values()
    assert revision["image"] == copy and staged["traffic"] == [
        {"latestRevision": True, "percent": 100}
    ]
    assert revision["env"] == {}, "staging serves the version its model carries, the commit's"
    staging_url = f"http://127.0.0.1:{staged['port']}"
    assert f"smoke: {staging_url} serves act-demo {version} (sha256 " in result.stdout
    assert status_of(f"{staging_url}/v2/health/ready") == 401, "no ID token, no answer"
    [status] = json.loads((tmp_path / "github.json").read_text())["statuses"][sha]
    assert (status["state"], status["description"]) == ("success", digest)

    def release(tag: str):
        return tagged(project, tag, tmp_path, None, {**stand_ins, **latest}, GCP)

    # --- v1.2.0: a tagged revision without traffic, its smoke test, 10 %, again, then all of it.
    before = service(cloud_run, "act-demo")["latestReady"]
    record, result = release("v1.2.0")
    assert result.returncode == 0, result.stdout[-6000:]
    production = service(cloud_run, "act-demo")
    canary = production["latestReady"]
    assert canary != before and production["revisions"][canary]["image"] == copy
    update = "run services update-traffic act-demo {} " + IN_REGION
    assert calls_of(record, "gcloud") == [
        "auth configure-docker europe-west1-docker.pkg.dev --quiet",
        f"run services describe act-demo --format=value(status.url) {IN_REGION}",
        describe.format("act-demo"),  # the revisions serving before the canary
        f"run deploy act-demo --image={copy} --no-traffic --tag=canary --port=8080 --cpu=1 "
        f"--memory=512Mi --update-env-vars=MODEL_VERSION=1.2.0 --add-custom-audiences=act-demo "
        f"{IN_REGION}",
        describe.format("act-demo"),
        token.format("act-demo"),
        update.format("--to-tags=canary=10"),
        describe.format("act-demo"),
        token.format("act-demo"),
        update.format("--to-tags=canary=100"),
        describe.format("act-demo"),
        update.format("--remove-tags=canary"),
        describe.format("act-demo"),
        token.format("act-demo"),
    ]
    copies = [
        (f"{ARTIFACT_REGISTRY}:{model_sha}", f"ghcr.io/acme/act-demo@{digest}"),
        (f"{ARTIFACT_REGISTRY}:{previous.split(':')[-1]}", previous),
        ("ghcr.io/acme/act-demo:champion", f"ghcr.io/acme/act-demo@{digest}"),  # once it serves
    ]
    assert calls_of(record, "docker") == [
        f"buildx imagetools create --prefer-index=false --tag {target} {source}"
        for target, source in copies
    ]
    assert production["traffic"] == [{"revisionName": canary, "percent": 100}], "no tag left"
    running = {name for name, rev in production["revisions"].items() if rev.get("pid")}
    assert running == {canary}, "v1.1.0's revision has no traffic: scaled to zero"
    assert production["revisions"][canary]["env"] == {"MODEL_VERSION": "1.2.0"}
    canary_url = f"http://127.0.0.1:{production['tagPorts']['canary']}"
    serves = rf"serves act-demo 1\.2\.0 \(build {version}, sha256 .*; 0 of "
    smoked = re.findall(rf"\| smoke: (http://127\.0\.0\.1:\d+) {serves}", result.stdout)
    assert smoked == [canary_url, canary_url, f"http://127.0.0.1:{production['port']}"]
    assert "## ✅ v1.2.0 serves (Cloud Run)" in result.stdout
    gh = calls_of(record, "gh")
    assert gh[-1] == "release edit v1.2.0 --latest"
    assert not (record / "docker-build.txt").exists(), "promoted, never rebuilt"

    # --- rollback.yml to v1.1.0: its image deployed again, told to serve as 1.1.0 (the service's
    # env would otherwise keep v1.2.0's MODEL_VERSION), and smoke-tested.
    event = {"inputs": {"version": "v1.1.0"}, "repository": PUSH_TO_MAIN["repository"]}
    record = tmp_path / "rollback"
    result = act(
        project, "workflow_dispatch", event, "rollback.yml", record, None,
        {**stand_ins, **latest, "STUB_GH_RELEASES": "v1.1.0 v1.2.0"}, GCP,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:]
    deploy = [call for call in calls_of(record, "gcloud") if call.startswith("run deploy")]
    assert deploy == [
        f"run deploy act-demo --image={previous_copy} --port=8080 --cpu=1 --memory=512Mi "
        f"--update-env-vars=MODEL_VERSION=1.1.0 --add-custom-audiences=act-demo {IN_REGION}"
    ]
    production = service(cloud_run, "act-demo")
    serving = production["latestReady"]
    assert production["revisions"][serving]["env"] == {"MODEL_VERSION": "1.1.0"}
    assert production["traffic"] == [{"latestRevision": True, "percent": 100}]
    back = f"smoke: http://127.0.0.1:{production['port']} serves act-demo 1.1.0 (build {earlier}, "
    assert back in result.stdout and "## ✅ v1.1.0 serves (Cloud Run)" in result.stdout
    assert calls_of(record, "docker")[-1] == (
        "buildx imagetools create --prefer-index=false --tag ghcr.io/acme/act-demo:champion "
        f"{previous}"
    ), "the champion tag goes back with the release"

    # --- v1.2.1: the image now holds another model, so the canary fails its smoke test and
    # v1.1.0's revision takes all the traffic back.
    shutil.copy(tmp_path / "v1.1.0/model.onnx", registry / model_sha / "model.onnx")
    record, result = release("v1.2.1")
    assert result.returncode != 0
    production = service(cloud_run, "act-demo")
    bad = production["latestReady"]
    assert bad not in (canary, serving)
    assert calls_of(record, "gcloud") == [
        "auth configure-docker europe-west1-docker.pkg.dev --quiet",
        f"run services describe act-demo --format=value(status.url) {IN_REGION}",
        describe.format("act-demo"),
        f"run deploy act-demo --image={copy} --no-traffic --tag=canary --port=8080 --cpu=1 "
        f"--memory=512Mi --update-env-vars=MODEL_VERSION=1.2.1 --add-custom-audiences=act-demo "
        f"{IN_REGION}",
        describe.format("act-demo"),
        token.format("act-demo"),
        update.format(f"--to-revisions={serving}=100 --remove-tags=canary"),
        describe.format("act-demo"),
        token.format("act-demo"),
    ]
    # Nothing is left on the bad revision: no traffic, no tag, no instance; its tag URL is gone.
    assert production["traffic"] == [{"revisionName": serving, "percent": 100}]
    running = {name for name, rev in production["revisions"].items() if rev.get("pid")}
    assert running == {serving}
    assert production["revisions"][bad]["env"] == {"MODEL_VERSION": "1.2.1"}
    minted = operator(token.format("act-demo")).strip()
    assert status_of(f"{canary_url}/v2/health/ready", minted) == 404
    log = result.stdout
    # The canary names 1.2.1 as told; its model file is another one.
    expected = (
        f"the served model file's sha256 is {previous[-64:][:12]}…, the release's model.onnx is "
        f"{model_sha[:12]}…: a different model under the same version"
    )
    assert f"smoke: {canary_url}: {expected}" in log
    assert "## ❌ v1.2.1 was rolled back (Cloud Run)" in log
    assert f"**What failed:** canary: smoke: {canary_url}: {expected}" in log
    assert (
        f"**Now serving:** the previous release v1.1.0 (`{previous_copy}`), again: revisions "
        f"`{serving}` 100%, as before the canary"
    ) in log
    assert f"smoke: http://127.0.0.1:{production['port']} serves act-demo 1.1.0 (build " in log
    assert "release edit v1.2.1 --latest" not in calls_of(record, "gh"), "it never served"
    assert ":champion" not in " ".join(calls_of(record, "docker")), "the champion stays v1.1.0"
