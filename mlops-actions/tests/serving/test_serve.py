"""The serving app: the Open Inference Protocol v2 contract (with a real Triton client), /predict,
/metrics, readiness, and bad input answered with a 4xx that names the problem, never a 5xx."""

import json
import math
import re
import struct

import numpy as np
import pytest
import tritonclient.http as triton
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from mlops_actions.drift import batch_from_logs
from mlops_actions.features import model_inputs
from mlops_actions.serve import (
    App,
    Limits,
    ModelLoadError,
    PredictionLog,
    ServedModel,
    main,
)
from mlops_actions.serve.settings import parse

from .asgi_client import (
    INFER,
    MODEL_NAME,
    binary_body,
    call,
    call_together,
    model_runs,
    records_of,
    start_up,
    tensors_of,
)


def expected(fitted, frame, schema):
    inputs = model_inputs(frame, schema)
    return fitted.predict_proba(inputs) if schema.is_classification else fitted.predict(inputs)


@pytest.fixture
def rows(train_test, schema):
    frame = train_test[1].head(8).dropna(subset=[*schema.numeric]).reset_index(drop=True)
    return frame, records_of(frame, schema)


def test_not_ready_until_the_model_is_warm(served):
    app = App(served)
    assert call(app, "GET", "/v2/health/live").status == 200
    assert call(app, "GET", "/v2/health/ready").status == 503
    assert call(app, "GET", f"/v2/models/{MODEL_NAME}/ready").status == 503
    start_up(app)
    assert call(app, "GET", "/v2/health/ready").json() == {"ready": True}
    assert call(app, "GET", f"/v2/models/{MODEL_NAME}/ready").status == 200


def test_refuses_to_start_without_a_loadable_model(tmp_path, capsys):
    with pytest.raises(SystemExit) as missing:
        main(["--model", str(tmp_path / "absent.onnx")])
    assert "absent.onnx not found" in str(missing.value)
    corrupt = tmp_path / "model.onnx"
    corrupt.write_bytes(b"not an onnx model")
    with pytest.raises(SystemExit) as bad:
        main(["--model", str(corrupt)])
    assert "is not a loadable ONNX model" in str(bad.value)
    assert "\n" not in str(bad.value)
    with pytest.raises(ModelLoadError, match="cannot be read"):
        ServedModel.load(tmp_path, "a-directory")


def refused(argv: list[str], capsys) -> str:
    """What the server says when it will not start with these settings: one line."""
    with pytest.raises(SystemExit):
        main(argv)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("python -m "), err
    return err


def test_bad_settings_are_named(monkeypatch, capsys):
    """Each bad setting stops the server with one line naming its variable: a usage block came
    first and named only the flag, nan passed as a timeout (uvicorn then failed every request),
    a port past 65535 was wrapped to another, and a name with a slash left every model route a
    404 while the health checks passed."""
    monkeypatch.setenv("PORT", "eighty")
    assert "PORT (--port): invalid int value: 'eighty'" in refused([], capsys)
    monkeypatch.setenv("PORT", "8080")
    monkeypatch.setenv("MAX_BODY_BYTES", "2MiB")
    assert "MAX_BODY_BYTES (--max-body-bytes): invalid int value" in refused([], capsys)
    monkeypatch.delenv("MAX_BODY_BYTES")
    assert "MAX_BATCH_ROWS must be positive" in refused(["--max-batch-rows", "0"], capsys)
    err = refused(["--body-timeout", "0", "--max-connections", "-1"], capsys)
    assert "BODY_TIMEOUT, MAX_CONNECTIONS must be positive" in err
    for value in ("nan", "inf", "-inf"):
        monkeypatch.setenv("HEADER_TIMEOUT", value)
        assert "HEADER_TIMEOUT must be positive (and a finite" in refused([], capsys), value
    monkeypatch.delenv("HEADER_TIMEOUT")
    for port in ("0", "65536", "99999"):
        assert "PORT must be 1 to 65535" in refused(["--port", port], capsys)
    for name in ("iris/v1", "", "-x", "a b"):
        assert "is not a model name" in refused([f"--name={name}"], capsys), name
    monkeypatch.setenv("KEEP_ALIVE_TIMEOUT", "2.5")  # seconds, as every timeout takes them
    assert parse([], "serve").keep_alive_timeout == 2.5


