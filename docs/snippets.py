"""Write docs/snippets/ from real bakes: the pages include these, so they are never typed by hand.

- tree.txt: the files of a default bake;
- make-help.txt: the generated project's `make help`;
- workflows/<name>.md: triggers, jobs, permissions, needs, secrets and variables of each generated
  workflow, read from the rendered YAML of a bake with every optional job switched on.

Fast (bakes only, no pipeline), so tests/test_docs.py checks that they are current.
"""

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from cookiecutter.main import cookiecutter

ROOT = Path(__file__).resolve().parents[1]
SNIPPETS = ROOT / "docs/snippets"
# The bake the workflow pages describe: every optional job and credential step is present.
FULL_ANSWERS = {"dvc_remote": "s3", "training_runner": "cml-aws", "deploy_target": "kubernetes"}
WORKFLOWS = (
    "ci", "pr-report", "pr-report-comment", "retrain", "staging", "release", "drift",
    "performance", "rollback",
)  # fmt: skip


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
    secrets = sorted(set(re.findall(r"secrets\.([A-Z0-9_]+)", text)) - {"GITHUB_TOKEN"})
    variables = sorted(set(re.findall(r"vars\.([A-Z0-9_]+)", text)))
    lines += [
        "",
        "**Secrets it reads**: " + (", ".join(map(_code, secrets)) or "none"),
        "",
        "**Repository variables it reads**: " + (", ".join(map(_code, variables)) or "none"),
    ]
    return "\n".join(lines) + "\n"


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
    return snippets


if __name__ == "__main__":
    for relative, text in render().items():
        target = SNIPPETS / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        print(f"docs/snippets/{relative}")
