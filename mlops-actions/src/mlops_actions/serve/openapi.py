"""The server's own OpenAPI 3.1 document (GET /openapi.json), written from the served model.

Request schemas name this model's features, inputs and outputs, so a generated request is one the
server can answer; the OIP shapes follow the protocol's REST spec
(https://github.com/kserve/open-inference-protocol, specification/protocol/inference_rest.md).
What JSON Schema cannot say, and the server checks: each input's shape[0] equals its data's length
and every input's rows agree. Infer's binary tensor data (the JSON, then the tensors' bytes) is
described in words, its Inference-Header-Content-Length header too: the header must equal the
length of the body's JSON part, which no parameter schema can say (typed, it would promise any
count), nor tie to one media type. What the document does say, the server takes: the JSON as
application/json or application/octet-stream (one schema: without the header the whole body is
the JSON, as the extension has it), and a shape's 2.0 (JSON Schema's integer takes it).
"""

from typing import Any

from .binary import HEADER as HEADER_LENGTH
from .binary import UNSUPPORTED
from .model import ServedModel
from .protocol import FLOAT32_MAX
from .settings import Limits

ERROR_STATUSES = {
    "400": "Malformed JSON, a wrong type, shape or name (the message names the field)",
    "404": "Unknown model or version",
    "405": "Method not allowed (the Allow header lists the allowed ones)",
    "408": "Body not received within BODY_TIMEOUT",
    "413": "Body, rows or answer above MAX_BODY_BYTES, MAX_BATCH_ROWS or MAX_RESPONSE_BYTES, or a "
    "request that alone would hold more than MAX_BUFFERED_BYTES",
    "415": "Content-Type other than application/json or +json (application/octet-stream too on "
    "infer), or a Content-Encoding other than identity",
    "503": "Busy: REQUEST_TIMEOUT or MAX_BUFFERED_BYTES reached; retry (Retry-After)",
}


BINARY_TYPE = "application/octet-stream"
BINARY_DATA = (
    "Tensors may also travel as binary data (Triton's binary tensor data extension, "
    "tritonclient's default): the Inference-Header-Content-Length header gives the length of the "
    "JSON, and an input with parameters.binary_data_size has that many bytes after it "
    "(little-endian values; a BYTES element as its 4-byte length and its UTF-8 bytes), in either "
    "media type. The header must equal the JSON's length (a JSON body's own length when no "
    "binary data follow); without it the whole body is the JSON. An output asked for with "
    "parameters.binary_data (or every output, with the request's parameters.binary_data_output) "
    "is answered that way, as application/octet-stream with the same header."
)


_LENGTH = {"type": "integer", "minimum": 0}


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _responses(ok: dict, *errors: str) -> dict:
    answers: dict[str, Any] = {"200": _answer("OK", ok)}
    for status in errors:
        answers[status] = _answer(ERROR_STATUSES[status], _ref("Error"))
    return answers


def _answer(description: str, schema: dict) -> dict:
    return {"description": description, **_json(schema)}


def _flags(flag: str, **more: dict) -> dict:
    """{"<flag>": true|false, ...}: the health and readiness answers."""
    properties = {**more, flag: {"type": "boolean"}}
    return {"type": "object", "required": list(properties), "properties": properties}


def _get(summary: str, responses: dict, parameters: list | None = None) -> dict:
    operation = {"summary": summary, "responses": responses}
    return {"get": {**operation, "parameters": parameters} if parameters else operation}


def _post(summary: str, request: str, responses: dict, parameters: list | None = None) -> dict:
    operation = {
        "summary": summary,
        "requestBody": {"required": True, **_json(_ref(request))},
        "responses": responses,
    }
    return {"post": {**operation, "parameters": parameters} if parameters else operation}


