"""Regenerate the example PR reports in docs/examples/ from real bakes (never edited by hand).

For each example: bake, `make setup` (its first commit on main is the base), change one param on a
branch and commit it as a PR would, `make repro`, then `make report BASE=main` with the gate
reporting only. The first example also gives getting-started its outputs (docs/snippets/): the
metrics after `make setup`, and the release files, model card and checksums of
`make release-assets TAG=v1.0.0`.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from cookiecutter.main import cookiecutter

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build/examples"
VENV = Path(sys.prefix)
SNIPPETS = ROOT / "docs/snippets"
EXAMPLES = {
    "report-binary-classification.md": (
        {"project_name": "Tumour Classifier", "task": "binary_classification"},
        ("learning_rate: 0.1", "learning_rate: 0.05"),
    ),
    "report-regression.md": (
        {"project_name": "Progression Forecast", "task": "regression", "model": "random_forest"},
        ("min_samples_leaf: 1", "min_samples_leaf: 5"),
    ),
}
FIRST = next(iter(EXAMPLES))


def make(project: Path, *args: str) -> str:
    env = {**os.environ, "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    command = [
        "make",
        "--no-print-directory",
        *args,
        f"VENV={VENV}",
        f"DVC_REMOTE_DIR={WORK}/remote",
    ]
    done = subprocess.run(command, cwd=project, env=env, check=True, capture_output=True, text=True)
    return done.stdout


def write_release_snippets(project: Path) -> None:
    SNIPPETS.mkdir(parents=True, exist_ok=True)
    tables = [
        line for line in make(project, "metrics").splitlines() if line.startswith("|") or not line
    ]
    (SNIPPETS / "metrics.md").write_text("\n".join(tables).strip() + "\n")
    make(project, "release-assets", "TAG=v1.0.0")
    dist = project / "dist"
    files = sorted(dist.iterdir())
    listing = [f"{path.name:<16} {path.stat().st_size:>9,} bytes" for path in files]
    (SNIPPETS / "release-files.txt").write_text("\n".join(listing) + "\n")
    (SNIPPETS / "model-card.md").write_text((dist / "model-card.md").read_text())
    (SNIPPETS / "SHA256SUMS").write_text((dist / "SHA256SUMS").read_text())
    shutil.rmtree(dist)


def git(project: Path, *args: str) -> None:
    identity = ["-c", "user.name=Docs Example", "-c", "user.email=docs@example.com"]
    subprocess.run(["git", *identity, *args], cwd=project, check=True, capture_output=True)


def main() -> None:
    shutil.rmtree(WORK, ignore_errors=True)
    for name, (answers, (old, new)) in EXAMPLES.items():
        project = Path(
            cookiecutter(str(ROOT), no_input=True, output_dir=str(WORK), extra_context=answers)
        )
        make(project, "setup")
        if name == FIRST:
            write_release_snippets(project)
        git(project, "switch", "--quiet", "--create", "tune")
        params = project / "params.yaml"
        params.write_text(params.read_text().replace(old, new))
        git(project, "commit", "--quiet", "--all", "--message", f"Try {new}")
        make(project, "repro")
        make(project, "report", "BASE=main", "GATE=off")
        shutil.copy(project / "report.md", ROOT / "docs/examples" / name)
        print(f"docs/examples/{name}: {old} -> {new}")


if __name__ == "__main__":
    main()
