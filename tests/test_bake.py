"""Every option value is baked: the output is complete, rendered, lint-clean and parseable."""

import json
import os
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import SHARED_VENV, TEMPLATE, bake, load, run
from matrix import combo_id, matrix
from mlops_actions.schema import load_schema

COMBOS = matrix()
# Files every bake has; LICENSE depends on the license answer.
COMMON_FILES = {
    ".cruft.json",
    ".devcontainer/devcontainer.json",
    ".dockerignore",
    "Dockerfile",
    "deploy/k8s/base/deployment.yaml",
    "deploy/k8s/base/hpa.yaml",
    "deploy/k8s/base/kustomization.yaml",
    "deploy/k8s/base/pdb.yaml",
    "deploy/k8s/base/service.yaml",
    "deploy/k8s/overlays/canary/kustomization.yaml",
    "deploy/k8s/overlays/kserve/inferenceservice.yaml",
    "deploy/k8s/overlays/kserve/kustomization.yaml",
    ".github/dependabot.yml",
    ".github/workflows/batch-score.yml",
    ".github/workflows/ci.yml",
    ".github/workflows/pr-report-comment.yml",
    ".github/workflows/drift.yml",
    ".github/workflows/performance.yml",
    ".github/workflows/pr-report.yml",
    ".github/workflows/release.yml",
    ".github/workflows/retrain.yml",
    ".github/workflows/rollback.yml",
    ".github/workflows/tune.yml",
    ".github/workflows/template-update.yml",
    ".github/zizmor.yml",
    ".dvc/.gitignore",
    ".dvc/config",
    ".dvcignore",
    ".gitignore",
    ".python-version",
    "AGENTS.md",
    "CLAUDE.md",
    "Makefile",
    "README.md",
    "data/schema.yaml",
    "dvc.yaml",
    "params.yaml",
    "pyproject.toml",
    "src/{module}/__init__.py",
    "src/{module}/datasets.py",
    "src/{module}/models.py",
    "src/{module}/stages/__init__.py",
    "src/{module}/stages/data.py",
    "src/{module}/stages/evaluate.py",
    "src/{module}/stages/export.py",
    "src/{module}/stages/prepare.py",
    "src/{module}/stages/train.py",
    "src/{module}/stages/tune.py",
    "tests/conftest.py",
    "tests/data/test_raw_data.py",
    "tests/model/test_model.py",
    "tests/unit/test_datasets.py",
    "tests/unit/test_models.py",
    "tune/dvc.yaml",
}
# GitHub expressions (${{ }}) and docker/metadata-action's patterns ({{version}}) are meant to
# stay; Jinja's are not, nor references to the answers (the README may name the template itself).
LEFTOVER = re.compile(r"(?<!\$)\{\{(?!(?:version|major|minor)\}\})|\{%|cookiecutter\.")


def expected_files(answers: dict[str, str], module: str) -> set[str]:
    files = {name.format(module=module) for name in COMMON_FILES}
    if answers["license"] != "proprietary":
        files.add("LICENSE")
    if answers["deploy_target"] != "none":
        files |= {".github/actions/deploy/action.yml", ".github/workflows/staging.yml"}
    files |= {
        "arc": {".github/actionlint.yaml", "deploy/arc/values.yaml"},
        "aws-ec2": {
            ".github/ec2-runner/user-data.sh",
            ".github/workflows/training-runner-sweeper.yml",
        },
        "github-hosted": set(),
    }[answers["training_runner"]]
    return files


@pytest.fixture(scope="module", params=COMBOS, ids=map(combo_id, COMBOS))
def baked(request, tmp_path_factory):
    answers = request.param
    return answers, bake(tmp_path_factory.mktemp("bake"), **answers)


def project_files(project: Path) -> set[str]:
    return {str(p.relative_to(project)) for p in project.rglob("*") if p.is_file()}


def test_expected_file_set(baked):
    answers, project = baked
    assert project_files(project) == expected_files(answers, project.name.replace("-", "_"))


