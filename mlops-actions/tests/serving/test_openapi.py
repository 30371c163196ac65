"""The server's own OpenAPI document (GET /openapi.json) against the server, by schemathesis with
every check it has, in process (ASGI) and reproducibly (derandomized); each Open Inference
Protocol route's answers against the protocol's response schemas (oip_schemas.py).

schemathesis's positive_data_acceptance (a request valid by the document must succeed) runs on
every request but one kind. JSON Schema cannot say that an infer input's shape[0] equals its
data's length, or that every input has as many rows: a generated infer request is given agreeing
rows before it is sent (`agreeing_rows`, still valid by the document, which the test checks).
Nor can it say, for /predict's columns and data with categorical features, that a value takes
the type of the feature its column names (the columns come in any order): the check is left out
for those requests alone, where the server rightly refuses the mismatches.
"""

import json
import math

import jsonschema_rs
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig

from mlops_actions.serve import App, Limits
from mlops_actions.serve.binary import HEADER

from .asgi_client import INFER, call, records_of, start_up, tensors_of
from .oip_schemas import ERROR, SUCCESS

load_all_checks()
ALL_CHECKS = CHECKS.get_all()
EXAMPLES = 15  # per operation and mode (valid and invalid data): about 400 requests in all
# A refusal of invalid data is any 4xx the document names; 413 (too many rows) among them.
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "negative_data_rejection": {"expected-statuses": ["400", "404", "405", "413", "415"]}
        }
    }
)


@pytest.fixture(scope="module")
def api(served):
    app = start_up(App(served, Limits(max_batch_rows=5)))  # small batches generate fast
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)


schema = schemathesis.pytest.from_fixture("api")


def agreeing_rows(body: dict) -> dict:
    """A generated infer request with every input's rows agreeing with the first input's data:
    shape[0] set to that length (its type kept: 2.0 stays a float) and each data cut or repeated
    to it, flat or nested, so the values keep the types the document gave them."""
    inputs = body["inputs"]
    rows = len(inputs[0]["data"])
    agreeing = [
        {
            **tensor,
            "shape": [type(tensor["shape"][0])(rows), *tensor["shape"][1:]],
            "data": (tensor["data"] * rows)[:rows],
        }
        for tensor in inputs
    ]
    return {**body, "inputs": agreeing}


@pytest.fixture(scope="module")
def infer_request(api):
    """InferRequest's validator, as the document has it."""
    components = api.raw_schema["components"]
    request = {"$ref": "#/components/schemas/InferRequest", "components": components}
    return jsonschema_rs.validator_for(request)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_server_keeps_its_openapi_document(case, served, infer_request):
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    if case.operation.path.endswith("/infer") and positive and isinstance(case.body, dict):
        case.body = agreeing_rows(case.body)
        assert infer_request.is_valid(case.body), case.body
    typed_by_position = (
        served.categorical
        and served.numeric
        and isinstance(case.body, dict)
        and "columns" in case.body
    )
    excluded = [
        check
        for check in ALL_CHECKS
        if typed_by_position and getattr(check, "__name__", "") == "positive_data_acceptance"
    ]
    response = case.call_and_validate(checks=ALL_CHECKS, excluded_checks=excluded)
    assert response.status_code < 500
    oip = SUCCESS.get(case.operation.path)
    if oip is None:
        return
    body = response.json()
    answer = oip if response.status_code in (200, 503) and "error" not in body else ERROR
    jsonschema_rs.validate(answer, body)
    if answer is not ERROR and case.operation.path.endswith("/infer"):
        for output in body["outputs"]:  # the data of a shape, flattened
            assert len(output["data"]) == math.prod(output["shape"]), output


def test_the_document_covers_every_route(api):
    paths = set(api.raw_schema["paths"])
    assert set(SUCCESS) | {"/predict", "/metrics", "/openapi.json"} == paths


