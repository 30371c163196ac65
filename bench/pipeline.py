"""Pipeline timings on a fresh default bake, through the project's own Makefile.

Full repro (every stage), a no-op repro (nothing changed), a params-only repro (train and what
follows), against `dvc status` alone: DVC's own floor for deciding that nothing needs to run.
Each stage is its own process, and importing scikit-learn and pandas costs about 1.7 s per process
here (6.7 s before `make install` compiled the bytecode, where PYTHONDONTWRITEBYTECODE is set).
"""

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from cookiecutter.main import cookiecutter

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build/bench/pipeline"
VENV = Path(sys.prefix)
ENV = {**os.environ, "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ['PATH']}"}


def timed(cmd: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, result.stdout


def make(target: str) -> list[str]:
    return ["make", "--no-print-directory", target, f"VENV={VENV}", f"DVC_REMOTE_DIR={OUT}/remote"]


def main() -> None:
    subprocess.run(["rm", "-rf", str(OUT)], check=True)
    project = Path(
        cookiecutter(
            str(ROOT),
            no_input=True,
            output_dir=str(OUT),
            extra_context={"project_name": "Bench Pipeline"},
        )
    )
    subprocess.run(make("install"), cwd=project, env=ENV, check=True, capture_output=True)
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    rows = []
    full, out = timed(make("repro"), project)
    rows.append(("full `make repro` (5 stages)", full, out.count("Running stage")))
    noop = [timed(make("repro"), project) for _ in range(3)]
    rows.append(
        (
            "no-op `make repro` (median of 3)",
            statistics.median(t for t, _ in noop),
            noop[0][1].count("Running stage"),
        )
    )
    status = [timed(["dvc", "status"], project)[0] for _ in range(3)]
    rows.append(("`dvc status` alone (median of 3)", statistics.median(status), 0))
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("learning_rate: 0.1", "learning_rate: 0.2"))
    changed, out = timed(make("repro"), project)
    rows.append(
        ("params-only `make repro` (train, evaluate, export)", changed, out.count("Running stage"))
    )
    print("| run | seconds | stages run |")
    print("| --- | ---: | ---: |")
    for name, seconds, stages in rows:
        print(f"| {name} | {seconds:.1f} | {stages} |")


if __name__ == "__main__":
    main()
