"""`python -m mlops_actions.tune run|leaderboard|apply`: the candidates of tune/plan.json as DVC
experiments.

Why the queue: `dvc exp run --queue` records each candidate as an experiment of the current commit
(its params set with `-S`), and `dvc exp run --run-all --jobs N` runs them, N at a time, each in
its own temporary copy of the workspace, and waits for them: so candidates run side by side without
touching the workspace, and each result stays an experiment that `dvc exp show` lists and
`dvc exp apply` brings back (https://dvc.org/doc/command-reference/exp/run,
https://dvc.org/doc/command-reference/queue/start). A candidate that already ran on this commit
(same name: same hyperparameters) is not run again. Only tune/dvc.yaml's stage runs in them: data
and prepare come from the cache, and train, evaluate and export are not part of a trial.
"""

import argparse
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import PipelineError
from ..metrics import METRICS
from ..report.intervals import rows_from_plots
from .leaderboard import Board, Candidate, as_json, markdown, rank

STAGE = "tune/dvc.yaml:trial"
# One native thread per trial: the queue runs --jobs of them side by side.
ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def override(name: str, value: Any) -> str:
    """A `dvc exp run -S` override (Hydra's syntax; `++` adds the key or replaces it)."""
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | float):
        text = repr(value)
    else:
        text = "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"
    return f"++train.hyperparameters.{name}={text}"


def experiments() -> dict[str, dict[str, Any]]:
    """This commit's experiments by name: their rev and state (Success, Failed, Queued ...)."""
    import dvc.api

    return {row["Experiment"]: row for row in dvc.api.exp_show() if row.get("Experiment")}


def run(plan: dict[str, Any], jobs: int) -> None:
    """Queue the candidates that have not run on this commit, then run the queue and wait. One
    process and one Repo for all of it: each `dvc exp run --queue` started alone costs DVC's
    start-up again (about 3 s a candidate here)."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    known = experiments()
    try:
        with Repo() as repo:
            queued = 0
            for candidate in plan["candidates"]:
                name = candidate["name"]
                state = known.get(name, {}).get("State")
                if state == "Success":
                    print(f"tune: {name} already ran on this commit")
                    continue
                if state is not None:
                    repo.experiments.remove(exp_names=[name], queue=state == "Queued")
                overrides = [override(k, v) for k, v in candidate["set"].items()]
                repo.experiments.run(targets=[STAGE], params=overrides, queue=True, name=name)
                queued += 1
            if queued:
                print(f"tune: running {queued} experiments, {jobs} at a time")
                os.environ.update(ONE_THREAD)  # the queue's workers start from this process
                repo.experiments.run(run_all=True, jobs=jobs)
    except DvcException as err:
        raise PipelineError(f"dvc: {str(err).splitlines()[0]}") from None


def candidates(plan: dict[str, Any]) -> list[Candidate]:
    """Each planned candidate's results, read from its experiment."""
    import dvc.api

    known = experiments()
    found = []
    for planned in plan["candidates"]:
        name = planned["name"]
        row = known.get(name)
        if row is None or row.get("State") != "Success":
            state = (row or {}).get("State") or "not run"
            cv = {"hyperparameters": planned["hyperparameters"]}
            found.append(
                Candidate(name, cv, error=f"experiment {state.lower()} (dvc queue logs {name})")
            )
            continue
        cv = json.loads(dvc.api.read("tune/cv.json", rev=row["rev"]))
        table = pd.read_csv(io.StringIO(dvc.api.read("tune/oof.csv", rev=row["rev"])))
        kind = "confusion" if any(c.startswith("proba_") for c in table.columns) else "predictions"
        found.append(Candidate(name, cv, rows_from_plots({kind: table}, None)))
    return found


def board_of(plan: dict[str, Any], found: list[Candidate]) -> Board:
    try:
        return rank(found, METRICS[plan["metric"]], plan["current"])
    except ValueError:
        raise PipelineError("no candidate ran: see dvc queue logs <name>") from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "leaderboard"):
        command = commands.add_parser(name)
        command.add_argument("--plan", type=Path, default=Path("tune/plan.json"))
        command.add_argument("--jobs", type=int, default=2)
        command.add_argument("--out-dir", type=Path, default=Path("tune"))
    applying = commands.add_parser("apply")
    applying.add_argument("--exp", help="default: the leaderboard's choice")
    applying.add_argument("--leaderboard", type=Path, default=Path("tune/leaderboard.json"))
    args = parser.parse_args(argv)

    if args.command == "apply":
        name = args.exp
        if not name:
            if not args.leaderboard.exists():
                raise PipelineError(
                    f"{args.leaderboard}: not found: run make tune first, or name EXP="
                )
            name = json.loads(args.leaderboard.read_text())["chosen"]
        if subprocess.run(["dvc", "exp", "apply", name]).returncode != 0:
            raise PipelineError(f"dvc exp apply {name} failed: see above")
        print(
            f"tune: {name} applied: params.yaml holds its hyperparameters; make repro, then commit"
        )
        return
    if not args.plan.exists():
        raise PipelineError(f"{args.plan}: not found: run make tune first")
    plan = json.loads(args.plan.read_text())
    if args.command == "run":
        run(plan, args.jobs)
    board = board_of(plan, candidates(plan))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "leaderboard.md").write_text(markdown(board))
    (args.out_dir / "leaderboard.json").write_text(json.dumps(as_json(board), indent=2) + "\n")
    failed = sum(1 for c in board.candidates if c.error)
    print(
        f"tune: chosen {board.chosen} (best {board.best}) of {len(board.candidates)} candidates"
        + (f", {failed} failed" if failed else "")
        + f" -> {args.out_dir / 'leaderboard.md'}; make tune-apply applies it"
    )


def cli() -> None:
    try:
        main()
    except PipelineError as err:
        sys.exit(f"tune: {err}")
