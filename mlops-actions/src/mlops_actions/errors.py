"""Failures the user can fix (bad data, bad params, a model that does not convert)."""

import sys
from collections.abc import Callable


class PipelineError(Exception):
    """Reported as one line naming the problem, not as a traceback."""


def run_stage(name: str, main: Callable[[], None]) -> None:
    try:
        main()
    except PipelineError as err:
        sys.exit(f"{name}: {err}")
