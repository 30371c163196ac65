"""`make tune` against its limit: the same candidates fitted one after another in one process.

Bakes the default project (breast cancer, 569 rows) and a synthetic one (20,000 customers), sets
each up (`make setup`), plans 8 candidates (`make tune-plan TRIALS=8`), then times three ways of
scoring the same 8 candidates the same way (5-fold cross-validation on the train rows, the ONNX
export and its latency):

- **limit**: one Python process, scikit-learn imported once, the 8 trials one after another
  (mlops_actions.tune.trial, what each experiment's stage runs);
- **make tune JOBS=1**: the 8 as DVC experiments: the limit plus what `make tune` adds on top
  (make, its Python start and imports, the plan, DVC's check of the train rows, one forked
  worker scoring the trials while this process saves each as an experiment, the workspace put
  back, the leaderboard, the interpreter's exit);
- **make tune JOBS=2**: the same, two workers on the 2 cores.

The limit is given twice: the fits alone (timed inside its process, imports excluded), and its
whole process timed from outside as `make tune` is (interpreter start and imports, once). The
ratios are to the first, and in brackets to the second.

Each `make tune` starts with no experiments and no run-cache, so every candidate runs. Wall
times, one run each; on this shared machine they vary by 30-50% between runs, so compare the
ratios within one run. Goal (issue 25): JOBS=1 at most 20% over the limit, JOBS=2 below it.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from cookiecutter.main import cookiecutter

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build/bench/tune"
VENV = Path(sys.prefix)
TRIALS = 8
PROJECTS = {
    "breast cancer, 569 rows": {"project_name": "Tune Bench Default"},
    "synthetic, 20,000 rows": {
        "project_name": "Tune Bench Synthetic",
        "task": "binary_classification",
        "dataset": "synthetic",
    },
}
LIMIT = """
import json, sys, time
from pathlib import Path
from mlops_actions.params import load_params
from mlops_actions.schema import load_frame, load_schema
from mlops_actions.tune.trial import cross_validate, onnx_measures
from {module}.models import make_pipeline
params, schema = load_params(), load_schema(Path("data/schema.yaml"))
frame = load_frame(Path("data/prepared/train.csv"), schema)
plan = json.loads(Path("tune/plan.json").read_text())
started = time.perf_counter()
for candidate in plan["candidates"]:
    pipeline = make_pipeline(schema, candidate["model"], candidate["hyperparameters"], 42)
    trial = cross_validate(pipeline, frame, schema, params["tune"]["folds"], params["tune"]["seed"])
    onnx_measures(trial.model, frame, schema, 100)
print(time.perf_counter() - started)
"""


def make(project: Path, *args: str) -> None:
    subprocess.run(
        ["make", "--no-print-directory", f"VENV={VENV}", *args],
        cwd=project, check=True, capture_output=True, text=True,
    )  # fmt: skip


def timed(project: Path, *args: str) -> float:
    started = time.perf_counter()
    make(project, *args)
    return time.perf_counter() - started


def fresh_search(project: Path) -> None:
    """No experiments and no run-cache: every candidate of the plan runs again."""
    dvc = str(VENV / "bin/dvc")
    subprocess.run([dvc, "exp", "remove", "--all-commits", "--quiet"], cwd=project, check=False)
    shutil.rmtree(project / ".dvc/cache/runs", ignore_errors=True)


def main() -> None:
    shutil.rmtree(OUT, ignore_errors=True)
    print(
        "| data | limit: fits | limit: its process | make tune JOBS=1 | ratio | "
        "make tune JOBS=2 | ratio |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for label, answers in PROJECTS.items():
        project = Path(cookiecutter(str(ROOT), no_input=True, output_dir=str(OUT),
                                    extra_context=answers))  # fmt: skip
        if answers.get("dataset") == "synthetic":
            params = project / "params.yaml"
            params.write_text(params.read_text().replace("  rows: 1000\n", "  rows: 20000\n"))
        make(project, "setup", f"DVC_REMOTE_DIR={OUT / 'remote' / project.name}")
        make(project, "tune-plan", f"TRIALS={TRIALS}")
        module = project.name.replace("-", "_")
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PATH": f"{VENV}/bin:{os.environ['PATH']}"}
        started = time.perf_counter()
        limit = float(
            subprocess.run(
                [str(VENV / "bin/python"), "-c", LIMIT.format(module=module)],
                cwd=project,
                check=True,
                capture_output=True,
                text=True,
                env=env,
            ).stdout
        )
        process = time.perf_counter() - started
        fresh_search(project)
        one = timed(project, "tune", f"TRIALS={TRIALS}", "JOBS=1")
        ran = json.loads((project / "tune/leaderboard.json").read_text())["candidates"]
        assert len(ran) == TRIALS and not any(c["error"] for c in ran), ran
        fresh_search(project)
        two = timed(project, "tune", f"TRIALS={TRIALS}", "JOBS=2")
        print(
            f"| {label} | {limit:.1f} s | {process:.1f} s | {one:.1f} s "
            f"| {one / limit:.2f} ({one / process:.2f}) | {two:.1f} s "
            f"| {two / limit:.2f} ({two / process:.2f}) |"
        )


if __name__ == "__main__":
    main()