def test_nothing_left_unrendered(baked):
    _, project = baked
    for name in project_files(project) - {".cruft.json"}:
        text = (project / name).read_text()
        assert not LEFTOVER.search(text), f"{name}: {LEFTOVER.search(text).group()!r} left over"


def test_every_make_target_is_in_the_readme(baked):
    """`make help` lists what the Makefile offers: the README names each target (a default bake's
    README left out seven, the deploy ones among them)."""
    _, project = baked
    targets = re.findall(r"^([a-z][\w-]*):.*## ", (project / "Makefile").read_text(), re.M)
    readme = (project / "README.md").read_text()
    missing = [name for name in targets if not re.search(rf"make {name}(?![\w-])", readme)]
    assert targets and not missing, missing


def test_agents_md_names_only_make_targets(baked):
    """AGENTS.md tells coding agents what to run: each `make <target>` it names is a target of
    this bake's Makefile (tests/test_agents.py runs them), and CLAUDE.md only imports it."""
    _, project = baked
    targets = re.findall(r"^([a-z][\w-]*):.*## ", (project / "Makefile").read_text(), re.M)
    named = re.findall(r"`make ([a-z][\w-]*)", (project / "AGENTS.md").read_text())
    missing = sorted(set(named) - set(targets))
    assert len(set(named)) >= 10 and not missing, missing
    assert (project / "CLAUDE.md").read_text() == "@AGENTS.md\n"


def test_structured_files_parse(baked):
    _, project = baked
    for path in project.rglob("*"):
        if path.suffix in (".yaml", ".yml"):
            assert yaml.safe_load(path.read_text()) is not None, path
        elif path.suffix == ".toml":
            tomllib.loads(path.read_text())
        elif path.suffix == ".json":
            json.loads(path.read_text())


def assert_ruff_clean(project: Path) -> None:
    ruff = str(SHARED_VENV / "bin" / "ruff")
    run([ruff, "check", "--no-cache", "."], cwd=project)
    run([ruff, "format", "--no-cache", "--check", "."], cwd=project)


def test_python_is_lint_and_format_clean(baked):
    assert_ruff_clean(baked[1])


def test_answers_reach_the_project(baked):
    answers, project = baked
    assert (project / ".python-version").read_text().strip() == answers["python_version"]
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["train"]["model"] == answers["model"]
    schema = yaml.safe_load((project / "data/schema.yaml").read_text())
    labels = schema["target"].get("labels")
    expected_labels = {"binary_classification": 2, "regression": None}.get(answers["task"], 3)
    assert (len(labels) if labels else None) == expected_labels
    dataset = params["data"]["dataset"]
    assert answers["dataset"] in ("auto", dataset)
    remote = (project / ".dvc/config").read_text()
    if answers["dvc_remote"] == "local":
        assert "url" not in remote  # set per machine by `make setup`
    else:
        assert f"url = {answers['dvc_remote']}://" in remote
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    spdx = {"proprietary": "LicenseRef-Proprietary"}.get(answers["license"], answers["license"])
    assert pyproject["project"]["license"] == spdx


def test_long_names_stay_lint_clean(tmp_path):
    """Module names appear in import lines: a long one must not push them past the line limit."""
    assert_ruff_clean(bake(tmp_path, project_name="Customer Lifetime Value By Region Model"))


# --- the generated GitHub Actions workflows ----------------------------------------------------

PIN = re.compile(r"^\s*(?:- )?uses: ([\w.-]+/[\w.-]+)@([0-9a-f]{40}) # v\d+\.\d+\.\d+$")
READ_ONLY = {"contents": "read"}


def test_workflows_pass_actionlint_and_zizmor(baked):
    _, project = baked
    files = sorted(str(p) for p in (project / ".github/workflows").glob("*.yml"))
    tools = SHARED_VENV / "bin"
    env = {"PATH": f"{tools}:{os.environ['PATH']}"}  # actionlint finds shellcheck here
    # actionlint finds .github/actionlint.yaml in a git repository only; a bake is not one yet.
    config = project / ".github/actionlint.yaml"
    options = ["-config-file", str(config)] if config.exists() else []
    run([str(tools / "actionlint"), *options, *files], cwd=project, env=env)
    zizmor = run([str(tools / "zizmor"), "--offline", "--persona=pedantic", "."], cwd=project)
    assert "No findings to report" in zizmor.stdout + zizmor.stderr


