"""`python -m mlops_actions.tune leaderboard|apply`, and the search of `make tune` (stage.py's
`search`): the candidates of tune/plan.json scored in one process, each recorded as a DVC
experiment of the current commit.

Why not DVC's queue: `dvc exp run --queue` + `--run-all --jobs N` runs each experiment in its own
temporary copy of the repository (a git clone and checkout), with a new Python process for its
stage that imports scikit-learn and DVC again, and DVC's bookkeeping around it; an idle queue
worker may wait up to 10 s before it exits (https://dvc.org/doc/command-reference/exp/run,
https://dvc.org/doc/command-reference/queue/start). Measured on the default bake: 8 candidates,
2.2 s of fitting each, took 124 s one at a time, 6.9 times the same fits in one process, about
13 s an experiment. So the trials run here, in a pool of forked workers (pool.py) that share the
loaded code and train rows, and each result is recorded as `dvc exp run` records one, "dvc repro
followed by dvc exp save" (exp/run above): params.yaml set by DVC's own override code (what
`-S` uses), tune/cv.json and tune/oof.csv written, tune/dvc.yaml's stage committed into
tune/dvc.lock as `dvc commit` does (stage.save, commit, dump), and the workspace saved as
`dvc exp save` saves it (https://dvc.org/doc/command-reference/exp/save): a commit whose parent
is HEAD under the experiment's ref, "custom Git references (found in .git/refs/exps) with one or
more commits based on HEAD" (https://dvc.org/doc/user-guide/experiment-management), named by
DVC's own ExpRefInfo. The commit is made through a copy of git's index, so HEAD, the index and
the workspace are never switched: 0.2 to 0.5 s a candidate here, where `Repo.experiments.save`
took 1.4 to 2.3 s (a stash, a detached HEAD, and the whole project's index rebuilt twice), most
of the time `make tune` still added with it. `dvc exp show` lists the result with its params
and metrics and `dvc exp apply` brings it back (https://dvc.org/doc/command-reference/exp/apply),
as a queued one. Each result is recorded in this process while the workers run the next trials.
The workspace (params.yaml and tune/) is put back as it was when the search ends, also when a
trial raises or on Ctrl-C.

A candidate that already has an experiment on this commit (same name: same hyperparameters) is
not run again. Only the train rows are read (tune/dvc.yaml's deps); data/prepared must be up to
date with dvc.lock (`make repro` or `make pull`), since the trials no longer reproduce it.
"""

import argparse
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import PipelineError
from ..metrics import METRICS
from ..report.intervals import PROBABILITY_PREFIX, rows_from_plots
from . import pool
from .leaderboard import Board, Candidate, as_json, markdown, rank
from .pool import Work
from .trial import write

STAGE = "tune/dvc.yaml:trial"
PREPARE = "dvc.yaml:prepare"  # the stage that writes the train rows the trials read
PARAMS = Path("params.yaml")
TUNE = Path("tune")
RECORDED = [TUNE / "cv.json", TUNE / "oof.csv", TUNE / "dvc.lock"]  # with params.yaml


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


def _exp_names(repo: Any) -> dict[str, str]:
    """This commit's experiments: name -> commit."""
    listed = repo.experiments.ls()
    return {name: sha for runs in listed.values() for name, sha in runs if sha}


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


@contextmanager
def kept(paths: list[Path]) -> Iterator[None]:
    """`paths` as they were (or absent) when the block ends, whatever ends it."""
    before = {path: path.read_bytes() if path.exists() else None for path in paths}
    try:
        yield
    finally:
        for path, content in before.items():
            if content is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(content)


def check_prepared(repo: Any) -> None:
    """The trials read data/prepared/train.csv as it is: refuse a stale one."""
    if repo.status(targets=[PREPARE]):
        raise PipelineError(
            "data/prepared is not what dvc.lock says: run make repro (or make pull) first"
        )


