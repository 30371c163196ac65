"""Bring the template's newest release into a project, with what changed and what to resolve.

    python -m mlops_actions.template_update [--out build/template-update]

`make template-update` runs it (the template-update workflow too, weekly, and proposes the result
as one PR). It reads how the project was made: `.copier-answers.yml` (copier: the template's
`_src_path` and `_commit`) or `.cruft.json` (cruft: `template` and `commit`); finds the template's
newest release tag (`vX.Y.Z`; pre-releases are not offered); and, when the project is behind it,
runs that tool to the tag, with the recorded answers:

- copier: `copier update --defaults --conflict inline --vcs-ref <tag>`. Inline: a line both the
  template and the project changed holds both, between conflict markers, in the file itself,
  where `git diff`, the PR's diff and the project's lint show it; a `.rej` file beside it is
  easily missed and merged. (https://copier.readthedocs.io/en/stable/updating/)
- cruft: `cruft update --skip-apply-ask --checkout <tag>` (cruft/_commands/update.py): it applies
  the template's diff with `git apply -3` (conflict markers), or `--reject` (`.rej` files) when
  git lacks the file as it was baked.

Into `--out` it writes `title.txt`, `body.md` (the PR's: versions, the template's CHANGELOG.md
sections after the project's version up to the new one, the files with conflicts, the files
changed) and `conflicts.txt` (one file a line, empty when none); nothing when the project is
current. The working tree must be clean first (both tools refuse otherwise). The template is
cloned once (`git clone --bare`) to list its tags and read its changelog. Standard library, and
PyYAML for copier's answers (copier brings it).
"""

import argparse
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

COPIER_ANSWERS = ".copier-answers.yml"
CRUFT_RECORD = ".cruft.json"
RELEASE_TAG = re.compile(r"^v(\d+)\.(\d+)\.(\d+)$")
SECTION = re.compile(r"^## (\d+)\.(\d+)\.(\d+)\b", re.MULTILINE)
CONFLICT_START, CONFLICT_END = re.compile(r"^<{7}( |$)", re.M), re.compile(r"^>{7}( |$)", re.M)


@dataclass(frozen=True)
class Record:
    """How a project was made: the tool, the template's location and the commit it was made from
    (copier records `git describe` of it, e.g. `v0.4.0` or `v0.4.0-3-g1a2b3c4`; cruft the SHA)."""

    tool: str
    template: str
    commit: str | None


def parse_record(name: str, text: str) -> Record:
    """The record of `.copier-answers.yml` or `.cruft.json`, from its text."""
    if name == CRUFT_RECORD:
        data = json.loads(text)
        return Record("cruft", data["template"], data.get("commit"))
    import yaml  # copier's answers: only a copier project needs PyYAML

    data = yaml.safe_load(text) or {}
    if "_src_path" not in data:
        raise ValueError(f"{COPIER_ANSWERS} names no _src_path (the template): copier wrote none")
    commit = data.get("_commit")
    return Record("copier", str(data["_src_path"]), None if commit is None else str(commit))


def version(tag: str) -> tuple[int, int, int] | None:
    """(major, minor, patch) of a release tag `vX.Y.Z`; None for anything else."""
    match = RELEASE_TAG.match(tag)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def newest_release(tags: list[str]) -> str | None:
    """The highest `vX.Y.Z` tag (numerically: v0.10.0 after v0.9.0), or None."""
    releases = {tag: found for tag in tags if (found := version(tag))}
    return max(releases, key=releases.__getitem__) if releases else None


def changelog_between(changelog: str, after: str | None, upto: str) -> str:
    """The changelog's `## X.Y.Z` sections after release tag `after` (None: from the first) up to
    and including `upto`, newest first as written, each heading a level down (### X.Y.Z)."""
    low, high = version(after) if after else None, version(upto)
    if high is None:
        raise ValueError(f"{upto!r} is not a release tag vX.Y.Z")
    starts = list(SECTION.finditer(changelog))
    kept = []
    for index, start in enumerate(starts):
        found = (int(start[1]), int(start[2]), int(start[3]))
        if (low is None or found > low) and found <= high:
            end = starts[index + 1].start() if index + 1 < len(starts) else len(changelog)
            section = changelog[start.start() : end].strip()
            kept.append(re.sub(r"^(#+) ", r"#\1 ", section, flags=re.MULTILINE))
    return "\n\n".join(kept)


def conflicted(files: dict[str, str]) -> list[str]:
    """The files left to resolve: a `.rej` file (cruft, or copier with --conflict rej) names the
    file it belongs to; a file holding conflict markers (`<<<<<<<` ... `>>>>>>>` at a line's
    start) is one."""
    marked = {name for name, text in files.items() if CONFLICT_START.search(text)}
    return sorted(
        name
        for name in files
        if name.endswith(".rej") or (name in marked and CONFLICT_END.search(files[name]))
    )


def changed_paths(status: str) -> list[str]:
    """The paths of `git status --porcelain=v1 -z --untracked-files=all` (a rename's new path)."""
    entries, paths = status.split("\0"), []
    index = 0
    while index < len(entries):
        entry = entries[index]
        if len(entry) > 3:
            paths.append(entry[3:])
            if entry[0] in "RC":
                index += 1  # the rename's source path follows
        index += 1
    return sorted(paths)


def update_command(tool: str, tag: str) -> list[str]:
    """The tool's update to `tag` with the recorded answers, never prompting."""
    if tool == "copier":
        return ["copier", "update", "--defaults", "--conflict", "inline", "--vcs-ref", tag]
    return ["cruft", "update", "--skip-apply-ask", "--checkout", tag]


def title(old: str, new: str) -> str:
    return f"Template update: {old} → {new}"