def test_every_bake_matches_githubs_schemas(tmp_path):
    """check-jsonschema once per schema for every row of the matrix: it spends ~5 s starting up,
    so one call per schema and bake would cost minutes."""
    found: dict[str, list[str]] = {"workflows": [], "dependabot": [], "actions": []}
    for index, answers in enumerate(COMBOS):
        github = bake(tmp_path / str(index), **answers) / ".github"
        found["workflows"] += map(str, sorted((github / "workflows").glob("*.yml")))
        found["dependabot"].append(str(github / "dependabot.yml"))
        found["actions"] += map(str, sorted(github.rglob("action.yml")))
    schema = str(SHARED_VENV / "bin" / "check-jsonschema")
    for name, files in found.items():
        vendor = {"workflows": "github-workflows", "actions": "github-actions"}.get(name, name)
        assert files, name
        run([schema, "--builtin-schema", f"vendor.{vendor}", *files], cwd=tmp_path)


def assert_workflow_policy(github: Path) -> None:
    """The rules zizmor and actionlint do not enforce on their own, asserted on the parsed YAML
    of every workflow under a `.github` folder (a bake's, or this repository's own)."""
    for path in sorted((github / "workflows").glob("*.yml")):
        name, workflow = path.name, yaml.safe_load(path.read_text())
        triggers = workflow[True]  # YAML 1.1 reads the key `on` as True
        assert "pull_request_target" not in triggers, name
        assert workflow["permissions"] in ({}, READ_ONLY), name
        assert "concurrency" in workflow, name
        tagged = isinstance(triggers, dict) and "tags" in (triggers.get("push") or {})
        for job_name, job in workflow["jobs"].items():
            where = f"{name}: {job_name}"
            assert "permissions" in job, where
            assert 0 < job["timeout-minutes"] <= 90, where
            for step in job.get("steps", []):
                assert "${{" not in step.get("run", ""), f"{where}: expression inside run"
                if step.get("uses", "").startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False, where
                if tagged:
                    assert "cache" not in step.get("uses", ""), f"{where}: cache in a tag workflow"
                    if "setup-uv" in step.get("uses", ""):
                        assert step["with"]["enable-cache"] is False, f"{where}: uv cache"
    text = "\n".join(p.read_text() for p in github.rglob("*.yml"))
    uses = [line for line in text.splitlines() if line.strip().startswith(("uses:", "- uses:"))]
    # Third-party actions by SHA; a generated project's own deploy action by path.
    local = re.compile(r"^\s*(?:- )?uses: \./\.github/actions/deploy$")
    unpinned = [line for line in uses if not PIN.match(line) and not local.match(line)]
    assert uses and not unpinned, unpinned


def test_workflow_security_policy(baked):
    _, project = baked
    assert_workflow_policy(project / ".github")


def test_every_gh_step_works_on_github_enterprise_server(baked):
    """gh takes GH_TOKEN for github.com only: a step that gives it a token also gives
    GH_ENTERPRISE_TOKEN and sets GH_HOST from the server's URL (issue 28)."""
    _, project = baked
    steps = 0
    for path in sorted((project / ".github/workflows").glob("*.yml")):
        for job_name, job in yaml.safe_load(path.read_text())["jobs"].items():
            for step in job.get("steps", []):
                env = step.get("env") or {}
                if "GH_TOKEN" in env:
                    where = f"{path.name}: {job_name}: {step.get('name', step.get('run'))}"
                    assert env.get("GH_ENTERPRISE_TOKEN") == env["GH_TOKEN"], where
                    first = step["run"].splitlines()[0]
                    assert first == 'export GH_HOST="${GITHUB_SERVER_URL#*://}"', where
                    steps += 1
    assert steps >= 2


