"""The project's tune stage (`python -m <module>.stages.tune`), given the project's own
`make_pipeline`: `plan` checks the search space and draws the candidates (tune/plan.json);
`search` (`make tune`) plans, scores the candidates in one process and records each as a DVC
experiment (experiments.py), then writes the leaderboard; `trial` scores the candidate that
params.yaml holds (tune/dvc.yaml's stage), or `--name`d one of the plan (tune.yml's trial job)."""

import argparse
import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import PipelineError
from ..metrics import for_task
from ..params import load_params
from ..report.compare import gate_from_params
from ..schema import load_frame, load_schema
from . import experiments
from . import space as spaces
from .trial import score, write

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


def score_candidate(
    make_pipeline: MakePipeline,
    schema: Any,
    frame: pd.DataFrame,
    params: dict[str, Any],
    candidate: dict[str, Any],
) -> tuple[dict[str, Any], pd.DataFrame]:
    """A candidate of the plan scored as its experiment's stage would score it."""
    settings = {"model": candidate["model"], "hyperparameters": candidate["hyperparameters"]}
    seed = params["base"]["seed"]
    pipeline = make_pipeline(schema, settings["model"], settings["hyperparameters"], seed)
    return score(pipeline, frame, schema, params, settings)


def main(make_pipeline: MakePipeline, argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--schema", type=Path, required=True)
    commands = parser.add_subparsers(dest="command", required=True)
    planning = commands.add_parser("plan", help="check the space, draw the candidates")
    searching = commands.add_parser("search", help="plan, run, record and rank (make tune)")
    for command in (planning, searching):
        command.add_argument("--trials", type=int, help="default: tune.trials")
        command.add_argument("--family", help="default: train.model")
        command.add_argument("--out", type=Path, required=True, help="the plan")
    searching.add_argument("--train", type=Path, required=True)
    searching.add_argument("--jobs", type=int, default=2, help="trials side by side")
    searching.add_argument("--out-dir", type=Path, required=True, help="the leaderboard")
    trying = commands.add_parser("trial", help="score params.yaml's candidate on the train rows")
    trying.add_argument("--train", type=Path, required=True)
    trying.add_argument("--out-dir", type=Path, required=True)
    trying.add_argument("--plan", type=Path, help="with --name: score this plan's candidate")
    trying.add_argument("--name", help="a candidate of --plan (results in <out-dir>/<name>/)")
    args = parser.parse_args(argv)

    params, schema = load_params(args.params), load_schema(args.schema)
    if args.command in ("plan", "search"):
        if args.trials is not None and not 1 <= args.trials <= 64:
            raise PipelineError(f"TRIALS={args.trials}: choose 1 to 64 candidates")
        if args.command == "search" and args.jobs < 1:
            raise PipelineError(f"JOBS={args.jobs}: run at least one trial at a time")
        chosen = plan(params, schema, make_pipeline, args.trials, args.family or None)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(chosen, indent=2) + "\n")
        first = f", the current settings ({chosen['current']}) first" if chosen["current"] else ""
        count = len(chosen["candidates"])
        print(f"tune: {count} candidates of {chosen['family']}{first} -> {args.out}")
        if args.command == "search":
            frame = load_frame(args.train, schema)
            work = partial(score_candidate, make_pipeline, schema, frame, params)
            found = experiments.search(chosen, args.jobs, work)
            experiments.write_board(chosen, found, args.out_dir)
        return
    frame = load_frame(args.train, schema)
    if args.name:
        if args.plan is None or not args.plan.exists():
            raise PipelineError(f"{args.plan or '--plan'}: not found: run make tune-plan first")
        work = partial(score_candidate, make_pipeline, schema, frame, params)
        planned = json.loads(args.plan.read_text())
        experiments.run_one(planned, args.name, work, args.out_dir / args.name)
        return
    tune, settings = tune_settings(params), params["train"]
    pipeline = make_pipeline(
        schema, settings["model"], settings["hyperparameters"] or {}, params["base"]["seed"]
    )
    cv, table = score(pipeline, frame, schema, params, settings)
    write(args.out_dir, cv, table)
    shown = ", ".join(f"{name}={value['mean']:.4f}" for name, value in cv["cv"].items())
    print(f"tune: {len(frame)} train rows, {tune['folds']} folds: {shown}")
