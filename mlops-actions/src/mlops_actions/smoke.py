"""Smoke-test a running server against a release's golden file: is it the released model, and does
it answer as the release said it would?

  python -m mlops_actions.smoke URL --golden FILE [--version 1.2.0]

In order, each check stopping the run with one line that says what differed:
  1. GET /v2/health/ready answers 200 (retried for --wait seconds while the server starts);
  2. GET /v2/models/<name> names the model file's sha256 (its identity), then the version: the
     golden file's (the version stamped in model.onnx, its build), or --version when the server
     is told to name another (production: a release tag's, set by MODEL_VERSION);
  3. POST /predict on the golden rows answers the golden predictions: the same labels, and
     probabilities or values within the release's parity tolerance (atol + rtol * |golden|);
  4. GET /metrics: the share of requests answered 5xx is at most --max-error-rate.

`make release-assets` writes the golden file (release.py, `smoke.json`): rows of the test split and
what the released model.onnx predicts for them. Standard library only, so it runs on a bare
runner, next to `kubectl port-forward` or against a Cloud Run URL (SMOKE_BEARER_TOKEN, when set,
is sent as the bearer token).
"""

import argparse
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

# http_requests_total{method="GET",route="/v2/models/{name}",status="503"} 2.0, labels in any order
# (a route template holds braces of its own).
REQUESTS = re.compile(r"^http_requests_total\{(?P<labels>.*)\}\s+(?P<count>[0-9.eE+]+)$")
STATUS = re.compile(r'status="(\d{3})"')


class SmokeFailure(Exception):
    """What differed, in one line."""


def call(url: str, body: Any = None, timeout: float = 10) -> tuple[int, bytes]:
    """(status, body) of one request; HTTP errors are answers, not exceptions."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if os.environ.get("SMOKE_BEARER_TOKEN"):
        headers["Authorization"] = f"Bearer {os.environ['SMOKE_BEARER_TOKEN']}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def wait_ready(base: str, wait: float) -> None:
    deadline = time.monotonic() + wait
    while True:
        try:
            status, _ = call(f"{base}/v2/health/ready", timeout=5)
            problem = f"/v2/health/ready answered {status}"
            if status == 200:
                return
        except OSError as err:  # refused while the server (or a port-forward) starts
            problem = f"no answer on /v2/health/ready ({getattr(err, 'reason', err)})"
        if time.monotonic() >= deadline:
            raise SmokeFailure(f"{problem} after {wait:g} s")
        time.sleep(0.5)


def json_of(base: str, path: str, body: Any = None) -> Any:
    status, content = call(f"{base}{path}", body)
    if status != 200:
        raise SmokeFailure(f"{path} answered {status}: {content[:200].decode(errors='replace')}")
    try:
        return json.loads(content)
    except ValueError:
        raise SmokeFailure(f"{path} answered 200 with a body that is not JSON") from None


def check_model(base: str, model: dict[str, str], version: str) -> None:
    """The release's model file (sha256), named by `version`: the file's build or the tag's."""
    metadata = json_of(base, f"/v2/models/{model['name']}")
    versions = [str(name) for name in metadata.get("versions") or []]
    parameters = metadata.get("parameters") or {}
    served = parameters.get("sha256")
    if served != model["sha256"]:
        same = " under the same version" if version in versions else ""
        raise SmokeFailure(
            f"the served model file's sha256 is {str(served)[:12]}…, the release's model.onnx "
            f"is {model['sha256'][:12]}…: a different model{same}"
        )
    if version in versions:
        return
    # The same file, so the server names another version only by MODEL_VERSION, or without it.
    build = model["version"]
    if version != build and build in versions:
        raise SmokeFailure(
            f"the server names its model file's own version {build}, not the release's "
            f"{version}: MODEL_VERSION={version} did not reach it"
        )
    if version == build == parameters.get("build"):
        raise SmokeFailure(
            f"the server names version {', '.join(versions)} (MODEL_VERSION) over its model "
            f"file's own {build}, which the release expects"
        )
    raise SmokeFailure(
        f"the served model's version is {', '.join(versions) or 'missing'}, the release's is "
        f"{version}"
    )


def differs(got: Any, expected: float, tolerance: dict[str, float]) -> bool:
    if not isinstance(got, int | float) or isinstance(got, bool):
        return True
    return abs(got - expected) > tolerance["atol"] + tolerance["rtol"] * abs(expected)


