"""Training and export as the data grows: peak memory, time and model size per family.

Bakes one project per task and family with its generated defaults (`params.yaml` as the bake
writes it) on the synthetic starter data (customers: five numbers, two categories, 3% gaps;
made on the machine, no download), sets `data.rows` to 10,000, 200,000 and 1,000,000 (70% of them
train, 20% test), and runs the project's own stages as `dvc.yaml` spells them: data and prepare
once per task and size, then train and export, each its own process. Peak RSS is that process's
`ru_maxrss` (`os.wait4`); times are the stage's wall time, imports included. Regression is the
forest's worst case for size (a continuous target: every tree grows to its leaf bound),
multiclass its widest leaves (a value a class). A stage past 20 minutes is stopped and shown as
such. The goal: below 2 GB peak for every default, at every size. On this shared 2-core machine
times vary from run to run, gradient boosting's most (its OpenMP threads: 36 s and 173 s for the
same 1,000,000-row fit in two runs); peak memory did not (within 0.01 GB).
"""

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml
from cookiecutter.main import cookiecutter

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build/bench/scaling"
TASKS = ("regression", "multiclass_classification")
FAMILIES = ("hist_gradient_boosting", "random_forest", "linear")
ROWS = (10_000, 200_000, 1_000_000)
LIMIT_SECONDS = 20 * 60
GOAL_BYTES = 2 * 10**9


def bake(task: str, family: str) -> Path:
    answers = {
        "project_name": f"Scale {task.split('_')[0]} {family.replace('_', ' ')}",
        "task": task,
        "model": family,
        "dataset": "synthetic",
    }
    return Path(
        cookiecutter(
            str(ROOT),
            no_input=True,
            output_dir=str(OUT),
            overwrite_if_exists=True,
            extra_context=answers,
        )
    )


def set_rows(project: Path, rows: int) -> None:
    params = project / "params.yaml"
    text = params.read_text()
    current = yaml.safe_load(text)["data"]["rows"]
    params.write_text(text.replace(f"  rows: {current}\n", f"  rows: {rows}\n", 1))


def measured(project: Path, stage: str) -> tuple[float, int | None, str]:
    """Run one stage's `cmd` from the project's dvc.yaml: (seconds, peak RSS in bytes, the last
    line of its output if it failed). The peak is None when the stage ran past LIMIT_SECONDS."""
    command = yaml.safe_load((project / "dvc.yaml").read_text())["stages"][stage]["cmd"]
    argv = [sys.executable if word == "python" else word for word in shlex.split(command)]
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    log = project / f"{stage}.log"
    started = time.perf_counter()
    with log.open("w") as output:
        process = subprocess.Popen(argv, cwd=project, env=env, stdout=output, stderr=output)
        # wait4 reports the resource use of this child alone (ru_maxrss in KiB on Linux), where
        # getrusage(RUSAGE_CHILDREN) keeps the largest of every child so far.
        while not (reaped := os.wait4(process.pid, os.WNOHANG))[0]:
            if time.perf_counter() - started > LIMIT_SECONDS:
                process.kill()
                os.wait4(process.pid, 0)
                return LIMIT_SECONDS, None, f"stopped after {LIMIT_SECONDS // 60} min"
            time.sleep(0.2)
    _, status, usage = reaped
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped: Popen must not wait again
    error = log.read_text().strip().splitlines()[-1] if process.returncode else ""
    return time.perf_counter() - started, usage.ru_maxrss * 1024, error


def file_size(path: Path) -> str:
    if not path.exists():
        return "—"
    size = path.stat().st_size
    return f"{size / 1e6:,.1f} MB" if size >= 10**5 else f"{size / 1e3:,.0f} KB"


def gigabytes(value: int | None) -> str:
    return "—" if value is None else f"{value / 1e9:.2f} GB"


def row(project: Path) -> tuple[list[str], int, str]:
    """Train and export one bake: its table cells (time and peak of each stage, the two model
    files), the larger peak, and the error of a stage that failed or was stopped."""
    results: dict[str, tuple[float, int | None, str]] = {}
    for stage in ("train", "export"):
        results[stage] = measured(project, stage)
        if results[stage][2]:
            break
    cells, largest, error = [], 0, ""
    for stage in ("train", "export"):
        seconds, rss, failed = results.get(stage, (None, None, ""))
        cells += ["—" if seconds is None else f"{seconds:,.0f} s", gigabytes(rss)]
        largest, error = max(largest, rss or 0), error or (failed and f"{stage}: {failed}")
    models = project / "models"
    cells += [file_size(models / "model.joblib"), file_size(models / "model.onnx")]
    shutil.rmtree(models, ignore_errors=True)
    return cells, largest, error


def main() -> None:
    subprocess.run(["rm", "-rf", str(OUT)], check=True)
    print(
        "| task | family | rows | train | train peak RSS | export | export peak RSS | "
        "model.joblib | model.onnx |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    largest, notes = 0, []
    for task in TASKS:
        projects = {family: bake(task, family) for family in FAMILIES}
        first = projects[FAMILIES[0]]
        for rows in ROWS:
            for project in projects.values():
                set_rows(project, rows)
            for stage in ("data", "prepare"):
                if error := measured(first, stage)[2]:
                    raise SystemExit(f"{task}, {rows:,} rows, {stage}: {error}")
            for family, project in projects.items():
                if project != first:  # the same task and seed: the same rows and split
                    shutil.copytree(first / "data", project / "data", dirs_exist_ok=True)
                cells, peak, error = row(project)
                largest = max(largest, peak)
                if error:
                    notes.append(f"{task}, {family}, {rows:,} rows, {error}")
                name = task.replace("_classification", "")
                print(f"| {name} | {family} | {rows:,} | " + " | ".join(cells) + " |", flush=True)
    print()
    verdict = "met" if largest < GOAL_BYTES and not notes else "missed"
    print(f"- Goal, below 2 GB peak for every default: {verdict} (largest: {gigabytes(largest)}).")
    for note in notes:
        print(f"- {note}")


if __name__ == "__main__":
    main()
