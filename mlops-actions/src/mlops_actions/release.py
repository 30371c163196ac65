"""Release files: the model stamped with its version, a model card, metrics, the smoke test's
golden rows, checksums.

  release check v1.2.0                  is the tag semver? (standard library only)
  release build [--tag v1.2.0] --out dist  model.onnx, model-card.md, metrics.json, smoke.json
  release checksums dist                 SHA256SUMS, in `sha256sum -c` format
  release promote --latest <metrics.json> [--champion-model <model.onnx>]
                                         refuse a model worse than the champion (the latest
                                         release), both scored on this holdout (promotion.py)

`make release-assets` runs all three plus the SBOM. The version goes into the ONNX metadata, the
model card and the image labels. With a deploy target, staging builds the image on main before any
tag exists, and a tag promotes that very image: so the version is the commit's (its first 12 hex
digits), and the release tag names that build: production serves it as the tag's version
(MODEL_VERSION), the commit's staying visible as the model's build. Without one, release.yml
builds at the tag, and the version is the tag's (v1.2.0 -> 1.2.0).
"""

import argparse
import hashlib
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import PipelineError, run_stage
from .project import Project, load_project

if TYPE_CHECKING:  # the tag check runs before the pipeline's packages are installed
    import pandas as pd

    from .schema import Schema

# vMAJOR.MINOR.PATCH with an optional pre-release (semver.org); no build metadata, because a
# container tag cannot hold "+".
SEMVER_TAG = re.compile(
    r"v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
)
MODEL = Path("models/model.onnx")
CHECKSUMS = "SHA256SUMS"
PREDICT_BODY = '{"records": [{"<feature>": <value>, ...}]}'
# Rows of the test split in smoke.json: enough to cross a few branches, small enough to read.
SMOKE_ROWS = 16


def version_of(tag: str) -> str:
    """The model version a release tag names ("v1.2.0-rc.1" -> "1.2.0-rc.1")."""
    if not SEMVER_TAG.fullmatch(tag):
        raise PipelineError(
            f"tag {tag[:60]!r} is not a release tag: use vMAJOR.MINOR.PATCH, "
            "optionally with a pre-release such as v1.2.0-rc.1"
        )
    return tag[1:]


def commit_version(git_sha: str) -> str:
    """The version of a build made before any tag: the commit, as its first 12 hex digits."""
    if not re.fullmatch(r"[0-9a-f]{40}", git_sha):
        raise PipelineError(
            f"no commit to version the build by (got {git_sha[:60]!r}): run it in a git checkout"
        )
    return git_sha[:12]


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

    from .export import parity
    from .features import model_inputs
    from .schema import load_frame

    fitted = joblib.load("models/model.joblib")
    inputs = model_inputs(load_frame(Path("data/prepared/test.csv"), schema), schema)
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    result = parity(
        session, fitted, inputs, schema.is_classification, tolerance["atol"], tolerance["rtol"]
    )
    if not result["passed"]:
        raise PipelineError(
            f"ONNX differs from scikit-learn by up to {result['max_abs_diff']:.3g}, its labels "
            f"agree on {result.get('label_agreement', 1.0):.2%} of the rows: not released"
        )
    return result


def golden(
    model: bytes, frame: "pd.DataFrame", schema: "Schema", tolerance: dict, name: str
) -> dict:
    """smoke.json: rows as `POST /predict` takes them and what this model file predicts for them,
    in the form the server answers (a label and its probabilities, or a value); with the model's
    `name`, version and sha256 as `GET /v2/models/<name>` must show them."""
    import onnxruntime as ort

    from .features import model_inputs, onnx_feed
    from .onnx_model import parse_metadata

    rows = frame.head(SMOKE_ROWS)
    features = rows[list(schema.features)].astype(object)
    records = features.where(features.notna(), None).to_dict("records")
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    answers = session.run(names, onnx_feed(model_inputs(rows, schema)))
    outputs = dict(zip(names, answers, strict=True))
    if schema.labels is not None:  # classification
        predictions = [
            {"label": label, "probabilities": dict(zip(schema.labels, row, strict=True))}
            for label, row in zip(
                outputs["label"].ravel().tolist(), outputs["probabilities"].tolist(), strict=True
            )
        ]
    else:
        predictions = [{"value": value} for value in outputs["variable"].ravel().tolist()]
    metadata = parse_metadata(session.get_modelmeta().custom_metadata_map)
    return {
        "model": {
            "name": name,
            "version": metadata["model_version"],
            "sha256": hashlib.sha256(model).hexdigest(),
        },
        "tolerance": {"atol": float(tolerance["atol"]), "rtol": float(tolerance["rtol"])},
        "records": [{k: _plain(v) for k, v in record.items()} for record in records],
        "predictions": predictions,
    }


