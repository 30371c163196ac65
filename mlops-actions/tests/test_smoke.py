"""`make smoke` against a real server (`python -m ...serve`, as `make serve` runs it): it passes on
the release's own model and names what differs on another one; with a deploy target, production
serves a commit's build as its release tag's version (MODEL_VERSION), which `--version` expects."""

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from mlops_actions.export import convert
from mlops_actions.release import SMOKE_ROWS, golden
from mlops_actions.smoke import error_rate, main

SERVE = "mlops_actions.serve"
NAME = "smoke-model"
BUILD = "3f9a2c1d0e4b"  # a commit's version: the model of an image staging built before any tag


@pytest.fixture(scope="module")
def models(train, train_test, schema, params, tmp_path_factory) -> dict[str, Path]:
    """The release's model, the same model stamped from another commit, a model trained on half
    the rows (another model), and the model as staging builds it (versioned by its commit): each
    as a file."""
    folder = tmp_path_factory.mktemp("models")
    rows, seed = train_test[0], params["base"]["seed"]
    fitted = train(rows, schema, params["train"], seed)
    other = train(rows.iloc[: len(rows) // 2], schema, params["train"], seed)
    files = {
        "released": convert(fitted, schema, model_version="1.2.0", git_sha="a" * 40),
        "restamped": convert(fitted, schema, model_version="1.2.0", git_sha="b" * 40),
        "retrained": convert(other, schema, model_version="1.2.0", git_sha="a" * 40),
        "staged": convert(fitted, schema, model_version=BUILD, git_sha=BUILD + "c" * 28),
    }
    for name, content in files.items():
        (folder / f"{name}.onnx").write_bytes(content)
    return {name: folder / f"{name}.onnx" for name in files}


def write_golden(model: Path, folder: Path, train_test, schema, params) -> Path:
    """The smoke.json `make release-assets` writes for this model, in `folder`."""
    path = folder / "smoke.json"
    path.write_text(
        json.dumps(golden(model.read_bytes(), train_test[1], schema, params["export"], NAME))
    )
    return path


@pytest.fixture(scope="module")
def golden_file(models, train_test, schema, params, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("golden")
    return write_golden(models["released"], folder, train_test, schema, params)


def serving(model: Path, version: str = ""):
    """A server on a free loopback port, started as `make serve` starts it (MODEL_VERSION:
    `version`); yields its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", SERVE, "--model", str(model), "--port", str(port), "--name", NAME],
        env={**os.environ, "MODEL_VERSION": version},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/v2/health/ready", timeout=2).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "no server"
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="module")
def released_url(models):
    yield from serving(models["released"])


def test_the_golden_file_holds_test_rows_and_the_models_answers(golden_file, models, schema):
    content = json.loads(golden_file.read_text())
    assert content["model"]["version"] == "1.2.0"
    assert len(content["records"]) == len(content["predictions"]) == SMOKE_ROWS
    assert list(content["records"][0]) == list(schema.features)
    answer = content["predictions"][0]
    assert set(answer) == ({"label", "probabilities"} if schema.is_classification else {"value"})


def test_smoke_passes_on_the_released_model(released_url, golden_file, capsys):
    assert main([released_url, "--golden", str(golden_file), "--wait", "5"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"smoke: {released_url} serves {NAME} 1.2.0")
    assert f"metadata and {SMOKE_ROWS} golden rows match; 0 of " in line


def one_line_failure(capsys, url: str, golden_file: Path) -> str:
    assert main([url, "--golden", str(golden_file), "--wait", "5"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1, captured.err
    return captured.err.strip()


def test_smoke_names_another_model_file_under_the_same_version(models, golden_file, capsys):
    for url in serving(models["restamped"]):
        error = one_line_failure(capsys, url, golden_file)
    assert error.startswith(f"smoke: {url}: the served model file's sha256 is ")
    assert error.endswith("a different model under the same version")


def test_smoke_names_the_first_row_another_model_predicts_differently(
    models, golden_file, tmp_path, capsys
):
    """Even with metadata that matches (here: the golden file is told the retrained model's
    sha256), the rows catch a model that predicts differently."""
    content = json.loads(golden_file.read_text())
    content["model"]["sha256"] = hashlib.sha256(models["retrained"].read_bytes()).hexdigest()
    told = tmp_path / "smoke.json"
    told.write_text(json.dumps(content))
    for url in serving(models["retrained"]):
        error = one_line_failure(capsys, url, told)
    assert error.startswith(f"smoke: {url}: row "), error
    assert "golden" in error


def test_smoke_names_a_wrong_version_and_a_missing_server(
    released_url, golden_file, tmp_path, capsys
):
    content = json.loads(golden_file.read_text())
    content["model"]["version"] = "1.3.0"
    told = tmp_path / "smoke.json"
    told.write_text(json.dumps(content))
    error = one_line_failure(capsys, released_url, told)
    assert error.endswith("the served model's version is 1.2.0, the release's is 1.3.0")

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        nobody = f"http://127.0.0.1:{probe.getsockname()[1]}"
    assert main([nobody, "--golden", str(golden_file), "--wait", "0.5"]) == 1
    assert "no answer on /v2/health/ready" in capsys.readouterr().err
    assert main([released_url, "--golden", str(tmp_path / "absent.json")]) == 1
    assert "no golden file" in capsys.readouterr().err


@pytest.fixture(scope="module")
def staged_golden(models, train_test, schema, params, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("staged")
    return write_golden(models["staged"], folder, train_test, schema, params)


def smoke_lines(capsys, *argv: str) -> tuple[int, str]:
    code = main([*argv, "--wait", "5"])
    captured = capsys.readouterr()
    assert len((captured.out + captured.err).strip().splitlines()) == 1, captured
    return code, (captured.out + captured.err).strip()


def test_a_build_served_as_its_release_passes_with_that_version(models, staged_golden, capsys):
    """A commit's build served with MODEL_VERSION=1.2.0 (production, after `git tag v1.2.0`):
    the smoke test expects 1.2.0 and still checks the file's sha256; the golden file's own
    version (the build's) is what staging expects, and a version the server was not given, or
    one it lacks, is named without mixing a release's version with a commit's."""
    assert json.loads(staged_golden.read_text())["model"]["version"] == BUILD
    golden_file = str(staged_golden)
    for url in serving(models["staged"], version="1.2.0"):
        code, line = smoke_lines(capsys, url, "--golden", golden_file, "--version", "1.2.0")
        assert code == 0 and line.startswith(f"smoke: {url} serves {NAME} 1.2.0 (build {BUILD}, ")
        code, line = smoke_lines(capsys, url, "--golden", golden_file, "--version", "1.3.0")
        assert code == 1
        assert line.endswith("the served model's version is 1.2.0, the release's is 1.3.0")
        code, line = smoke_lines(capsys, url, "--golden", golden_file)
        assert code == 1 and line.endswith(
            f"the server names version 1.2.0 (MODEL_VERSION) over its model file's own {BUILD}, "
            "which the release expects"
        )
    for url in serving(models["staged"]):
        code, line = smoke_lines(capsys, url, "--golden", golden_file)
        assert code == 0 and line.startswith(f"smoke: {url} serves {NAME} {BUILD} (sha256 ")
        code, line = smoke_lines(capsys, url, "--golden", golden_file, "--version", "1.2.0")
        assert code == 1 and line.endswith(
            f"the server names its model file's own version {BUILD}, not the release's 1.2.0: "
            "MODEL_VERSION=1.2.0 did not reach it"
        )


def test_the_sha256_is_checked_whatever_version_is_served(models, golden_file, capsys):
    """The version is a name; the model file's sha256 is its identity (here the release's
    version is served, by MODEL_VERSION, over another file)."""
    for url in serving(models["retrained"], version="1.3.0"):
        code, line = smoke_lines(capsys, url, "--golden", str(golden_file), "--version", "1.3.0")
    assert code == 1 and line.startswith(f"smoke: {url}: the served model file's sha256 is ")
    assert line.endswith("a different model under the same version")


def test_the_error_rate_counts_5xx_answers_of_every_route():
    text = "\n".join(
        [
            "# TYPE http_requests_total counter",
            'http_requests_total{method="GET",route="/v2/models/{name}",status="200"} 90.0',
            'http_requests_total{method="POST",route="/predict",status="503"} 6.0',
            'http_requests_total{method="POST",route="/predict",status="500"} 2.0',
            'http_requests_total{method="POST",route="/predict",status="400"} 2.0',
            'http_requests_created{method="POST",route="/predict",status="500"} 1.7e+09',
        ]
    )
    assert error_rate(text) == (8, 100)
