"""Every bound on a request's work, each a command-line flag and an environment variable.

The defaults keep the worst case inside the Deployment's memory limit (512Mi): the arithmetic is in
the template's docs/serving.md ("Limits and the memory they allow"). A bad value, from a flag or
from the environment, stops the server with one line naming both, e.g. "MAX_BODY_BYTES
(--max-body-bytes): invalid int value: '2MiB'".
"""

import argparse
import math
import os
import re
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NoReturn

KiB, MiB = 1024, 1024 * 1024
DEFAULT_MODEL = Path("models/model.onnx")
# The Dockerfile and `make serve` name the model after the project (MODEL_NAME).
DEFAULT_NAME = "model"
# What MODEL_VERSION may hold: it is a path segment (/versions/<version>) and a metrics label.
VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z._+-]{0,127}")
# What MODEL_NAME may hold: a path segment (/v2/models/<name>) too.
NAME = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]{0,127}")


@dataclass(frozen=True)
class Limits:
    """What one request may cost; `App` and the HTTP protocol read these."""

    max_batch_rows: int = 1000
    max_body_bytes: int = 2 * MiB
    # Refused before the model runs: the answer's size is known from the rows and the outputs.
    max_response_bytes: int = 4 * MiB
    # Bodies, rows decoded while they wait for the model and answers held at once, all requests
    # together; past it, 503 (413 for one request that alone passes it).
    max_buffered_bytes: int = 128 * MiB
    max_header_bytes: int = 16 * KiB
    header_timeout: float = 10.0
    body_timeout: float = 15.0
    request_timeout: float = 10.0
    keep_alive_timeout: float = 5.0
    max_connections: int = 256
    # Batches up to this many rows run on the event loop: a thread hand-off costs more than they do.
    inline_rows: int = 64
    # Small requests waiting at once run as one model call of up to this many rows (batching.py);
    # 0 or 1: each request alone. The loop runs that call itself: 256 rows of the default model
    # take about 0.9 ms (64 rows: 0.24 ms), a pause health checks do not notice.
    coalesce_rows: int = 256


# (field, environment variable, what it bounds): the flag is the field with dashes.
SETTINGS = (
    ("max_batch_rows", "MAX_BATCH_ROWS", "rows in one request (413 above)"),
    ("max_body_bytes", "MAX_BODY_BYTES", "request body bytes (413 above)"),
    ("max_response_bytes", "MAX_RESPONSE_BYTES", "response bytes, checked before inference (413)"),
    ("max_buffered_bytes", "MAX_BUFFERED_BYTES", "bodies, decoded rows, answers held (503 above)"),
    ("max_header_bytes", "MAX_HEADER_BYTES", "request line and headers (431 above)"),
    ("header_timeout", "HEADER_TIMEOUT", "seconds to receive a request's headers (408)"),
    ("body_timeout", "BODY_TIMEOUT", "seconds to receive a request's body (408)"),
    ("request_timeout", "REQUEST_TIMEOUT", "seconds to wait for and run the model (503)"),
    ("keep_alive_timeout", "KEEP_ALIVE_TIMEOUT", "seconds an idle connection stays open"),
    ("max_connections", "MAX_CONNECTIONS", "open connections before new requests get 503"),
    ("inline_rows", "INLINE_ROWS", "rows run on the event loop; larger batches in a thread"),
    ("coalesce_rows", "COALESCE_ROWS", "rows of waiting requests run as one batch (0: off)"),
)


class Parser(argparse.ArgumentParser):
    """argparse's parser whose flags default to environment variables, with one-line errors
    naming the variable beside the flag (the image and the Deployment set variables): no usage
    block before them."""

    def __init__(self, **options: Any):
        super().__init__(**options)
        self.variables: dict[str, str] = {}  # flag -> its environment variable

    def option(self, flag: str, variable: str, default: object, **options: Any) -> None:
        """A flag defaulting to its environment variable, then to `default`."""
        self.variables[flag] = variable
        self.add_argument(flag, default=os.environ.get(variable, str(default)), **options)

    def error(self, message: str) -> NoReturn:
        found = re.match(r"argument (--[\w-]+): (.*)", message, re.S)
        if found and found.group(1) in self.variables:
            flag = found.group(1)
            message = f"{self.variables[flag]} ({flag}): {found.group(2)}"
        print(f"{self.prog}: {message}", file=sys.stderr)
        raise SystemExit(2)


def parse(argv: list[str] | None, description: str) -> argparse.Namespace:
    """Flags, each defaulting to its environment variable, then to the built-in value."""
    parser = Parser(prog=f"python -m {__package__}", description=description)
    parser.option("--model", "MODEL_PATH", DEFAULT_MODEL, type=Path)
    parser.option("--name", "MODEL_NAME", DEFAULT_NAME)
    # The version served and reported, when it is not the one stamped in the model file (a release
    # tag's, for an image built before the tag): empty, the model's own.
    parser.option(
        "--model-version",
        "MODEL_VERSION",
        "",
        help="the version served (env MODEL_VERSION, default: the one stamped in the model)",
    )
    parser.option("--host", "HOST", "127.0.0.1")
    parser.option("--port", "PORT", 8080, type=int)
    parser.option("--threads", "ORT_THREADS", 1, type=int)
    parser.option("--prediction-log", "PREDICTION_LOG", "")
    parser.option("--prediction-log-sample", "PREDICTION_LOG_SAMPLE", 1, type=float)
    types = {field.name: field.type for field in fields(Limits)}
    for name, variable, help_text in SETTINGS:
        default = getattr(Limits, name)
        parser.option(
            "--" + name.replace("_", "-"),
            variable,
            default,
            type=types[name],
            help=f"{help_text} (env {variable}, default {default})",
        )
    args = parser.parse_args(argv)
    bad = [
        variable
        for name, variable, _ in SETTINGS
        if not math.isfinite(getattr(args, name))  # nan and inf parse as floats
        or getattr(args, name) < (0 if name in ("inline_rows", "coalesce_rows") else 1e-9)
    ]
    if args.threads < 1:
        bad.insert(0, "ORT_THREADS")
    if bad:
        parser.error(f"{', '.join(bad)} must be positive (and a finite number)")
    if not 1 <= args.port <= 65535:
        parser.error(f"PORT must be 1 to 65535, got {args.port}")
    if not NAME.fullmatch(args.name):
        parser.error(
            f"MODEL_NAME {args.name[:60]!r} is not a model name: up to 128 letters, digits, '.', "
            "'_' or '-', starting with a letter or digit (it is a path segment, /v2/models/<name>)"
        )
    if args.model_version and not VERSION.fullmatch(args.model_version):
        parser.error(
            f"MODEL_VERSION {args.model_version[:60]!r} is not a version: up to 128 letters, "
            "digits, '.', '_', '+' or '-', starting with a letter or digit"
        )
    return args


def limits_from(args: argparse.Namespace) -> Limits:
    return Limits(**{name: getattr(args, name) for name, _, _ in SETTINGS})
