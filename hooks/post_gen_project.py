"""Record the answers so the project can follow the template later.

Writes `.cruft.json` in the format `cruft update` reads (template, commit, context), so a generated
project can pull in template fixes. Optional files are expressed in their names; the folders such a
name leaves empty (the deploy action without a deploy target) are removed. Standard library only,
no network.
"""

import json
import subprocess
from pathlib import Path

CONTEXT = json.loads(r"""{{ cookiecutter | jsonify }}""")
# Machine-specific paths that must not be committed.
NOT_RECORDED = {"_output_dir", "_repo_dir", "_checkout"}


def template_commit(repo_dir: str) -> str | None:
    """The template's git commit, when it was baked from a git checkout."""
    try:
        out = subprocess.run(
            ["git", "-C", repo_dir, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


if __name__ == "__main__":
    answers = {key: value for key, value in CONTEXT.items() if key not in NOT_RECORDED}
    record = {
        "template": CONTEXT.get("_template"),
        "commit": template_commit(CONTEXT.get("_repo_dir", ".")),
        "checkout": CONTEXT.get("_checkout"),
        "context": {"cookiecutter": answers},
        "directory": None,
    }
    Path(".cruft.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    for folder in sorted(Path(".github").rglob("*"), reverse=True):  # deepest first
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
