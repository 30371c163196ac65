"""The Open Inference Protocol v2 REST answers as JSON Schema, written here from the spec's text:
https://github.com/kserve/open-inference-protocol/blob/main/specification/protocol/inference_rest.md
(also https://kserve.github.io/website/docs/concepts/architecture/data-plane/v2-protocol).

Fields the spec marks #optional are optional; fields it does not name are allowed (the spec does
not forbid them, and the model metadata carries this server's `parameters`).
"""

# "Tensor Data Types" in the spec.
DATATYPES = [
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
    "FP16", "FP32", "FP64", "BYTES",
]  # fmt: skip
STRING = {"type": "string"}
BOOLEAN = {"type": "boolean"}
# $parameters: "zero or more parameters ... expressed as key/value pairs"; a value is a string,
# a number or a boolean.
PARAMETERS = {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}}


def obj(required: dict, optional: dict | None = None) -> dict:
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
    }


# $metadata_server_error_response, $metadata_model_error_response,
# $inference_error_response: {"error": $string}.
ERROR = obj({"error": STRING})
LIVE_SERVER = obj({"live": BOOLEAN})
# The spec's text shows "live" in $ready_server_response, a slip: its REST definition
# (kserve docs/predict-api/v2/rest_predict_v2.yaml, ServerReadyResponse) has "ready".
READY_SERVER = obj({"ready": BOOLEAN})
METADATA_SERVER = obj(
    {"name": STRING, "version": STRING, "extensions": {"type": "array", "items": STRING}}
)
METADATA_TENSOR = obj(
    {
        "name": STRING,
        "datatype": {"enum": DATATYPES},
        # "Variable-size dimensions are specified as -1."
        "shape": {"type": "array", "items": {"type": "integer", "minimum": -1}},
    }
)
METADATA_MODEL = obj(
    {
        "name": STRING,
        "platform": STRING,
        "inputs": {"type": "array", "items": METADATA_TENSOR},
        "outputs": {"type": "array", "items": METADATA_TENSOR},
    },
    {"versions": {"type": "array", "items": STRING}},
)
READY_MODEL = obj({"name": STRING, "ready": BOOLEAN})
RESPONSE_OUTPUT = obj(
    {
        "name": STRING,
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "datatype": {"enum": DATATYPES},
        "data": {"type": "array"},
    },
    {"parameters": PARAMETERS},
)
INFERENCE_RESPONSE = obj(
    {"model_name": STRING, "outputs": {"type": "array", "items": RESPONSE_OUTPUT}},
    {"model_version": STRING, "id": STRING, "parameters": PARAMETERS},
)

# The answer of each OIP route when it succeeds (by its OpenAPI path).
SUCCESS = {
    "/v2/health/live": LIVE_SERVER,
    "/v2/health/ready": READY_SERVER,
    "/v2": METADATA_SERVER,
    "/v2/models/{name}": METADATA_MODEL,
    "/v2/models/{name}/versions/{version}": METADATA_MODEL,
    "/v2/models/{name}/ready": READY_MODEL,
    "/v2/models/{name}/versions/{version}/ready": READY_MODEL,
    "/v2/models/{name}/infer": INFERENCE_RESPONSE,
    "/v2/models/{name}/versions/{version}/infer": INFERENCE_RESPONSE,
}
