"""Run every benchmark and print docs/benchmarks.md: the machine first, then each table."""

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
    "serving.py": "HTTP serving: ONNX server vs FastAPI + scikit-learn",
    "intervals.py": "Report intervals: bootstrap cost",
}


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def main() -> None:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    packages = ", ".join(
        f"{name} {version(name)}"
        for name in (
            *("scikit-learn", "onnxruntime", "skl2onnx", "onnx", "dvc", "numpy", "pandas"),
            *("uvicorn", "fastapi"),
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
        module = (HERE / script).read_text().split('"""')[1].strip()
        table = subprocess.run(
            [sys.executable, str(HERE / script)], capture_output=True, text=True, check=True
        ).stdout
        print(f"## {title}\n\n{module}\n\n{table}")


if __name__ == "__main__":
    main()