def _plain(value: Any) -> Any:
    """A JSON value for a feature: numpy scalars as Python numbers, NaN as null (a gap)."""
    value = value.item() if hasattr(value, "item") else value
    return None if isinstance(value, float) and value != value else value


def headline_scores(scores: dict[str, Any], holdout: dict[str, Any]) -> tuple[dict, str]:
    """The release's headline numbers and the split they come from: the holdout's metrics when
    the project has a holdout (metrics/holdout.json not empty), else the test split's."""
    if holdout:
        return holdout, "holdout"
    return {name: value for name, value in scores.items() if name != "cv"}, "test"


def model_card(facts: dict[str, Any], schema: "Schema", project: Project) -> str:
    train = facts["params"]["train"]
    scores = "\n".join(f"| {name} | {value:.4f} |" for name, value in facts["scores"].items())
    features = "\n".join(f"| `{name}` | {kind} |" for name, kind in schema.features.items())
    hyperparameters = ", ".join(f"`{k}={v}`" for k, v in train.get("hyperparameters", {}).items())
    onnx_check = facts["onnx"]
    parity = f"max abs diff {onnx_check['max_abs_diff']:.3g} on {onnx_check['rows']} test rows"
    labels = ", ".join(f"`{label}`" for label in schema.labels) if schema.labels else "—"
    data = facts["data"]
    rows = f"{data.get('train', '?')} / {data.get('test', '?')}"
    if facts.get("scored_on") == "holdout":
        rows_row, rows = "training / test / holdout rows", f"{rows} / {data.get('holdout', '?')}"
        scored_on = "holdout: rows no training or tuning saw"
    else:
        rows_row, scored_on = "training / test rows", "test split"
    version, commit = facts["version"], facts["git_sha"][:12]
    if version == commit:  # built before any tag (staging): the tag's version is set when served
        version_row = (
            f"build `{version}` (the commit's); a release tag of it serves it as the tag's "
            "version (`v1.2.0` → `1.2.0`, the server's `MODEL_VERSION`)"
        )
        run_it = f"docker run -p 8080:8080 -e MODEL_VERSION=<version> {project.image}:{version}"
        title = f"build {version}"
    else:
        version_row = f"`{version}` (commit `{commit}`)"
        run_it = f"docker run -p 8080:8080 {project.image}:{version}"
        title = version
    return f"""# Model card: {project.title} {title}

{project.description}

| | |
| --- | --- |
| version | {version_row} |
| task | {schema.task.replace("_", " ")} of `{schema.target}` |
| labels | {labels} |
| model | `{train["model"]}` (scikit-learn), {hyperparameters or "default hyperparameters"} |
| data version | `{facts["data_version"]}` (DVC hash of `data/raw/dataset.csv`, first 8) |
| {rows_row} | {rows} |
| ONNX parity | {parity} |

## Metrics ({scored_on})

| metric | value |
| --- | --- |
{scores}

## Inputs

| feature | kind |
| --- | --- |
{features}

## Intended use

<!-- Owner: who should use this model, for what decisions, and who should not. -->
{project.description}

## Limitations

<!-- Owner: known failure modes, populations or ranges the data does not cover, fairness checks. -->
To be completed by the model owner before relying on this release.

## Serving

`{run_it}`: Open Inference Protocol v2 on `/v2/...`,
`POST /predict` with `{PREDICT_BODY}`, Prometheus metrics on `/metrics`.
Files of this release are listed with their SHA-256 in `SHA256SUMS`.
"""


