"""Regenerate the example PR reports in docs/examples/ from real bakes (never edited by hand).

For each example: bake, `make setup` (its first commit on main is the base), change one param on a
branch and commit it as a PR would, `make repro`, then `make report BASE=main` with the gate
reporting only. The first example also gives getting-started its outputs (docs/snippets/): the
metrics after `make setup`, and the release files, model card and checksums of
`make release-assets TAG=v1.0.0`. A third bake (iris: four features, three labels) serves its
model with `make serve` and records real requests and responses for the serving page
(docs/snippets/api.md).
"""

import csv
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path

from snippets import SNIPPETS, bake

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build/examples"
VENV = Path(sys.prefix)
EXAMPLES = {
    "report-binary-classification.md": (
        {"project_name": "Tumour Classifier", "task": "binary_classification"},
        ("learning_rate: 0.1", "learning_rate: 0.05"),
    ),
    "report-regression.md": (
        {"project_name": "Progression Forecast", "task": "regression", "model": "random_forest"},
        ("min_samples_leaf: 1", "min_samples_leaf: 5"),
    ),
}
FIRST = next(iter(EXAMPLES))


def make(project: Path, *args: str) -> str:
    env = {**os.environ, "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    command = [
        "make",
        "--no-print-directory",
        *args,
        f"VENV={VENV}",
        f"DVC_REMOTE_DIR={WORK}/remote",
    ]
    done = subprocess.run(command, cwd=project, env=env, check=True, capture_output=True, text=True)
    return done.stdout


def write_metrics_snippet(project: Path) -> None:
    SNIPPETS.mkdir(parents=True, exist_ok=True)
    tables = [
        line for line in make(project, "metrics").splitlines() if line.startswith("|") or not line
    ]
    (SNIPPETS / "metrics.md").write_text("\n".join(tables).strip() + "\n")


def write_release_snippets(project: Path) -> None:
    write_metrics_snippet(project)
    make(project, "release-assets", "TAG=v1.0.0")
    dist = project / "dist"
    files = sorted(dist.iterdir())
    listing = [f"{path.name:<16} {path.stat().st_size:>9,} bytes" for path in files]
    (SNIPPETS / "release-files.txt").write_text("\n".join(listing) + "\n")
    # Shown inside getting-started: its headings go below the page's own.
    card = re.sub(r"^(#+) ", r"\1### ", (dist / "model-card.md").read_text(), flags=re.MULTILINE)
    (SNIPPETS / "model-card.md").write_text(card)
    (SNIPPETS / "SHA256SUMS").write_text((dist / "SHA256SUMS").read_text())
    shutil.rmtree(dist)


def call(base: str, method: str, path: str, body: object = None) -> tuple[int, str, str]:
    """(status, content type, body) of one request; 4xx answers are results, not errors."""
    status, headers, text = call_with_headers(base, method, path, body)
    return status, headers["Content-Type"], text


def call_with_headers(
    base: str, method: str, path: str, body: object = None, content_type: str = "application/json"
) -> tuple[int, Message, str]:
    data = None if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


def compact(value: object) -> str:
    """JSON indented by object, with lists of scalars and small objects kept on one line."""
    text = json.dumps(value, indent=2)
    text = re.sub(
        r"\[\s+([^\[\]{}]*?)\s+\]",
        lambda m: "[" + ", ".join(item.strip() for item in m[1].split(",\n")) + "]",
        text,
    )

    def one_line(match: re.Match) -> str:
        inner = ", ".join(
            line.strip().rstrip(",") for line in match[1].splitlines() if line.strip()
        )
        return "{" + inner + "}" if len(inner) < 90 else match[0]

    return re.sub(r"\{\n([^{}]*?)\n\s*\}", one_line, text)


def exchange(
    base: str,
    method: str,
    path: str,
    body: object = None,
    content_type: str = "application/json",
    show: tuple[str, ...] = (),
) -> list[str]:
    """A request and its answer as markdown: the body sent (JSON, or text when `content_type`
    says so), the status, the headers named in `show`, and the answer."""
    status, headers, text = call_with_headers(base, method, path, body, content_type)
    kind = headers["Content-Type"]
    shown = compact(json.loads(text)) if "json" in kind else text.strip()
    lines = [
        f"`{method} {path}`"
        + (
            ""
            if body is None or "json" in content_type
            else f" with `Content-Type: {content_type}`"
        ),
        "",
    ]
    if body is not None:
        sent = compact(body) if not isinstance(body, bytes) else body.decode()
        lines += ["```" + ("json" if "json" in content_type else "text"), sent, "```", ""]
    answer = f"→ `{status}`" + "".join(f", `{name}: {headers[name]}`" for name in show)
    lines += [answer, "", "```" + ("json" if "json" in kind else "text"), shown, "```", ""]
    return lines


