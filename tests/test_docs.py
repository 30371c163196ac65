"""The docs site builds with --strict, its links and charts hold, generated parts are current, and
the repository's hygiene files (version, changelog, pre-commit) agree with each other."""

import functools
import http.server
import json
import os
import re
import subprocess
import threading
import tomllib
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from conftest import SHARED_VENV, assert_mermaid_parses, bake, load, run

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_PAGES = (
    "ci", "pr-report", "pr-report-comment", "retrain", "staging", "release", "drift", "rollback",
    "template-update",
)  # fmt: skip


check_links = load(ROOT / "tools/check_links.py")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site, built as `make site` builds it: --strict turns every warning (a missing page or
    anchor, an unknown snippet, a page left out of the nav) into a failure."""
    out = tmp_path_factory.mktemp("site")
    run(
        [str(SHARED_VENV / "bin/mkdocs"), "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env={"NO_MKDOCS_2_WARNING": "1"},
    )
    return out


def test_site_builds_strict_and_every_internal_link_lands(site):
    """Every relative link of every built page (nav, pages, included snippets) names a file of
    the site, and its #anchor an id on that page. External links are not fetched (no internet)."""
    pages = {page: check_links.parse(page) for page in site.rglob("*.html")}
    broken = []
    checked = 0
    for page, links in pages.items():
        for href in links.hrefs:
            parts = urlsplit(href)
            if parts.scheme or href.startswith(("mailto:", "//")):
                continue
            path = unquote(parts.path)
            base = site if path.startswith("/") else page.parent  # 404.html links from the root
            target = (base / path.lstrip("/")).resolve() if path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{page.relative_to(site)}: {href}")
            elif target.suffix == ".html" and parts.fragment not in {"", *pages[target].ids}:
                broken.append(f"{page.relative_to(site)}: {href} (no such anchor)")
            checked += 1
    assert not broken, broken
    assert checked > 500


def test_site_has_every_page_and_no_raw_snippet_markers(site):
    expected = [
        "getting-started",
        "options",
        "security",
        "updating",
        "faq",
        "deploy-targets",
        "contributing",
        "changelog",
        *(f"workflows/{name}" for name in WORKFLOW_PAGES),
    ]
    for name in expected:
        html = (site / name / "index.html").read_text()
        assert "--8&lt;--" not in html and "--8<--" not in html, name
    getting_started = (site / "getting-started/index.html").read_text()
    for produced in ("model.onnx", "SHA256SUMS", "Model card:", "roc_auc", "deploy-kubernetes"):
        assert produced in getting_started, produced
    assert "unknown feature `colour`" in (site / "serving/index.html").read_text()
    # Each workflow page shows its sequence diagram and the facts read from the rendered YAML.
    for name in WORKFLOW_PAGES:
        html = (site / "workflows" / name / "index.html").read_text()
        assert '<pre class="mermaid"><code>sequenceDiagram' in html, name
        assert f"Read from the rendered <code>.github/workflows/{name}.yml</code>" in html, name


def test_every_chart_in_the_docs_parses():
    pages = sorted(p for p in (ROOT / "docs").rglob("*.md") if "snippets" not in p.parts)
    with_charts = [p for p in pages if "```mermaid" in p.read_text()]
    assert {p.stem for p in with_charts} >= set(WORKFLOW_PAGES)
    assert assert_mermaid_parses(*with_charts) >= len(WORKFLOW_PAGES) + 5


def test_options_reference_matches_cookiecutter_json_and_the_help_file():
    assert (ROOT / "docs/options.md").read_text() == load(ROOT / "docs/options.py").render(), (
        "run `make docs`"
    )
    context = json.loads((ROOT / "cookiecutter.json").read_text())
    helps = yaml.safe_load((ROOT / "cookiecutter.help.yml").read_text())
    options = {key for key in context if not key.startswith("_")}
    assert set(helps) == options, "cookiecutter.help.yml: one entry per option, no others"
    assert all(isinstance(text, str) and len(text) > 20 for text in helps.values())


