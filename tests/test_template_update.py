"""template-update.yml, run by act in host mode: a project copied with copier from the template's
v0.4.0 tag, its owner's edit committed, gets the newest release as one PR, then, after another
release, the same PR updated. `make template-update` is the project's own target with its real
pins (uv fetches copier from PyPI into a throwaway environment, as on a runner); `gh` is the
recording stand-in of tests/act/bin (no PR API here: `pr view` answers STUB_GH_PR_STATE, as in
tests/test_template_ci.py), and the branch is pushed to a local bare origin."""

from conftest import NEXT_RELEASE, git, release
from copier import run_copy
from test_act import act

EVENT = {"inputs": {}, "ref": "refs/heads/main"}


def test_template_update_opens_one_pr_then_updates_it(tagged_template, tmp_path):
    template = tmp_path / "template"
    git(tmp_path, "clone", "--quiet", str(tagged_template), str(template))
    project = tmp_path / "project"
    run_copy(str(template), str(project), defaults=True, quiet=True, vcs_ref="v0.4.0")
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("seed: 42", "seed: 7", 1))
    git(project, "init", "--quiet", "--initial-branch=main")
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--message", "Made from v0.4.0, seed 7")
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "--quiet", "--bare", str(origin))
    git(project, "remote", "add", "origin", str(origin))
    git(project, "push", "--quiet", "origin", "main")

    record = tmp_path / "record"
    result = act(project, "workflow_dispatch", EVENT, "template-update.yml", record)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    calls = (record / "gh-calls.txt").read_text().splitlines()
    assert [call.split(" --")[0] for call in calls] == [
        "auth setup-git", "label create template-conflicts", "pr view template-update",
        "pr create",
    ]  # fmt: skip
    assert calls[3] == (
        "pr create --head template-update --title Template update: v0.4.0 → v0.4.1 "
        "--body-file build/template-update/body.md"
    )
    body = (record / "pr-body.md").read_text()
    assert "### 0.4.1 - 2026-12-31" in body and "The Makefile's help line" in body
    assert "### 0.4.0" not in body and "No conflicts" in body
    branch = "template-update"
    for name, (old, new) in NEXT_RELEASE.items():
        pushed = git(origin, "show", f"{branch}:{name}")
        assert new in pushed and old not in pushed, name
    assert "seed: 7" in git(origin, "show", f"{branch}:params.yaml")
    assert "_commit: v0.4.1" in git(origin, "show", f"{branch}:.copier-answers.yml")
    assert git(origin, "rev-parse", "main") == git(project, "rev-parse", "main")

    # The next release changes the seed this project set: while the PR is open, the same branch
    # is pushed again, the PR's body names the conflict and carries both releases' entries.
    release(template, "0.4.2", {"params.yaml": ("seed: 42", "seed: 1234")}, "A new seed.")
    again = tmp_path / "record-again"
    env = {"STUB_GH_PR_STATE": "OPEN"}
    result = act(project, "workflow_dispatch", EVENT, "template-update.yml", again, env=env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    calls = (again / "gh-calls.txt").read_text().splitlines()
    assert [call.split(" --")[0] for call in calls] == [
        "auth setup-git", "label create template-conflicts", "pr view template-update",
        "pr edit template-update",
    ]  # fmt: skip
    assert calls[3].endswith("--add-label template-conflicts")
    assert "Template update: v0.4.0 → v0.4.2" in calls[3]
    body = (again / "pr-body.md").read_text()
    assert "### 0.4.2" in body and "### 0.4.1" in body
    assert "1 file(s) with conflicts" in body and "- `params.yaml`" in body
    pushed = git(origin, "show", f"{branch}:params.yaml")
    assert "<<<<<<<" in pushed and "seed: 7" in pushed and "seed: 1234" in pushed
    assert "_commit: v0.4.2" in git(origin, "show", f"{branch}:.copier-answers.yml")
    assert git(origin, "rev-list", "--count", f"main..{branch}").strip() == "1"
