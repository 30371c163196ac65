"""The project's tune stage (`python -m <module>.stages.tune`), given the project's own
`make_pipeline`: `plan` checks the search space and draws the candidates (tune/plan.json), `trial`
scores the candidate that params.yaml holds (tune/dvc.yaml runs it inside each DVC experiment)."""

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import PipelineError
from ..metrics import for_task
from ..params import load_params
from ..report.compare import gate_from_params
from ..schema import load_frame, load_schema
from . import space as spaces
from .trial import cross_validate, onnx_measures, out_of_fold_table, summary

MakePipeline = Callable[..., Any]  # (schema, family, hyperparameters, seed) -> Pipeline


def tune_settings(params: dict[str, Any]) -> dict[str, Any]:
    if "tune" not in params:
        raise PipelineError(
            "params.yaml has no tune section: add one (the template's params.yaml has it, "
            "see docs/tuning.md)"
        )
    return params["tune"]


def plan(
    params: dict[str, Any],
    schema: Any,
    make_pipeline: MakePipeline,
    trials: int | None,
    family: str | None = None,
) -> dict[str, Any]:
    """`trials` candidates (default tune.trials) of `family` (default train.model): params.yaml's
    own settings first when the family is its own, the reference every search is measured
    against, then the rest drawn from the family's space, each with the full hyperparameters it
    trains with (another family's start from scikit-learn's defaults). Fewer when the space holds
    fewer."""
    tune = tune_settings(params)
    seed, ours = params["base"]["seed"], params["train"]["model"]
    family = family or ours
    current = dict(params["train"]["hyperparameters"] or {}) if family == ours else {}
    space = spaces.parse(tune["space"], family)
    spaces.check(
        space, family, lambda hp: make_pipeline(schema, family, {**current, **hp}, seed)[-1]
    )
    gate = gate_from_params(params, schema.task)
    metric = gate.metric if gate else for_task(schema.task)[0].name
    candidates = [_candidate(family, current)] if family == ours else []
    wanted = (trials or tune["trials"]) - len(candidates)
    for drawn in spaces.draw(space, wanted, tune["seed"]) if wanted > 0 else []:
        candidate = _candidate(family, {**current, **drawn})
        if all(c["name"] != candidate["name"] for c in candidates):
            candidates.append(candidate)
    return {
        "family": family,
        "metric": metric,
        "folds": tune["folds"],
        "current": candidates[0]["name"] if family == ours else "",
        "candidates": candidates,
    }


def _candidate(family: str, hyperparameters: dict[str, Any]) -> dict[str, Any]:
    name = spaces.name_of(family, hyperparameters)
    return {"name": name, "model": family, "hyperparameters": hyperparameters}


def main(make_pipeline: MakePipeline, argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--schema", type=Path, required=True)
    commands = parser.add_subparsers(dest="command", required=True)
    planning = commands.add_parser("plan", help="check the space, draw the candidates")
    planning.add_argument("--trials", type=int, help="default: tune.trials")
    planning.add_argument("--family", help="default: train.model")
    planning.add_argument("--out", type=Path, required=True)
    trying = commands.add_parser("trial", help="score params.yaml's candidate on the train rows")
    trying.add_argument("--train", type=Path, required=True)
    trying.add_argument("--out-dir", type=Path, required=True)
    args = parser.parse_args(argv)

    params, schema = load_params(args.params), load_schema(args.schema)
    if args.command == "plan":
        if args.trials is not None and not 1 <= args.trials <= 64:
            raise PipelineError(f"TRIALS={args.trials}: choose 1 to 64 candidates")
        chosen = plan(params, schema, make_pipeline, args.trials, args.family or None)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(chosen, indent=2) + "\n")
        first = f", the current settings ({chosen['current']}) first" if chosen["current"] else ""
        count = len(chosen["candidates"])
        print(f"tune: {count} candidates of {chosen['family']}{first} -> {args.out}")
        return
    tune, settings = tune_settings(params), params["train"]
    pipeline = make_pipeline(
        schema, settings["model"], settings["hyperparameters"] or {}, params["base"]["seed"]
    )
    frame = load_frame(args.train, schema)
    trial = cross_validate(pipeline, frame, schema, tune["folds"], tune["seed"])
    measures = onnx_measures(trial.model, frame, schema, params["export"]["max_model_mb"])
    result = summary(trial, measures, settings)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "cv.json").write_text(json.dumps(result, indent=2) + "\n")
    out_of_fold_table(trial.predictions).to_csv(args.out_dir / "oof.csv", index=False)
    shown = ", ".join(f"{name}={value['mean']:.4f}" for name, value in result["cv"].items())
    print(f"tune: {len(frame)} train rows, {tune['folds']} folds: {shown}")
