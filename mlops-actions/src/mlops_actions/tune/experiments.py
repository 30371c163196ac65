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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import PipelineError
from ..metrics import METRICS
from ..report.intervals import PROBABILITY_PREFIX, rows_from_plots
from .leaderboard import Board, Candidate, as_json, markdown, rank

STAGE = "tune/dvc.yaml:trial"
# One native thread per trial: the queue runs --jobs of them side by side.
ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def _value(value: Any) -> str:
    """One value in Hydra's override grammar."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def overrides(plan: dict[str, Any], candidate: dict[str, Any]) -> list[str]:
    """`dvc exp run -S` overrides (Hydra's syntax) that put the candidate's family and its whole
    set of hyperparameters in params.yaml, the others removed (`~` deletes, `+` adds: Hydra would
    otherwise merge into the old set). None for params.yaml's own candidate."""
    if candidate["name"] == plan.get("current"):
        return []
    settings = ", ".join(f"{k}: {_value(v)}" for k, v in candidate["hyperparameters"].items())
    return [
        f"train.model={candidate['model']}",
        "~train.hyperparameters",
        f"+train.hyperparameters={{{settings}}}",
    ]


def experiments() -> dict[str, dict[str, Any]]:
    """This commit's experiments by name: their rev and state (Success, Failed, Queued ...)."""
    import dvc.api

    return {row["Experiment"]: row for row in dvc.api.exp_show() if row.get("Experiment")}


@contextmanager
def dvc_repo() -> Iterator[Any]:
    """DVC's Repo of this project; DVC's own errors as one line."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo() as repo:
            yield repo
    except DvcException as err:
        raise PipelineError(f"dvc: {str(err).splitlines()[0]}") from None


def run(plan: dict[str, Any], jobs: int) -> None:
    """Queue the candidates that have not run on this commit, then run the queue and wait. One
    process and one Repo for all of it: each `dvc exp run --queue` started alone costs DVC's
    start-up again (about 3 s a candidate here)."""
    known = experiments()
    with dvc_repo() as repo:
        queued = 0
        for candidate in plan["candidates"]:
            name = candidate["name"]
            state = known.get(name, {}).get("State")
            if state == "Success":
                print(f"tune: {name} already ran on this commit")
                continue
            if state is not None:
                repo.experiments.remove(exp_names=[name], queue=state == "Queued")
            settings = overrides(plan, candidate)
            repo.experiments.run(targets=[STAGE], params=settings, queue=True, name=name)
            queued += 1
        if queued:
            print(f"tune: running {queued} experiments, {jobs} at a time")
            os.environ.update(ONE_THREAD)  # the queue's workers start from this process
            repo.experiments.run(run_all=True, jobs=jobs)


def run_one(plan: dict[str, Any], name: str, out: Path) -> None:
    """One candidate in this workspace (tune.yml's trial job, one runner a candidate): its
    params set as the queue sets them, the stage run, its results copied to `out`."""
    chosen = [c for c in plan["candidates"] if c["name"] == name]
    if not chosen:
        raise PipelineError(f"{name}: not a candidate of the plan")
    with dvc_repo() as repo:
        repo.experiments.run(targets=[STAGE], params=overrides(plan, chosen[0]), name=name)
    out.mkdir(parents=True, exist_ok=True)
    for result in ("cv.json", "oof.csv"):
        (out / result).write_bytes((Path("tune") / result).read_bytes())
    print(f"tune: {name} -> {out}")


def _candidate(name: str, cv: dict[str, Any], table: pd.DataFrame) -> Candidate:
    probabilities = any(c.startswith(PROBABILITY_PREFIX) for c in table.columns)
    kind = "confusion" if probabilities else "predictions"
    return Candidate(name, cv, rows_from_plots({kind: table}, None))


def results(plan: dict[str, Any], folder: Path) -> list[Candidate]:
    """Each planned candidate's results from `folder`/<name>/ (tune.yml's trial artifacts)."""
    found = []
    for planned in plan["candidates"]:
        name, cv = planned["name"], {"hyperparameters": planned["hyperparameters"]}
        where = folder / name
        if not (where / "cv.json").exists() or not (where / "oof.csv").exists():
            found.append(Candidate(name, cv, error="no result: its trial job failed"))
            continue
        found.append(
            _candidate(
                name, json.loads((where / "cv.json").read_text()), pd.read_csv(where / "oof.csv")
            )
        )
    return found


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
        found.append(_candidate(name, cv, table))
    return found


def board_of(plan: dict[str, Any], found: list[Candidate]) -> Board:
    try:
        return rank(found, METRICS[plan["metric"]], plan["current"])
    except ValueError:
        raise PipelineError("no candidate ran: see dvc queue logs <name>") from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "leaderboard", "trial"):
        command = commands.add_parser(name)
        command.add_argument("--plan", type=Path, default=Path("tune/plan.json"))
        command.add_argument("--jobs", type=int, default=2)
        command.add_argument("--out-dir", type=Path, default=Path("tune"))
        command.add_argument("--name", help="trial: the candidate to run here")
        command.add_argument("--results", type=Path, help="leaderboard: <folder>/<name>/ each")
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
    if args.command == "trial":
        run_one(plan, args.name, args.out_dir / args.name)
        return
    if args.command == "run":
        run(plan, args.jobs)
    found = results(plan, args.results) if args.results else candidates(plan)
    board = board_of(plan, found)
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
