"""A served model for the serving tests: trained as params.yaml says, exported as the pipeline does,
and reached in process (ASGI calls) or over real HTTP (uvicorn on a free loopback port)."""

import socket
import threading
import time

import pytest
import uvicorn
from asgi_client import MODEL_NAME, start_up

from {{ cookiecutter.module_name }}.serve import App, Limits, ServedModel
from {{ cookiecutter.module_name }}.stages.export import convert
from {{ cookiecutter.module_name }}.stages.train import train


@pytest.fixture(scope="session")
def fitted(train_test, schema, params):
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
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        App(served), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    yield f"127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
