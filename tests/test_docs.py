"""Docs that are generated stay in step with their source."""

import importlib.util
from pathlib import Path

from conftest import assert_mermaid_parses

ROOT = Path(__file__).resolve().parents[1]


def test_options_reference_matches_cookiecutter_json():
    spec = importlib.util.spec_from_file_location("options", ROOT / "docs/options.py")
    options = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(options)
    assert (ROOT / "docs/options.md").read_text() == options.render(), "run `make docs`"


def test_readmes_name_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme


def test_example_reports_exist_and_their_charts_parse():
    examples = sorted((ROOT / "docs/examples").glob("report-*.md"))
    assert [path.name for path in examples] == [
        "report-binary-classification.md",
        "report-regression.md",
    ]
    for path in examples:
        assert path.read_text().startswith("## ")
    assert assert_mermaid_parses(*examples) >= 5
