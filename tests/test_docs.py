"""Docs that are generated stay in step with their source."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_options_reference_matches_cookiecutter_json():
    spec = importlib.util.spec_from_file_location("options", ROOT / "docs/options.py")
    options = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(options)
    assert (ROOT / "docs/options.md").read_text() == options.render(), "run `make docs`"


def test_readmes_name_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
