"""The trials of `make tune` in one process: a pool of `jobs` forked workers, each one native
thread, that inherit scikit-learn, the project's code and the train rows already loaded, so no
trial pays for a Python start, an import or a read of the data.

Forked, not spawned: a spawned worker would import everything again, and the work (a closure over
the project's own `make_pipeline`) would have to be pickled. The pool is started before anything
runs a native thread pool in this process (OpenMP's is not safe across a fork), and the workers
ignore Ctrl-C: the parent gets it, stops them, and puts the workspace back (experiments.py).
"""

import multiprocessing
import signal
from collections.abc import Callable, Iterator
from typing import Any

from threadpoolctl import threadpool_limits

Work = Callable[[dict[str, Any]], Any]  # a candidate -> its result
_work: Work | None = None  # the forked workers' work: set before the fork, never pickled


def _one_thread() -> None:
    """One native thread (BLAS, OpenMP) in this process: `jobs` of them fill `jobs` cores."""
    threadpool_limits(limits=1)


def _start_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _one_thread()


def _run(candidate: dict[str, Any]) -> tuple[str, Any, str | None]:
    assert _work is not None
    try:
        return candidate["name"], _work(candidate), None
    except Exception as err:  # a candidate that fails is listed as failed, the others still run
        lines = str(err).strip().splitlines()
        return candidate["name"], None, f"{type(err).__name__}: {lines[0] if lines else ''}"


def trials(
    work: Work, candidates: list[dict[str, Any]], jobs: int
) -> Iterator[tuple[dict[str, Any], Any, str | None]]:
    """Each candidate with `work`'s result or its error (one line), as soon as it is ready (not in
    the plan's order): `jobs` workers, so the caller's own work on each result (recording it)
    runs beside the next trials."""
    global _work
    if not candidates:
        return
    by_name = {candidate["name"]: candidate for candidate in candidates}
    _one_thread()
    _work = work
    pool = multiprocessing.get_context("fork").Pool(min(jobs, len(candidates)), _start_worker)
    try:
        for name, result, error in pool.imap_unordered(_run, candidates):
            yield by_name[name], result, error
        pool.close()
    finally:
        pool.terminate()
        pool.join()
        _work = None