def test_the_document_takes_what_the_server_takes(api, served, train_test, schema):
    """Requests the server answers are valid by the document, as a gateway checking requests
    against it would find: inputs in any order (tritonclient sends the caller's; the document
    fixed the model's), nested data; and answers with NaN probabilities (written null)."""
    components = api.raw_schema["components"]

    def valid(name: str, instance: dict) -> bool:
        schema = {"$ref": f"#/components/schemas/{name}", "components": components}
        return jsonschema_rs.validator_for(schema).is_valid(instance)

    app = start_up(App(served))
    records = records_of(train_test[1].head(3), schema)
    tensors = tensors_of(records, served)
    nested = [{**tensor, "data": [[value] for value in tensor["data"]]} for tensor in tensors]
    for inputs in (tensors, tensors[::-1], nested):
        assert valid("InferRequest", {"inputs": inputs}), inputs[0]
        assert call(app, "POST", INFER, {"inputs": inputs}).status == 200
    twice = [*tensors[:-1], tensors[0]]  # one input twice, another missing: refused by both
    assert not valid("InferRequest", {"inputs": twice})
    assert call(app, "POST", INFER, {"inputs": twice}).status == 400
    if served.labels:
        nan = {"label": served.labels[0], "probabilities": dict.fromkeys(served.labels)}
        assert valid("PredictResponse", {"model_version": "1", "predictions": [nan]})


def infer_operations(api) -> list[dict]:
    paths = api.raw_schema["paths"]
    return [item["post"] for path, item in paths.items() if path.endswith("/infer")]


def test_the_json_length_header_is_described_in_words(api, served, train_test, schema):
    """Inference-Header-Content-Length must equal the length of the body's JSON part, which no
    parameter schema can say: typed, the header promised any count (schemathesis sent 1 with a
    JSON body). The document names it in words; the server takes it equal to a JSON body's length
    (the JSON is then all the body, as Triton takes it too) and refuses another count."""
    for operation in infer_operations(api):
        assert HEADER not in [p["name"] for p in operation.get("parameters", [])]
        assert HEADER in operation["description"]
    app = start_up(App(served))
    records = records_of(train_test[1].head(2), schema)
    body = json.dumps({"inputs": tensors_of(records, served)}).encode()
    as_json = {"Content-Type": "application/json"}
    assert call(app, "POST", INFER, body, {**as_json, HEADER: str(len(body))}).status == 200
    for wrong in (0, len(body) - 1):
        assert call(app, "POST", INFER, body, {**as_json, HEADER: str(wrong)}).status == 400


def test_an_octet_stream_body_without_the_header_is_all_json(api, served, train_test, schema):
    """The spec asks for the header when binary data follow the JSON; without it the whole body
    is the JSON, whatever its Content-Type, as Triton reads it. The document gives
    application/octet-stream the JSON's schema (binary data after it described in words), and a
    JSON request sent so is answered as it is as application/json."""
    for operation in infer_operations(api):
        content = operation["requestBody"]["content"]
        assert content["application/octet-stream"] == content["application/json"]
    app = start_up(App(served))
    records = records_of(train_test[1].head(2), schema)
    body = json.dumps({"inputs": tensors_of(records, served)}).encode()
    octet = call(app, "POST", INFER, body, {"Content-Type": "application/octet-stream"})
    assert octet.status == 200, octet.body
    assert octet.json() == call(app, "POST", INFER, body).json()


def test_tensor_parameters_asking_for_a_missing_extension_are_invalid_by_the_document(api):
    """The server refuses an input's or output's `classification` or `shared_memory_region` (400):
    so the document must not call such a request valid (schemathesis's positive check found a
    generated `classification` it accepted)."""
    request = api.raw_schema["components"]["schemas"]["InferRequest"]["properties"]
    tensors = [*request["inputs"]["items"]["oneOf"], request["outputs"]["items"]]
    for tensor in tensors:
        parameters = jsonschema_rs.validator_for(tensor["properties"]["parameters"])
        assert parameters.is_valid({"binary_data_size": 8, "binary_data": True})
        assert not parameters.is_valid({"classification": 2})
        assert not parameters.is_valid({"shared_memory_region": "r"})
