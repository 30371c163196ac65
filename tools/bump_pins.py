"""Move the template's pins to the newest releases, in place, and describe the change.

The weekly bump-pins.yml job runs this (`make bump-pins`) and opens a PR with the summary; the
template's CI on that PR decides whether the new set works. Standard library only: it runs before
anything is installed. The pins, each kept in one place:

- actions: `owner/repo@<sha> # vX.Y.Z` in cookiecutter.json (`__actions`, every generated workflow
  reads them) and in the template's own .github/workflows/: the highest vX.Y.Z tag of the action's
  repository (`git ls-remote --tags`), peeled to its commit. A tag that now names another commit
  than the pin is reported and left alone: tags that move are how compromised actions spread.
- Python packages: `name==X.Y` in pyproject.toml (the template's tools),
  mlops-actions/pyproject.toml (the package's extras: what generated projects install) and the
  generated project's pyproject.toml: the newest final, non-yanked release on PyPI; a
  `# bump: below N` comment on the line caps it.
- uv: `UV_VERSION` in the generated project's Makefile (the template's Makefile reads it there);
  copier and cruft: `COPIER_VERSION` and `CRUFT_VERSION` there (what `make template-update` runs),
  moved with the same packages' pins of the template's pyproject.toml, in one row each.
- copier.yml (generated from cookiecutter.json by tools/copier_yml.py) is written again with them.
- npm packages: `__cml_version` in cookiecutter.json (the CML the PR report workflows install with
  `npm install --global @dvcorg/cml@<version>`): the npm registry's `dist-tags.latest`, when it is
  a final release.

BUMP_PINS_GIT_URL, BUMP_PINS_PYPI_URL and BUMP_PINS_NPM_URL (with {repo} / {name}) point the
lookups elsewhere.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = "{{cookiecutter.project_slug}}"
PACKAGE_DIR = "mlops-actions"
GIT_URL = os.environ.get("BUMP_PINS_GIT_URL", "https://github.com/{repo}.git")
PYPI_URL = os.environ.get("BUMP_PINS_PYPI_URL", "https://pypi.org/pypi/{name}/json")
NPM_URL = os.environ.get("BUMP_PINS_NPM_URL", "https://registry.npmjs.org/{name}")
# cookiecutter.json key -> the npm package whose exact version it holds.
NPM_PINS = {"__cml_version": "@dvcorg/cml"}

ACTION = re.compile(
    r"(?P<action>(?P<repo>[\w.-]+/[\w.-]+)(?:/[\w./-]+)?)@(?P<sha>[0-9a-f]{40}) # (?P<tag>v[\d.]+)"
)
# `"name[extra]==1.2.3"`; the generated pyproject may hold Jinja between the name and `==`.
PACKAGE = re.compile(
    r'"(?P<name>[A-Za-z0-9][\w.-]*)(?P<between>\[[^\]]*\]|\{\{.*?\}\})?==(?P<version>[\w.]+)'
)
BELOW = re.compile(r"# bump: below (?P<cap>[\d.]+)")
UV = re.compile(r"^UV_VERSION := (?P<version>\S+)$", re.MULTILINE)
# PyPI package -> its variable in the generated Makefile.
MAKEFILE_PINS = {"uv": "UV_VERSION", "copier": "COPIER_VERSION", "cruft": "CRUFT_VERSION"}
FINAL = re.compile(r"^\d+(\.\d+)*$")
RELEASE_TAG = re.compile(r"^v(\d+\.\d+\.\d+)$")


class Files(dict):
    """New texts by path: written only after every lookup succeeded, so a failed lookup leaves
    every file as it was."""

    def __missing__(self, path: Path) -> str:
        self[path] = path.read_text()
        return self[path]


class LookupFailed(Exception):
    """A source could not be read: the job fails rather than opening a partial PR."""


@dataclass(frozen=True)
class Bump:
    pin: str
    old: str
    new: str
    files: tuple[str, ...]

    @property
    def major(self) -> bool:
        return parse(self.old.lstrip("v"))[0] != parse(self.new.lstrip("v"))[0]


def parse(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def action_files(root: Path) -> list[Path]:
    return [root / "cookiecutter.json", *sorted((root / ".github/workflows").glob("*.yml"))]


def package_files(root: Path) -> list[Path]:
    return [
        root / "pyproject.toml",
        root / PACKAGE_DIR / "pyproject.toml",
        root / TEMPLATE / "pyproject.toml",
    ]


def latest_tag(repo: str) -> tuple[str, str]:
    """(tag, commit) of the highest vX.Y.Z tag; annotated tags are peeled to their commit."""
    url = GIT_URL.format(repo=repo)
    out = subprocess.run(
        ["git", "ls-remote", "--tags", url], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise LookupFailed(f"{repo}: git ls-remote {url} failed: {out.stderr.strip()}")
    commits: dict[str, str] = {}
    for line in out.stdout.splitlines():
        sha, ref = line.split("\t")
        tag = ref.removeprefix("refs/tags/")
        peeled = tag.endswith("^{}")
        tag = tag.removesuffix("^{}")
        if RELEASE_TAG.match(tag) and (peeled or tag not in commits):
            commits[tag] = sha
    if not commits:
        raise LookupFailed(f"{repo}: no vMAJOR.MINOR.PATCH tag at {url}")
    tag = max(commits, key=lambda name: parse(name[1:]))
    return tag, commits[tag]


def latest_release(name: str, below: str | None) -> str:
    url = PYPI_URL.format(name=name)
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            releases = json.load(response)["releases"]
    except (OSError, ValueError, KeyError) as error:
        raise LookupFailed(f"{name}: cannot read {url}: {error}") from error
    finals = [
        version
        for version, files in releases.items()
        if FINAL.match(version)
        and files
        and not all(file.get("yanked") for file in files)
        and (below is None or parse(version) < parse(below))
    ]
    if not finals:
        raise LookupFailed(f"{name}: no final release at {url}")
    return max(finals, key=parse)


def latest_npm(name: str) -> str:
    url = NPM_URL.format(name=name)
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            latest = json.load(response)["dist-tags"]["latest"]
    except (OSError, ValueError, KeyError) as error:
        raise LookupFailed(f"{name}: cannot read {url}: {error}") from error
    if not FINAL.match(latest):
        raise LookupFailed(f"{name}: dist-tags.latest at {url} is {latest!r}, not a final release")
    return latest


def bump_npm(root: Path, files: Files) -> list[Bump]:
    path = root / "cookiecutter.json"
    bumps = []
    for key, name in NPM_PINS.items():
        pin = re.compile(rf'("{re.escape(key)}": ")(?P<version>[\d.]+)(")')
        version = pin.search(files[path])["version"]
        newest = latest_npm(name)
        if parse(newest) > parse(version):
            files[path] = pin.sub(rf"\g<1>{newest}\g<3>", files[path])
            bumps.append(Bump(name, version, newest, (str(path.relative_to(root)),)))
    return bumps


def bump_actions(root: Path, files: Files) -> tuple[list[Bump], list[str]]:
    bumps, warnings = [], []
    pins: dict[tuple[str, str, str], list[Path]] = {}
    for path in action_files(root):
        for match in ACTION.finditer(files[path]):
            pins.setdefault((match["action"], match["sha"], match["tag"]), []).append(path)
    for (action, sha, tag), paths in sorted(pins.items()):
        repo = "/".join(action.split("/")[:2])
        newest, commit = latest_tag(repo)
        if newest == tag and commit != sha:
            warnings.append(
                f"`{repo}` tag `{tag}` now names `{commit}`, not the pinned `{sha}`: "
                "left alone, check the action's repository"
            )
            continue
        if parse(newest[1:]) <= parse(tag[1:]):
            continue
        old, new = f"{action}@{sha} # {tag}", f"{action}@{commit} # {newest}"
        for path in paths:
            files[path] = files[path].replace(old, new)
        bumps.append(Bump(action, tag, newest, tuple(str(p.relative_to(root)) for p in paths)))
    return bumps, warnings


def bump_packages(root: Path, files: Files) -> list[Bump]:
    found: dict[tuple[str, str, str | None], list[Path]] = {}
    for path in package_files(root):
        for line in files[path].splitlines():
            cap = BELOW.search(line)
            for match in PACKAGE.finditer(line):
                key = (match["name"], match["version"], cap and cap["cap"])
                found.setdefault(key, []).append(path)
    bumps = []
    for (name, version, below), paths in sorted(found.items()):
        newest = latest_release(name, below)
        if parse(newest) <= parse(version):
            continue
        pattern = re.compile(
            rf'("{re.escape(name)}(?:\[[^\]]*\]|\{{\{{.*?\}}\}})?==){re.escape(version)}(?=[";\s])'
        )
        for path in paths:
            files[path] = pattern.sub(rf"\g<1>{newest}", files[path])
        pin = name + (f" (below {below})" if below else "")
        bumps.append(Bump(pin, version, newest, tuple(str(p.relative_to(root)) for p in paths)))
    makefile = root / TEMPLATE / "Makefile"
    where = str(makefile.relative_to(root))
    for name, variable in MAKEFILE_PINS.items():
        pin = re.compile(rf"^{variable} := (?P<version>\S+)$", re.MULTILINE)
        version = pin.search(files[makefile])["version"]
        newest = latest_release(name, None)
        if parse(newest) <= parse(version):
            continue
        files[makefile] = pin.sub(f"{variable} := {newest}", files[makefile])
        same = [i for i, bump in enumerate(bumps) if bump.pin == name and bump.new == newest]
        if same:  # the template's own pin of it moved too: one row
            bumps[same[0]] = replace(bumps[same[0]], files=(*bumps[same[0]].files, where))
        else:
            bumps.append(Bump(name, version, newest, (where,)))
    return bumps


def summary(bumps: list[Bump], warnings: list[str]) -> str:
    if not bumps and not warnings:
        return "Every pin is at its newest release.\n"
    lines = ["Pins moved to their newest releases by `make bump-pins` (tools/bump_pins.py).", ""]
    if bumps:
        lines += ["| pin | from | to | in |", "| --- | --- | --- | --- |"]
        for bump in bumps:
            to = f"**{bump.new}** (major)" if bump.major else bump.new
            lines.append(f"| `{bump.pin}` | {bump.old} | {to} | {', '.join(bump.files)} |")
        lines += ["", "Major versions may change inputs or behaviour: read their release notes."]
    if warnings:
        lines += ["", "**Needs a look:**", "", *(f"- {warning}" for warning in warnings)]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the template checkout")
    parser.add_argument("--summary", type=Path, help="also write the summary (a PR body) here")
    args = parser.parse_args()
    files = Files()
    try:
        bumps, warnings = bump_actions(args.root, files)
        bumps += bump_packages(args.root, files)
        bumps += bump_npm(args.root, files)
    except LookupFailed as error:
        sys.exit(f"bump-pins: {error}")
    context_file = args.root / "cookiecutter.json"
    if context_file in files:  # copier.yml holds cookiecutter.json's pins too: written from it
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import copier_yml

        files[args.root / "copier.yml"] = copier_yml.render(
            json.loads(files[context_file]), args.root
        )
    for path, text in files.items():
        if text != path.read_text():
            path.write_text(text)
    text = summary(bumps, warnings)
    print(text, end="")
    if args.summary:
        args.summary.parent.mkdir(parents=True, exist_ok=True)
        args.summary.write_text(text)


if __name__ == "__main__":
    main()
