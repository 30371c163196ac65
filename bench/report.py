"""Run every benchmark and print docs/benchmarks.md: the machine first, then each table.

`--only serving.py decoding.py` runs those alone and keeps the other sections of the current
docs/benchmarks.md (`make bench-serving`).
"""

import argparse
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = {
    "inference.py": "ONNX (onnxruntime) vs scikit-learn",
    "pipeline.py": "Pipeline timings",
    "scaling.py": "Training and export at scale: memory and model size",
    "decoding.py": "Request decoding: msgspec vs pydantic v2",
    "serving.py": "HTTP serving: floor, ceiling, our server, FastAPI",
    "intervals.py": "Report intervals: bootstrap cost",
    "batch.py": "Batch scoring: `make score` vs onnxruntime alone",
    "tune.py": "Tuning: `make tune` vs the same fits in one process",
}


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def section(script: str) -> str:
    module = (HERE / script).read_text().split('"""')[1].strip()
    table = subprocess.run(
        [sys.executable, str(HERE / script)], capture_output=True, text=True, check=True
    ).stdout
    return f"## {BENCHMARKS[script]}\n\n{module}\n\n{table}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS))
    only = parser.parse_args().only
    kept: dict[str, str] = {}
    if only:
        current = (HERE.parent / "docs/benchmarks.md").read_text()
        for part in current.split("\n## ")[1:]:
            title = part.split("\n", 1)[0]
            kept[title] = f"## {part.rstrip()}\n"
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    packages = ", ".join(
        f"{name} {version(name)}"
        for name in (
            *("scikit-learn", "onnxruntime", "skl2onnx", "onnx", "dvc", "numpy", "pandas"),
            "pyarrow",
            *("uvicorn", "fastapi", "msgspec", "pydantic"),
        )
    )
    print("# Benchmarks\n")
    print("Written by `make bench`; do not edit by hand.\n")
    print(f"- Date: {datetime.now(UTC):%Y-%m-%d}")
    print(
        f"- Machine: {os.cpu_count()} cores ({cpu_model()}), {memory:.0f} GiB, {platform.system()}"
    )
    print(f"- Python {platform.python_version()}; {packages}\n")
    for script, title in BENCHMARKS.items():
        if only and script not in only and title in kept:
            print(kept[title])
        else:
            print(section(script))


if __name__ == "__main__":
    main()
