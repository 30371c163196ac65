"""Write docs/options.md from cookiecutter.json: the prompts and the docs read one source."""

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def render() -> str:
    context = json.loads((ROOT / "cookiecutter.json").read_text())
    prompts = context["__prompts__"]
    lines = [
        "# Options",
        "",
        "Generated from `cookiecutter.json` by `make docs`; do not edit by hand.",
        "Answer on the command line too: `cookiecutter --no-input <template> task=regression`.",
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
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    (ROOT / "docs/options.md").write_text(render())