def compare(row: int, got: dict, expected: dict, tolerance: dict[str, float]) -> None:
    """One prediction against its golden twin: labels equal, numbers within the tolerance."""
    allowed = f"tolerance {tolerance['atol']:g} + {tolerance['rtol']:g} × |golden|"
    if "value" in expected:
        if differs(got.get("value"), expected["value"], tolerance):
            raise SmokeFailure(
                f"row {row}: predicted {got.get('value')!r}, golden {expected['value']!r} "
                f"({allowed})"
            )
        return
    if got.get("label") != expected["label"]:
        raise SmokeFailure(
            f"row {row}: predicted label {got.get('label')!r}, golden {expected['label']!r}"
        )
    probabilities = got.get("probabilities") or {}
    for label, probability in expected["probabilities"].items():
        if differs(probabilities.get(label), probability, tolerance):
            raise SmokeFailure(
                f"row {row}: probability of {label!r} is {probabilities.get(label)!r}, golden "
                f"{probability!r} ({allowed})"
            )


def check_predictions(base: str, golden: dict) -> int:
    answer = json_of(base, "/predict", {"records": golden["records"]})
    predictions = answer.get("predictions") if isinstance(answer, dict) else None
    expected = golden["predictions"]
    if not isinstance(predictions, list) or len(predictions) != len(expected):
        count = len(predictions) if isinstance(predictions, list) else "no"
        raise SmokeFailure(f"/predict answered {count} predictions for {len(expected)} rows")
    for row, (got, want) in enumerate(zip(predictions, expected, strict=True)):
        compare(row, got if isinstance(got, dict) else {}, want, golden["tolerance"])
    return len(expected)


def error_rate(metrics_text: str) -> tuple[int, int]:
    """(requests answered 5xx, all requests) from the server's Prometheus text."""
    errors = total = 0
    for line in metrics_text.splitlines():
        if match := REQUESTS.match(line.strip()):
            count = int(float(match["count"]))
            total += count
            status = STATUS.search(match["labels"])
            errors += count if status and status[1].startswith("5") else 0
    return errors, total


def check_errors(base: str, max_rate: float) -> str:
    status, content = call(f"{base}/metrics")
    if status != 200:
        raise SmokeFailure(f"/metrics answered {status}")
    errors, total = error_rate(content.decode(errors="replace"))
    if total == 0:
        raise SmokeFailure("/metrics counts no http_requests_total: not this project's server?")
    if errors > max_rate * total:
        raise SmokeFailure(
            f"{errors} of {total} requests ({errors / total:.1%}) answered 5xx, above the "
            f"allowed {max_rate:.1%} (/metrics)"
        )
    return f"{errors} of {total} requests answered 5xx"


def load_golden(path: Path) -> dict:
    try:
        golden = json.loads(path.read_text())
        _ = golden["model"]["name"], golden["model"]["version"], golden["model"]["sha256"]
        _ = golden["records"], golden["predictions"], golden["tolerance"]["atol"]
    except FileNotFoundError:
        raise SmokeFailure(
            f"no golden file {path}: `make release-assets` writes dist/smoke.json, and every "
            "release ships one"
        ) from None
    except (ValueError, KeyError, TypeError) as err:
        raise SmokeFailure(f"{path} is not a golden file of release.py ({err!r})") from None
    return golden


def smoke(
    base: str, golden_path: Path, wait: float, max_error_rate: float, version: str = ""
) -> str:
    golden = load_golden(golden_path)
    model = golden["model"]
    version = version or model["version"]
    wait_ready(base, wait)
    check_model(base, model, version)
    rows = check_predictions(base, golden)
    errors = check_errors(base, max_error_rate)
    build = f"build {model['version']}, " if version != model["version"] else ""
    return (
        f"serves {model['name']} {version} ({build}sha256 {model['sha256'][:12]}…): ready, "
        f"metadata and {rows} golden rows match; {errors}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the server's base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--golden", type=Path, default=Path("dist/smoke.json"))
    parser.add_argument("--wait", type=float, default=60, help="seconds to wait for ready")
    parser.add_argument("--max-error-rate", type=float, default=0.01)
    parser.add_argument(
        "--version", default="",
        help="the version the server must name (default: the golden file's, its model's build)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    base = args.url.rstrip("/")
    try:
        outcome = smoke(base, args.golden, args.wait, args.max_error_rate, args.version)
        print(f"smoke: {base} {outcome}")
    except SmokeFailure as failure:
        print(f"smoke: {base}: {failure}", file=sys.stderr)
        return 1
    except OSError as err:  # the server went away mid-check
        print(f"smoke: {base}: no answer ({getattr(err, 'reason', err)})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
