"""The served model: an onnxruntime session and what the model's metadata says about it."""

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from ..onnx_model import parse_metadata

# JSON datatypes of the OIP for the ONNX tensor types this project's models use.
OIP_DATATYPES = {
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(int64)": "INT64",
    "tensor(string)": "BYTES",
}


class ModelLoadError(Exception):
    """The model file cannot be served; the server refuses to start."""


class ServedModel:
    """An onnxruntime session plus what the model's metadata says about its inputs and outputs."""

    def __init__(
        self,
        content: bytes,
        name: str,
        source: str = "<bytes>",
        threads: int = 1,
        version: str = "",
    ):
        self.name = name
        self.sha256 = hashlib.sha256(content).hexdigest()
        try:
            options = ort.SessionOptions()
            # One thread per inference by default: small models lose more to thread hand-offs
            # than they gain, and replicas (not threads) are how this server scales.
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            self.session = ort.InferenceSession(
                content, options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # onnxruntime raises several types for a bad file
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err)
            raise ModelLoadError(f"{source} is not a loadable ONNX model: {first_line}") from None
        try:
            meta = parse_metadata(self.session.get_modelmeta().custom_metadata_map)
        except ValueError as err:
            raise ModelLoadError(f"{source}: {err}") from None
        # The version stamped in the file (its build: a commit's, when staging built it before
        # any tag) and the version served, which a release tag's MODEL_VERSION may set.
        self.build: str = meta.get("model_version", "unknown")
        self.version: str = version or self.build
        self.task: str = meta["task"]
        self.labels: list[str] | None = meta["labels"]
        self.features: dict[str, str] = meta["features"]
        self.numeric = [name for name, kind in self.features.items() if kind != "categorical"]
        self.categorical = [name for name, kind in self.features.items() if kind == "categorical"]
        self.inputs = {
            item.name: OIP_DATATYPES.get(item.type) for item in self.session.get_inputs()
        }
        self.outputs = {
            item.name: OIP_DATATYPES.get(item.type) for item in self.session.get_outputs()
        }
        # Values per row of each output: [-1] is one, [-1, 3] three.
        self.widths = {
            item.name: int(np.prod([d for d in item.shape[1:] if isinstance(d, int)] or [1]))
            for item in self.session.get_outputs()
        }
        if list(self.inputs) != list(self.features):
            raise ModelLoadError(f"{source}: inputs do not match the features in its metadata")
        self._output_names = list(self.outputs)
        # InferenceSession.run checks the feed's names and ownership in Python on every call
        # (about 15 µs, a tenth of a one-row request); feeds here are built from the model's own
        # inputs, so the binding's run is called directly where it exists
        # (onnxruntime/capi/onnxruntime_inference_collection.py, InferenceSession.run).
        binding = getattr(self.session, "_sess", None)
        self._run = (
            (lambda names, feed: binding.run(names, feed, None))
            if binding is not None
            else self.session.run
        )

    @classmethod
    def load(cls, path: Path, name: str, threads: int = 1, version: str = "") -> "ServedModel":
        try:
            content = Path(path).read_bytes()
        except FileNotFoundError:
            raise ModelLoadError(
                f"model file {path} not found: run `make repro` (or `make pull`), or set MODEL_PATH"
            ) from None
        except OSError as err:
            raise ModelLoadError(f"model file {path} cannot be read: {err.strerror}") from None
        return cls(content, name, source=str(path), threads=threads, version=version)

    def run(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = self._output_names
        return dict(zip(names, self._run(names, feed), strict=True))

    def empty_feed(self, rows: int) -> dict[str, np.ndarray]:
        """Gaps in every feature: what warm-up and the bench run."""
        feed = {name: np.full((rows, 1), np.nan, dtype=np.float32) for name in self.numeric}
        feed.update({name: np.full((rows, 1), "", dtype=object) for name in self.categorical})
        return feed

    def warm_up(self) -> None:
        """One prediction before reporting ready, so the first real request pays no set-up."""
        self.run(self.empty_feed(1))

    def metadata(self) -> dict[str, Any]:
        def tensors(types: dict[str, str | None], shapes: dict[str, list[int]]) -> list[dict]:
            return [
                {"name": name, "datatype": datatype, "shape": shapes[name]}
                for name, datatype in types.items()
            ]

        input_shapes = {item.name: [-1, 1] for item in self.session.get_inputs()}
        output_shapes = {
            item.name: [-1 if not isinstance(dim, int) else dim for dim in item.shape]
            for item in self.session.get_outputs()
        }
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": "onnxruntime_onnx",
            "inputs": tensors(self.inputs, input_shapes),
            "outputs": tensors(self.outputs, output_shapes),
            "parameters": {
                "task": self.task,
                "labels": self.labels,
                "sha256": self.sha256,
                "build": self.build,
            },
        }