def write_api_snippet(project: Path) -> None:
    """Serve the bake's model.onnx as `make serve` does and record requests and responses."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [
            str(VENV / "bin/python"),
            "-m",
            "mlops_actions.serve",
            "--port",
            str(port),
            "--name",
            project.name,
        ],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if call(base, "GET", "/v2/health/ready")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            sys.exit("the example server did not become ready")
        with open(project / "data/prepared/test.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))[:2]
        name = project.name
        metadata = json.loads(call(base, "GET", f"/v2/models/{name}")[2])
        features = [tensor["name"] for tensor in metadata["inputs"]]
        records = [{feature: float(row[feature]) for feature in features} for row in rows]
        records[1][features[0]] = None  # a gap: imputed as in training
        infer = {
            "inputs": [
                {"name": f, "shape": [1, 1], "datatype": "FP32", "data": [records[0][f]]}
                for f in features
            ]
        }
        lines = [
            f"Recorded from `make serve` on a bake of iris (`{name}`); regenerate with "
            "`make docs`.",
            "",
            "### Open Inference Protocol v2",
            "",
            *exchange(base, "GET", "/v2/health/ready"),
            *exchange(base, "GET", f"/v2/models/{name}"),
            *exchange(base, "POST", f"/v2/models/{name}/infer", infer),
            "### /predict",
            "",
            *exchange(base, "POST", "/predict", {"records": records}),
            "### Bad input: a 4xx that names the problem",
            "",
            *exchange(base, "POST", "/predict", {"records": [{**records[0], "colour": "red"}]}),
            *exchange(base, "POST", "/predict", {"records": [{**records[0], features[1]: "7"}]}),
            *exchange(base, "GET", "/predict", show=("Allow",)),
            *exchange(base, "POST", "/predict", b"records=1", content_type="text/plain"),
        ]
        status, _, metrics = call(base, "GET", "/metrics")
        kept = [
            line
            for line in metrics.splitlines()
            if line.startswith(
                (
                    "model_info",
                    "model_predicted_rows_total",
                    "model_runs_total",
                    "http_requests_total",
                )
            )
        ]
        lines += ["### /metrics (excerpt)", "", f"→ `{status}`", "", "```text", *kept, "```"]
    finally:
        server.terminate()
        server.wait(timeout=30)
    (SNIPPETS / "api.md").write_text("\n".join(lines).rstrip() + "\n")


def git(project: Path, *args: str) -> None:
    identity = ["-c", "user.name=Docs Example", "-c", "user.email=docs@example.com"]
    subprocess.run(["git", *identity, *args], cwd=project, check=True, capture_output=True)


def main() -> None:
    shutil.rmtree(WORK, ignore_errors=True)
    for name, (answers, (old, new)) in EXAMPLES.items():
        project = bake(WORK, **answers)
        make(project, "setup")
        if name == FIRST:
            write_release_snippets(project)
        git(project, "switch", "--quiet", "--create", "tune")
        params = project / "params.yaml"
        params.write_text(params.read_text().replace(old, new))
        git(project, "commit", "--quiet", "--all", "--message", f"Try {new}")
        make(project, "repro")
        make(project, "report", "BASE=main", "GATE=off")
        shutil.copy(project / "report.md", ROOT / "docs/examples" / name)
        print(f"docs/examples/{name}: {old} -> {new}")


def api_example() -> None:
    project = bake(
        WORK,
        project_name="Iris Species",
        task="multiclass_classification",
        dataset="iris",
        model="linear",
    )
    make(project, "setup")
    write_api_snippet(project)
    print("docs/snippets/api.md: requests and responses of a served iris model")


if __name__ == "__main__":
    if sys.argv[1:] == ["--metrics-only"]:  # `make metrics` of the first example alone (fast)
        shutil.rmtree(WORK, ignore_errors=True)
        example = bake(WORK, **EXAMPLES[FIRST][0])
        make(example, "setup")
        write_metrics_snippet(example)
    else:
        main()
        api_example()
