"""Write docs/snippets/ from real bakes: the pages include these, so they are never typed by hand.

- tree.txt: the files of a default bake;
- make-help.txt: the generated project's `make help`;
- workflows/<name>.md: triggers, jobs, permissions, needs, secrets and variables of each generated
  workflow, read from the rendered YAML of a bake with every optional job switched on;
- github-check.txt: `make github-check`'s list for that bake, nothing set;
- github-needs.md: what GitHub needs for the default bake, and what each other answer of the
  options that change it adds; from mlops_actions.github_check, the code `make github-check` runs,
  so the getting-started page and the command cannot disagree.

Fast (bakes only, no pipeline), so tests/test_docs.py checks that they are current.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from cookiecutter.main import cookiecutter
from mlops_actions import github_check, remote

ROOT = Path(__file__).resolve().parents[1]
SNIPPETS = ROOT / "docs/snippets"
# The bake the workflow pages describe: every optional job and credential step is present.
FULL_ANSWERS = {"dvc_remote": "s3", "training_runner": "aws-ec2", "deploy_target": "kubernetes"}
WORKFLOWS = (
    "ci", "pr-report", "pr-report-comment", "retrain", "staging", "release", "drift",
    "performance", "batch-score", "tune", "rollback", "training-runner-sweeper", "template-update",
)  # fmt: skip
# The options whose answers change what GitHub needs (the others change no workflow's reads);
# each of their values is read from cookiecutter.json, the first being the default.
GITHUB_OPTIONS = ("dvc_remote", "training_runner", "deploy_target")
CHOICES = json.loads((ROOT / "cookiecutter.json").read_text())


def bake(output_dir: Path, **answers: str) -> Path:
    return Path(
        cookiecutter(str(ROOT), no_input=True, output_dir=str(output_dir), extra_context=answers)
    )


def tree(project: Path) -> str:
    """An indented listing of the bake's files, directories first, as `tree` would print it."""
    lines = [project.name + "/"]

    def walk(folder: Path, depth: int) -> None:
        entries = sorted(folder.iterdir(), key=lambda p: (not p.is_dir(), p.name))
        for entry in entries:
            suffix = "/" if entry.is_dir() else ""
            lines.append("    " * depth + entry.name + suffix)
            if entry.is_dir():
                walk(entry, depth + 1)

    walk(project, 1)
    return "\n".join(lines) + "\n"


def make_help(project: Path) -> str:
    out = subprocess.run(
        ["make", "--no-print-directory", "help"], cwd=project, capture_output=True, text=True
    )
    if out.returncode != 0:
        sys.exit(f"make help failed in the bake: {out.stderr.strip()}")
    return out.stdout


def _code(value: object) -> str:
    return f"`{value}`"


def triggers(on: dict) -> list[str]:
    lines = []
    for event, spec in on.items():
        details = []
        if event == "schedule":
            spec = {"cron": [item["cron"] for item in spec]}
        for key, value in (spec or {}).items():
            if key == "inputs":
                names = [
                    f"`{name}`{' (required)' if field.get('required') else ''}"
                    for name, field in value.items()
                ]
                details.append("inputs " + ", ".join(names))
            elif key == "workflows":
                details.append("after " + ", ".join(map(_code, value)))
            elif isinstance(value, list):
                details.append(f"{key} " + ", ".join(map(_code, value)))
        lines.append(f"- `{event}`" + (": " + "; ".join(details) if details else ""))
    return lines


def permissions(value: object) -> str:
    if value is None:
        return "inherits the top level"
    if value == {}:
        return "none"
    if isinstance(value, str):
        return _code(value)
    return "<br>".join(f"`{scope}: {level}`" for scope, level in value.items())


