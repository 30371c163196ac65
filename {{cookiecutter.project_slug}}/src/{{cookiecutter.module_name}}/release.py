"""Release files for a tag: the model stamped with its version, a model card, metrics, checksums.

  release check v1.2.0                  is the tag semver? (standard library only)
  release build --tag v1.2.0 --out dist  model.onnx, model-card.md, metrics.json
  release checksums dist                 SHA256SUMS, in `sha256sum -c` format
  release promote --latest <metrics.json>  refuse a model worse than the latest release's

`make release-assets` runs all three plus the SBOM; .github/workflows/release.yml runs that target.
The tag is the model version: it goes into the ONNX metadata, the model card and the image labels.
"""

import argparse
import hashlib
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import PipelineError, run_stage

if TYPE_CHECKING:  # the tag check runs before the pipeline's packages are installed
    from .schema import Schema

# vMAJOR.MINOR.PATCH with an optional pre-release (semver.org); no build metadata, because a
# container tag cannot hold "+".
SEMVER_TAG = re.compile(
    r"v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
)
MODEL = Path("models/model.onnx")
CHECKSUMS = "SHA256SUMS"
PROJECT = "{{ cookiecutter.project_name }}"  # fmt: skip
DESCRIPTION = "{{ cookiecutter.description }}"  # fmt: skip
IMAGE = "ghcr.io/{{ cookiecutter.github_owner | lower }}/{{ cookiecutter.project_slug }}"  # fmt: skip
PREDICT_BODY = '{"records": [{"<feature>": <value>, ...}]}'


def version_of(tag: str) -> str:
    """The model version a release tag names ("v1.2.0-rc.1" -> "1.2.0-rc.1")."""
    if not SEMVER_TAG.fullmatch(tag):
        raise PipelineError(
            f"tag {tag[:60]!r} is not a release tag: use vMAJOR.MINOR.PATCH, "
            "optionally with a pre-release such as v1.2.0-rc.1"
        )
    return tag[1:]


def stamp(model: bytes, version: str, git_sha: str) -> bytes:
    """The same model with the release's version and commit in its metadata."""
    import onnx

    proto = onnx.load_from_string(model)
    props = {prop.key: prop.value for prop in proto.metadata_props}
    props.update(model_version=version, git_sha=git_sha)
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, props)
    return proto.SerializeToString()


def check_parity(model: bytes, schema: "Schema", tolerance: dict[str, float]) -> dict[str, Any]:
    """Re-run the export stage's parity check on the file being released."""
    import joblib
    import onnxruntime as ort

    from .features import model_inputs
    from .schema import load_frame
    from .stages.export import parity

    fitted = joblib.load("models/model.joblib")
    inputs = model_inputs(load_frame(Path("data/prepared/test.csv"), schema), schema)
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    result = parity(
        session, fitted, inputs, schema.is_classification, tolerance["atol"], tolerance["rtol"]
    )
    if not result["passed"]:
        raise PipelineError(
            f"ONNX differs from scikit-learn by up to {result['max_abs_diff']:.3g}: not released"
        )
    return result


def model_card(facts: dict[str, Any], schema: "Schema") -> str:
    train = facts["params"]["train"]
    scores = "\n".join(f"| {name} | {value:.4f} |" for name, value in facts["scores"].items())
    features = "\n".join(f"| `{name}` | {kind} |" for name, kind in schema.features.items())
    hyperparameters = ", ".join(f"`{k}={v}`" for k, v in train.get("hyperparameters", {}).items())
    onnx_check = facts["onnx"]
    parity = f"max abs diff {onnx_check['max_abs_diff']:.3g} on {onnx_check['rows']} test rows"
    labels = ", ".join(f"`{label}`" for label in schema.labels) if schema.labels else "—"
    return f"""# Model card: {PROJECT} {facts["version"]}

{DESCRIPTION}

| | |
| --- | --- |
| version | `{facts["version"]}` (commit `{facts["git_sha"][:12]}`) |
| task | {schema.task.replace("_", " ")} of `{schema.target}` |
| labels | {labels} |
| model | `{train["model"]}` (scikit-learn), {hyperparameters or "default hyperparameters"} |
| data version | `{facts["data_version"]}` (DVC hash of `data/raw/dataset.csv`, first 8) |
| training / test rows | {facts["data"].get("train", "?")} / {facts["data"].get("test", "?")} |
| ONNX parity | {parity} |

## Metrics (test split)

| metric | value |
| --- | --- |
{scores}

## Inputs

| feature | kind |
| --- | --- |
{features}

## Intended use

<!-- Owner: who should use this model, for what decisions, and who should not. -->
{DESCRIPTION}

## Limitations

<!-- Owner: known failure modes, populations or ranges the data does not cover, fairness checks. -->
To be completed by the model owner before relying on this release.

## Serving

`docker run -p 8080:8080 {IMAGE}:{facts["version"]}`: Open Inference Protocol v2 on `/v2/...`,
`POST /predict` with `{PREDICT_BODY}`, Prometheus metrics on `/metrics`.
Files of this release are listed with their SHA-256 in `SHA256SUMS`.
"""


