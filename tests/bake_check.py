"""Bake every row of the matrix with nothing but cookiecutter installed, under whatever Python runs
this (the template's CI runs it on 3.10 through `make bake-check`): the hooks must work there.
Then a bad answer must be refused with nothing left, and a generated project's `make setup` must
either accept this Python (3.11+) or refuse it in one line before installing anything.

Usage: python tests/bake_check.py <empty work dir>
"""

import subprocess
import sys
from pathlib import Path

from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter
from matrix import combo_id, matrix

TEMPLATE = Path(__file__).resolve().parents[1]


def main(work: Path) -> None:
    rows = matrix()
    for index, answers in enumerate(rows):
        out = work / f"bake-{index}"
        project = Path(
            cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(out), extra_context=answers)
        )
        assert (project / ".cruft.json").is_file() and (project / "Makefile").is_file(), answers
        print(f"baked {combo_id(answers)}")
    refused = work / "refused"
    try:
        cookiecutter(
            str(TEMPLATE),
            no_input=True,
            output_dir=str(refused),
            extra_context={"module_name": "class"},
        )
        sys.exit("a bad module_name was accepted")
    except FailedHookException:
        assert not refused.exists() or not any(refused.iterdir()), "the refused bake left files"
    print("refused module_name 'class', nothing left")
    default = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(work / "default")))
    check = subprocess.run(
        [sys.executable, "-c", _python_check(default)], capture_output=True, text=True
    )
    if sys.version_info >= (3, 11):  # noqa: UP036 (this script runs on 3.10 in CI)
        assert check.returncode == 0, check.stderr
        print(f"Python {sys.version_info[0]}.{sys.version_info[1]}: make setup's check accepts it")
    else:
        setup = subprocess.run(
            ["make", "--no-print-directory", "setup", f"PYTHON={sys.executable}"],
            cwd=default,
            capture_output=True,
            text=True,
        )
        message = setup.stderr.splitlines()[0] if setup.stderr else ""
        assert setup.returncode != 0 and "too old" in message, setup.stderr
        assert not (default / ".venv").exists(), "make setup created a venv anyway"
        print(f"make setup refuses it in one line: {message}")
    print(f"{len(rows)} bakes on Python {sys.version.split()[0]}")


def _python_check(project: Path) -> str:
    """The interpreter check `make setup` runs first, as the generated Makefile holds it."""
    out = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "--eval",
            "print-check: ; @echo '$(PYTHON_CHECK)'",
            "print-check",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
