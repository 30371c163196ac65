"""Progressive delivery under act, on a project deploying to Kubernetes: staging.yml on a push to
main, then release.yml on tags of that commit, once with a healthy canary (promoted) and once
with a canary whose image holds another model (rolled back).

The stand-ins (tests/act): build-push keeps each image's model in a registry folder under its
digest; the recording kubectl keeps a cluster folder (namespace/Deployment -> image) and, for
`kubectl port-forward deployment/NAME`, serves that image's model with the project's own server,
so `make smoke` runs for real against what the Deployment would run. The stand-in GitHub API keeps
the commit status staging.yml writes, which release.yml reads; the download-artifact stand-in
hands release.yml the staging run's release files by run id.
"""

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import git
from test_act import act, earlier_release, release_event, shared_remote

KUBECONFIG = {"KUBECONFIG": "apiVersion: v1\nkind: Config\n"}
STAGING_RUN = "4242"
PUSH_TO_MAIN = {
    "ref": "refs/heads/main",
    "repository": {"full_name": "Acme/Act-Demo", "name": "Act-Demo", "owner": {"login": "Acme"}},
}


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
    # Production serves v1.1.0, an earlier release of the committed model.
    previous = earlier_release(project, tmp_path / "v1.1.0", registry)
    (cluster / "default").mkdir(parents=True)
    (cluster / "default/act-demo").write_text(previous + "\n")
    latest = {
        "STUB_GH_LATEST": "v1.1.0",
        "STUB_GH_IMAGE": previous,
        "STUB_GH_SMOKE": str(tmp_path / "v1.1.0/smoke.json"),
        "STUB_GH_LATEST_METRICS": str(tmp_path / "v1.1.0/metrics.json"),
    }

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
    assert (cluster / "act-demo-staging/act-demo").read_text().strip() == image
    assert f"smoke: http://127.0.0.1:18080 serves act-demo {version}" in result.stdout
    [status] = json.loads((tmp_path / "github.json").read_text())["statuses"][sha]
    assert {k: status[k] for k in ("state", "context", "description")} == {
        "state": "success", "context": "staging", "description": digest,
    }  # fmt: skip
    assert status["target_url"].endswith(f"/Acme/Act-Demo/actions/runs/{STAGING_RUN}")

    def release(tag: str):
        """Tag the staged commit and run release.yml on it; production serves v1.1.0."""
        git(project, "tag", tag)
        record = tmp_path / tag
        done = act(
            project, "push", release_event(tag), "release.yml", record, KUBECONFIG,
            {**stand_ins, **latest}, {"CANARY_SECONDS": "0"},
        )  # fmt: skip
        return record, done

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
        assert yaml.safe_load((record / name).read_text())["images"] == [pinned], name
    assert yaml.safe_load((record / "kustomization-canary.yaml").read_text())["resources"] == [
        "../canary"
    ]
    assert (cluster / "default/act-demo").read_text().strip() == image
    assert not (cluster / "default/act-demo-canary").exists()
    assert "## ✅ v1.2.0 serves (Kubernetes)" in result.stdout
    smoked = [line for line in result.stdout.splitlines() if "smoke: http://127.0.0.1:" in line]
    assert len(smoked) == 3 and all("; 0 of " in line for line in smoked), smoked
    gh = calls_of(record, "gh")
    assert "api repos/Acme/Act-Demo/commits/" + sha + "/statuses --paginate --jq" in " ".join(gh)
    assert "release download v1.1.0 --pattern metrics.json --dir latest-release" in gh
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

    # --- v1.2.1: the image's model is not the release's; the canary fails, v1.1.0 comes back.
    (cluster / "default/act-demo").write_text(previous + "\n")
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
    assert yaml.safe_load((record / "kustomization.yaml").read_text())["images"] == [back]
    # Nothing is left on the bad version: the stable Deployment runs v1.1.0, no canary.
    assert (cluster / "default/act-demo").read_text().strip() == previous
    assert not (cluster / "default/act-demo-canary").exists()
    log = result.stdout
    expected = f"the served model's version is 1.1.0, the release's is {version}"
    assert f"smoke: http://127.0.0.1:18080: {expected}" in log
    assert "## ❌ v1.2.1 was rolled back (Kubernetes)" in log
    assert f"**What failed:** canary: smoke: http://127.0.0.1:18080: {expected}" in log
    assert f"**Now serving:** the previous release v1.1.0 (`{previous}`), again" in log
    assert "smoke: http://127.0.0.1:18080 serves act-demo 1.1.0" in log
    assert "release edit v1.2.1 --latest" not in calls_of(record, "gh"), "it never served"