@pytest.mark.parametrize("binary", [True, False], ids=["binary-data", "json"])
def test_a_triton_client_reads_metadata_and_infers(
    server_url, served, fitted, rows, schema, binary
):
    """tritonclient speaks OIP v2 as KServe and Triton do; it works here unchanged: with its
    defaults (tensors sent as binary data, every output asked for as binary data) and as JSON,
    for a small batch and one whose body passes 64 KiB (the default model's, as binary data:
    decoded in the inference thread)."""
    frame, records = rows
    client = triton.InferenceServerClient(server_url)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(MODEL_NAME) and client.is_model_ready(MODEL_NAME, "1.2.0")
    metadata = client.get_model_metadata(MODEL_NAME)
    assert [item["name"] for item in metadata["inputs"]] == list(schema.features)
    want = expected(fitted, frame, schema)
    for copies in (1, 1000 // len(records)):
        inputs = []
        for tensor in tensors_of(records * copies, served):
            item = triton.InferInput(tensor["name"], tensor["shape"], tensor["datatype"])
            dtype = object if tensor["datatype"] == "BYTES" else np.float32
            array = np.array(tensor["data"], dtype=dtype).reshape(-1, 1)
            if binary:
                item.set_data_from_numpy(array)  # binary_data=True: tritonclient's default
            else:
                item.set_data_from_numpy(array, binary_data=False)
            inputs.append(item)
        if binary:  # no outputs named: tritonclient asks for all, as binary data
            result = client.infer(MODEL_NAME, inputs, model_version="1.2.0")
        else:
            outputs = [triton.InferRequestedOutput(n, binary_data=False) for n in served.outputs]
            result = client.infer(MODEL_NAME, inputs, outputs=outputs, model_version="1.2.0")
        repeated = np.concatenate([want] * copies)
        if schema.is_classification:
            probabilities = result.as_numpy("probabilities")
            np.testing.assert_allclose(probabilities, repeated, atol=1e-4)
            labels = [str(label) for label in fitted.classes_[repeated.argmax(axis=1)]]
            got = [v.decode() if binary else v for v in result.as_numpy("label").ravel()]
            assert got == labels
        else:
            np.testing.assert_allclose(result.as_numpy("variable").ravel(), repeated, rtol=1e-4)
    client.close()


def test_the_readme_examples_for_many_rows_run_as_written(
    server_url, served, fitted, train_test, schema, project
):
    """The README's two ways to send a pandas frame (columns and data to /predict, and
    tritonclient's binary tensor data to infer) run unchanged against a real server, gaps
    included, and answer what scikit-learn predicts."""
    readme = (project / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    frame = train_test[1]
    want = expected(fitted, frame, schema)
    for marker in ('orient="split"', "tritonclient"):
        [code] = [block for block in blocks if marker in block]
        code = code.replace("localhost:8080", server_url)
        code = code.replace(f'"{project.name}"', f'"{MODEL_NAME}"')
        scope = {"frame": frame, "features": list(schema.features)}
        exec(code, scope)
        if "predictions" in scope:
            got = [
                list(p["probabilities"].values()) if schema.is_classification else p["value"]
                for p in scope["predictions"]
            ]
        else:
            got = scope["probabilities" if schema.is_classification else "values"]
        np.testing.assert_allclose(np.asarray(got).reshape(want.shape), want, rtol=1e-4, atol=1e-4)


def test_binary_tensor_data_answers_as_json_does(app, served, rows):
    """Inputs as binary data after the JSON give the JSON request's answer; outputs are binary
    data when asked (all: `binary_data_output`; one by one: `binary_data`, which wins), read
    here by tritonclient's own parser."""
    _, records = rows
    tensors = tensors_of(records, served)
    want = call(app, "POST", INFER, {"inputs": tensors}).json()
    body, headers = binary_body(tensors)
    got = call(app, "POST", INFER, body, headers)
    assert got.status == 200 and got.headers["content-type"] == "application/json", got.body
    assert "inference-header-content-length" not in got.headers
    assert got.json() == want
    names = list(served.outputs)

    def asked(first: bool | None, rest: bool | None) -> list[dict]:
        return [
            {"name": name} if flag is None else {"name": name, "parameters": {"binary_data": flag}}
            for name, flag in zip(names, [first] + [rest] * (len(names) - 1), strict=True)
        ]

    everything = {"parameters": {"binary_data_output": True}}
    for fields, binary in (
        (everything, set(names)),
        ({"outputs": asked(True, None)}, {names[0]}),
        ({**everything, "outputs": asked(False, None)}, set(names[1:])),
        ({**everything, "outputs": asked(None, False)}, {names[0]}),
    ):
        for sent, extra in (binary_body(tensors, **fields), ({"inputs": tensors, **fields}, None)):
            got = call(app, "POST", INFER, sent, extra)
            assert got.status == 200, got.body
            if not binary:  # a model with one output, asked for as JSON
                assert got.headers["content-type"] == "application/json", fields
                assert got.json() == want
                continue
            assert got.headers["content-type"] == "application/octet-stream", fields
            length = int(got.headers["inference-header-content-length"])
            header = json.loads(got.body[:length])
            assert {o["name"] for o in header["outputs"] if "parameters" in o} == binary
            assert {o["name"] for o in header["outputs"] if "data" in o} == set(names) - binary
            result = triton.InferResult.from_response_body(got.body, header_length=length)
            for output in want["outputs"]:
                values = result.as_numpy(output["name"])
                assert list(values.shape) == output["shape"]
                if output["datatype"] == "BYTES":
                    values = [v.decode() if isinstance(v, bytes) else v for v in values.ravel()]
                    assert values == output["data"]
                else:
                    wanted = np.array(output["data"], dtype=np.float32)
                    np.testing.assert_array_equal(values.ravel(), wanted)


def test_malformed_binary_tensor_data_gets_a_400_naming_it(app, served, rows):
    _, records = rows
    tensors = tensors_of(records[:2], served)
    body, headers = binary_body(tensors)
    length = int(headers["Inference-Header-Content-Length"])
    document, data = json.loads(body[:length]), body[length:]

    def sent(changed: dict, binary: bytes = data) -> tuple[bytes, dict]:
        text = json.dumps(changed).encode()
        return text + binary, {"Inference-Header-Content-Length": str(len(text))}

    def first_input(**parameters) -> dict:
        described = [dict(tensor) for tensor in document["inputs"]]
        described[0] = {**described[0], "parameters": parameters}
        return {"inputs": described}

    size = document["inputs"][0]["parameters"]["binary_data_size"]
    cases = [
        (body, {"Inference-Header-Content-Length": "12a"}, "must be a byte count"),
        (body, {"Inference-Header-Content-Length": str(len(body) + 1)}, "the body has"),
        (body + b"\0", headers, "1 bytes after the JSON belong to no input"),
        (body[:-1], headers, "bytes are left after the JSON"),
        (json.dumps(document).encode(), None, "needs the Inference-Header-Content-Length"),
        (*sent(first_input(binary_data_size="8")), "whole number of bytes"),
        (*sent(first_input(binary_data_size=True)), "whole number of bytes"),
        (*sent(first_input(binary_data_size=-1)), "whole number of bytes"),
        (*sent(first_input()), "no data - at `$.inputs[0]`"),
        (*sent({**document, "parameters": {"binary_data_output": "yes"}}), "true or false"),
        (*sent({**document, "outputs": [{"name": next(iter(served.outputs)),
                                        "parameters": {"binary_data": 1}}]}), "true or false"),
        (*sent({**document, "outputs": [{"name": next(iter(served.outputs)),
                                        "parameters": {"classification": 2}}]}),
         "classification asks for the classification extension"),
        (*sent(first_input(shared_memory_region="r", binary_data_size=size)),
         "the shared-memory extension"),
    ]  # fmt: skip
    together = first_input(binary_data_size=size)
    together["inputs"][0]["data"] = tensors[0]["data"]
    cases.append((*sent(together), "data and binary_data_size together"))
    numeric = [t for t in tensors if t["datatype"] == "FP32"]
    if numeric:
        odd = [{**t, "data": [math.inf, *t["data"][1:]]} if t is numeric[0] else t for t in tensors]
        cases.append((*binary_body(odd), "row 0 is infinite"))
        short = [{**t, "data": t["data"][:1]} if t is numeric[0] else t for t in tensors]
        cases.append((*binary_body(short), "binary_data_size is 4"))
    text = [t for t in tensors if t["datatype"] == "BYTES"]
    if text:
        position = tensors.index(text[0])
        start = sum(d["parameters"]["binary_data_size"] for d in document["inputs"][:position])
        element = struct.pack("<I", 2)
        for broken, message in (
            (element + b"\xff\xfe", "element 0 is not UTF-8"),
            (element + b"ab" + struct.pack("<I", 9) + b"x", "element 1 runs past"),
            (element + b"ab" + element + b"cd" + b"!", "1 bytes of binary data after its 2"),
            (element + b"ab", "ends before element 1"),
        ):
            inputs = [dict(d) for d in document["inputs"]]
            inputs[position] = {**inputs[position], "parameters": {"binary_data_size": len(broken)}}
            end = start + document["inputs"][position]["parameters"]["binary_data_size"]
            cases.append((*sent({"inputs": inputs}, data[:start] + broken + data[end:]), message))
    for content, extra, message in cases:
        response = call(app, "POST", INFER, content, extra)
        assert response.status == 400, (message, response.body)
        assert message in response.json()["error"], (message, response.body)
    octet = {**headers, "Content-Type": "application/octet-stream"}
    assert call(app, "POST", INFER, body, octet).status == 200
    gzip = call(app, "POST", INFER, body, {**headers, "Content-Encoding": "gzip"})
    assert gzip.status == 415 and "Content-Encoding 'gzip'" in gzip.json()["error"]
    # Binary data without the header: the body is read as all JSON, and the error says why.
    headless = call(app, "POST", INFER, body, {"Content-Type": "application/octet-stream"})
    assert headless.status == 400, headless.body
    assert "binary data after the JSON needs the Inference-Header" in headless.json()["error"]
    on_predict = call(app, "POST", "/predict", {"records": records[:1]}, headers)
    assert on_predict.status == 400 and "only infer takes" in on_predict.json()["error"]


def test_a_shape_of_whole_floats_reads_as_its_integers(app, served, rows):
    """JSON Schema's integer takes 2.0 (this server's document and OIP's own REST schema type
    shape so): [2.0, 1.0] is two rows, in JSON or with binary data; 2.5 is refused where it is."""
    _, records = rows
    tensors = tensors_of(records[:2], served)
    as_ints = call(app, "POST", INFER, {"inputs": tensors})
    floats = [{**tensor, "shape": [2.0, 1.0]} for tensor in tensors]
    for body, headers in (({"inputs": floats}, None), binary_body(floats)):
        response = call(app, "POST", INFER, body, headers)
        assert response.status == 200, response.body
        assert response.json() == as_ints.json()
    halves = call(app, "POST", INFER, {"inputs": [{**tensors[0], "shape": [2.5, 1]}, *tensors[1:]]})
    assert halves.status == 400, halves.body
    assert "got 2.5 - at `$.inputs[0].shape[0]`" in halves.json()["error"]


def test_oip_documents_as_the_spec_describes(app, served, rows):
    assert call(app, "GET", "/v2").json() == {
        "name": MODEL_NAME,
        "version": "1.2.0",
        "extensions": ["binary_tensor_data"],
    }
    metadata = call(app, "GET", f"/v2/models/{MODEL_NAME}/versions/1.2.0").json()
    assert metadata["versions"] == ["1.2.0"] and metadata["platform"] == "onnxruntime_onnx"
    assert {item["datatype"] for item in metadata["inputs"]} <= {"FP32", "BYTES"}
    _, records = rows
    first = list(served.outputs)[-1]
    body = {"id": "req-1", "inputs": tensors_of(records, served), "outputs": [{"name": first}]}
    response = call(app, "POST", INFER, body)
    assert response.status == 200, response.body
    answer = response.json()
    assert answer["id"] == "req-1" and answer["model_version"] == "1.2.0"
    [output] = answer["outputs"]
    assert output["name"] == first and output["shape"][0] == len(records)
    assert len(output["data"]) == math.prod(output["shape"])
    assert call(app, "GET", f"/v2/models/{MODEL_NAME}/versions/0.0.1").status == 404
    assert call(app, "POST", "/v2/models/other-model/infer", body).status == 404


def test_predict_answers_by_feature_name(app, fitted, rows, schema):
    frame, records = rows
    response = call(app, "POST", "/predict", {"records": records})
    assert response.status == 200, response.body
    answer = response.json()
    assert answer["model_version"] == "1.2.0"
    want = expected(fitted, frame, schema)
    if schema.is_classification:
        got = [
            [p["probabilities"][str(label)] for label in fitted.classes_]
            for p in answer["predictions"]
        ]
        np.testing.assert_allclose(got, want, atol=1e-4)
    else:
        got = [prediction["value"] for prediction in answer["predictions"]]
        np.testing.assert_allclose(got, want, rtol=1e-4)


def test_predict_takes_null_as_a_gap(app, rows, schema):
    _, records = rows
    gaps = dict.fromkeys(schema.features)
    response = call(app, "POST", "/predict", {"records": [gaps, records[0]]})
    assert response.status == 200, response.body
    assert len(response.json()["predictions"]) == 2


def test_predict_takes_columns_and_data_in_any_order(app, rows, schema):
    """pandas' split orientation (`df.to_json(orient="split")`): each value's feature is its
    column's; any column order, null a gap, the index left aside; the answers are the records'."""
    frame, records = rows
    records = [dict.fromkeys(schema.features), *records]  # the first row is all gaps
    want = call(app, "POST", "/predict", {"records": records})
    assert want.status == 200, want.body
    names = list(schema.features)
    for columns in (names, names[::-1], names[1:] + names[:1]):
        data = [[record[name] for name in columns] for record in records]
        for body in (
            {"columns": columns, "data": data},
            {"index": list(range(len(data))), "columns": columns, "data": data},
        ):
            response = call(app, "POST", "/predict", body)
            assert response.status == 200, response.body
            assert response.json() == want.json()
    # pandas itself writes it
    split = json.loads(frame[names].to_json(orient="split", double_precision=15))
    assert set(split) == {"columns", "index", "data"}
    response = call(app, "POST", "/predict", split)
    assert response.status == 200, response.body
    assert response.json()["predictions"] == want.json()["predictions"][1:]


def test_requests_one_after_another_each_get_their_own_answer(app, rows, schema):
    """Small batches reuse their arrays from one request to the next (Codec.numeric_feed): each
    request's answer is still its own rows', gaps included, whatever came before."""
    _, records = rows
    records = [dict.fromkeys(schema.features), *records]  # the first row is all gaps
    whole = call(app, "POST", "/predict", {"records": records}).json()["predictions"]
    for size in (1, 2, 1, 3, 2):
        for start in range(len(records) - size + 1):
            response = call(app, "POST", "/predict", {"records": records[start : start + size]})
            assert response.status == 200, response.body
            got, want = response.json()["predictions"], whole[start : start + size]
            if schema.is_classification:
                assert [p["label"] for p in got] == [p["label"] for p in want]
                got = [list(p["probabilities"].values()) for p in got]
                want = [list(p["probabilities"].values()) for p in want]
            else:
                got, want = [p["value"] for p in got], [p["value"] for p in want]
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_a_feed_run_off_the_event_loop_is_never_reused(served, rows, schema):
    """Only batches the event loop runs itself (up to INLINE_ROWS rows) reuse arrays; a larger
    one goes to the inference thread, and a later request must not overwrite its feed."""
    if not schema.numeric:
        pytest.skip("no numeric feature")
    _, records = rows
    codec = App(served, Limits(inline_rows=1)).codec
    first = json.dumps({"records": records[:2]}).encode()
    feed, _, _ = codec.predict_feed(first, keep=True)
    before = {name: array.copy() for name, array in feed.items()}
    codec.predict_feed(json.dumps({"records": records[2:4]}).encode(), keep=True)
    for name, array in feed.items():
        np.testing.assert_array_equal(array, before[name])


def mixed_requests(records: list[dict], served: ServedModel) -> list[tuple]:
    """/predict and infer requests of 1 to 3 rows, overlapping, as many clients send them."""
    requests = []
    for start in range(len(records) - 2):
        size = 1 + start % 3
        part = records[start : start + size]
        requests.append(("POST", "/predict", {"records": part}))
        requests.append(("POST", INFER, {"inputs": tensors_of(part, served)}))
    return requests


@pytest.mark.parametrize("coalesce_rows", [256, 4, 0])
def test_requests_waiting_at_once_share_model_calls_and_keep_their_own_answers(
    served, rows, coalesce_rows
):
    """Requests started together run as one model call per route (up to COALESCE_ROWS rows; 0:
    each alone), and each answer is the one that request gets alone."""
    _, records = rows
    requests = mixed_requests(records, served)
    app = start_up(App(served, Limits(coalesce_rows=coalesce_rows)))
    alone = [call(app, *request).json() for request in requests]
    before = model_runs(app)
    assert before == len(requests)  # one by one: a call each
    together = call_together(app, requests)
    assert [response.status for response in together] == [200] * len(requests)
    for got, want in zip(together, alone, strict=True):
        got = got.json()
        if "predictions" in want:
            assert [p.get("label") for p in got["predictions"]] == [
                p.get("label") for p in want["predictions"]
            ]
            got_values = [p.get("value", p.get("probabilities")) for p in got["predictions"]]
            want_values = [p.get("value", p.get("probabilities")) for p in want["predictions"]]
            if served.labels:
                got_values = [list(v.values()) for v in got_values]
                want_values = [list(v.values()) for v in want_values]
            np.testing.assert_allclose(got_values, want_values, rtol=1e-5, atol=1e-6)
        else:
            for got_output, want_output in zip(got["outputs"], want["outputs"], strict=True):
                assert got_output["shape"] == want_output["shape"]
                if want_output["datatype"] == "BYTES":
                    assert got_output["data"] == want_output["data"]
                else:
                    np.testing.assert_allclose(
                        got_output["data"], want_output["data"], rtol=1e-5, atol=1e-6
                    )
    sizes = [1 + start % 3 for start in range(len(records) - 2)]
    assert model_runs(app) - before == 2 * expected_runs(sizes, coalesce_rows)
    if coalesce_rows >= sum(sizes):
        assert model_runs(app) - before == 2  # one call per route


def expected_runs(sizes: list[int], coalesce_rows: int) -> int:
    """Model calls for requests of these sizes arriving together: a request of more than half of
    COALESCE_ROWS runs alone (nothing else would fit), the others fill batches in arrival order."""
    runs = waiting = 0
    for size in sizes:
        if size * 2 > coalesce_rows:
            runs += 1
            continue
        if waiting + size > coalesce_rows:
            runs, waiting = runs + 1, 0
        waiting += size
    return runs + (waiting > 0)


def test_a_failed_batch_answers_each_of_its_requests_and_the_next_batch_runs(
    served, rows, monkeypatch
):
    """A model call that fails (a bug of ours) fails each request that waited for it with a 500,
    and is gone: the next requests run."""
    _, records = rows
    requests = [("POST", "/predict", {"records": records[i : i + 1]}) for i in range(4)]
    app = start_up(App(served))
    run = served.run

    def failing(feed):
        raise RuntimeError("the model failed")

    monkeypatch.setattr(served, "run", failing)
    failed = call_together(app, requests)
    assert [response.status for response in failed] == [500] * 4
    assert all("internal error" in response.json()["error"] for response in failed)
    monkeypatch.setattr(served, "run", run)
    assert [response.status for response in call_together(app, requests)] == [200] * 4


def test_answers_carry_every_number_and_null_for_the_rest(served, rows):
    """/predict's answer is written from pieces made once; it must parse to what a JSON encoder
    writes for the same predictions, NaN and infinity as null (strict JSON has neither)."""
    _, records = rows
    codec = App(served).codec
    feed, _, _ = codec.predict_feed(json.dumps({"records": records[:3]}).encode())
    outputs = served.run(feed)
    assert json.loads(codec.predict_reply(outputs)) == {
        "model_version": served.version,
        "predictions": codec.predictions(outputs),
    }
    name = "probabilities" if served.labels else "variable"
    outputs[name].flat[:2] = [np.nan, np.inf]
    answer = json.loads(codec.predict_reply(outputs))["predictions"]
    if served.labels:
        assert list(answer[0]["probabilities"].values())[:2] == [None, None]
    else:
        assert [answer[0]["value"], answer[1]["value"]] == [None, None]


def bad_requests(served: ServedModel, record: dict) -> list[tuple]:
    """(method, path, body, headers, status, what the error must say)."""
    first = next(iter(served.features))
    wrong = "text" if served.features[first] == "numeric" else 5
    tensors = tensors_of([record], served)
    names, last = list(record), list(record)[-1]
    row = list(record.values())
    split = {"columns": names, "data": [row]}
    # Nested data with a wrong value in its second row: named there, not at its first.
    nested_wrong = {**tensors[0], "shape": [2, 1], "data": [tensors[0]["data"], [wrong]]}
    with_target = {"columns": [*names, "target"], "data": [[*row, 0]]}
    short = {"columns": names[1:], "data": [row[1:]]}
    nested_long = {**tensors[0], "shape": [2, 1], "data": [tensors[0]["data"], [row[0], row[0]]]}
    # Data without columns and a wrong value: typed as it is decoded when every feature is a
    # number, so that is named; otherwise the missing columns (never a missing feature).
    no_columns = "without 'columns'" if served.categorical else "$.data[0][0]`"
    nan_tensor = {**tensors[0], "data": [-math.inf]}  # Python's json writes it: not JSON
    return [
        ("POST", "/predict", b"{", None, 400, "malformed JSON"),
        ("POST", "/predict", b"\xff\xfe", None, 400, "malformed JSON"),
        ("POST", "/predict", {"records": [{**record, first: math.nan}]}, None, 400, "NaN"),
        ("POST", INFER, {"inputs": [nan_tensor, *tensors[1:]]}, None, 400, "NaN"),
        ("POST", "/predict", None, None, 400, "empty body"),
        ("POST", "/predict", {"records": 3}, None, 400, '{"records"'),
        ("POST", "/predict", [record], None, 400, '{"records"'),
        ("POST", "/predict", {"records": []}, None, 400, "empty batch"),
        ("POST", "/predict", {"records": [{**record, "colour": 1}]}, None, 400, "unknown feature"),
        ("POST", "/predict", {"records": [{}]}, None, 400, "missing feature `"),
        ("POST", "/predict", {"records": [{**record, first: wrong}]}, None, 400, f".{first}`"),
        ("POST", "/predict", {"records": [{**record, first: [1]}]}, None, 400, f".{first}`"),
        ("POST", "/predict", {"records": [record] * 51}, None, 413, "maximum of 50"),
        ("POST", "/predict", b" " * (65 * 1024), None, 413, "limit"),
        ("POST", "/predict", {"records": ["row"]}, None, 400, "$.records[0]"),
        ("POST", "/predict", {}, None, 400, "no rows"),
        ("POST", "/predict", {"columns": names}, None, 400, "'columns' without 'data'"),
        ("POST", "/predict", {"data": [row]}, None, 400, "'data' without 'columns'"),
        ("POST", "/predict", {"data": [[wrong] * len(row)]}, None, 400, no_columns),
        ("POST", "/predict", {**split, "records": [record]}, None, 400, "together"),
        ("POST", "/predict", {**split, "columns": [*names, "x"]}, None, 400, "unknown feature 'x'"),
        ("POST", "/predict", {**split, "columns": [*names[1:], last]}, None, 400, "twice"),
        ("POST", "/predict", {**split, "columns": names[1:]}, None, 400, f"feature {first!r}"),
        # A frame sent with a column too many, or one too few: the column is named, not the row.
        ("POST", "/predict", with_target, None, 400, "unknown feature 'target'"),
        ("POST", "/predict", short, None, 400, f"missing feature {first!r}"),
        ("POST", "/predict", {**split, "data": [row[1:]]}, None, 400, "$.data[0]"),
        ("POST", "/predict", {**split, "data": [[wrong, *row[1:]]]}, None, 400, f"{first!r})"),
        ("POST", "/predict", {**split, "data": row}, None, 400, "$.data[0]`"),
        ("POST", "/predict", {**split, "data": []}, None, 400, "empty batch"),
        ("POST", "/predict", {**split, "data": [row] * 51}, None, 413, "maximum of 50"),
        ("POST", "/predict", {**split, "index": 3}, None, 400, "$.index"),
        ("GET", "/predict", None, None, 405, "not allowed"),
        ("GET", "/nowhere", None, None, 404, "no route"),
        ("POST", INFER, {"inputs": []}, None, 400, "non-empty list"),
        ("POST", INFER, {"inputs": tensors[1:]}, None, 400, f"missing input {first}"),
        ("POST", INFER, {"inputs": [*tensors[:-1], tensors[0]]}, None, 400, "twice"),
        ("POST", INFER, {"inputs": [*tensors, tensors[0]]}, None, 400, "$.inputs"),
        ("POST", INFER, {"inputs": [{**tensors[0], "datatype": "INT8"}]}, None, 400, "datatype"),
        ("POST", INFER, {"inputs": [{**tensors[0], "shape": [1, 2]}]}, None, 400, "shape"),
        ("POST", INFER, {"inputs": [{**tensors[0], "shape": [3, 1]}]}, None, 400, "needs 3"),
        ("POST", INFER, {"inputs": [nested_wrong, *tensors[1:]]}, None, 400, ".data[1][0]`"),
        ("POST", INFER, {"inputs": [nested_long, *tensors[1:]]}, None, 400, ".data[1]`"),
        ("POST", INFER, {"inputs": [{**tensors[0], "name": "x"}]}, None, 400, "unknown input"),
        ("POST", INFER, {"inputs": tensors, "outputs": [{"name": "y"}]}, None, 400, "output"),
    ]


def test_an_empty_output_list_asks_for_every_output(app, served, rows):
    """The protocol answers every output when none is named; an empty list ran the model and
    answered none."""
    _, records = rows
    tensors = tensors_of(records[:2], served)
    every = call(app, "POST", INFER, {"inputs": tensors})
    empty = call(app, "POST", INFER, {"inputs": tensors, "outputs": []})
    assert empty.status == every.status == 200, empty.body
    assert [o["name"] for o in empty.json()["outputs"]] == list(served.outputs)
    assert empty.json()["outputs"] == every.json()["outputs"]


def test_bad_input_gets_a_4xx_naming_the_problem(app, served, rows):
    _, records = rows
    for method, path, body, headers, status, message in bad_requests(served, records[0]):
        response = call(app, method, path, body, headers)
        assert response.status == status, (path, body, response.body)
        assert message in response.json()["error"], (message, response.body)


@pytest.mark.parametrize("form", ["records", "columns"])
def test_numbers_beyond_float32_are_refused(served, rows, schema, form):
    """A number float32 cannot hold is refused and named, in a one-row body decoded on the event
    loop and in a large one decoded in the inference thread (`Codec.predict_feed`, which checks
    the range after packing); float32's largest value itself is taken."""
    if not schema.numeric:
        pytest.skip("no numeric feature")
    _, records = rows
    app = start_up(App(served, Limits(max_batch_rows=100_000, max_body_bytes=2**24)))
    feature = schema.numeric[0]

    def body(size: int, value: str) -> tuple[bytes, str]:
        """`size` rows, the last one's `feature` set to `value`; where an error must point."""
        batch = [dict(record) for record in (records * (size // len(records) + 1))[:size]]
        batch[-1][feature] = "VALUE"
        if form == "records":
            document, where = {"records": batch}, f"$.records[{size - 1}].{feature}"
        else:
            columns = list(batch[0])
            document = {"columns": columns, "data": [list(row.values()) for row in batch]}
            where = f"$.data[{size - 1}][{columns.index(feature)}]"
        return json.dumps(document).replace('"VALUE"', value).encode(), where

    large = 1
    while len(body(large, "0")[0]) <= 64 * 1024:  # past INLINE_BODY_BYTES: the thread's path
        large *= 2
    refused = (
        ("1e39", "within float32"),
        ("3.4028235e38", "within float32"),  # float32 would round it down to its largest value
        ("-1" + "0" * 400, "out of range"),
    )
    for size in (1, large):
        for value, message in (*refused, ("3.4028234663852886e38", None)):
            text, where = body(size, value)
            response = call(app, "POST", "/predict", text)
            if message is None:
                assert response.status == 200, response.body
                continue
            error = response.json()["error"]
            assert response.status == 400 and message in error, (size, value, error)
            assert where in error, (where, error)


def test_metrics_follow_prometheus_conventions(app, served, rows):
    _, records = rows
    call(app, "POST", "/predict", {"records": records})
    call(app, "POST", "/predict", b"{")
    call(app, "GET", f"/v2/models/{MODEL_NAME}")
    response = call(app, "GET", "/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.body.decode())
        for sample in family.samples
    }

    def value(metric, /, **labels):
        return samples[(metric, tuple(sorted(labels.items())))]

    assert value("http_requests_total", route="/predict", method="POST", status="200") == 1
    assert value("http_requests_total", route="/predict", method="POST", status="400") == 1
    # The route template, not the raw path, so model names cannot multiply the series.
    assert value("http_requests_total", route="/v2/models/{name}", method="GET", status="200") == 1
    assert value("http_request_duration_seconds_count", route="/predict", method="POST") == 2
    info = value("model_info", name=MODEL_NAME, version="1.2.0", sha256=served.sha256)
    assert info == 1
    assert value("model_predicted_rows_total") == len(records)


def test_latency_buckets_hold_their_bounds(served):
    """A request that took exactly a bucket's bound counts in that bucket (Prometheus `le`)."""
    app = start_up(App(served))
    for seconds in (0.0005, 0.00051, 2.5, 9.0):
        app.metrics.observe("/predict", "POST", 200, seconds)
    buckets = {
        sample.labels["le"]: sample.value
        for family in text_string_to_metric_families(call(app, "GET", "/metrics").body.decode())
        for sample in family.samples
        if sample.name == "http_request_duration_seconds_bucket"
        and sample.labels["route"] == "/predict"
    }
    assert (buckets["0.0005"], buckets["0.001"], buckets["2.5"], buckets["+Inf"]) == (1, 2, 3, 4)


def test_predictions_are_logged_for_drift_checks(served, rows, schema, tmp_path):
    log = tmp_path / "predictions.jsonl"
    app = start_up(App(served, prediction_log=PredictionLog(str(log), 1.0, served.version)))
    _, records = rows
    call(app, "POST", "/predict", {"records": records[:3]}, {"X-Request-ID": "req-7"})
    call(app, "POST", INFER, {"inputs": tensors_of(records[:2], served)})
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == 5
    assert [line["request_id"] for line in lines[:3]] == ["req-7"] * 3
    assert {line["model_version"] for line in lines} == {"1.2.0"}
    assert all(set(line["features"]) == set(schema.features) for line in lines)
    assert all(line["latency_ms"] >= 0 for line in lines)
    assert all(("label" in line["outputs"]) == schema.is_classification for line in lines)
    batch = batch_from_logs([log], schema)
    assert len(batch) == 5 and list(batch.columns) == list(schema.features)
    # A body past INLINE_BODY_BYTES (64 KiB) is decoded and logged in the inference thread.
    large = (records * (1 + 70_000 // len(json.dumps(records))))[:1000]
    assert len(json.dumps({"records": large})) > 64 * 1024
    assert call(app, "POST", "/predict", {"records": large}).status == 200
    logged = [json.loads(line) for line in log.read_text().splitlines()[5:]]
    assert [line["features"] for line in logged] == large

    quiet = tmp_path / "sampled-out.jsonl"
    app = start_up(App(served, prediction_log=PredictionLog(str(quiet), 0.0, served.version)))
    assert call(app, "POST", "/predict", {"records": records[:3]}).status == 200
    assert quiet.read_text() == ""


def test_a_release_version_is_served_and_the_file_keeps_its_build(
    onnx_bytes, served, rows, tmp_path
):
    """MODEL_VERSION (a release tag's, for an image built before the tag) is the version every
    answer names; the version stamped in the file stays visible as parameters.build."""
    released = ServedModel(onnx_bytes, MODEL_NAME, version="2.0.0")  # the file says 1.2.0
    log = tmp_path / "predictions.jsonl"
    app = start_up(App(released, prediction_log=PredictionLog(str(log), 1.0, released.version)))
    _, records = rows
    assert call(app, "GET", "/v2").json()["version"] == "2.0.0"
    metadata = call(app, "GET", f"/v2/models/{MODEL_NAME}/versions/2.0.0").json()
    assert metadata["versions"] == ["2.0.0"]
    assert metadata["parameters"]["build"] == "1.2.0"
    assert metadata["parameters"]["sha256"] == served.sha256
    refused = call(app, "GET", f"/v2/models/{MODEL_NAME}/versions/1.2.0")
    assert refused.status == 404 and "this server has '2.0.0'" in refused.json()["error"]
    predicted = call(app, "POST", "/predict", {"records": records[:2]})
    assert predicted.json()["model_version"] == "2.0.0"
    path = f"/v2/models/{MODEL_NAME}/versions/2.0.0/infer"
    inferred = call(app, "POST", path, {"inputs": tensors_of(records[:1], released)})
    assert inferred.json()["model_version"] == "2.0.0"
    [info] = [
        sample.labels
        for family in text_string_to_metric_families(call(app, "GET", "/metrics").body.decode())
        for sample in family.samples
        if sample.name == "model_info"
    ]
    assert info == {"name": MODEL_NAME, "version": "2.0.0", "sha256": served.sha256}
    logged = {json.loads(line)["model_version"] for line in log.read_text().splitlines()}
    assert logged == {"2.0.0"}
    document = call(app, "GET", "/openapi.json").json()
    assert document["info"]["version"] == "2.0.0"
    # Without one, the file's own version is served, and it is also the build.
    metadata = call(start_up(App(served)), "GET", f"/v2/models/{MODEL_NAME}").json()
    assert metadata["versions"] == ["1.2.0"] and metadata["parameters"]["build"] == "1.2.0"


def test_the_served_version_comes_from_the_flag_or_model_version(
    onnx_bytes, tmp_path, monkeypatch, capsys
):
    import uvicorn

    model = tmp_path / "model.onnx"
    model.write_bytes(onnx_bytes)
    started = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: started.append(app))
    monkeypatch.delenv("MODEL_VERSION", raising=False)
    command = ["--model", str(model), "--name", MODEL_NAME]
    main([*command, "--model-version", "2.0.0"])
    assert started[-1].model.version == "2.0.0"
    assert f"serve: {MODEL_NAME} 2.0.0 (build 1.2.0, " in capsys.readouterr().out
    monkeypatch.setenv("MODEL_VERSION", "2.0.1-rc.1")
    main(command)
    assert started[-1].model.version == "2.0.1-rc.1"
    assert f"serve: {MODEL_NAME} 2.0.1-rc.1 (build 1.2.0, " in capsys.readouterr().out
    monkeypatch.setenv("MODEL_VERSION", "")
    main(command)
    assert started[-1].model.version == "1.2.0"
    out = capsys.readouterr().out
    assert f"serve: {MODEL_NAME} 1.2.0 (" in out and "build" not in out
    for bad in ("1.2.0/infer", "two words", "-1", "x" * 129):
        with pytest.raises(SystemExit):
            main([*command, f"--model-version={bad}"])
        assert "is not a version" in capsys.readouterr().err, bad
    monkeypatch.setenv("MODEL_VERSION", "1.2.0 ")
    with pytest.raises(SystemExit):
        main(command)
    assert "MODEL_VERSION '1.2.0 ' is not a version" in capsys.readouterr().err
    assert len(started) == 3


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_no_body_makes_a_5xx(served, data):
    """Fuzz: any JSON (or bytes), shaped like a request or not, gets a 2xx or a 4xx."""
    app = App(served, Limits(max_batch_rows=20, max_body_bytes=4096))
    names = list(served.features)
    value = JSON | st.sampled_from(["", "a", "NaN"]) | st.floats(width=32)
    record = st.dictionaries(st.sampled_from([*names, "other"]), value, max_size=len(names) + 1)
    tensor = st.fixed_dictionaries(
        {
            "name": st.sampled_from([*names, "x"]),
            "datatype": st.sampled_from(["FP32", "BYTES", "INT64", 1]),
            "shape": st.lists(st.integers(-2, 3), max_size=3) | JSON,
            "data": st.lists(value, max_size=4) | JSON,
        }
    )
    body = data.draw(
        st.one_of(
            JSON,
            st.binary(max_size=64),
            st.builds(lambda records: {"records": records}, st.lists(record, max_size=3)),
            st.fixed_dictionaries(
                {
                    "columns": st.permutations(names) | st.lists(st.sampled_from([*names, "x"])),
                    "data": st.lists(st.lists(value, max_size=len(names) + 1), max_size=3) | JSON,
                },
                optional={"index": JSON, "records": JSON},
            ),
            st.builds(lambda inputs: {"inputs": inputs}, st.lists(tensor, max_size=3)),
        )
    )
    path = data.draw(st.sampled_from(["/predict", INFER]))
    response = call(app, "POST", path, body)
    assert response.status < 500, (path, body, response.body)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_no_binary_tensor_data_makes_a_5xx(served, data):
    """Fuzz: JSON then bytes gets a 2xx or a 4xx. Either a body made right (1 to 1,000 rows, so
    past 64 KiB too, decoded in the inference thread; outputs as JSON or binary data), which must
    succeed, then perhaps cut, lengthened or given a header a few bytes off; or any request-shaped
    JSON with binary_data_size and the flags any JSON, and any bytes after it."""
    app = App(served, Limits(max_body_bytes=2**20))
    names = list(served.features)
    if data.draw(st.booleans(), label="made right"):
        rows = data.draw(st.integers(1, 1000), label="rows")
        number = data.draw(st.floats(width=32, allow_infinity=False) | st.none(), label="number")
        text = data.draw(st.text(max_size=6), label="text")
        record = {n: text if served.inputs[n] == "BYTES" else number for n in names}
        flags = st.fixed_dictionaries({}, optional={"binary_data": st.booleans()})
        fields = data.draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "parameters": st.fixed_dictionaries({"binary_data_output": st.booleans()}),
                    "outputs": st.lists(
                        st.fixed_dictionaries(
                            {"name": st.sampled_from(list(served.outputs))},
                            optional={"parameters": flags},
                        ),
                        min_size=1,
                        max_size=3,
                    ),
                },
            )
        )
        body, headers = binary_body(tensors_of([record] * rows, served), **fields)
        cut = data.draw(st.sampled_from([0, 0, -1, -4, 1, 4]), label="bytes added or cut")
        body = body[:cut] if cut < 0 else body + b"\0" * cut
        shift = data.draw(st.sampled_from([0, 0, -1, 1]), label="header off by")
        header = int(headers["Inference-Header-Content-Length"]) + shift
        response = call(app, "POST", INFER, body, {"Inference-Header-Content-Length": str(header)})
        if cut == shift == 0:
            assert response.status == 200, (rows, number, text, fields, response.body)
        assert response.status < 500, (rows, number, text, fields, cut, shift, response.body)
        return
    size = st.integers(-1, 48) | JSON
    tensor = st.fixed_dictionaries(
        {
            "name": st.sampled_from([*names, "x"]),
            "datatype": st.sampled_from(["FP32", "BYTES", 1]),
            "shape": st.lists(st.integers(0, 3), min_size=1, max_size=2) | JSON,
        },
        optional={
            "data": st.lists(JSON, max_size=3),
            "parameters": st.fixed_dictionaries({}, optional={"binary_data_size": size}),
        },
    )
    flags = st.fixed_dictionaries({}, optional={"binary_data_output": JSON})
    wanted = st.fixed_dictionaries(
        {"name": st.sampled_from([*served.outputs, "y"])},
        optional={"parameters": st.fixed_dictionaries({}, optional={"binary_data": JSON})},
    )
    document = data.draw(
        st.fixed_dictionaries(
            {"inputs": st.lists(tensor, max_size=len(names) + 1)},
            optional={"parameters": flags, "outputs": st.lists(wanted, max_size=2)},
        )
    )
    text = json.dumps(document).encode()
    tail = data.draw(st.binary(max_size=64))
    header = data.draw(st.integers(-4, 4).map(lambda shift: str(len(text) + shift)) | st.text())
    headers = {"Inference-Header-Content-Length": header}
    response = call(app, "POST", INFER, text + tail, headers)
    assert response.status < 500, (document, tail, header, response.body)
