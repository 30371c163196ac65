"""`python -m <module>.report`: write the PR model report (see the package's docstring)."""

import sys

from ..errors import PipelineError
from . import main

if __name__ == "__main__":
    try:
        sys.exit(main())
    except PipelineError as err:  # bad params.yaml or schema: one line, not a traceback
        sys.exit(f"report: {err}")