def _git(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(["git", *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        said = done.stderr.strip().splitlines() or ["failed"]
        raise PipelineError(f"git {args[0]}: {said[-1]}")
    return done.stdout.strip()


def save_experiment(name: str, paths: list[Path]) -> str:
    """The workspace saved as experiment `name` of HEAD as `dvc exp save` saves it (git's tracked
    changes and `paths` in a commit whose parent is HEAD, under DVC's ref for the experiment),
    through a copy of git's index: HEAD, the index and the workspace stay as they are."""
    from dvc.repo.experiments.refs import ExpRefInfo

    baseline = _git("rev-parse", "HEAD")
    with tempfile.TemporaryDirectory() as scratch:
        index = Path(scratch) / "index"
        shutil.copyfile(_git("rev-parse", "--git-path", "index"), index)
        env = {**os.environ, "GIT_INDEX_FILE": str(index)}
        _git("add", "--update", env=env)
        _git("add", "--force", "--", *map(str, paths), env=env)
        tree = _git("write-tree", env=env)
    commit = _git("commit-tree", tree, "-p", baseline, "-m", f"dvc: commit experiment {name}")
    _git("update-ref", str(ExpRefInfo(baseline, name)), commit)
    return commit


@contextmanager
def _quiet(logger: str) -> Iterator[None]:
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.WARNING)  # not DVC's "Updating lock file" for each candidate
    try:
        yield
    finally:
        log.setLevel(level)


def record(stage: Any, plan: dict[str, Any], candidate: dict[str, Any], result: Any) -> None:
    """`candidate`'s result saved as an experiment of this commit: params.yaml set to it (from
    the workspace's own, which `kept` holds) by DVC's override code, its results in tune/,
    tune/dvc.yaml's `stage` committed into tune/dvc.lock as `dvc commit` does, and saved."""
    from dvc.utils.hydra import apply_overrides

    settings = overrides(plan, candidate)
    if settings:
        apply_overrides(PARAMS, settings)
    write(TUNE, *result)
    with _quiet("dvc"), stage.repo.lock:
        stage.save()
        stage.commit()
        stage.dvcfile.dump_stages([stage], update_pipeline=False)
    save_experiment(candidate["name"], [PARAMS, *RECORDED])


def search(plan: dict[str, Any], jobs: int, work: Work) -> list[Candidate]:
    """Each candidate of `plan` scored by `work` in `jobs` workers (unless it already ran on this
    commit) and saved as an experiment; the workspace as it was afterwards. Returns the
    candidates' results in the plan's order, a failed one with its error."""
    with dvc_repo() as repo:
        check_prepared(repo)
        done = _exp_names(repo)
    todo = []
    for candidate in plan["candidates"]:
        if candidate["name"] in done:
            print(f"tune: {candidate['name']} already ran on this commit")
        else:
            todo.append(candidate)
    found: dict[str, Candidate] = {}
    if todo:
        print(f"tune: running {len(todo)} candidates, {jobs} at a time")
        original = PARAMS.read_bytes()
        with kept([PARAMS, *RECORDED]), ExitStack() as opened:
            stage = None
            for candidate, result, error in pool.trials(work, todo, jobs):
                name = candidate["name"]
                if error is not None:
                    found[name] = Candidate(name, _planned(candidate), error=f"failed: {error}")
                    print(f"tune: {name} failed: {error}", file=sys.stderr, flush=True)
                    continue
                if stage is None:
                    stage = opened.enter_context(dvc_repo()).stage.collect(STAGE)[0]
                PARAMS.write_bytes(original)
                record(stage, plan, candidate, result)
                found[name] = _candidate(name, *result)
                print(f"tune: {name} saved ({len(found)} of {len(todo)})", flush=True)
    if len(found) < len(plan["candidates"]):
        found = {**saved(plan, exclude=found), **found}
    return [found[candidate["name"]] for candidate in plan["candidates"]]


def run_one(plan: dict[str, Any], name: str, work: Work, out: Path) -> None:
    """One candidate here, without an experiment (tune.yml's trial job, one runner a
    candidate): its results into `out` (cv.json, oof.csv)."""
    chosen = [c for c in plan["candidates"] if c["name"] == name]
    if not chosen:
        raise PipelineError(f"{name}: not a candidate of the plan")
    write(out, *work(chosen[0]))
    print(f"tune: {name} -> {out}")


def _planned(candidate: dict[str, Any]) -> dict[str, Any]:
    return {"hyperparameters": candidate["hyperparameters"]}


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


def saved(plan: dict[str, Any], exclude: Any = ()) -> dict[str, Candidate]:
    """The planned candidates' results (but `exclude`'s), read from their experiments on this
    commit; one without an experiment as not run."""
    found = {}
    with dvc_repo() as repo:
        known = _exp_names(repo)
        for planned in plan["candidates"]:
            name = planned["name"]
            if name in exclude:
                continue
            if name not in known:
                error = "no experiment on this commit: it failed or did not run (make tune)"
                found[name] = Candidate(name, _planned(planned), error=error)
                continue
            files = repo.scm.get_fs(known[name])
            cv = json.loads(files.read_text(str(TUNE / "cv.json")))
            table = pd.read_csv(io.StringIO(files.read_text(str(TUNE / "oof.csv"))))
            found[name] = _candidate(name, cv, table)
    return found


def board_of(plan: dict[str, Any], found: list[Candidate]) -> Board:
    try:
        return rank(found, METRICS[plan["metric"]], plan["current"])
    except ValueError:
        raise PipelineError("no candidate ran: see each one's error above") from None


def write_board(plan: dict[str, Any], found: list[Candidate], out_dir: Path) -> None:
    """tune/leaderboard.md and .json, and the choice in one line."""
    board = board_of(plan, found)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "leaderboard.md").write_text(markdown(board))
    (out_dir / "leaderboard.json").write_text(json.dumps(as_json(board), indent=2) + "\n")
    failed = sum(1 for c in board.candidates if c.error)
    print(
        f"tune: chosen {board.chosen} (best {board.best}) of {len(board.candidates)} candidates"
        + (f", {failed} failed" if failed else "")
        + f" -> {out_dir / 'leaderboard.md'}; make tune-apply applies it"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    ranking = commands.add_parser("leaderboard")
    ranking.add_argument("--plan", type=Path, default=TUNE / "plan.json")
    ranking.add_argument("--out-dir", type=Path, default=TUNE)
    ranking.add_argument("--results", type=Path, help="tune-trial results: <folder>/<name>/ each")
    applying = commands.add_parser("apply")
    applying.add_argument("--exp", help="default: the leaderboard's choice")
    applying.add_argument("--leaderboard", type=Path, default=TUNE / "leaderboard.json")
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
    if args.results:
        found = results(plan, args.results)
    else:
        candidates = saved(plan)
        found = [candidates[c["name"]] for c in plan["candidates"]]
    write_board(plan, found, args.out_dir)


def cli() -> None:
    try:
        main()
    except PipelineError as err:
        sys.exit(f"tune: {err}")