def test_snippets_from_bakes_are_current():
    """Tree, `make help` and workflow facts: regenerated in seconds, so compared on every run."""
    for relative, text in load(ROOT / "docs/snippets.py").render().items():
        path = ROOT / "docs/snippets" / relative
        assert path.is_file() and path.read_text() == text, f"{relative}: run `make docs`"


def test_snippets_from_pipeline_runs_exist():
    """Written by docs/examples.py from a real setup and `make release-assets` (minutes, so only
    `make docs` runs it): present and of the right shape."""
    snippets = ROOT / "docs/snippets"
    files = (snippets / "release-files.txt").read_text().split()
    for name in ("model.onnx", "model-card.md", "metrics.json", "sbom.cdx.json", "SHA256SUMS"):
        assert name in files
    assert (snippets / "model-card.md").read_text().startswith("#### Model card: ")
    sums = (snippets / "SHA256SUMS").read_text().splitlines()
    assert sums and all(re.fullmatch(r"[0-9a-f]{64}  \S+", line) for line in sums)
    metrics = (snippets / "metrics.md").read_text()
    assert "| metrics/scores.json |" in metrics and "| metrics/onnx.json |" in metrics
    api = (snippets / "api.md").read_text()
    for exchange in (
        "`POST /v2/models/iris-species/infer`",
        "`POST /predict`",
        '"error": "unknown feature `colour` - at `$.records[0]`"',
        "model_info{",
    ):
        assert exchange in api, exchange
    assert api.count("→ `200`") == 5 and api.count("→ `400`") == 2


def test_example_reports_exist_and_start_as_reports():
    examples = sorted((ROOT / "docs/examples").glob("report-*.md"))
    assert [path.name for path in examples] == [
        "report-binary-classification.md",
        "report-regression.md",
    ]
    for path in examples:
        assert path.read_text().startswith("## ")


def test_readme_and_contributing_links_resolve():
    for name in ("README.md", "CONTRIBUTING.md", "CHANGELOG.md"):
        text = (ROOT / name).read_text()
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if not urlsplit(target).scheme:
                assert (ROOT / target).exists(), f"{name}: {target}"
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme


def test_one_template_version_everywhere(tmp_path):
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    context = json.loads((ROOT / "cookiecutter.json").read_text())
    changelog = (ROOT / "CHANGELOG.md").read_text()
    newest = re.search(r"^## (\d+\.\d+\.\d+) - \d{4}-\d{2}-\d{2}$", changelog, re.MULTILINE)
    assert context["_template_version"] == version == newest[1]
    # The package is versioned with the template: a project baked from vX.Y.Z installs it at X.Y.Z.
    package = tomllib.loads((ROOT / "mlops-actions/pyproject.toml").read_text())["project"]
    init = (ROOT / "mlops-actions/src/mlops_actions/__init__.py").read_text()
    assert package["version"] == version
    assert re.search(r'^__version__ = "(.+)"$', init, re.MULTILINE)[1] == version
    project = bake(tmp_path)
    record = json.loads((project / ".cruft.json").read_text())
    assert record["context"]["cookiecutter"]["_template_version"] == version
    assert f"cookiecutter-mlops-actions {version}" in (project / "README.md").read_text()


