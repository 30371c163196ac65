"""Check a release tag of the template against every place its version is written, and print
the changelog's section for it (the GitHub Release's notes).

publish.yml runs it on a pushed `v*` tag before anything is built (`make release-check
TAG=vX.Y.Z`): the tag must be `vMAJOR.MINOR.PATCH` and name the version that `pyproject.toml`,
`cookiecutter.json` (`_template_version`, which every baked project records),
`mlops-actions/pyproject.toml`, `mlops_actions.__version__` and the top section of CHANGELOG.md
all hold; otherwise it exits 1 with one line naming each place that differs, so a tag never
releases a package, or pins projects to an archive, of another version. Standard library only:
it runs before anything is installed.
"""

import argparse
import json
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TAG = re.compile(r"v(\d+\.\d+\.\d+)")
# A version's heading in CHANGELOG.md (Keep a Changelog): "## 0.4.0 - 2026-12-07".
HEADING = re.compile(r"^## (\S+) - \d{4}-\d{2}-\d{2}$", re.MULTILINE)


def versions(root: Path) -> dict[str, str]:
    """Each place the template's version is written, and the version written there."""
    init = (root / "mlops-actions/src/mlops_actions/__init__.py").read_text(encoding="utf-8")
    changelog = (root / "CHANGELOG.md").read_text(encoding="utf-8")
    newest = HEADING.search(changelog)
    return {
        "pyproject.toml": tomllib.loads((root / "pyproject.toml").read_text())["project"][
            "version"
        ],
        "cookiecutter.json _template_version": json.loads(
            (root / "cookiecutter.json").read_text(encoding="utf-8")
        )["_template_version"],
        "mlops-actions/pyproject.toml": tomllib.loads(
            (root / "mlops-actions/pyproject.toml").read_text()
        )["project"]["version"],
        "mlops_actions.__version__": re.search(r'^__version__ = "(.*)"$', init, re.MULTILINE)[1],
        "CHANGELOG.md's top section": newest[1] if newest else "(no version heading)",
    }


def problems(tag: str, found: dict[str, str]) -> list[str]:
    """What is wrong with releasing `tag` from files holding `found`; empty when nothing is."""
    matched = TAG.fullmatch(tag)
    if not matched:
        return [f"tag {tag!r} is not vMAJOR.MINOR.PATCH"]
    return [f"{place} says {value}" for place, value in found.items() if value != matched[1]]


def notes(changelog: str, version: str) -> str:
    """The body of `version`'s section of the changelog, up to the next version's heading."""
    headings = list(HEADING.finditer(changelog))
    for index, heading in enumerate(headings):
        if heading[1] == version:
            end = headings[index + 1].start() if index + 1 < len(headings) else len(changelog)
            return changelog[heading.end() : end].strip() + "\n"
    raise ValueError(f"CHANGELOG.md has no section {version}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tag", help="the tag to release, vX.Y.Z")
    parser.add_argument("--notes", type=Path, help="write the changelog's section to this file")
    parser.add_argument("--root", type=Path, default=ROOT, help="the template's checkout")
    args = parser.parse_args(argv)
    wrong = problems(args.tag, versions(args.root))
    if wrong:
        print(f"release-check: {args.tag} cannot be released: {'; '.join(wrong)}", file=sys.stderr)
        return 1
    if args.notes:
        changelog = (args.root / "CHANGELOG.md").read_text(encoding="utf-8")
        args.notes.parent.mkdir(parents=True, exist_ok=True)
        args.notes.write_text(notes(changelog, args.tag[1:]), encoding="utf-8")
    print(f"release-check: {args.tag} is the version of every file that names one")
    return 0


if __name__ == "__main__":
    sys.exit(main())