def test_the_templates_own_workflows_pass_the_same_checks():
    """The template's CI and pin-bump workflows: actionlint, zizmor (pedantic) and the schema as
    `make lint` runs them, the policy, and the same pins as the generated workflows (so
    `make bump-pins` moves them together)."""
    github = TEMPLATE / ".github"
    files = sorted(str(p) for p in (github / "workflows").glob("*.yml"))
    run(["make", "--no-print-directory", "lint-workflows"], cwd=TEMPLATE)
    assert_workflow_policy(github)
    pins = json.loads((TEMPLATE / "cookiecutter.json").read_text())["__actions"].values()
    by_action = {pin.split("@")[0]: pin for pin in pins}
    checked = 0
    for path in files:
        for line in Path(path).read_text().splitlines():
            if match := PIN.match(line):
                pin = line.strip().removeprefix("- ").removeprefix("uses: ")
                # An action only these workflows use (Pages) pins the same way everywhere.
                assert by_action.setdefault(match[1], pin) == pin, f"{path}: {pin}"
                checked += 1
    assert checked >= 10


def test_the_templates_ci_tests_every_python_a_project_can_choose():
    """ci.yml's `make test` matrix is python_version's choices: a version offered to projects is
    one the template's whole suite runs on (3.14 was added to both at once)."""
    ci = yaml.safe_load((TEMPLATE / ".github/workflows/ci.yml").read_text())
    offered = json.loads((TEMPLATE / "cookiecutter.json").read_text())["python_version"]
    assert sorted(ci["jobs"]["test"]["strategy"]["matrix"]["python"]) == sorted(offered)


# --- make github-check: what GitHub needs, read from each bake's own workflows -----------------

ACT_BIN = TEMPLATE / "tests/act/bin"
# An item's first line in `make github-check`'s list: (kind, name, environment, required?).
GITHUB_ITEM = re.compile(
    r"^  (?:missing|set|not set| ) *(variable|secret|environment|DVC remote) (\S+)"
    r"(?: of environment (\S+))?: (required|optional)",
    re.MULTILINE,
)


@pytest.fixture(scope="module")
def github_check(baked, tmp_path_factory):
    """`make github-check` in the bake with gh standing in, not logged in (a machine that has gh
    must not ask GitHub here): the list, unchecked, and its items."""
    record = tmp_path_factory.mktemp("gh-record")
    env = {
        "PATH": f"{ACT_BIN}{os.pathsep}{os.environ['PATH']}",
        "STUB_RECORD": str(record),
        "GH_TOKEN": "",
        "GITHUB_TOKEN": "",
        "GH_HOST": "",
    }
    command = ["make", "--no-print-directory", "github-check", f"VENV={SHARED_VENV}"]
    done = run(command, cwd=baked[1], env=env, check=False)
    return done, GITHUB_ITEM.findall(done.stdout)


def test_github_check_lists_what_the_workflows_read(baked, github_check):
    """Every variable and secret the workflow files name (read as text here, not as YAML) and
    every environment of their jobs, nothing more; optional exactly when each read of it falls
    back (`|| '...'`) or is a switch (`== '...'`); and the DVC remote, required with a cloud
    remote, whose placeholder alone fails the command while gh cannot check the rest."""
    answers, project = baked
    done, items = github_check
    text = "\n".join(p.read_text() for p in sorted((project / ".github/workflows").glob("*.yml")))
    references = re.findall(r"\b(vars|secrets)\.(\w+)(\s*(?:\|\||==))?", text)
    named = {(kind, name) for kind, name, _ in references} - {("secrets", "GITHUB_TOKEN")}
    bare = {name for _, name, how in references if not how}
    listed = [(kind, name, env, need) for kind, name, env, need in items if kind != "DVC remote"]
    kinds = {"variable": "vars", "secret": "secrets"}
    assert {(kinds[k], n) for k, n, _, _ in listed if k in kinds} == named
    assert {n for k, n, _, _ in listed if k == "environment"} == set(
        re.findall(r"^ {4}environment: ([\w-]+)", text, re.MULTILINE)
    )
    assert {n for k, n, _, need in listed if k in kinds and need == "required"} == bare - {
        "GITHUB_TOKEN"
    }
    # Read only by jobs of an environment: listed for that environment, which is listed too.
    environments = {n for k, n, _, _ in listed if k == "environment"}
    assert {env for _, _, env, _ in listed if env} <= environments
    cloud = answers["dvc_remote"] != "local"
    remote = [item for item in items if item[0] == "DVC remote"]
    assert remote == [("DVC remote", "storage", "", "required" if cloud else "optional")]
    assert done.returncode == (2 if cloud else 0), done.stdout + done.stderr  # make says 2
    verdict = "github-check: not checked against GitHub: gh is not logged in (gh auth login)"
    assert verdict in done.stdout + done.stderr


