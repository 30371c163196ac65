"""The package type-checks: mypy, configured in the package's pyproject.toml, reports nothing."""

import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]


def test_mypy_reports_nothing():
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(PACKAGE.parent / "build/mypy-cache")],
        cwd=PACKAGE,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("Success: no issues found")
