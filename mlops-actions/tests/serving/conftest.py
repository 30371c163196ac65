"""A served model for the serving tests: trained as params.yaml says, exported as the pipeline does,
and reached in process (ASGI calls) or over real HTTP (uvicorn on a free loopback port)."""

import pytest

from mlops_actions.export import convert
from mlops_actions.serve import App, Limits, ServedModel

from .asgi_client import MODEL_NAME, running, start_up


@pytest.fixture(scope="session")
def fitted(train, train_test, schema, params):
    return train(train_test[0], schema, params["train"], params["base"]["seed"])


@pytest.fixture(scope="session")
def onnx_bytes(fitted, schema) -> bytes:
    return convert(fitted, schema, model_version="1.2.0", git_sha="0" * 40)


@pytest.fixture(scope="session")
def served(onnx_bytes) -> ServedModel:
    return ServedModel(onnx_bytes, MODEL_NAME)


@pytest.fixture
def app(served) -> App:
    return start_up(App(served, Limits(max_batch_rows=50, max_body_bytes=64 * 1024)))


@pytest.fixture(scope="session")
def server_url(served):
    """The app behind a real uvicorn server, as `make serve` runs it."""
    limits = Limits()
    with running(App(served, limits), limits) as (host, port):
        yield f"{host}:{port}"
