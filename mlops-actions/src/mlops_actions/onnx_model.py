"""What the exported model says about itself, in its ONNX metadata.

Export writes these keys; anything that loads `model.onnx` (tests, the report, serving) reads them
back, so the model file alone tells its features, task and labels. Standard library only (and
onnxruntime, imported when a session is loaded): the serving image installs neither pandas nor
scikit-learn.
"""

import json
from typing import Any

from .errors import PipelineError


def build_metadata(
    *,
    task: str,
    target: str,
    features: dict[str, str],
    labels: list[str] | None,
    model_version: str,
    git_sha: str,
) -> dict[str, str]:
    return {
        "task": task,
        "target": target,
        "features": json.dumps([{"name": name, "type": kind} for name, kind in features.items()]),
        "labels": json.dumps(labels),
        "model_version": model_version,
        "git_sha": git_sha,
    }


def parse_metadata(props: dict[str, str]) -> dict[str, Any]:
    """The inverse of build_metadata, from `session.get_modelmeta().custom_metadata_map`."""
    missing = {"task", "target", "features", "labels"} - set(props)
    if missing:
        raise ValueError(
            f"model metadata lacks {', '.join(sorted(missing))}: re-run the export stage"
        )
    return {
        **props,
        "features": {item["name"]: item["type"] for item in json.loads(props["features"])},
        "labels": json.loads(props["labels"]),
    }


def load_session(
    model: bytes, what: str = "the model", config: dict[str, str] | None = None
) -> tuple[Any, dict[str, Any]]:
    """An onnxruntime session of `model` (an exported model.onnx) and its parsed metadata, with
    session `config` entries if given. A file that is not such a model is refused in one line
    naming `what`."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    for key, value in (config or {}).items():
        options.add_session_config_entry(key, value)
    try:
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        metadata = parse_metadata(session.get_modelmeta().custom_metadata_map)
    # onnxruntime's own exceptions (InvalidProtobuf, Fail, InvalidArgument ...) derive from
    # Exception alone: whatever it raises means the file is not a model this can score.
    except Exception as err:
        raise PipelineError(f"{what} cannot be loaded: {str(err).splitlines()[0]}") from None
    return session, metadata