def build(tag: str, out: Path) -> None:
    version = version_of(tag)
    import yaml

    from .params import load_params
    from .report import data_version
    from .schema import load_schema
    from .stages.export import git_sha as commit

    git_sha = commit()
    try:
        released = stamp(MODEL.read_bytes(), version, git_sha)
    except FileNotFoundError:
        raise PipelineError(f"{MODEL} is missing: run `make pull` or `make repro` first") from None
    params = load_params()
    schema = load_schema(Path("data/schema.yaml"))
    onnx_check = check_parity(released, schema, params["export"])

    facts = {
        "version": version,
        "git_sha": git_sha,
        "data_version": data_version(yaml.safe_load(Path("dvc.lock").read_text())) or "unknown",
        "scores": json.loads(Path("metrics/scores.json").read_text()),
        "data": json.loads(Path("metrics/data.json").read_text()),
        "onnx": onnx_check,
        "params": params,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.onnx").write_bytes(released)
    (out / "metrics.json").write_text(json.dumps(facts, indent=2, sort_keys=True) + "\n")
    (out / "model-card.md").write_text(model_card(facts, schema))
    print(f"release: {version} -> {out}/ (model.onnx, model-card.md, metrics.json)")


def promote(candidate: Path, latest: Path, allow_worse: bool) -> str:
    """The promotion rule: not worse than the latest (deployed) release on the primary metric,
    beyond the allowed drop of params.yaml `report.gate` (the PR gate's rule), unless allowed."""
    from .params import load_params
    from .report import Results, gate_from_params, verdict

    new, old = (json.loads(path.read_text()) for path in (candidate, latest))
    result = verdict(
        gate_from_params(load_params()),
        Results(f"v{old.get('version')}", scores=old.get("scores", {})),
        Results(f"v{new['version']}", scores=new["scores"]),
    )
    summary = f"v{new['version']} against the latest release v{old.get('version')}: {result.text}"
    if result.passed:
        return f"release: promotion: {summary}"
    if allow_worse:
        return f"release: promotion: {summary}; released anyway (allow-worse)"
    raise PipelineError(
        f"{summary}. To release it anyway, run release.yml by hand on tag v{new['version']} "
        "with allow-worse"
    )


def checksums(folder: Path) -> None:
    lines = [
        f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}"
        for path in sorted(folder.iterdir())
        if path.is_file() and path.name != CHECKSUMS
    ]
    (folder / CHECKSUMS).write_text("\n".join(lines) + "\n")
    print(f"release: {CHECKSUMS} of {len(lines)} files")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="print the version a tag names, or refuse it")
    check.add_argument("tag")
    build_command = commands.add_parser("build", help="write the release files")
    build_command.add_argument("--tag", required=True)
    build_command.add_argument("--out", type=Path, default=Path("dist"))
    sums = commands.add_parser("checksums", help="write SHA256SUMS for a folder")
    sums.add_argument("folder", type=Path)
    rule = commands.add_parser("promote", help="compare with the latest release's metrics.json")
    rule.add_argument("--latest", type=Path, required=True)
    rule.add_argument("--candidate", type=Path, default=Path("dist/metrics.json"))
    rule.add_argument("--allow-worse", action="store_true")
    args = parser.parse_args()
    if args.command == "check":
        version = version_of(args.tag)
        if os.environ.get("GITHUB_OUTPUT"):
            with open(os.environ["GITHUB_OUTPUT"], "a") as output:
                prerelease = "true" if "-" in version else "false"
                output.write(f"version={version}\nprerelease={prerelease}\n")
        print(version)
    elif args.command == "build":
        build(args.tag, args.out)
    elif args.command == "promote":
        print(promote(args.candidate, args.latest, args.allow_worse))
    else:
        checksums(args.folder)


if __name__ == "__main__":
    run_stage("release", main)
