"""Request bodies decoded by type (msgspec) straight into the model's feed, and answers encoded.

A wrong type, a bad shape or a size over a limit is a `RequestError` naming the field by its JSON
path (`$.records[3].mean_radius`), never a 5xx. Types follow the Open Inference Protocol v2 REST
spec (https://github.com/kserve/open-inference-protocol, specification/protocol/inference_rest.md):
`id` is a string, `parameters` maps names to strings, numbers or booleans, a requested output is
`{"name": ...}`. Why msgspec rather than pydantic: bench/decoding.py in the template.
"""

from typing import Annotated, Any

import msgspec
import numpy as np
from msgspec.structs import astuple

from .model import ServedModel
from .settings import Limits

FLOAT32_MAX = float(np.finfo(np.float32).max)
# A JSON number that float32 can hold; true/false and "1.5" are refused, not coerced.
Number = Annotated[float, msgspec.Meta(ge=-FLOAT32_MAX, le=FLOAT32_MAX)]
Parameters = dict[str, str | int | float | bool]
Dimension = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
# Bytes one JSON value of an answer can take at most: a float's repr is 24 characters or fewer.
FLOAT_BYTES = 25
NESTING = "JSON is nested too deeply"


class RequestError(Exception):
    """A client mistake, answered with `status` and the message, never a 5xx."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


# Optional fields may be left out, not sent as null: the spec types them, and null is not a type.
Unset = msgspec.UnsetType
UNSET = msgspec.UNSET


class RequestedOutput(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    name: str
    parameters: Parameters | Unset = UNSET


class InputTensor(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    name: str
    shape: Annotated[list[Dimension], msgspec.Meta(max_length=8)]
    datatype: str
    # Decoded once the datatype and shape are known to be right (`Codec.tensor`).
    data: msgspec.Raw
    parameters: Parameters | Unset = UNSET


def _decode(decoder: msgspec.json.Decoder, body: bytes | msgspec.Raw) -> Any:
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as err:
        message = (
            str(err)
            .replace(f"<= {FLOAT32_MAX!r}", "within float32")
            .replace(f">= {-FLOAT32_MAX!r}", "within float32")
        )
        raise RequestError(message) from None
    except msgspec.DecodeError as err:
        reason = str(err).removeprefix("JSON is malformed: ")
        raise RequestError(f"malformed JSON: {reason}") from None
    except RecursionError:  # a backstop: unknown fields are refused before their value is read
        raise RequestError(NESTING) from None


class Codec:
    """Decoders and encoders for one model: its features are the fields of a /predict record."""

    def __init__(self, model: ServedModel, limits: Limits):
        self.model, self.limits = model, limits
        self.order = [*model.numeric, *model.categorical]
        kinds = [Number | None] * len(model.numeric) + [str | None] * len(model.categorical)
        # Field names are f0, f1, ...: feature names need not be Python identifiers.
        record = msgspec.defstruct(
            "Record",
            [(f"f{i}", kind) for i, kind in enumerate(kinds)],
            rename={f"f{i}": name for i, name in enumerate(self.order)},
            forbid_unknown_fields=True,
            gc=False,
        )
        self.records = msgspec.json.Decoder(
            msgspec.defstruct(
                "PredictRequest", [("records", list[record])], forbid_unknown_fields=True, gc=False
            )
        )
        inputs = len(model.inputs)
        self.infer = msgspec.json.Decoder(
            msgspec.defstruct(
                "InferRequest",
                [
                    ("inputs", Annotated[list[InputTensor], msgspec.Meta(max_length=inputs)]),
                    ("id", str | Unset, UNSET),
                    ("parameters", Parameters | Unset, UNSET),
                    ("outputs", list[RequestedOutput] | Unset, UNSET),
                ],
                forbid_unknown_fields=True,
                gc=False,
            )
        )
        values = {"FP32": Number | None, "BYTES": str | None}
        self.flat = {kind: msgspec.json.Decoder(list[v]) for kind, v in values.items()}
        self.nested = {kind: msgspec.json.Decoder(list[tuple[v]]) for kind, v in values.items()}
        self.encode = msgspec.json.Encoder().encode
        self.reply_head = b'{"model_version":' + self.encode(model.version) + b',"predictions":['
        if model.labels:
            self.label_json = {label: self.encode(label).decode() for label in model.labels}
            keys = [self.label_json[label].replace("%", "%%") for label in model.labels]
            self.row_template = (
                '{"label":%s,"probabilities":{' + ",".join(f"{key}:%r" for key in keys) + "}}"
            )
        # Everything but the rows: names, version, keys, the error or id echoed.
        self.fixed_bytes = 512 + len(self.encode(model.name)) + len(self.encode(model.version))
        label_bytes = [len(self.encode(label)) for label in model.labels or []]
        self.label_bytes = max(label_bytes, default=0)
        # The largest /predict answer per row: {"label":...,"probabilities":{"<label>":p,...}},
        self.prediction_bytes = (
            32 + self.label_bytes + sum(size + 2 + FLOAT_BYTES for size in label_bytes)
            if model.labels
            else 12 + FLOAT_BYTES
        )

    # --- /predict -------------------------------------------------------------------------------

    def predict_feed(self, body: bytes) -> tuple[dict[str, np.ndarray], int, dict[str, tuple]]:
        """The feed, its rows, and the columns by feature (for the prediction log)."""
        try:
            records = _decode(self.records, body).records
        except RequestError as err:
            raise RequestError(_explain_records(str(err))) from None
        rows = len(records)
        self.check_rows(rows)
        self.check_response(rows, self.prediction_bytes)
        columns = list(zip(*map(astuple, records), strict=True))
        numeric = len(self.model.numeric)
        feed: dict[str, np.ndarray] = {}
        if numeric:
            # One block, a row per feature: None becomes NaN, a gap the model imputes.
            block = np.array(columns[:numeric], dtype=np.float32)
            feed.update(zip(self.model.numeric, block[:, :, None], strict=True))
        for name, column in zip(self.model.categorical, columns[numeric:], strict=True):
            # "" is the missing category the model was trained with (features.MISSING_CATEGORY).
            values = ["" if value is None else value for value in column]
            feed[name] = np.array(values, dtype=object)[:, None]
        return feed, rows, dict(zip(self.order, columns, strict=True))

    def predict_reply(self, outputs: dict[str, np.ndarray]) -> bytes:
        """The /predict answer, its rows formatted from a template made once (no dict per row);
        repr() writes a float as JSON does, and a value that is not finite goes the long way."""
        if self.model.labels is None:
            values = outputs["variable"].ravel()
            if np.isfinite(values).all():
                rows = ",".join(['{"value":' + repr(value) + "}" for value in values.tolist()])
                return self.reply_head + rows.encode() + b"]}"
        else:
            values = outputs["probabilities"]
            labels = [self.label_json.get(label) for label in outputs["label"].ravel().tolist()]
            if np.isfinite(values).all() and None not in labels:
                template = self.row_template
                rows = ",".join(
                    [
                        template % (label, *row)
                        for label, row in zip(labels, values.tolist(), strict=True)
                    ]
                )
                return self.reply_head + rows.encode() + b"]}"
        return self.encode(
            {"model_version": self.model.version, "predictions": self.predictions(outputs)}
        )

    def predictions(self, outputs: dict[str, np.ndarray]) -> list[dict[str, Any]]:
        if self.model.labels is None:
            return [{"value": value} for value in outputs["variable"].ravel().tolist()]
        names = self.model.labels
        return [
            {"label": label, "probabilities": dict(zip(names, row, strict=True))}
            for label, row in zip(
                outputs["label"].ravel().tolist(), outputs["probabilities"].tolist(), strict=True
            )
        ]

    # --- OIP infer ------------------------------------------------------------------------------

    def infer_feed(self, body: bytes) -> tuple[dict[str, np.ndarray], int, list[str], str | None]:
        """The feed, its rows, the outputs to answer (each once) and the request's id."""
        request = _decode(self.infer, body)
        if not request.inputs:
            raise RequestError("'inputs' must be a non-empty list of tensors")
        wanted = self.wanted_outputs(request.outputs)
        feed: dict[str, np.ndarray] = {}
        rows: int | None = None
        for position, tensor in enumerate(request.inputs):
            name = tensor.name
            if name not in self.model.inputs:
                raise RequestError(f"inputs[{position}]: unknown input {name!r}")
            if name in feed:
                raise RequestError(f"input {name!r} is given twice")
            expected = self.model.inputs[name]
            if tensor.datatype != expected:
                raise RequestError(
                    f"input {name!r}: datatype must be {expected}, got {tensor.datatype!r}"
                )
            shape = tensor.shape
            if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
                raise RequestError(
                    f"input {name!r}: shape must be [rows] or [rows, 1], got {shape}"
                )
            if rows is not None and shape[0] != rows:
                raise RequestError(f"input {name!r} has {shape[0]} rows, other inputs have {rows}")
            rows = shape[0]
            self.check_rows(rows)
            feed[name] = self.tensor(position, name, expected, tensor.data, rows)
        missing = [name for name in self.model.inputs if name not in feed]
        if missing:
            raise RequestError(f"missing input {', '.join(missing)}")
        assert rows is not None
        per_row = sum(self.output_bytes(name) for name in wanted)
        echoed = 0 if request.id is UNSET else len(self.encode(request.id))
        self.check_response(rows, per_row, echoed)
        return feed, rows, wanted, None if request.id is UNSET else request.id

    def tensor(self, position: int, name: str, datatype: str, data: msgspec.Raw, rows: int):
        """A [rows] or [rows, 1] tensor's data, flat or nested, as a [rows, 1] array."""
        try:
            values = _decode(self.flat[datatype], data)
        except RequestError as flat_error:
            try:
                values = [value for (value,) in _decode(self.nested[datatype], data)]
            except RequestError:
                message = str(flat_error).replace(" - at `$", f" - at `$.inputs[{position}].data")
                raise RequestError(f"input {name!r}: {message}") from None
        if len(values) != rows:
            raise RequestError(
                f"input {name!r}: shape [{rows}, 1] needs {rows} values, got {len(values)}"
            )
        if datatype == "BYTES":
            values = ["" if value is None else value for value in values]
            return np.array(values, dtype=object)[:, None]
        return np.array(values, dtype=np.float32)[:, None]

    def wanted_outputs(self, requested: list[RequestedOutput] | Unset) -> list[str]:
        """Each requested output once, in the order first asked: asking twice costs nothing more."""
        if requested is UNSET:
            return list(self.model.outputs)
        names = list(dict.fromkeys(item.name for item in requested))
        unknown = [name for name in names if name not in self.model.outputs]
        if unknown:
            known = ", ".join(self.model.outputs)
            raise RequestError(f"unknown output {unknown[0]!r}: has {known}")
        return names

    def output_bytes(self, name: str) -> int:
        size = self.label_bytes + 1 if self.model.outputs[name] == "BYTES" else FLOAT_BYTES
        return self.model.widths[name] * size

    def infer_response(
        self, outputs: dict[str, np.ndarray], wanted: list[str], request_id: str | None
    ) -> dict[str, Any]:
        response: dict[str, Any] = {
            "model_name": self.model.name,
            "model_version": self.model.version,
            "outputs": [
                {
                    "name": name,
                    "datatype": self.model.outputs[name],
                    "shape": list(outputs[name].shape),
                    "data": outputs[name].ravel().tolist(),
                }
                for name in wanted
            ],
        }
        if request_id is not None:
            response["id"] = request_id
        return response

    # --- limits ---------------------------------------------------------------------------------

    def check_rows(self, rows: int) -> None:
        if rows == 0:
            raise RequestError("empty batch: send at least one row")
        if rows > self.limits.max_batch_rows:
            raise RequestError(
                f"batch of {rows} rows is above the maximum of {self.limits.max_batch_rows} "
                "(MAX_BATCH_ROWS)",
                413,
            )

    def check_response(self, rows: int, per_row: int, echoed: int = 0) -> None:
        """Refuse before inference an answer that could pass MAX_RESPONSE_BYTES."""
        limit, fixed = self.limits.max_response_bytes, self.fixed_bytes + echoed
        if fixed + rows * per_row > limit:
            fits = max((limit - fixed) // per_row, 0)
            raise RequestError(
                f"the answer for {rows} rows could reach {fixed + rows * per_row} bytes, above "
                f"MAX_RESPONSE_BYTES ({limit}): send at most {fits} rows",
                413,
            )


def _explain_records(message: str) -> str:
    """msgspec's words for a record, in the terms of /predict."""
    if " - at `$.records[" in message:
        message = message.replace("Object contains unknown field", "unknown feature")
        if message.startswith("Object missing required field"):
            message = message.replace("Object missing required field", "missing feature")
            message += " (send null for a gap)"
        return message
    if message.startswith(("malformed JSON", NESTING)):
        return message
    return message + ': send {"records": [{"<feature>": <value>, ...}, ...]}'
