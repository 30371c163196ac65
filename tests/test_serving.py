"""What the serving image runs and how it is deployed: the runtime set alone serves the model
(no Docker engine here, so the image's venv is rebuilt with `make runtime`), the Dockerfile passes
hadolint and our image policy, the Kubernetes manifests validate offline, and the devcontainer
opens with `make setup`."""

import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from conftest import SHARED_VENV, TEMPLATE, bake, make, run
from matrix import choices

DIGEST = "sha256:" + "ab" * 32


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def request(url: str, body: dict | None = None) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    # urllib would label a body form-encoded, which the server refuses (415).
    headers = {} if body is None else {"Content-Type": "application/json"}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data, headers), timeout=5) as got:
            return got.status, got.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def readme_curl(readme: Path) -> str:
    """The README's `/predict` curl, its continuation lines joined as bash joins them."""
    command = re.search(r"^curl -s localhost:8080/predict .*?'$", readme.read_text(), re.M | re.S)
    assert command, "the README shows no /predict curl"
    return command[0].replace("\\\n", " ")


@pytest.mark.xdist_group("act-setup")
def test_the_runtime_set_alone_serves_the_model(set_up_project, tmp_path):
    """`make runtime` installs what the image installs; from that venv the server starts, its
    healthcheck turns ready, and it answers, without scikit-learn or pandas anywhere."""
    project = Path(shutil.copytree(set_up_project, tmp_path / "project", symlinks=True))
    make(project, "runtime", RUNTIME_VENV=str(tmp_path / "runtime"))
    python = str(tmp_path / "runtime" / "bin" / "python")
    absent = run(
        [python, "-c", "import importlib.util as u; print([m for m in ('sklearn', 'pandas', "
         "'dvc', 'skl2onnx', 'onnx') if u.find_spec(m)])"],
        cwd=project,
    )  # fmt: skip
    assert absent.stdout.strip() == "[]"

    port = str(free_port())
    # As the Dockerfile sets them (MODEL_NAME: its ENV).
    env = {**os.environ, "PORT": port, "MODEL_PATH": str(project / "models/model.onnx")}
    env["MODEL_NAME"] = re.search(r"MODEL_NAME=(\S+)", (project / "Dockerfile").read_text())[1]
    healthcheck = [python, "-m", "mlops_actions.healthcheck"]
    assert subprocess.run(healthcheck, env=env, capture_output=True).returncode == 1
    server = subprocess.Popen(
        [python, "-m", "mlops_actions.serve"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(healthcheck, env=env, capture_output=True).returncode != 0:
            assert server.poll() is None, server.stdout.read()
            assert time.monotonic() < deadline, "the server never became ready"
            time.sleep(0.2)
        base = f"http://127.0.0.1:{port}"
        status, body = request(f"{base}/v2/models/act-demo")
        features = [item["name"] for item in json.loads(body)["inputs"]]
        record = dict.fromkeys(features, 1.0)
        status, body = request(f"{base}/predict", {"records": [record, record]})
        assert status == 200, body
        predictions = json.loads(body)["predictions"]
        assert len(predictions) == 2 and predictions[0]["label"] in ("benign", "malignant")
        assert request(f"{base}/predict", {"records": [{"nope": 1}]})[0] == 400
        metrics = request(f"{base}/metrics")[1].decode()
        assert 'http_requests_total{method="POST",route="/predict",status="200"} 1.0' in metrics
        assert 'model_info{name="act-demo",sha256="' in metrics
        # The README's curl, as written but for the port: the bake's features and a real row.
        curl = readme_curl(project / "README.md").replace("localhost:8080", f"127.0.0.1:{port}")
        done = run(["bash", "-c", f"{curl} --write-out '\\n%{{http_code}}'"], cwd=project)
        body, _, status = done.stdout.rpartition("\n")
        assert status == "200", done.stdout
        assert json.loads(body)["predictions"][0]["label"] == "malignant"  # sklearn's row 0
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)

    missing = subprocess.run(
        [python, "-m", "mlops_actions.serve", "--model", "absent.onnx"],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        "serve: model file absent.onnx not found: run `make repro` (or `make pull`), "
        "or set MODEL_PATH"
    ]


# --- the image ----------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=choices("python_version"))
def baked(request, tmp_path_factory):
    return request.param, bake(tmp_path_factory.mktemp("image"), python_version=request.param)


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n\s*", " ", text)
    return [
        (line.split()[0].upper(), line.split(None, 1)[1])
        for line in joined.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_dockerfile_passes_hadolint_and_the_image_policy(baked):
    python_version, project = baked
    run([str(SHARED_VENV / "bin" / "hadolint"), "--failure-threshold", "info", "Dockerfile"],
        cwd=project)  # fmt: skip
    steps = dockerfile_instructions((project / "Dockerfile").read_text())
    stages = [args for name, args in steps if name == "FROM"]
    assert len(stages) == 2 and stages[0].endswith(" AS build"), "multi-stage: build, runtime"
    base = stages[1]
    assert stages[0] == f"{base} AS build", "both stages on one base"
    # An exact, slim tag of the answered Python: never `latest` or a floating minor.
    assert re.fullmatch(rf"python:{re.escape(python_version)}\.\d+-slim-\w+", base), base
    final = steps[[i for i, step in enumerate(steps) if step[0] == "FROM"][1] :]
    users = [args for name, args in final if name == "USER"]
    assert users and not users[-1].startswith(("0", "root")), "the server runs as non-root"
    copies = [args for name, args in final if name == "COPY"]
    assert copies == [
        "--from=build /opt/venv /opt/venv",
        "models/model.onnx /srv/model/model.onnx",
    ], "only the runtime venv and the model reach the image"
    installs = " ".join(args for name, args in steps if name == "RUN")
    assert "pip install --no-cache-dir ." in installs and "[" not in installs, "no extras"
    [healthcheck] = [args for name, args in final if name == "HEALTHCHECK"]
    module = re.search(r'"-m", "([\w.]+)"', healthcheck).group(1)
    assert module == "mlops_actions.healthcheck"
    assert "/v2/health/ready" in Path(importlib.util.find_spec(module).origin).read_text()
    ignored = (project / ".dockerignore").read_text().splitlines()
    assert ignored[1] == "*" and "!models/model.onnx" in ignored and "!data/" not in ignored


def test_devcontainer_opens_ready_to_work(baked):
    python_version, project = baked
    config = json.loads((project / ".devcontainer/devcontainer.json").read_text())
    assert config["postCreateCommand"] == "make setup"
    # The image's major 3: its 3.14 variant came after major 1 stopped (no 1-3.14-bookworm).
    assert config["image"] == f"mcr.microsoft.com/devcontainers/python:3-{python_version}-bookworm"
    assert (project / ".python-version").read_text().strip() == python_version


# --- Kubernetes ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def k8s_project(tmp_path_factory):
    return bake(tmp_path_factory.mktemp("k8s"), project_name="K8s Demo", github_owner="Acme-Org")


def manifests(folder: Path) -> dict[str, dict]:
    return {
        doc["kind"]: doc
        for path in sorted(folder.glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for doc in yaml.safe_load_all(path.read_text())
    }


def test_kubernetes_base_validates_and_hangs_together(k8s_project):
    base = k8s_project / "deploy/k8s/base"
    docs = manifests(base)
    assert set(docs) == {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
    for doc in docs.values():
        kubernetes_validate.validate(doc, "1.33", strict=True)
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    resources = kustomization["resources"]
    listed = {yaml.safe_load((base / name).read_text())["kind"] for name in resources}
    assert listed == set(docs)
    assert "images" not in kustomization, "the release overlay names the image, by digest"

    deployment = docs["Deployment"]
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert docs["Service"]["spec"]["selector"].items() <= labels.items()
    assert docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert docs["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == "k8s-demo"
    [container] = pod["spec"]["containers"]
    assert container["image"] == "serving-image"
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert {"requests", "limits"} <= set(container["resources"])
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_the_kserve_overlay_serves_the_onnx_model_over_v2(k8s_project):
    overlay = k8s_project / "deploy/k8s/overlays/kserve"
    [service] = yaml.safe_load_all((overlay / "inferenceservice.yaml").read_text())
    assert service["apiVersion"] == "serving.kserve.io/v1beta1"
    assert service["kind"] == "InferenceService"
    model = service["spec"]["predictor"]["model"]
    assert model["modelFormat"]["name"] == "onnx" and model["protocolVersion"] == "v2"
    assert model["storageUri"] and {"requests", "limits"} <= set(model["resources"])
    kustomization = yaml.safe_load((overlay / "kustomization.yaml").read_text())
    assert kustomization["resources"] == ["inferenceservice.yaml"]


def recording_kubectl(record: Path) -> dict[str, str]:
    """The act runs' recording kubectl (tests/act/bin) first on PATH, keeping what it gets."""
    record.mkdir()
    stand_ins = TEMPLATE / "tests" / "act" / "bin"
    return {
        **os.environ,
        "PATH": f"{stand_ins}{os.pathsep}{os.environ['PATH']}",
        "STUB_RECORD": str(record),
        "STUB_VENV": str(SHARED_VENV),
    }


def test_deploy_kubernetes_pins_the_image_by_digest(k8s_project, tmp_path):
    env = recording_kubectl(tmp_path / "record")
    image = f"ghcr.io/acme-org/k8s-demo@{DIGEST}"
    project = Path(shutil.copytree(k8s_project, tmp_path / "project"))
    command = ["make", "--no-print-directory", "deploy-kubernetes"]
    for bad in ("ghcr.io/acme-org/k8s-demo:1.2.0", "ghcr.io/x@sha256:short", "a b@" + DIGEST):
        refused = run(command, cwd=project, env={**env, "IMAGE": bad}, check=False)
        assert refused.returncode != 0
        assert "IMAGE must be <name>@sha256:<64 hex>" in refused.stderr
    for bad in ('1.2.0"', "1.2.0\nkind: Secret", "-1", "1.2.0/x"):
        refused = run([*command, f"MODEL_VERSION={bad}"], cwd=project, env={**env, "IMAGE": image},
                      check=False)  # fmt: skip
        assert refused.returncode != 0
        assert "MODEL_VERSION must be a version such as 1.2.0" in refused.stderr
    assert not (tmp_path / "record/kubectl-calls.txt").exists()

    run(command, cwd=project, env={**env, "IMAGE": image})
    overlay = project / "deploy/k8s/overlays/release"
    written = yaml.safe_load((overlay / "kustomization.yaml").read_text())
    assert written["images"] == [
        {"name": "serving-image", "newName": "ghcr.io/acme-org/k8s-demo", "digest": DIGEST}
    ]
    assert "patches" not in written, "no MODEL_VERSION: the image's model names its own"
    assert (tmp_path / "record/kubectl-calls.txt").read_text().splitlines() == [
        "apply -k deploy/k8s/overlays/release",
        "rollout status deployment/k8s-demo --timeout=5m",
    ]
    kubectl = shutil.which("kubectl")  # the real one, when this machine has it
    if kubectl is None:
        pytest.skip("kubectl is not installed: the rendered overlay was not built")
    rendered = run([kubectl, "kustomize", str(overlay)], cwd=project).stdout
    docs = {doc["kind"]: doc for doc in yaml.safe_load_all(rendered)}
    for doc in docs.values():
        kubernetes_validate.validate(doc, "1.33", strict=True)
    [container] = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == image


def test_every_overlay_renders_and_validates_for_kubernetes_1_33(k8s_project, tmp_path):
    """`kubectl kustomize` of the base and each overlay (the release and canary ones as
    `make deploy-kubernetes` writes them); every object validates against the 1.33 schemas,
    except KServe's InferenceService, whose CRD schema kubernetes-validate does not ship (its
    fields are checked above). The canary is the base's Deployment alone: its own name, one
    replica, pods labelled track=canary, which the base's Service still selects."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (Debian: apt-get install kubectl): not rendered")
    project = Path(shutil.copytree(k8s_project, tmp_path / "project"))
    env = recording_kubectl(tmp_path / "record")
    for track, version in (("stable", "1.2.0"), ("canary", "1.3.0-rc.1")):
        image = f"ghcr.io/acme-org/k8s-demo@{DIGEST}"
        run(["make", "--no-print-directory", "deploy-kubernetes", f"TRACK={track}",
             f"MODEL_VERSION={version}"], cwd=project, env={**env, "IMAGE": image})  # fmt: skip
    overlays = project / "deploy/k8s/overlays"
    rendered = {}
    for folder in [project / "deploy/k8s/base", *sorted(overlays.iterdir())]:
        text = run([kubectl, "kustomize", str(folder)], cwd=project).stdout
        rendered[folder.name] = list(yaml.safe_load_all(text))
        for doc in rendered[folder.name]:
            if doc["kind"] != "InferenceService":
                kubernetes_validate.validate(doc, "1.33", strict=True)
    assert set(rendered) == {"base", "canary", "kserve", "release", "release-canary"}
    [canary] = rendered["release-canary"]
    assert canary["kind"] == "Deployment" and canary["metadata"]["name"] == "k8s-demo-canary"
    assert canary["spec"]["replicas"] == 1
    assert canary["spec"]["selector"]["matchLabels"]["track"] == "canary"
    [container] = canary["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"ghcr.io/acme-org/k8s-demo@{DIGEST}"
    # MODEL_VERSION, the version each track's server names, joins the base's env (by name).
    env_of = {variable["name"]: variable["value"] for variable in container["env"]}
    assert env_of == {"MODEL_NAME": "k8s-demo", "MODEL_VERSION": "1.3.0-rc.1"}
    stable = {doc["kind"]: doc for doc in rendered["release"]}
    [container] = stable["Deployment"]["spec"]["template"]["spec"]["containers"]
    env_of = {variable["name"]: variable["value"] for variable in container["env"]}
    assert env_of == {"MODEL_NAME": "k8s-demo", "MODEL_VERSION": "1.2.0"}
    # The act runs' kubectl reads the same env from the overlays it is given.
    cluster = tmp_path / "record/cluster/default"
    for name, version in (("k8s-demo", "1.2.0"), ("k8s-demo-canary", "1.3.0-rc.1")):
        assert (cluster / name).read_text().splitlines() == [image, f"MODEL_VERSION={version}"]
    assert stable["Deployment"]["spec"]["selector"]["matchLabels"]["track"] == "stable"
    service_selector = stable["Service"]["spec"]["selector"].items()
    assert service_selector <= canary["spec"]["template"]["metadata"]["labels"].items()
    assert (tmp_path / "record/kubectl-calls.txt").read_text().splitlines()[-2:] == [
        "apply -k deploy/k8s/overlays/release-canary",
        "rollout status deployment/k8s-demo-canary --timeout=5m",
    ]


def test_release_tags_are_checked_before_use(k8s_project):
    """`make release-check` runs on a bare runner (standard library only) and names the rule."""
    command = ["make", "--no-print-directory", "release-check"]
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    for tag, version in (("v1.2.0", "1.2.0"), ("v0.1.0-rc.1", "0.1.0-rc.1")):
        done = run(command, cwd=k8s_project, env={**env, "TAG": tag})
        assert done.stdout.strip().splitlines()[-1] == version
    for tag in ("v1.2", "1.2.0", "v1.2.0+build", "v01.2.0", "v1.2.0;rm -rf /", ""):
        refused = run(command, cwd=k8s_project, env={**env, "TAG": tag}, check=False)
        assert refused.returncode != 0, tag
        assert "use vMAJOR.MINOR.PATCH" in refused.stderr or "usage:" in refused.stderr, tag


def test_template_pins_come_from_one_place():
    """Every action the generated workflows use is one of cookiecutter.json's pins."""
    pins = json.loads((TEMPLATE / "cookiecutter.json").read_text())["__actions"]
    workflows = TEMPLATE / "{{cookiecutter.project_slug}}" / ".github" / "workflows"
    used = set(re.findall(r"cookiecutter\.__actions\.(\w+)", "".join(
        path.read_text() for path in workflows.glob("*.yml")
    )))  # fmt: skip
    assert used <= set(pins), used - set(pins)


@pytest.mark.parametrize("target", ["kubernetes", "cloud-run"])
def test_make_deliver_names_what_it_needs_as_the_readme_does(target, tmp_path):
    """`make deliver` without RELEASE stops in one line naming it, and the README's `make deliver`
    names both variables it requires (the walk-through ran it from the README without RELEASE)."""
    project = bake(tmp_path, deploy_target=target)
    digest_image = f"ghcr.io/acme-org/k8s-demo@{DIGEST}"
    done = run(["make", "--no-print-directory", "deliver", f"IMAGE={digest_image}",
                f"VENV={SHARED_VENV}"], cwd=project, check=False)  # fmt: skip
    assert done.returncode != 0
    assert "error: IMAGE (--image) and RELEASE (--release) are needed" in done.stderr
    readme = (project / "README.md").read_text()
    shown = re.search(r"`make deliver ([^`]*)`", readme)
    assert shown and "IMAGE=" in shown[1] and "RELEASE=" in shown[1]
    helped = re.search(r"^deliver: ## (.*)$", (project / "Makefile").read_text(), re.M)[1]
    assert "IMAGE=" in helped and "RELEASE=" in helped