def test_the_readme_names_what_github_check_lists(baked, github_check):
    """The README explains each value by hand (a role, a kubeconfig): every `gh variable set` and
    `gh secret set` it shows is one the workflows read, and it names every required one."""
    _, project = baked
    _, items = github_check
    readme = (project / "README.md").read_text()
    listed = {name for kind, name, _, _ in items if kind in ("variable", "secret")}
    shown = set(re.findall(r"gh (?:variable|secret) set ([A-Z][A-Z0-9_]*)", readme))
    assert shown <= listed, shown - listed
    required = {n for k, n, _, need in items if k in ("variable", "secret") and need == "required"}
    unexplained = sorted(name for name in required if name not in readme)
    assert not unexplained, unexplained
    assert "## Before your first push" in readme


def test_make_setup_refuses_a_python_older_than_3_11(tmp_path):
    """`make setup` under Python 3.10 stops in one line before creating anything. No 3.10 exists
    here, so a python3 that reports 3.10 to the code it runs stands in (the template's CI runs the
    real 3.10: `make bake-check`)."""
    project = bake(tmp_path / "bake")
    fake = tmp_path / "python3.10"
    fake.write_text(
        "#!/bin/sh\n"
        '[ "$1" = "-c" ] || exec python3 "$@"\n'
        'exec python3 -c \'import sys; sys.version_info = (3, 10, 14, "final", 0); '
        'exec(sys.argv.pop(1))\' "$2"\n'
    )
    fake.chmod(0o755)
    done = run(
        ["make", "--no-print-directory", "setup", f"PYTHON={fake}"], cwd=project, check=False
    )
    assert done.returncode != 0
    assert done.stderr.splitlines()[0] == (
        "Python 3.10 is too old: this project needs 3.11 or newer (.python-version says 3.12); "
        "run make with PYTHON=python3.12"
    )
    assert not (project / ".venv").exists()


# What actions-runner-controller's gha-runner-scale-set chart, version 0.14.2, accepts for the
# keys deploy/arc/values.yaml sets, as read in the chart's values.yaml and templates
# (https://github.com/actions/actions-runner-controller/tree/gha-runner-scale-set-0.14.2/charts/gha-runner-scale-set):
# templates/autoscalingrunnerset.yaml fails on a scale-set name over 45 characters, on
# minRunners or maxRunners below 0 and on maxRunners below minRunners, and requires
# githubConfigUrl; githubConfigSecret is a mapping of credentials or the name of a secret made
# beforehand (we allow only the name: no credential in the repository); the runner's pod template
# is a PodSpec whose runner container is named `runner` (the container modes find it by name).
# No Helm binary installs here from a package registry, so nothing is rendered.
SCALE_SET_KEYS = {
    "githubConfigUrl", "githubConfigSecret", "runnerScaleSetName", "minRunners", "maxRunners",
    "template",
}  # fmt: skip
MAX_SCALE_SET_NAME = 45