def test_pre_commit_hooks_skip_the_template_directory_and_pass():
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    excluded = {path for path in tracked if re.search(config["exclude"], path)}
    in_template = {path for path in tracked if path.startswith("{{cookiecutter.project_slug}}/")}
    assert excluded == in_template and in_template
    pre_commit = str(SHARED_VENV / "bin/pre-commit")
    run([pre_commit, "validate-config", ".pre-commit-config.yaml"], cwd=ROOT)
    # The hooks are Makefile targets; run them the way `git commit` would, on every file.
    env = {"PATH": f"{SHARED_VENV / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    done = run([pre_commit, "run", "--all-files"], cwd=ROOT, env=env)
    assert done.stdout.count("Passed") == len(config["repos"][0]["hooks"]), done.stdout


def test_external_link_check_names_the_broken_link_and_its_page(tmp_path):
    """tools/check_links.py (CI's docs job fetches the real links) against a local server."""
    served = tmp_path / "served"
    served.mkdir()
    (served / "ok.html").write_text("fine")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    site = tmp_path / "site"
    (site / "guide").mkdir(parents=True)
    (site / "index.html").write_text(f'<a href="{base}/ok.html">ok</a><a href="../x">internal</a>')
    (site / "guide/index.html").write_text(f'<a href="{base}/gone.html">gone</a>')
    readme = tmp_path / "README.md"
    readme.write_text(f"See [the guide]({base}/ok.html).\n")
    tool = [str(SHARED_VENV / "bin/python"), str(ROOT / "tools/check_links.py")]
    try:
        broken = run([*tool, str(site), str(readme)], cwd=tmp_path, check=False)
        (site / "guide/index.html").write_text(f'<a href="{base}/ok.html">ok</a>')
        fixed = run([*tool, str(site), str(readme)], cwd=tmp_path, check=False)
    finally:
        server.shutdown()
    assert broken.returncode == 1
    assert f"broken: {base}/gone.html (HTTP 404), linked from guide/index.html" in broken.stdout
    assert "2 external links checked, 1 broken" in broken.stdout
    assert fixed.returncode == 0 and "1 external links checked, 0 broken" in fixed.stdout


def test_the_docs_cite_only_files_of_this_repository():
    """A file of the template's repository named in the docs (`tools/bump_pins.py`,
    `CHANGELOG.md`), or of every generated project (`AGENTS.md`), exists: the workflows page cited
    an `ACTION-PINS.md` that never did."""
    cited = set()
    for page in (ROOT / "docs").rglob("*.md"):
        if "snippets" not in page.parts:
            text = page.read_text()
            cited |= set(
                re.findall(r"`((?:tools|hooks|templates)/[\w./-]+|[A-Z][A-Z-]+\.md)`", text)
            )
    project = ROOT / "{{cookiecutter.project_slug}}"
    missing = sorted(
        name for name in cited if not (ROOT / name).exists() and not (project / name).exists()
    )
    assert "tools/bump_pins.py" in cited and not missing, missing


def test_the_deploy_target_help_names_every_file_it_adds(tmp_path):
    """What `deploy_target` adds to a bake (staging.yml, the deploy action) is named in its help,
    which options.md shows: the option's help once left staging.yml out."""
    help_text = yaml.safe_load((ROOT / "cookiecutter.help.yml").read_text())["deploy_target"]
    prompt = json.loads((ROOT / "cookiecutter.json").read_text())["__prompts__"]["deploy_target"]

    def github_files(answer: str) -> set[str]:
        project = bake(tmp_path / answer, deploy_target=answer)
        return {
            str(p.relative_to(project)) for p in (project / ".github").rglob("*") if p.is_file()
        }

    added = set.union(*(github_files(a) for a in ("kubernetes", "cloud-run"))) - github_files(
        "none"
    )
    assert added == {".github/workflows/staging.yml", ".github/actions/deploy/action.yml"}
    for name in added:
        shown = name.removeprefix(".github/workflows/").removesuffix("/action.yml")
        assert f"`{shown}`" in help_text or f"`{shown.removeprefix('.github/')}`" in help_text, name
    assert "staging.yml" in prompt["__prompt__"] and "promote-only" in help_text


def test_the_template_url_is_explained_in_one_place():
    """`gh:<owner>/cookiecutter-mlops-actions` is explained once, in the README's section that
    getting-started includes; every other page that shows it links there."""
    readme = (ROOT / "README.md").read_text()
    assert readme.count("--8<-- [start:template-url]") == 1
    for page in sorted((ROOT / "docs").glob("*.md")):
        text = page.read_text()
        if "gh:<owner>/cookiecutter-mlops-actions" in text:
            assert (
                '--8<-- "README.md:template-url"' in text
                or "(getting-started.md#2-bake-your-own-project)" in text
            ), page.name