def build(tag: str | None, out: Path) -> None:
    from .export import git_sha as commit

    git_sha = commit()
    version = version_of(tag) if tag else commit_version(git_sha)
    import yaml

    from .params import load_params
    from .report import data_version
    from .schema import load_frame, load_schema

    try:
        released = stamp(MODEL.read_bytes(), version, git_sha)
    except FileNotFoundError:
        raise PipelineError(f"{MODEL} is missing: run `make pull` or `make repro` first") from None
    params = load_params()
    schema = load_schema(Path("data/schema.yaml"))
    onnx_check = check_parity(released, schema, params["export"])
    holdout = Path("metrics/holdout.json")
    scores, scored_on = headline_scores(
        json.loads(Path("metrics/scores.json").read_text()),
        json.loads(holdout.read_text()) if holdout.is_file() else {},
    )

    facts = {
        "version": version,
        "git_sha": git_sha,
        "data_version": data_version(yaml.safe_load(Path("dvc.lock").read_text())) or "unknown",
        "scores": scores,
        "scored_on": scored_on,
        "data": json.loads(Path("metrics/data.json").read_text()),
        "onnx": onnx_check,
        "params": params,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.onnx").write_bytes(released)
    (out / "metrics.json").write_text(json.dumps(facts, indent=2, sort_keys=True) + "\n")
    project = load_project()
    (out / "model-card.md").write_text(model_card(facts, schema, project))
    test_rows = load_frame(Path("data/prepared/test.csv"), schema)
    smoke = golden(released, test_rows, schema, params["export"], project.name)
    (out / "smoke.json").write_text(json.dumps(smoke, indent=1) + "\n")
    print(f"release: {version} -> {out}/ (model.onnx, model-card.md, metrics.json, smoke.json)")


def promote(
    candidate: Path,
    latest: Path,
    allow_worse: bool,
    release: str | None = None,
    latest_release: str | None = None,
    champion_model: Path | None = None,
) -> str:
    """The promotion rule: the release (dist/) not worse than the champion, the latest release,
    beyond the allowed drop of params.yaml `report.gate` (the PR gate's rule and modes), unless
    allowed. With the champion's model file, both models are scored on this commit's holdout
    (promotion.py) and the delta is paired; the comparison goes into dist/ (champion.json, the
    model card's "Champion and challenger") and SHA256SUMS is rewritten. `release` and
    `latest_release` are the tags (the files name a model version, which is a commit when
    staging built it)."""
    from . import promotion
    from .params import load_params
    from .report import gate_from_params
    from .schema import load_frame, load_schema

    new, old = (json.loads(path.read_text()) for path in (candidate, latest))
    release = release or f"v{new['version']}"
    latest_release = latest_release or f"v{old.get('version')}"
    names = (latest_release, release)
    # A report.gate that params.yaml got wrong stops the release with its line: not a verdict
    # that allow-worse could override.
    params = load_params()
    gate = gate_from_params(params)
    reason = "no model file of the champion was given"
    comparison = None
    if champion_model is not None:
        schema = load_schema(Path("data/schema.yaml"))
        split, rows = _scoring_rows()
        try:
            frame = load_frame(rows, schema)
            comparison = promotion.compare(
                champion_model.read_bytes(),
                (candidate.parent / "model.onnx").read_bytes(),
                frame,
                schema,
                gate,
                names=names,
                split=split,
                seed=int(params["base"]["seed"]),
            )
        except (PipelineError, OSError) as err:
            reason = str(err)
    if comparison is None:
        comparison = promotion.unpaired(old, new, gate, names, reason)
    folder = candidate.parent
    (folder / "champion.json").write_text(
        json.dumps(promotion.as_json(comparison), indent=2, sort_keys=True) + "\n"
    )
    card = folder / "model-card.md"
    if card.is_file():  # the release notes: they show both models
        card.write_text(card.read_text() + promotion.card_section(comparison))
    checksums(folder)
    summary = comparison.summary()
    if comparison.result.passed:
        return f"release: promotion: {summary}"
    if allow_worse:
        return f"release: promotion: {summary}; released anyway (allow-worse)"
    raise PipelineError(
        f"{summary}. To release it anyway, run release.yml by hand on tag {release} "
        "with allow-worse"
    )


def _scoring_rows() -> tuple[str, Path]:
    """The rows the champion and the challenger are scored on: this commit's holdout, or its
    test split when the project keeps no holdout (prepare.holdout_size 0)."""
    holdout = Path("data/prepared/holdout.csv")
    if holdout.is_file() and len(holdout.read_text().strip().splitlines()) > 1:
        return "holdout", holdout
    return "test", Path("data/prepared/test.csv")


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
    build_command.add_argument("--tag", help="the release tag; without it, the commit's version")
    build_command.add_argument("--out", type=Path, default=Path("dist"))
    sums = commands.add_parser("checksums", help="write SHA256SUMS for a folder")
    sums.add_argument("folder", type=Path)
    rule = commands.add_parser("promote", help="compare with the latest release's metrics.json")
    rule.add_argument("--latest", type=Path, required=True)
    rule.add_argument("--candidate", type=Path, default=Path("dist/metrics.json"))
    rule.add_argument("--allow-worse", action="store_true")
    rule.add_argument("--release", help="the candidate's tag (default: v<its version>)")
    rule.add_argument("--latest-release", help="the latest release's tag")
    rule.add_argument(
        "--champion-model",
        type=Path,
        help="the latest release's model.onnx: both models are then scored on this holdout",
    )
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
        print(
            promote(
                args.candidate,
                args.latest,
                args.allow_worse,
                args.release,
                args.latest_release,
                args.champion_model,
            )
        )
    else:
        checksums(args.folder)


if __name__ == "__main__":
    run_stage("release", main)