def test_arc_values_fit_the_scale_set_chart_and_name_the_training_runner(tmp_path):
    """A long project name still gives a scale-set name the chart accepts; the training jobs run
    on that name."""
    name = "Customer Lifetime Value By Region Model"  # a 39-character slug
    project = bake(tmp_path, project_name=name, training_runner="arc", github_owner="acme")
    values = yaml.safe_load((project / "deploy/arc/values.yaml").read_text())
    assert set(values) <= SCALE_SET_KEYS, set(values) - SCALE_SET_KEYS
    assert values["githubConfigUrl"] == f"https://github.com/acme/{project.name}"
    assert isinstance(values["githubConfigSecret"], str) and values["githubConfigSecret"]
    scale_set = values["runnerScaleSetName"]
    assert 0 < len(scale_set) <= MAX_SCALE_SET_NAME and re.fullmatch(
        r"[a-z0-9]+(-[a-z0-9]+)*", scale_set
    )
    assert 0 <= values["minRunners"] <= values["maxRunners"]
    [runner] = [c for c in values["template"]["spec"]["containers"] if c["name"] == "runner"]
    assert runner["command"] == ["/home/runner/run.sh"] and runner["image"]
    retrain = yaml.safe_load((project / ".github/workflows/retrain.yml").read_text())
    assert retrain["jobs"]["retrain"]["runs-on"] == scale_set
    report = yaml.safe_load((project / ".github/workflows/pr-report.yml").read_text())
    assert f"'{scale_set}'" in report["jobs"]["report"]["runs-on"]
    tune = yaml.safe_load((project / ".github/workflows/tune.yml").read_text())
    assert tune["jobs"]["trial"]["runs-on"] == scale_set
    batch = yaml.safe_load((project / ".github/workflows/batch-score.yml").read_text())
    assert batch["jobs"]["score"]["runs-on"] == scale_set
    lint = yaml.safe_load((project / ".github/actionlint.yaml").read_text())
    assert lint["self-hosted-runner"]["labels"] == [scale_set]


@pytest.mark.parametrize("runner", ["github-hosted", "arc", "aws-ec2"])
def test_no_bake_uses_cml_to_run_training(tmp_path, runner):
    """CML only posts the PR comment: no setup-cml, no `cml runner` in any workflow."""
    project = bake(tmp_path, training_runner=runner)
    text = "\n".join(p.read_text() for p in (project / ".github").rglob("*.yml"))
    assert "setup-cml" not in text and "cml runner" not in text


def test_every_training_job_follows_the_ec2_runner_and_fork_prs_stay_hosted(tmp_path):
    """With aws-ec2, each workflow that trains starts a runner, trains on its label and always
    stops it; pr-report.yml starts none for a fork PR, whose code then runs on ubuntu-latest.
    (retrain.yml's three jobs run under act: tests/test_act_runners.py.)"""
    project = bake(tmp_path, training_runner="aws-ec2")
    label = "ec2-${{ github.run_id }}-${{ github.run_attempt }}"
    same_repository = "github.event.pull_request.head.repo.full_name == github.repository"
    for name, training in (("retrain.yml", "retrain"), ("pr-report.yml", "report")):
        jobs = yaml.safe_load((project / ".github/workflows" / name).read_text())["jobs"]
        assert jobs[training]["needs"] == "start-runner", name
        assert jobs["stop-runner"]["needs"] == ["start-runner", training], name
        assert jobs["stop-runner"]["if"].startswith("${{ always() "), name
        assert all(step["if"] == "${{ always() }}" for step in jobs["stop-runner"]["steps"]), name
        assert jobs["start-runner"]["permissions"]["id-token"] == "write", name
    retrain = yaml.safe_load((project / ".github/workflows/retrain.yml").read_text())["jobs"]
    assert retrain["retrain"]["runs-on"] == label and "if" not in retrain["start-runner"]
    report = yaml.safe_load((project / ".github/workflows/pr-report.yml").read_text())["jobs"]
    assert report["start-runner"]["if"] == f"${{{{ {same_repository} }}}}"
    assert report["report"]["runs-on"] == (
        f"${{{{ {same_repository} && format('ec2-{{0}}-{{1}}', github.run_id, "
        "github.run_attempt) || 'ubuntu-latest' }}"
    )
    # An ephemeral runner takes one job: tune.yml's trials, a matrix, stay on GitHub's runners.
    hosted = "${{ vars.TRAINING_RUNS_ON || 'ubuntu-latest' }}"
    tune = yaml.safe_load((project / ".github/workflows/tune.yml").read_text())["jobs"]
    batch = yaml.safe_load((project / ".github/workflows/batch-score.yml").read_text())["jobs"]
    assert tune["trial"]["runs-on"] == batch["score"]["runs-on"] == hosted