_TENSOR = {
    "type": "object",
    "required": ["name", "datatype", "shape"],
    "properties": {
        "name": {"type": "string"},
        "datatype": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer"}},
    },
}
_METADATA = {
    "type": "object",
    "required": ["name", "platform", "inputs", "outputs"],
    "properties": {
        "name": {"type": "string"},
        "versions": {"type": "array", "items": {"type": "string"}},
        "platform": {"type": "string"},
        "inputs": {"type": "array", "items": _TENSOR},
        "outputs": {"type": "array", "items": _TENSOR},
        "parameters": {
            "type": "object",
            "required": ["task", "labels", "sha256", "build"],
            "properties": {
                "task": {"type": "string"},
                "labels": {"type": ["array", "null"], "items": {"type": "string"}},
                "sha256": {
                    "type": "string",
                    "pattern": "^[0-9a-f]{64}$",
                    "description": "The served model file's SHA-256: its identity",
                },
                "build": {
                    "type": "string",
                    "description": "The version stamped in the model file; `versions` holds the "
                    "served one, which MODEL_VERSION may set (a release tag's)",
                },
            },
        },
    },
}
_SERVER_METADATA = {
    "type": "object",
    "required": ["name", "version", "extensions"],
    "properties": {
        "name": {"type": "string"},
        "version": {"type": "string"},
        "extensions": {"type": "array", "items": {"type": "string"}},
    },
}


