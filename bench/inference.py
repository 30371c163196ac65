"""ONNX (onnxruntime) vs scikit-learn latency, for every task and every offered model.

Bakes one project per task, trains each estimator family with the project's own code on its
starter data (scikit-learn's default hyperparameters), exports it with the project's own
converter, then times the prediction call alone, inputs prepared beforehand: one row (median
of 200 scikit-learn / 2,000 ONNX calls), and 10,000 rows drawn from the data (median of 7).
"""

import importlib
import sys
from functools import partial
from pathlib import Path

from cookiecutter.main import cookiecutter

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build/bench/inference"
# Each task on its bundled dataset, plus the synthetic one with categorical (string) inputs.
CASES = (
    ("binary_classification", "auto"),
    ("multiclass_classification", "auto"),
    ("regression", "auto"),
    ("binary_classification", "synthetic"),
)
BATCH = 10_000


def bake(task: str, dataset: str) -> Path:
    answers = {
        "project_name": f"Bench {task.split('_')[0]} {dataset}",
        "task": task,
        "dataset": dataset,
    }
    project = cookiecutter(
        str(ROOT),
        no_input=True,
        output_dir=str(OUT),
        overwrite_if_exists=True,
        extra_context=answers,
    )
    return Path(project)


def main() -> None:
    import onnxruntime as ort

    print(
        "| task | dataset | model | scikit-learn, 1 row | ONNX, 1 row | speed-up | "
        f"scikit-learn, {BATCH:,} rows | ONNX, {BATCH:,} rows | speed-up | model.onnx |"
    )
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for task, dataset in CASES:
        project = bake(task, dataset)
        sys.path.insert(0, str(project / "src"))
        package = project.name.replace("-", "_")

        def load(submodule: str, package: str = package):
            """The project's own code (datasets, models, stages), or the package's."""
            own = submodule in ("datasets", "models") or submodule.startswith("stages.")
            return importlib.import_module(f"{package if own else 'mlops_actions'}.{submodule}")

        params = load("params").load_params(project / "params.yaml")
        schema = load("schema").load_schema(project / "data/schema.yaml")
        data = params["data"]
        raw = load("datasets").make_dataset(data["dataset"], data.get("rows", 0), 42, schema)
        frame = load("schema").validate(raw, schema)
        train, _ = load("stages.prepare").split(frame, schema, 0.2, 42)
        features, export = load("features"), load("export")
        median_seconds = load("report").median_seconds  # the timer the PR report uses
        batch = frame.sample(BATCH, replace=True, random_state=0).reset_index(drop=True)
        row_inputs = features.model_inputs(batch.head(1), schema)
        batch_inputs = features.model_inputs(batch, schema)
        row_feed, batch_feed = features.onnx_feed(row_inputs), features.onnx_feed(batch_inputs)
        for family in load("models").FAMILIES:
            model = load("stages.train").train(train, schema, {"model": family}, 42)
            blob = export.convert(model, schema, model_version="bench", git_sha="bench")
            session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
            predict = model.predict_proba if schema.is_classification else model.predict
            timings = [
                median_seconds(partial(predict, row_inputs), 200),
                median_seconds(partial(session.run, None, row_feed), 2000),
                median_seconds(partial(predict, batch_inputs), 7),
                median_seconds(partial(session.run, None, batch_feed), 7),
            ]
            sk1, ox1, skb, oxb = timings
            cells = [
                task,
                data["dataset"],
                family,
                f"{sk1 * 1e3:.2f} ms",
                f"{ox1 * 1e6:.0f} µs",
                f"{sk1 / ox1:.0f}x",
                f"{skb * 1e3:.1f} ms",
                f"{oxb * 1e3:.1f} ms",
                f"{skb / oxb:.1f}x",
                f"{len(blob) / 1024:.0f} KiB",
            ]
            print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