# A job's cell in the README's Actions table: "`job` (environment `name`): `scope: level`, ...".
JOB_CELL = re.compile(r"^`([\w-]+)`(?: \(environment `([\w-]+)`\))?: (none|`.*`)$")


def test_the_readme_actions_table_shows_each_jobs_permissions(baked):
    """The README's table of workflows lists every job of every workflow with exactly the token
    permissions (and the environment) its workflow file gives it: `id-token: write` appears where
    a cloud DVC remote or Cloud Run adds it, and nowhere else."""
    _, project = baked
    readme = (project / "README.md").read_text()
    table = readme.split("## GitHub Actions", 1)[1].split("\n\n", 2)[1]
    rows = {}
    for line in table.splitlines()[2:]:
        workflow, cell = re.match(r"^\| `([\w.-]+)` \|.* \| ([^|]+) \|$", line).groups()
        rows[workflow] = {}
        for part in cell.split("; "):
            job, environment, scopes = JOB_CELL.match(part).groups()
            granted = (
                {} if scopes == "none" else dict(s.split(": ") for s in scopes[1:-1].split("`, `"))
            )
            rows[workflow][job] = (environment, granted)
    files = {}
    for path in sorted((project / ".github/workflows").glob("*.yml")):
        jobs = yaml.safe_load(path.read_text())["jobs"]
        files[path.name] = {
            name: (
                (job.get("environment") or {}).get("name")
                if isinstance(job.get("environment"), dict)
                else job.get("environment"),
                job.get("permissions"),
            )
            for name, job in jobs.items()
        }
    assert rows == files


def test_the_readme_predict_example_is_the_first_row_of_the_starter_data(baked):
    """The README's `/predict` curl sends the first row the bake's data stage writes, features
    only, under the schema's names (the served bake's curl answers 200: test_serving.py)."""
    _, project = baked
    readme = (project / "README.md").read_text()
    sent = re.search(r"""-d '(\{"records": .*?\})'$""", readme, re.M | re.S)[1]
    [record] = json.loads(sent)["records"]
    datasets = load(project / "src" / project.name.replace("-", "_") / "datasets.py")
    schema = load_schema(project / "data/schema.yaml")
    params = yaml.safe_load((project / "params.yaml").read_text())
    frame = datasets.make_dataset(
        params["data"]["dataset"], params["data"].get("rows", 0), params["base"]["seed"], schema
    )
    assert list(record) == list(schema.features)
    assert record == frame[list(schema.features)].iloc[0].to_dict()


def test_the_readme_and_make_help_say_the_same_of_make_test(baked):
    """`make help` and the README's table of commands describe `make test` in the same words."""
    _, project = baked
    helped = re.search(r"^test: ## (.*)$", (project / "Makefile").read_text(), re.M)[1]
    row = re.search(r"^\| `make test` \| (.*) \|$", (project / "README.md").read_text(), re.M)
    assert row[1].replace("`", "") == helped


def test_the_readme_says_what_make_remote_does_for_this_remote(baked):
    """On a cloud bake `make remote` lists the remote `.dvc/config` names; only the local remote's
    is set up by it (the README said "local remote directory" on every bake)."""
    answers, project = baked
    row = re.search(r"^\| `make remote` \| (.*) \|$", (project / "README.md").read_text(), re.M)[1]
    helped = re.search(r"^remote: ## (.*)$", (project / "Makefile").read_text(), re.M)[1]
    local = answers["dvc_remote"] == "local"
    assert ("local remote directory" in row) == local == ("local remote directory" in helped)