def document(model: ServedModel, limits: Limits) -> dict[str, Any]:
    number = {"type": "number", "minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX}
    value = {
        name: {"type": ["string", "null"]}
        if kind == "categorical"
        else {**number, "type": ["number", "null"]}
        for name, kind in model.features.items()
    }
    # A value of `data`: its column says its feature, so with categorical features its type is
    # the union (a value of the wrong type for its column is refused with a 400).
    kinds = set(model.features.values())
    cell = (
        {**number, "type": ["number", "string", "null"]}
        if "categorical" in kinds and len(kinds) > 1
        else value[next(iter(value))]
    )
    rows = {"minItems": 1, "maxItems": limits.max_batch_rows}
    parameters = {
        "type": "object",
        "additionalProperties": {"type": ["string", "number", "boolean"]},
    }
    # A tensor's parameters never ask for an extension this server lacks: it refuses them by name.
    tensor_parameters = {
        **parameters,
        "properties": {name: False for name in UNSUPPORTED},
    }

    def tensor_in(name: str) -> dict:
        datatype = model.inputs[name]
        item = value[name]
        return {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "shape", "datatype", "data"],
            "properties": {
                "name": {"const": name},
                "shape": {
                    "type": "array",
                    "prefixItems": [
                        {"type": "integer", "minimum": 1, "maximum": limits.max_batch_rows},
                        {"const": 1},
                    ],
                    "minItems": 1,
                    "maxItems": 2,
                },
                "datatype": {"const": datatype},
                # Flat, [v, ...], or nested, [[v], ...], as a [rows, 1] tensor's may be.
                "data": {
                    "anyOf": [
                        {"type": "array", "items": item, **rows},
                        {
                            "type": "array",
                            "items": {"type": "array", "items": item, "minItems": 1, "maxItems": 1},
                            **rows,
                        },
                    ]
                },
                "parameters": tensor_parameters,
            },
        }

    names = list(model.inputs)
    schemas = {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string"}},
        },
        "PredictRequest": {
            "oneOf": [
                {
                    "title": "Records, by feature name",
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["records"],
                    "properties": {
                        "records": {
                            "type": "array",
                            **rows,
                            "items": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": names,
                                "properties": value,
                            },
                        }
                    },
                },
                {
                    "title": "Columns and data (pandas' split orientation)",
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["columns", "data"],
                    "properties": {
                        # Every feature once, in any order; data's rows follow it.
                        "columns": {
                            "type": "array",
                            "items": {"enum": names},
                            "uniqueItems": True,
                            "minItems": len(names),
                            "maxItems": len(names),
                        },
                        "data": {
                            "type": "array",
                            **rows,
                            "items": {
                                "type": "array",
                                "items": cell,
                                "minItems": len(names),
                                "maxItems": len(names),
                            },
                        },
                        "index": {"type": "array", "description": "Read and left aside"},
                    },
                },
            ]
        },
        "PredictResponse": {
            "type": "object",
            "required": ["model_version", "predictions"],
            "properties": {
                "model_version": {"type": "string"},
                "predictions": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["label", "probabilities"],
                        "properties": {
                            "label": {"enum": model.labels},
                            "probabilities": {
                                "type": "object",
                                "required": model.labels,
                                "additionalProperties": False,
                                # NaN, when the model gives it, is written null
                                "properties": {
                                    label: {"type": ["number", "null"]} for label in model.labels
                                },
                            },
                        },
                    }
                    if model.labels
                    else {
                        "type": "object",
                        "required": ["value"],
                        "properties": {"value": {"type": ["number", "null"]}},
                    },
                },
            },
        },
        "InferRequest": {
            "type": "object",
            "additionalProperties": False,
            "required": ["inputs"],
            "properties": {
                "id": {"type": "string"},
                "parameters": parameters,
                # Every input once, in any order (tritonclient sends the caller's).
                "inputs": {
                    "type": "array",
                    "items": {"oneOf": [tensor_in(name) for name in names]},
                    "minItems": len(names),
                    "maxItems": len(names),
                    "allOf": [
                        {"contains": {"required": ["name"], "properties": {"name": {"const": n}}}}
                        for n in names
                    ],
                },
                "outputs": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["name"],
                        "properties": {
                            "name": {"enum": list(model.outputs)},
                            "parameters": tensor_parameters,
                        },
                    },
                },
            },
        },
        "InferResponse": {
            "type": "object",
            "required": ["model_name", "outputs"],
            "properties": {
                "model_name": {"const": model.name},
                "model_version": {"type": "string"},
                "id": {"type": "string"},
                "outputs": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "shape", "datatype", "data"],
                        "properties": {
                            "name": {"enum": list(model.outputs)},
                            "shape": {"type": "array", "items": {"type": "integer"}},
                            "datatype": {"enum": sorted(set(model.outputs.values()), key=str)},
                            "data": {"type": "array"},
                        },
                    },
                },
            },
        },
    }
    model_name = {"name": "name", "in": "path", "required": True, "schema": {"enum": [model.name]}}
    version = {
        "name": "version",
        "in": "path",
        "required": True,
        "schema": {"enum": [model.version]},
    }
    paths: dict[str, Any] = {
        "/v2/health/live": _get("Liveness (OIP)", _responses(_flags("live"))),
        "/v2/health/ready": _get(
            "Readiness (OIP)",
            {**_responses(_flags("ready")), "503": _answer("Not ready yet", _flags("ready"))},
        ),
        "/v2": _get("Server metadata (OIP)", _responses(_SERVER_METADATA)),
        "/metrics": _get(
            "Prometheus metrics",
            {
                "200": {
                    "description": "Prometheus text format",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        ),
        "/openapi.json": _get("This document", _responses({"type": "object"})),
        "/predict": _post(
            "Predict records by feature name, or columns and data; null is a gap the model imputes",
            "PredictRequest",
            _responses(_ref("PredictResponse"), "400", "408", "413", "415", "503"),
        ),
    }
    for prefix, params in (
        ("/v2/models/{name}", [model_name]),
        ("/v2/models/{name}/versions/{version}", [model_name, version]),
    ):
        ready = _flags("ready", name={"type": "string"})
        paths[prefix] = _get("Model metadata (OIP)", _responses(_METADATA, "404"), params)
        paths[prefix + "/ready"] = _get(
            "Model readiness (OIP)",
            {**_responses(ready, "404"), "503": _answer("Not ready yet", ready)},
            params,
        )
        responses = _responses(_ref("InferResponse"), "400", "404", "408", "413", "415", "503")
        responses["200"]["content"][BINARY_TYPE] = {"schema": {"type": "string"}}
        responses["200"]["headers"] = {
            HEADER_LENGTH: {
                "description": "With a binary answer: its JSON's length",
                "schema": _LENGTH,
            }
        }
        infer = _post(
            "Inference (OIP): one [rows, 1] tensor per input; each output once",
            "InferRequest",
            responses,
            params,
        )
        # The JSON as application/octet-stream too (KServe's client sends binary data so): the
        # JSON's schema, as without the header the whole body is the JSON (the extension asks
        # for it "if any binary data is present": Triton's docs/protocol/
        # extension_binary_data.md). Binary data after it, and the header, are in words
        # (BINARY_DATA): the header is no typed parameter, since its one right value is a length
        # of the body.
        content = infer["post"]["requestBody"]["content"]
        content[BINARY_TYPE] = content["application/json"]
        infer["post"]["description"] = BINARY_DATA
        paths[prefix + "/infer"] = infer
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{model.name} model server",
            "version": model.version,
            "description": "Open Inference Protocol v2 (REST), /predict and /metrics for "
            'an ONNX model. Errors are {"error": "<what is wrong>"}.',
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }
