"""`make template-update`: the record read, the newest release picked, the changelog sliced, the
conflicts found; and the whole update run with the real copier and cruft on a two-file template
with two release tags (the template's own, with the template-update workflow, is run under act in
the template's tests/test_template_update.py)."""

import subprocess
import sys
from pathlib import Path

import pytest
from cruft import create as cruft_create

from mlops_actions.template_update import (
    Record,
    changed_paths,
    changelog_between,
    conflicted,
    main,
    newest_release,
    parse_record,
    pr_body,
)

CHANGELOG = """# Changelog

Intro.

## 0.10.0 - 2027-01-01

### Added

- Ten.

## 0.9.1 - 2026-12-20

- Nine one.

## 0.9.0 - 2026-12-10

- Nine.
"""


def test_the_newest_release_is_numeric_and_skips_pre_releases():
    tags = ["v0.9.0", "v0.10.0", "v0.9.1", "v1.0.0-rc.1", "latest", "0.11.0"]
    assert newest_release(tags) == "v0.10.0"
    assert newest_release(["nightly"]) is None


def test_the_changelog_slice_is_after_the_old_version_up_to_the_new():
    entries = changelog_between(CHANGELOG, "v0.9.0", "v0.10.0")
    assert entries.startswith("### 0.10.0 - 2027-01-01\n\n#### Added\n\n- Ten.")
    assert "### 0.9.1" in entries and "Nine." not in entries
    assert (
        changelog_between(CHANGELOG, "v0.9.0", "v0.9.1") == "### 0.9.1 - 2026-12-20\n\n- Nine one."
    )
    assert changelog_between(CHANGELOG, None, "v0.9.0") == "### 0.9.0 - 2026-12-10\n\n- Nine."
    assert changelog_between(CHANGELOG, "v0.10.0", "v0.10.0") == ""


def test_conflicts_are_files_with_both_markers_and_rej_files():
    files = {
        "params.yaml": "a: 1\n<<<<<<< before updating\nseed: 7\n=======\nseed: 1\n>>>>>>> after\n",
        "Makefile.rej": "@@ -1 +1 @@\n",
        "README.md": "An example of a marker: `<<<<<<<` inside a line is no conflict.\n",
        "notes.md": "<<<<<<< only a start\n",
    }
    assert conflicted(files) == ["Makefile.rej", "params.yaml"]


def test_changed_paths_read_git_status_z():
    status = " M Makefile\0UU params.yaml\0R  new.txt\0old.txt\0?? a b.rej\0"
    assert changed_paths(status) == ["Makefile", "a b.rej", "new.txt", "params.yaml"]


def test_records_name_the_tool_template_and_commit():
    copier = parse_record(".copier-answers.yml", "_commit: v0.4.0-2-gabc\n_src_path: gh:o/t\n")
    assert copier == Record("copier", "gh:o/t", "v0.4.0-2-gabc")
    cruft = parse_record(".cruft.json", '{"template": "https://x/t.git", "commit": "f00d"}')
    assert cruft == Record("cruft", "https://x/t.git", "f00d")
    with pytest.raises(ValueError, match="_src_path"):
        parse_record(".copier-answers.yml", "_commit: v1.0.0\n")


def test_the_body_says_what_to_resolve_and_what_changed():
    record = Record("copier", "gh:o/t", "v0.9.0")
    body = pr_body(record, "v0.9.0", "v0.10.0", "### 0.10.0\n\n- Ten.", ["params.yaml"], ["a"])
    assert body.startswith("## Template update: v0.9.0 → v0.10.0\n")
    assert "1 file(s) with conflicts" in body and "- `params.yaml`" in body
    assert "### 0.10.0\n\n- Ten." in body
    clean = pr_body(record, "v0.9.0", "v0.10.0", "", [], ["a"])
    assert "No conflicts" in clean and "No changelog section" in clean


# --- the real tools on a small template -------------------------------------------------------


def git(cwd: Path, *args: str) -> str:
    identity = ["-c", "user.name=Tests", "-c", "user.email=tests@example.com"]
    done = subprocess.run(["git", *identity, *args], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def small_template(root: Path, tool: str) -> Path:
    """A template whose project holds settings.txt (`a: 1`, four lines, `b: 2`): v0.1.0, then
    v0.2.0 changing `b: 2` to `b: 3`; each release with its changelog section."""
    template = root / f"{tool}-template"
    if tool == "copier":
        project = template / "project"
        (project).mkdir(parents=True)
        (template / "copier.yml").write_text(
            "_subdirectory: project\nname:\n  type: str\n  default: demo\n"
        )
        (project / "{{ _copier_conf.answers_file }}.jinja").write_text(
            "{{ _copier_answers | to_nice_yaml -}}\n"
        )
    else:
        project = template / "{{cookiecutter.name}}"
        project.mkdir(parents=True)
        (template / "cookiecutter.json").write_text('{"name": "demo"}\n')
    settings = project / "settings.txt"
    settings.write_text("a: 1\nx\nx\nx\nx\nx\nx\nb: 2\n")
    (template / "CHANGELOG.md").write_text("# Changelog\n\n## 0.1.0 - 2026-01-01\n\n- First.\n")
    git(template, "init", "--quiet", "--initial-branch=main")
    git(template, "add", "--all")
    git(template, "commit", "--quiet", "--message", "0.1.0")
    git(template, "tag", "v0.1.0")
    settings.write_text(settings.read_text().replace("b: 2", "b: 3"))
    changelog = template / "CHANGELOG.md"
    changelog.write_text(
        changelog.read_text().replace("## 0.1.0", "## 0.2.0 - 2026-02-01\n\n- b is 3.\n\n## 0.1.0")
    )
    git(template, "commit", "--quiet", "--all", "--message", "0.2.0")
    git(template, "tag", "v0.2.0")
    return template


def made_at_first_release(template: Path, tool: str, root: Path, edit: tuple[str, str]) -> Path:
    """The project made from v0.1.0, committed, then its owner's edit committed."""
    if tool == "copier":
        from copier import run_copy

        project = root / "demo"
        run_copy(str(template), str(project), defaults=True, quiet=True, vcs_ref="v0.1.0")
    else:
        project = cruft_create(str(template), output_dir=root, checkout="v0.1.0", no_input=True)
    git(project, "init", "--quiet", "--initial-branch=main")
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--message", "made")
    settings = project / "settings.txt"
    settings.write_text(settings.read_text().replace(*edit))
    git(project, "commit", "--quiet", "--all", "--message", "the owner's edit")
    return project


@pytest.mark.parametrize("tool", ["copier", "cruft"])
@pytest.mark.parametrize("edit", [("a: 1", "a: 9"), ("b: 2", "b: 5")], ids=["apart", "same-line"])
def test_the_update_applies_the_newest_release_and_names_the_conflicts(
    tool, edit, tmp_path, monkeypatch
):
    template = small_template(tmp_path, tool)
    project = made_at_first_release(template, tool, tmp_path / "made", edit)
    out = tmp_path / "out"
    monkeypatch.chdir(project)
    assert main(["--out", str(out)]) == 0
    settings = (project / "settings.txt").read_text()
    assert edit[1] in settings
    title = (out / "title.txt").read_text()
    body = (out / "body.md").read_text()
    assert title == "Template update: v0.1.0 → v0.2.0\n"
    assert "### 0.2.0 - 2026-02-01\n\n- b is 3." in body and "First." not in body
    conflicts = (out / "conflicts.txt").read_text().splitlines()
    if edit[0] == "a: 1":
        assert "b: 3" in settings and conflicts == []
        assert "No conflicts" in body
    else:
        assert conflicts == ["settings.txt"], conflicts
        assert "<<<<<<<" in settings and "b: 3" in settings
        assert "- `settings.txt`" in body.split("### The template's changelog")[0]

    # Committed, the project is current: a second run says so and writes nothing.
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--message", "update")
    assert main(["--out", str(out)]) == 0
    assert not (out / "body.md").exists()


def test_a_dirty_tree_or_no_record_is_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match=r"neither \.copier-answers\.yml"):
        main([])
    template = small_template(tmp_path, "copier")
    project = made_at_first_release(template, "copier", tmp_path / "made", ("a: 1", "a: 2"))
    (project / "settings.txt").write_text("changed\n")
    monkeypatch.chdir(project)
    with pytest.raises(SystemExit, match="uncommitted changes"):
        main([])
    assert (project / "settings.txt").read_text() == "changed\n"


def test_runs_as_a_module(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mlops_actions.template_update"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and done.stderr.startswith("template-update: neither"), done.stderr
