"""The command line: settings from flags and the environment, the model loaded, uvicorn started."""

import sys
from typing import Any

from . import __doc__ as package_doc
from .app import App
from .http import guarded_protocol
from .metrics import PredictionLog
from .model import ModelLoadError, ServedModel
from .settings import Limits, limits_from, parse


def main(argv: list[str] | None = None) -> None:
    args = parse(argv, (package_doc or "").split("\n\n")[0])
    limits = limits_from(args)
    try:
        model = ServedModel.load(args.model, args.name, args.threads, args.model_version)
    except ModelLoadError as err:
        sys.exit(f"serve: {err}")
    if not 0 <= args.prediction_log_sample <= 1:
        sys.exit("serve: PREDICTION_LOG_SAMPLE must be between 0 and 1")
    try:
        log = (
            PredictionLog(args.prediction_log, args.prediction_log_sample, model.version)
            if args.prediction_log
            else None
        )
    except OSError as err:
        sys.exit(f"serve: cannot write the prediction log {args.prediction_log}: {err.strerror}")
    import uvicorn  # only the server process needs it, not the tests that build an App

    build = f"build {model.build}, " if model.build != model.version else ""
    print(
        f"serve: {model.name} {model.version} ({build}{model.task}, sha256 {model.sha256[:12]}) "
        f"on http://{args.host}:{args.port}",
        flush=True,
    )
    uvicorn.run(App(model, limits, log), host=args.host, port=args.port, **uvicorn_options(limits))


def uvicorn_options(limits: Limits) -> dict[str, Any]:
    """How uvicorn runs the app, here and in the tests that start a real server."""
    return {
        # httptools, with deadlines, a header limit and MAX_CONNECTIONS (not uvicorn's
        # limit_concurrency: its 503 is plain text, and connections that send nothing held it)
        "http": guarded_protocol(limits),
        "loop": "auto",  # uvloop where installed
        "ws": "none",
        "lifespan": "on",
        "access_log": False,
        "log_level": "warning",
        "server_header": False,
        "timeout_keep_alive": limits.keep_alive_timeout,
    }
