"""Write docs/options.md from cookiecutter.json and cookiecutter.help.yml: the prompts, the test
matrix and the docs read one source; the help file says what each option changes."""

import json
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def render() -> str:
    context = json.loads((ROOT / "cookiecutter.json").read_text())
    helps = yaml.safe_load((ROOT / "cookiecutter.help.yml").read_text())
    prompts = context["__prompts__"]
    lines = [
        "# Options",
        "",
        "Generated from `cookiecutter.json` (questions, values) and `cookiecutter.help.yml`",
        "(what each option changes) by `make docs`; do not edit by hand.",
        "Answer on the command line too: `cookiecutter --no-input <template> task=regression`,",
        "or `copier copy --defaults --data task=regression <template> <directory>`.",
        "",
        "**Which tool.** Both ask these questions, refuse the same answers and make the same",
        "files (`copier.yml` is generated from `cookiecutter.json`; the template's tests compare",
        "the two byte for byte). Choose **copier** for a new project: it is maintained, and",
        "`copier update` follows the template's release tags (recorded in `.copier-answers.yml`).",
        "**cookiecutter** (or `cruft create`) writes `.cruft.json`, which `cruft update` reads;",
        "cruft keeps working, but has had no release for years. Either way, `make template-update`",
        "and the project's `template-update.yml` use the tool that made it",
        "([Updating](updating.md)).",
        "",
        "| option | question | default | values |",
        "| --- | --- | --- | --- |",
    ]
    for key, value in context.items():
        if key.startswith("_"):
            continue
        prompt = prompts.get(key, key)
        if isinstance(value, list):
            described = prompt if isinstance(prompt, dict) else {}
            question = described.get("__prompt__", prompt)
            values = "<br>".join(
                f"`{v}`: {described[v]}" if v in described else f"`{v}`" for v in value
            )
            default = f"`{value[0]}`"
        else:
            question, values = prompt, "free text"
            default = f"`{value}`" if "{{" not in value else "derived: `" + value + "`"
        lines.append(f"| `{key}` | {question} | {default} | {values} |")
    lines += ["", "## What each option changes", ""]
    for key in context:
        if not key.startswith("_"):
            lines += [f"### `{key}`", "", helps[key], ""]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    (ROOT / "docs/options.md").write_text(render())