def pr_body(
    record: Record, old: str, new: str, entries: str, conflicts: list[str], changed: list[str]
) -> str:
    """The PR's body: what the update is, what to resolve, the changelog's entries, the files."""
    lines = [
        f"## {title(old, new)}",
        "",
        f"`{record.tool} update` brought the template's release **{new}** into this project "
        f"(made from {old}; template: `{record.template}`), with the project's recorded answers "
        "(`make template-update`, docs/updating.md in the template).",
        "",
    ]
    if conflicts:
        lines += [
            f"### ⚠️ {len(conflicts)} file(s) with conflicts",
            "",
            "The template and this project changed the same lines. They are committed as they "
            "are: resolve each on this branch (keep the lines you want, remove the `<<<<<<<`, "
            "`=======` and `>>>>>>>` markers; apply what you want of a `.rej` file by hand, then "
            "delete it) before merging.",
            "",
            *[f"- `{name}`" for name in conflicts],
            "",
        ]
    else:
        lines += ["No conflicts: every change of the template applied cleanly.", ""]
    lines += [f"### The template's changelog after {old}", ""]
    lines += [entries or "_No changelog section between these versions._", ""]
    lines += [f"### Files changed ({len(changed)})", "", *[f"- `{name}`" for name in changed], ""]
    lines += [
        "The next run of the template-update workflow rewrites this branch while the PR is open "
        "(one PR, never a second): merge it, or close it to skip this release.",
    ]
    return "\n".join(lines) + "\n"


# --- I/O ------------------------------------------------------------------------------------


def fail(message: str) -> NoReturn:
    """One line naming the problem; nothing of the project changed."""
    sys.exit(f"template-update: {message}")


def git(*args: str, cwd: Path | None = None) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        said = result.stderr.strip().splitlines() or [f"exit {result.returncode}"]
        fail(f"git {' '.join(args)}: {said[-1]}")
    return result.stdout


def read_record(project: Path) -> Record:
    for name in (COPIER_ANSWERS, CRUFT_RECORD):
        if (project / name).is_file():
            try:
                return parse_record(name, (project / name).read_text())
            except (ValueError, KeyError) as error:
                fail(f"{name}: {error}")
    fail(
        f"neither {COPIER_ANSWERS} (copier) nor {CRUFT_RECORD} (cruft) is here: this project "
        "does not record its template, so it cannot follow it (docs/updating.md)"
    )


def tag_before(clone: Path, commit: str) -> str | None:
    """The newest release tag at or before the recorded commit, in the template's clone."""
    found = subprocess.run(
        ["git", "describe", "--tags", "--abbrev=0", "--match", "v[0-9]*", f"{commit}^{{commit}}"],
        cwd=clone, capture_output=True, text=True,
    )  # fmt: skip
    return found.stdout.strip() or None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("build/template-update"))
    args = parser.parse_args(argv)
    project = Path.cwd()
    record = read_record(project)
    if not record.commit:
        fail(f"{record.tool}'s record names no template commit: link the project once "
             "(docs/updating.md, \"Baked without git history?\")")  # fmt: skip
    if git("status", "--porcelain", cwd=project).strip():
        fail("the working tree has uncommitted changes: commit or stash them, then update")
    for stale in ("title.txt", "body.md", "conflicts.txt"):
        (args.out / stale).unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        clone = Path(scratch) / "template.git"
        git("clone", "--quiet", "--bare", record.template, str(clone))
        new = newest_release(git("tag", "--list", cwd=clone).split())
        if new is None:
            fail(f"the template {record.template} has no release tag vX.Y.Z to update to")
        behind = subprocess.run(
            ["git", "merge-base", "--is-ancestor", new, f"{record.commit}^{{commit}}"], cwd=clone
        ).returncode  # fmt: skip
        if behind == 0:
            print(f"template-update: the project is current: made from {record.commit}, "
                  f"the newest release is {new}")  # fmt: skip
            return 0
        old = tag_before(clone, record.commit)
        changelog = subprocess.run(
            ["git", "show", f"{new}:CHANGELOG.md"], cwd=clone, capture_output=True, text=True
        ).stdout  # fmt: skip
    tool = subprocess.run([sys.executable, "-m", record.tool, "--help"], capture_output=True)
    if tool.returncode != 0:
        fail(f"{record.tool} is not installed for {sys.executable}: run make template-update")
    command = update_command(record.tool, new)
    print("template-update:", " ".join(command), file=sys.stderr)
    updated = subprocess.run([sys.executable, "-m", *command], cwd=project)
    if updated.returncode != 0:
        fail(f"{record.tool} update to {new} failed (exit {updated.returncode}): see above")
    changed = changed_paths(
        git("status", "--porcelain=v1", "-z", "--untracked-files=all", cwd=project)
    )
    if not changed:
        print(f"template-update: {new} changes nothing in this project")
        return 0
    files = {
        name: (project / name).read_text(errors="replace")
        for name in changed
        if (project / name).is_file()
    }
    conflicts = conflicted(files)
    entries = changelog_between(changelog, old, new)
    args.out.mkdir(parents=True, exist_ok=True)
    shown_old = old or record.commit[:12]
    (args.out / "title.txt").write_text(title(shown_old, new) + "\n")
    (args.out / "body.md").write_text(pr_body(record, shown_old, new, entries, conflicts, changed))
    (args.out / "conflicts.txt").write_text("".join(f"{name}\n" for name in conflicts))
    print(f"template-update: {shown_old} → {new}: {len(changed)} file(s) changed, "
          f"{len(conflicts)} with conflicts{': ' + ', '.join(conflicts) if conflicts else ''}; "
          f"review with git diff, then commit (PR text: {args.out / 'body.md'})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
