"""Record the answers so the project can follow the template later.

Users bake with `cookiecutter`, not `cruft create`, so this hook writes the `.cruft.json` that
`cruft check` and `cruft update` read. It writes exactly the bytes `cruft create` would (cruft
2.16: cruft/_commands/create.py and utils/cruft.py `json_dumps`): the same keys in the same order,
the answers in cookiecutter.json's order plus `_template` and `_commit`, the same JSON layout; so
the update that later rewrites the file changes only what changed. `cruft diff` and `cruft update`
render the template again (cruft/_commands/utils/generate.py) and run this hook: there it writes
nothing, since cruft keeps or writes the file itself and a copy in its renders only yields noise
and `.cruft.json.rej` files. The folders an optional file's empty name leaves empty (the deploy
action without a deploy target, the ARC values and EC2 boot script of the other training runners)
are removed. Standard library only, no network.
"""

import json
import subprocess
from pathlib import Path

CONTEXT = json.loads(r"""{{ cookiecutter | jsonify }}""")
# jsonify sorts keys, cruft keeps the context's order: each key travels with its own keys' order.
ORDER = json.loads(r"""[{% for key, value in cookiecutter.items() recursive -%}
  [{{ key | jsonify }}, {{ "[" ~ loop(value.items()) ~ "]" if value is mapping else "null" }}]
  {{- "," if not loop.last }}{% endfor %}]""")
# cookiecutter's built-in abbreviations (cookiecutter/config.py): cruft clones only full URLs.
ABBREVIATIONS = {"gh": "https://github.com/{}.git", "gl": "https://gitlab.com/{}.git"}
ABBREVIATIONS["bb"] = "https://bitbucket.org/{}"
# What cookiecutter adds for this machine; cruft records `_template` and `_commit` instead.
NOT_RECORDED = {"_template", "_output_dir", "_repo_dir", "_checkout"}


def git_head(repo_dir: str) -> str | None:
    """The template's commit, when it was baked from a git checkout."""
    out = subprocess.run(["git", "-C", repo_dir, "rev-parse", "HEAD"], capture_output=True)
    return out.stdout.decode().strip() if out.returncode == 0 else None


def in_order(value, order):
    return value if order is None else {key: in_order(value[key], sub) for key, sub in order}


def cruft_record(context: dict, order: list) -> dict:
    template, commit = context["_template"], git_head(context["_repo_dir"])
    prefix, _, rest = template.partition(":")
    template = ABBREVIATIONS[prefix].format(rest) if prefix in ABBREVIATIONS else template
    answers = {k: v for k, v in in_order(context, order).items() if k not in NOT_RECORDED}
    return {
        "template": template,
        "commit": commit,
        "checkout": context["_checkout"],
        "context": {"cookiecutter": {**answers, "_template": template, "_commit": commit}},
        "directory": None,
    }


if __name__ == "__main__":
    if "_commit" not in CONTEXT:  # cruft sets _commit when it renders (and writes the file)
        record = json.dumps(cruft_record(CONTEXT, ORDER), ensure_ascii=False, indent=2)
        Path(".cruft.json").write_text(record + "\n", encoding="utf-8")
    for top in (".github", "deploy"):
        for folder in sorted(Path(top).rglob("*"), reverse=True):  # deepest first
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