def workflow_facts(path: Path) -> str:
    text = path.read_text()
    workflow = yaml.safe_load(text)
    on = workflow.get(True, workflow.get("on"))  # YAML 1.1 reads the key `on` as true
    lines = [
        f"Read from the rendered `.github/workflows/{path.name}` "
        "(bake: " + ", ".join(f"`{k}={v}`" for k, v in FULL_ANSWERS.items()) + ").",
        "",
        "**Triggers**",
        "",
        *triggers(on),
        "",
        f"**Top-level permissions**: {permissions(workflow.get('permissions'))}; "
        f"**concurrency**: `{workflow['concurrency']['group']}`, "
        f"cancel in progress: `{str(workflow['concurrency']['cancel-in-progress']).lower()}`",
        "",
        "| job | needs | runs when | permissions | environment | timeout |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, job in workflow["jobs"].items():
        needs = job.get("needs", [])
        needs = [needs] if isinstance(needs, str) else needs
        condition = (
            _code(job["if"]).replace("|", "\\|")
            if "if" in job
            else ("when its needs succeed" if needs else "on every trigger")
        )
        environment = _code(job["environment"]) if "environment" in job else "-"
        lines.append(
            f"| `{name}` | {', '.join(map(_code, needs)) or '-'} | {condition} "
            f"| {permissions(job.get('permissions'))} | {environment} "
            f"| {job.get('timeout-minutes')} min |"
        )
    found = github_check.reads(path.name, workflow)  # what `make github-check` reads too
    secrets = sorted({read.name for read in found if read.kind == "secret"})
    variables = sorted({read.name for read in found if read.kind == "variable"})
    lines += [
        "",
        "**Secrets it reads**: " + (", ".join(map(_code, secrets)) or "none"),
        "",
        "**Repository variables it reads**: " + (", ".join(map(_code, variables)) or "none"),
    ]
    return "\n".join(lines) + "\n"


def with_venv() -> dict[str, str]:
    """The environment of a command run in a bake: this venv's tools (dvc) first."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def github_check_output(project: Path) -> str:
    """`make github-check`'s list, without asking gh (its verdict line goes to stderr)."""
    out = subprocess.run(
        [sys.executable, "-m", "mlops_actions.github_check", "--offline"],
        cwd=project, capture_output=True, text=True, env=with_venv(),
    )  # fmt: skip
    if not out.stdout.startswith("What GitHub needs"):
        sys.exit(f"github-check failed in the bake: {out.stderr.strip()}")
    return out.stdout


def _key(need: github_check.Need) -> tuple[str, str, str, bool]:
    return need.kind, need.name, need.environment, need.required


def needs_of(project: Path) -> tuple[list[github_check.Need], list[github_check.Note]]:
    """What github-check lists for a bake: its workflows, and the remote as this venv's dvc
    reads it there."""
    dvc = Path(sys.executable).parent / "dvc"
    listing = subprocess.run(
        [str(dvc), "config", "--list", "--show-origin"],
        cwd=project, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    workflows = github_check.load_workflows(project / github_check.WORKFLOWS)
    needs = github_check.project_needs(workflows, remote.default_remote(listing))
    return needs, github_check.notes(workflows)


def github_needs(default: Path, root: Path) -> str:
    """The default bake's needs, then for each other answer of GITHUB_OPTIONS what its bake needs
    beyond them (new, or required where the default's is optional), as github-check's markdown."""
    defaults = {option: CHOICES[option][0] for option in GITHUB_OPTIONS}
    needs, found_notes = needs_of(default)
    answers = ", ".join(f"`{option}={value}`" for option, value in defaults.items())
    sections = [
        f"**The default bake** ({answers}):\n\n" + github_check.markdown(needs, found_notes, None)
    ]
    known = {_key(need) for need in needs}
    topics = {note.topic for note in found_notes}
    for option in GITHUB_OPTIONS:
        for value in CHOICES[option][1:]:
            if value in CHOICES["__retired"].get(option, {}):
                continue
            more, more_notes = needs_of(bake(root / f"{option}-{value}", **{option: value}))
            added = [need for need in more if _key(need) not in known]
            new_notes = [note for note in more_notes if note.topic not in topics]
            if not added and not new_notes:
                sections.append(f"**`{option}={value}`** adds nothing to set on GitHub.\n")
                continue
            sections.append(
                f"**`{option}={value}`** adds:\n\n" + github_check.markdown(added, new_notes, None)
            )
    return "\n".join(sections)


def render() -> dict[str, str]:
    """Every snippet, keyed by its path under docs/snippets/."""
    with tempfile.TemporaryDirectory() as tmp:
        default = bake(Path(tmp) / "default")
        full = bake(Path(tmp) / "full", **FULL_ANSWERS)
        snippets = {"tree.txt": tree(default), "make-help.txt": make_help(default)}
        for name in WORKFLOWS:
            snippets[f"workflows/{name}.md"] = workflow_facts(
                full / ".github/workflows" / f"{name}.yml"
            )
        snippets["github-check.txt"] = github_check_output(full)
        snippets["github-needs.md"] = github_needs(default, Path(tmp) / "options")
    return snippets


if __name__ == "__main__":
    for relative, text in render().items():
        target = SNIPPETS / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        print(f"docs/snippets/{relative}")
