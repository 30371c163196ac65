"""Hostile requests: every class the server once answered with a 5xx, an unbounded answer or a
stuck connection now gets a 4xx (or a retryable 503) naming the limit, in bounded size and time.

In process (ASGI calls) where the app decides; over a real uvicorn server for what the HTTP layer
decides (headers, idle connections) and for health checks answered while a large batch computes.
"""

import asyncio
import contextlib
import json
import logging
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
from http.client import HTTPConnection
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

import mlops_actions
from mlops_actions.serve import App, Limits, RequestError
from mlops_actions.serve.settings import SETTINGS, KiB, MiB, parse

from .asgi_client import (
    INFER,
    MODEL_NAME,
    binary_body,
    call,
    call_together,
    model_runs,
    records_of,
    running,
    start_up,
    tensors_of,
)

DEEP = (10**4, 10**5)


@pytest.fixture
def records(train_test, schema):
    """1,000 test rows (the split's, repeated), whatever the dataset's size."""
    frame = train_test[1].dropna(subset=[*schema.numeric]).reset_index(drop=True)
    rows = records_of(frame, schema)
    return (rows * (1000 // len(rows) + 1))[:1000]


def test_every_limit_is_a_documented_setting(capsys, project):
    with pytest.raises(SystemExit):
        parse(["--help"], "serve")
    usage = " ".join(capsys.readouterr().out.split())
    readme = (project / "README.md").read_text()
    for name, variable, _ in SETTINGS:
        assert f"| `{variable}` |" in readme, variable
        assert f"--{name.replace('_', '-')}" in usage and f"(env {variable}," in usage, name
    assert "`MODEL_VERSION` (`--model-version`)" in readme
    assert "--model-version" in usage and "(env MODEL_VERSION," in usage


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def error(response) -> str:
    return response.json()["error"]


@pytest.mark.parametrize("depth", DEEP)
def test_deep_nesting_is_a_400(app, served, records, depth):
    tensors = tensors_of(records[:1], served)
    bodies = {
        "/predict": [
            nested(depth),
            b'{"records":' + nested(depth) + b"}",
            b'{"records":[{"x":' + nested(depth) + b"}]}",
            b'{"other":' + nested(depth) + b',"records":[]}',
        ],
        INFER: [
            nested(depth),
            b'{"inputs":[{"name":' + nested(depth) + b"}]}",
            b'{"inputs":[],"parameters":{"p":' + nested(depth) + b"}}",
            b'{"id":"a","extra":' + nested(depth) + b"}",
        ],
    }
    name = tensors[0]["name"]
    deep_data = b'{"inputs":[{"name":"' + name.encode() + b'","shape":[1],"datatype":"FP32","data":'
    bodies[INFER].append(deep_data + nested(depth) + b"}]}")
    limits = Limits(max_body_bytes=4 * 1024 * 1024)
    app = start_up(App(served, limits))
    for path, cases in bodies.items():
        for body in cases:
            response = call(app, "POST", path, body)
            assert response.status == 400, (path, body[:60], response.body)


def test_names_must_be_strings(app, served, records):
    tensors = tensors_of(records[:1], served)
    for bad in ({}, ["x"], 1, None):
        body = {"inputs": [{**tensors[0], "name": bad}, *tensors[1:]]}
        response = call(app, "POST", INFER, body)
        assert response.status == 400 and "$.inputs[0].name" in error(response), response.body
        body = {"inputs": tensors, "outputs": [{"name": bad}]}
        response = call(app, "POST", INFER, body)
        assert response.status == 400 and "$.outputs[0].name" in error(response), response.body


def test_requested_outputs_are_answered_once(served, records):
    """One output requested 5,000 times used to multiply the answer 5,000 times (215 MB)."""
    app = start_up(App(served))
    rows = records[:50]
    first = next(iter(served.outputs))
    body = {"inputs": tensors_of(rows, served), "outputs": [{"name": first}] * 5000}
    response = call(app, "POST", INFER, body)
    assert response.status == 200, response.body
    [output] = response.json()["outputs"]
    assert output["name"] == first and output["shape"][0] == len(rows)
    single = call(app, "POST", INFER, {**body, "outputs": [{"name": first}]})
    assert len(response.body) == len(single.body)


def test_a_large_body_is_decoded_twice_only_at_float32s_edge(served, records, schema):
    """A body decoded in the inference thread (past 64 KiB) is read once without each number's
    range check; only a number at or past float32's largest, or an error, makes the checked
    decoding run too, after the first is let go (the checked one decides what is refused)."""
    if not schema.numeric:
        pytest.skip("no numeric feature")
    codec = App(served).codec
    decoded = []
    decode = codec.predict_rows

    def counted(body, *decoder):
        decoded.append(bool(decoder))  # True: the unchecked decoder
        return decode(body, *decoder)

    codec.predict_rows = counted
    feature = schema.numeric[0]
    for value, status, decodings in (
        (1.5, 200, [True]),
        ("x", 400, [True, False]),
        (3.4028234663852886e38, 200, [True, False]),
        (1e39, 400, [True, False]),
    ):
        decoded.clear()
        body = json.dumps({"records": [*records[:-1], {**records[-1], feature: value}]}).encode()
        assert len(body) > 64 * 1024
        try:
            codec.predict_feed(body)
            answered = 200
        except RequestError as err:
            answered = err.status
        assert (answered, decoded) == (status, decodings), value


def test_answers_above_the_response_limit_are_refused_before_inference(served, records):
    limits = Limits(max_response_bytes=2000)
    app = start_up(App(served, limits))
    refused = call(app, "POST", "/predict", {"records": records[:200]})
    assert refused.status == 413 and "MAX_RESPONSE_BYTES" in error(refused), refused.body
    fits = int(error(refused).rsplit("at most ", 1)[1].split()[0])
    assert 0 < fits < 200
    answered = call(app, "POST", "/predict", {"records": records[:fits]})
    assert answered.status == 200 and len(answered.body) <= limits.max_response_bytes
    infer = call(app, "POST", INFER, {"inputs": tensors_of(records[:200], served)})
    assert infer.status == 413 and "MAX_RESPONSE_BYTES" in error(infer)
    rows = call(app, "GET", "/metrics").body.decode()
    assert f"model_predicted_rows_total {float(fits)}" in rows, "refused rows never ran"
    # Outputs as JSON or as binary tensor data: the bound holds for either.
    fits = int(error(infer).rsplit("at most ", 1)[1].split()[0])
    tensors = tensors_of(records[:fits], served)
    for binary in (False, True):
        body, headers = binary_body(tensors, parameters={"binary_data_output": binary})
        answered = call(app, "POST", INFER, body, headers)
        assert answered.status == 200 and len(answered.body) <= limits.max_response_bytes


def test_rows_above_the_limit_are_a_413(app, served, records):
    for path, body in (
        ("/predict", {"records": records[:51]}),
        (INFER, {"inputs": tensors_of(records[:51], served)}),
    ):
        response = call(app, "POST", path, body)
        assert response.status == 413 and "MAX_BATCH_ROWS" in error(response), response.body


@pytest.mark.parametrize("bad_id", [b"5", b"NaN", b"Infinity", b"-Infinity", b"1e999", b"[]"])
def test_id_must_be_a_string(app, served, records, bad_id):
    tensors = json.dumps(tensors_of(records[:1], served)).encode()
    response = call(app, "POST", INFER, b'{"id":' + bad_id + b',"inputs":' + tensors + b"}")
    assert response.status == 400, response.body
    assert "id" in error(response) or "malformed JSON" in error(response)
    echoed = call(app, "POST", INFER, b'{"id":"\\u00e9-1","inputs":' + tensors + b"}")
    assert echoed.status == 200 and echoed.json()["id"] == "\u00e9-1"


def test_only_json_bodies_are_read(app, records):
    body = {"records": records[:1]}
    for content_type in ("text/plain", "application/xml", "application/x-www-form-urlencoded"):
        response = call(app, "POST", "/predict", body, {"Content-Type": content_type})
        assert response.status == 415 and content_type in error(response), response.body
    for content_type in ("application/json", "application/json; charset=utf-8",
                         "Application/JSON", "application/vnd.api+json"):  # fmt: skip
        response = call(app, "POST", "/predict", body, {"Content-Type": content_type})
        assert response.status == 200, (content_type, response.body)
    # No Content-Type at all reads as JSON: OIP clients such as tritonclient send none.
    assert call(app, "POST", "/predict", body).status == 200


def requests_counted(app: App) -> dict[tuple, float]:
    """http_requests_total by its sorted labels, as /metrics reports it."""
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(call(app, "GET", "/metrics").body.decode())
        for sample in family.samples
        if sample.name == "http_requests_total"
    }


def test_wrong_methods_get_405_with_allow_and_are_counted(app):
    cases = [
        ("GET", "/predict", "POST"),
        ("PUT", INFER, "POST"),
        ("POST", "/v2/health/live", "GET, HEAD"),
        ("DELETE", f"/v2/models/{MODEL_NAME}", "GET, HEAD"),
        ("BREW", "/metrics", "GET, HEAD"),
    ]
    for method, path, allowed in cases:
        response = call(app, method, path)
        assert response.status == 405 and response.headers["allow"] == allowed, response.headers
    samples = requests_counted(app)
    key = (("method", "GET"), ("route", "/predict"), ("status", "405"))
    assert samples[key] == 1
    assert samples[(("method", "other"), ("route", "/metrics"), ("status", "405"))] == 1
    assert not any(dict(labels)["route"] == "unmatched" for labels in samples)


def test_a_request_whose_client_left_before_its_body_is_counted_not_answered(served):
    """The HTTP layer closes a connection whose body is late (BODY_TIMEOUT, tested over a real
    server below); the app, waiting for that body, sees the close: it sends nothing and counts
    the request as 499."""
    app = start_up(App(served, Limits()))
    messages = iter(
        [
            {"type": "http.request", "body": b'{"records": [', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    sent: list[dict] = []

    async def receive():
        return next(messages)

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/predict", "headers": []}
    asyncio.run(app(scope, receive, send))
    assert sent == []
    assert (
        requests_counted(app)[(("method", "POST"), ("route", "/predict"), ("status", "499"))] == 1
    )
    assert app.buffered == 0


@pytest.mark.parametrize("route", ["/predict", INFER])
def test_a_client_gone_before_its_batch_starts_costs_no_model_run(served, records, route):
    """Batches queue for the inference thread. A client that closes its connection meanwhile (its
    timeout, a retry) costs no model run: nothing is sent and the request counts as 499. The one
    beside it that stays gets its answer; only its batch runs the model."""
    app = start_up(App(served, Limits(inline_rows=0)))  # every batch to the inference thread
    rows = records[:2]
    body = {"records": rows} if route == "/predict" else {"inputs": tensors_of(rows, served)}
    raw = json.dumps(body).encode()
    runs = model_runs(app)
    thread_free = threading.Event()

    async def both() -> tuple[list, list]:
        leaves = asyncio.Event()
        sent: tuple[list, list] = ([], [])

        def client(gone: asyncio.Event, answers: list):
            messages = iter([{"type": "http.request", "body": raw, "more_body": False}])

            async def receive():  # the body, then (as ASGI does) nothing until the close
                message = next(messages, None)
                if message is None:
                    await gone.wait()
                    return {"type": "http.disconnect"}
                return message

            async def send(message):
                answers.append(message)

            scope = {"type": "http", "method": "POST", "path": route, "headers": []}
            return asyncio.ensure_future(app(scope, receive, send))

        loop = asyncio.get_running_loop()
        busy = loop.run_in_executor(app.executor, thread_free.wait)  # the thread is taken
        leaving = client(leaves, sent[0])
        staying = client(asyncio.Event(), sent[1])
        for _ in range(20):  # both read their bodies and wait for the thread
            await asyncio.sleep(0)
        leaves.set()  # one client closes its connection
        for _ in range(20):
            await asyncio.sleep(0)
        thread_free.set()
        await asyncio.gather(busy, leaving, staying)
        return sent

    gone, stayed = asyncio.run(both())
    assert gone == []
    assert stayed[0]["status"] == 200, stayed
    assert model_runs(app) == runs + 1
    labels = (("method", "POST"), ("route", app.match(route)[0].template), ("status", "499"))
    assert requests_counted(app)[labels] == 1
    assert app.buffered == 0


def test_slow_inference_is_bounded_by_the_request_timeout(served, records, monkeypatch):
    app = start_up(App(served, Limits(request_timeout=0.2, inline_rows=0)))
    real_run = served.run
    monkeypatch.setattr(served, "run", lambda feed: (time.sleep(1), real_run(feed))[1])
    response = call(app, "POST", "/predict", {"records": records[:2]})
    assert response.status == 503 and "REQUEST_TIMEOUT" in error(response)
    assert response.headers["retry-after"] == "1"


def test_bodies_held_at_once_are_bounded(served, records):
    """A request that alone holds more than MAX_BUFFERED_BYTES gets a 413 (a 503 asked for a
    retry that could never succeed); one that does not fit beside others a 503."""
    app = start_up(App(served, Limits(max_buffered_bytes=2000)))
    response = call(app, "POST", "/predict", {"records": records[:20]})
    assert response.status == 413 and "MAX_BUFFERED_BYTES" in error(response)
    assert app.buffered == 0, "what a request held is released with its answer"
    assert call(app, "POST", "/predict", {"records": records[:1]}).status == 200
    assert app.buffered == 0
    app.buffered = 1500  # as if other requests held it
    busy = call(app, "POST", "/predict", {"records": records[:1]})
    assert busy.status == 503 and "MAX_BUFFERED_BYTES" in error(busy), busy.body
    assert busy.headers["retry-after"] == "1" and app.buffered == 1500
    # A binary request with no room: the 413 is JSON, without a binary answer's JSON length.
    tensors = tensors_of(records[:20], served)
    body, headers = binary_body(tensors, parameters={"binary_data_output": True})
    app = start_up(App(served, Limits(max_buffered_bytes=len(body) + 10)))
    refused = call(app, "POST", INFER, body, headers)
    assert refused.status == 413 and "MAX_BUFFERED_BYTES" in error(refused), refused.body
    assert "inference-header-content-length" not in refused.headers


def largest_inline_body(records: list[dict], schema) -> bytes:
    """Columns and data of as many rows as 64 KiB of JSON holds (decoded on the event loop), up
    to 1,000 and more than INLINE_ROWS (run in the inference thread, after a wait): numbers 1."""
    numeric = set(schema.numeric)
    row = [1 if name in numeric else value for name, value in records[0].items()]
    count = 1000
    while True:
        document = {"columns": list(records[0]), "data": [row] * count}
        body = json.dumps(document, separators=(",", ":")).encode()
        if len(body) <= 64 * KiB:
            break
        count = count * 3 // 4
    assert count > Limits().inline_rows, count
    return body


def test_rows_decoded_while_waiting_count_against_the_bound(served, records, schema):
    """A body of up to 64 KiB is decoded on the event loop and its rows held until its model run:
    1,000 rows as columns and data are 60 KB of JSON but a megabyte of Python objects. Only the
    body was counted: 250 such requests at once took the server from 74 to 445 MiB. What the
    requests hold (traced, numpy's arrays too) stays within MAX_BUFFERED_BYTES and the one
    decoding and one job the bound adds (docs/serving.md); a request that does not fit gets a
    503 (whether any does depends on the dataset's width)."""
    if not schema.numeric:
        pytest.skip("no numeric feature")
    body = largest_inline_body(records, schema)
    limits = Limits(max_buffered_bytes=4 * MiB, max_body_bytes=256 * KiB)
    app = start_up(App(served, limits))
    tracemalloc.start()
    try:
        answers = call_together(app, [("POST", "/predict", body)] * 40)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    statuses = {answer.status for answer in answers}
    assert 200 in statuses and statuses <= {200, 503}, statuses
    bound = limits.max_buffered_bytes + 17 * 64 * KiB + 17 * limits.max_body_bytes
    assert peak <= bound, f"{peak / MiB:.1f} MiB held, {bound / MiB:.1f} MiB allowed"
    assert app.buffered == 0


def test_waiting_requests_count_what_they_hold_not_more(served, records, schema):
    """The count of what waiting requests hold must not refuse requests the memory allows: 256
    requests at once (MAX_CONNECTIONS) of as many rows as 64 KiB of columns and data holds, with
    the default memory limits, all answered (the time limit raised: on a loaded machine the last
    of 256 model runs in turn may wait past 10 s). Rows decoded on the event loop stayed counted
    at their decoded size after they became the feed (a megabyte each), and the 256 got 503s."""
    body = largest_inline_body(records, schema)
    app = start_up(App(served, Limits(request_timeout=120)))
    answers = call_together(app, [("POST", "/predict", body)] * Limits().max_connections)
    assert {answer.status for answer in answers} == {200}, {a.status for a in answers}
    assert app.buffered == 0


def test_what_a_request_holds_is_counted_at_its_most(served, records):
    """`Codec.held_bytes`, what a request's decoded rows count against MAX_BUFFERED_BYTES while
    they wait, is at least what they hold (traced), with the prediction log's columns too."""
    codec = App(served).codec
    rows = records[:64]
    names = list(rows[0])
    bodies = {
        "records": json.dumps({"records": rows}).encode(),
        "columns and data": json.dumps(
            {"columns": names, "data": [list(row.values()) for row in rows]}
        ).encode(),
    }
    for form, body in bodies.items():
        for logged in (False, True):
            tracemalloc.start()
            decoded = codec.predict_rows(body)
            columns = codec.columns(decoded) if logged else None
            held = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            del decoded, columns
            counted = codec.held_bytes(len(rows), len(body), logged)
            assert held <= counted, (form, logged, held, counted)


def test_error_answers_are_short_whatever_they_echo(served, records):
    """A name or value echoed in an error came back whole: a 2 MB datatype made a 5 MB 400 (repr
    writes U+0085 as 4 characters, JSON each of those as 1 to 6 bytes)."""
    app = start_up(App(served))
    long = "\u0085" * 100_000
    tensors = tensors_of(records[:1], served)
    record = records[0]
    names = list(record)
    size = {"binary_data_size": long}
    cases = [
        (INFER, {"inputs": [{**tensors[0], "datatype": long}, *tensors[1:]]}, "datatype"),
        (INFER, {"inputs": [{**tensors[0], "name": long}, *tensors[1:]]}, "unknown input"),
        (INFER, {"inputs": tensors, "outputs": [{"name": long}]}, "unknown output"),
        (INFER, {"inputs": tensors, "parameters": {"binary_data_output": long}}, "true or false"),
        (INFER, {"inputs": [{**tensors[0], "parameters": size}, *tensors[1:]]}, "whole number"),
        ("/predict", {"columns": [long, *names[1:]], "data": [list(record.values())]}, "unknown"),
        ("/predict", {"records": [{**record, long: 1}]}, "unknown feature"),
    ]
    for path, body, named in cases:
        response = call(app, "POST", path, body)
        assert response.status == 400 and named in error(response), response.body[:300]
        assert len(response.body) <= 1000, (named, len(response.body))


@pytest.mark.parametrize("form", ["records", "columns"])
def test_a_bad_body_gets_the_same_answer_at_any_size(served, records, schema, form):
    """A body past 64 KiB is first decoded without each number's range check: a later error (a
    string, too many rows) was named instead of the number out of range before it, and the same
    rows got a 400 under 64 KiB and a 413 past it. Leading spaces make the same rows large."""
    if not schema.numeric:
        pytest.skip("no numeric feature")
    feature = schema.numeric[0]
    app = start_up(App(served, Limits(max_batch_rows=3)))
    for count, late in ((3, "x"), (4, None)):  # a string after it; one row too many
        rows = [dict(record) for record in records[:count]]
        rows[1][feature] = 1e39
        if late is not None:
            rows[2][feature] = late
        if form == "records":
            document = {"records": rows}
        else:
            document = {"columns": list(rows[0]), "data": [list(row.values()) for row in rows]}
        small = json.dumps(document).encode()
        answers = [call(app, "POST", "/predict", b" " * size + small) for size in (0, 65 * KiB)]
        assert answers[0].status == 400 and "within float32" in error(answers[0]), answers[0].body
        assert [a.status for a in answers] == [400, 400], [a.body for a in answers]
        assert error(answers[0]) == error(answers[1])


def test_decoding_holds_at_most_17_bytes_per_body_byte(served, records):
    """What docs/serving.md's memory bound takes for one decoding: `[0,0,...]` as a tensor's data
    (a list and a float a value: 16.2 times the body). `index` (read, then left aside) was a list
    of 500,000 values for `[0,0,...]` (28 times the body), and nested tensor data `[[0],[0],...]`
    a tuple a value (22.5 times)."""
    codec = App(served, Limits(max_body_bytes=4 * MiB)).codec
    tensors = tensors_of(records[:1], served)
    many = 500_000
    index = json.dumps({**{"columns": list(records[0])}, "data": [list(records[0].values())]})
    bodies = {
        "index": (index[:-1] + ', "index": [' + "0," * many + "0]}").encode(),
        "nested data": json.dumps(
            {"inputs": [{**tensors[0], "shape": [1, 1], "data": [[0]] * many}, *tensors[1:]]},
            separators=(",", ":"),
        ).encode(),
        "flat data": json.dumps(
            {"inputs": [{**tensors[0], "shape": [1], "data": [0] * many}, *tensors[1:]]},
            separators=(",", ":"),
        ).encode(),
    }
    for what, body in bodies.items():
        decode = codec.predict_feed if what == "index" else codec.infer_feed
        tracemalloc.start()
        try:
            decode(body) if what == "index" else decode(body, None)
        except RequestError:
            pass
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        assert peak <= 17 * len(body), (what, peak / len(body))


def test_a_binary_label_fits_the_answer_bound(served):
    """The bound MAX_RESPONSE_BYTES is checked against counts a BYTES output's row at its longest
    label, as JSON (quoted, a comma) or as binary data (4-byte length, bytes): never more."""
    codec = App(served).codec
    for name, datatype in served.outputs.items():
        if datatype != "BYTES":
            continue
        for label in served.labels:
            values = np.array([label] * 100, dtype=object)[:, None]
            assert len(codec.binary_data(datatype, values)) <= 100 * codec.output_bytes(name)
            assert len(codec.encode(values.ravel().tolist())) <= 100 * codec.output_bytes(name)


# --- over a real server -------------------------------------------------------------------------


def read_all(sock: socket.socket) -> bytes:
    sock.settimeout(20)  # a bound for a hung test, not a speed claim
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_slow_or_oversized_heads_and_idle_connections_are_closed(served):
    limits = Limits(
        header_timeout=0.5, body_timeout=0.5, max_header_bytes=4096, keep_alive_timeout=1
    )
    with running(App(served, limits), limits) as address:
        with socket.create_connection(address) as partial:
            partial.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n")  # never finished
            answer = read_all(partial)
        assert answer.startswith(b"HTTP/1.1 408") and b"HEADER_TIMEOUT" in answer
        with socket.create_connection(address) as silent:  # connects, sends nothing
            assert read_all(silent) == b""
        for ending in (b"", b"\r\n\r\n"):  # a head still arriving, and one whole in a read
            with socket.create_connection(address) as large:
                large.sendall(
                    b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8192 + ending
                )
                answer = read_all(large)
            assert answer.startswith(b"HTTP/1.1 431") and b"MAX_HEADER_BYTES" in answer
        with socket.create_connection(address) as slow_body:  # a head, then part of its body
            slow_body.sendall(
                b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b'Content-Length: 100\r\n\r\n{"records": ['
            )
            answer = read_all(slow_body)
        assert answer.startswith(b"HTTP/1.1 408") and b"BODY_TIMEOUT" in answer
        with socket.create_connection(address) as idle:  # one request, then idle
            idle.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = read_all(idle)
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b'{"live":true}')
        # Still served after all that.
        connection = HTTPConnection(*address, timeout=20)
        connection.request("GET", "/v2/health/ready")
        assert connection.getresponse().status == 200


def statuses(answers: bytes) -> list[int]:
    return [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", answers)]


def json_error(answer: bytes) -> tuple[int, str]:
    """A whole answer read off a socket: its status and its JSON error, which it must have."""
    head, body = answer.split(b"\r\n\r\n", 1)
    assert b"\r\ncontent-type: application/json\r\n" in head.lower(), answer
    return int(head.split()[1]), json.loads(body)["error"]


def last(answers: bytes) -> bytes:
    """The last of answers read off a socket."""
    return b"HTTP/1.1 " + answers.rsplit(b"HTTP/1.1 ", 1)[1]


def test_connections_above_the_limit_with_requests_in_progress_get_a_json_503(served):
    """Over MAX_CONNECTIONS, with every connection busy (a body still arriving), a new request
    gets uvicorn's 503 in the app's words: JSON, with Retry-After (it was plain text)."""
    limits = Limits(max_connections=3)
    with running(App(served, limits), limits) as address:
        held = [socket.create_connection(address) for _ in range(3)]
        try:
            for sock in held:
                sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            time.sleep(0.2)  # the server has read them (not a speed claim: 503 either way)
            with socket.create_connection(address) as extra:
                extra.sendall(b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = read_all(extra)
            status, message = json_error(answer)
            assert status == 503 and "MAX_CONNECTIONS" in message, answer
            assert b"\r\nretry-after: 1\r\n" in answer.lower()
        finally:
            for sock in held:
                sock.close()


@contextlib.contextmanager
def serving_process(onnx_bytes: bytes, tmp_path, *flags: str):
    """`python -m mlops_actions.serve` in a process of its own (this checkout's code) on a free
    port, ready; yields (address, the log so far as a function)."""
    model = tmp_path / "model.onnx"
    model.write_bytes(onnx_bytes)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path / "serve.log"
    env = {**os.environ, "PYTHONPATH": str(Path(mlops_actions.__file__).parents[1])}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlops_actions.serve", "--model", str(model), "--name",
             MODEL_NAME, "--port", str(port), *flags],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "server did not start"
            try:
                connection = HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/v2/health/ready")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        yield ("127.0.0.1", port), log.read_text
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_connections_that_send_nothing_do_not_keep_requests_out(onnx_bytes, tmp_path, records):
    """More connections than MAX_CONNECTIONS that send nothing made every new request a 503,
    readiness probes included, until HEADER_TIMEOUT closed them (10 s): a Kubernetes probe took
    the pod out of service. Now the one open longest without a request is closed when a new one
    comes: a new health probe and a new /predict are answered, each within 1 s (measured by
    this client; the server runs in its own process)."""
    limit = 4
    with serving_process(onnx_bytes, tmp_path, "--max-connections", str(limit)) as (address, _):
        # The oldest: a head still arriving, answered 503 when it is closed to make room.
        partial = socket.create_connection(address)
        partial.sendall(b"GET /v2/health/ready HTTP/1.1\r\nHost")
        time.sleep(1)  # read by the server, even on a loaded machine
        idle = [partial, *(socket.create_connection(address) for _ in range(limit + 4))]
        try:
            status, message = json_error(read_all(partial))
            assert status == 503 and "MAX_CONNECTIONS" in message, message
            time.sleep(0.3)  # accepted by the server, all silent
            body = json.dumps({"records": records[:1]}).encode()
            for method, path, payload in (
                ("GET", "/v2/health/ready", None),
                ("POST", "/predict", body),
                ("GET", "/v2/health/ready", None),
            ):
                started = time.perf_counter()
                connection = HTTPConnection(*address, timeout=20)
                connection.request(method, path, payload, {"Content-Type": "application/json"})
                response = connection.getresponse()
                answer = response.read()
                took = time.perf_counter() - started
                connection.close()
                assert response.status == 200, (path, response.status, answer)
                assert took < 1.0, (path, took)
            closed = 0
            for sock in idle:  # those closed to make room see the end of the stream
                sock.settimeout(0.5)
                with contextlib.suppress(TimeoutError):
                    closed += sock.recv(1) == b""
            assert closed >= len(idle) - limit, closed
        finally:
            for sock in idle:
                sock.close()


def read_answers(sock: socket.socket, count: int) -> bytes:
    """Read until `count` answers have begun and the last is whole (they end in a JSON body)."""
    sock.settimeout(60)  # a bound for a hung test, not a speed claim
    answers = b""
    while len(statuses(answers)) < count or not answers.endswith(b"}"):
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        answers += chunk
    return answers


class LogRecords(logging.Handler):
    """uvicorn's log records (its loggers do not propagate to pytest's capture)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_pipelined_requests_are_all_answered_in_order(served, records):
    """A read above 16 KiB that ended inside a request's head was counted whole as that head: 5,000
    pipelined health checks got one 431 and no 200, 5,000 one-row /predict 7 answers then a 431 and
    a reset, and the server logged the request it was answering as "Exception in ASGI
    application" (it wrote to the connection the 431 had closed). Every answer now comes, in
    order, nothing is logged; also when the reads end inside heads on purpose."""
    limits = Limits()
    health = b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n"
    body = json.dumps({"records": records[:1]}).encode()

    def predict(number: int) -> bytes:
        return (
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"X-Request-Id: r%d\r\nContent-Length: %d\r\n\r\n%s" % (number, len(body), body)
        )

    with running(App(served, limits), limits) as address:
        log = LogRecords()
        logging.getLogger("uvicorn.error").addHandler(log)
        try:
            with socket.create_connection(address) as sock:
                sender = threading.Thread(target=sock.sendall, args=(health * 5000,))
                sender.start()
                answers = read_answers(sock, 5000)
                sender.join()
            assert statuses(answers) == [200] * 5000, set(statuses(answers))
            assert answers.count(b'{"ready":true}') == 5000
            with socket.create_connection(address) as sock:
                stream = b"".join(predict(number) for number in range(2000))
                sender = threading.Thread(target=sock.sendall, args=(stream,))
                sender.start()
                answers = read_answers(sock, 2000)
                sender.join()
            assert statuses(answers) == [200] * 2000, set(statuses(answers))
            ids = re.findall(rb"x-request-id: (r\d+)", answers)
            assert ids == [b"r%d" % number for number in range(2000)]
            # Reads of 20 KiB and more, each ending inside a head: the rest of it comes next.
            half = len(health) // 2
            with socket.create_connection(address) as sock:
                for part in range(3):
                    start = health[half:] if part else b""
                    sock.sendall(start + health * 500 + (health[:half] if part < 2 else b""))
                    time.sleep(0.2)
                answers = read_answers(sock, 1502)
            assert statuses(answers) == [200] * 1502, set(statuses(answers))
            # A body above 16 KiB with no line break before a head cut in its request line, then
            # in a header: only that head's bytes count.
            large = b" " * 20000 + body
            first, second, third = (
                b"POST /predict HTTP/1.1\r\nHost: x\r\nX-Request-Id: r%d\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (number, len(large), large)
                for number in range(3)
            )
            with socket.create_connection(address) as sock:
                for part in (first + second[:9], second[9:] + third[:40], third[40:]):
                    sock.sendall(part)
                    time.sleep(0.2)
                answers = read_answers(sock, 3)
            assert statuses(answers) == [200] * 3, answers
            assert re.findall(rb"x-request-id: (r\d+)", answers) == [b"r0", b"r1", b"r2"]
        finally:
            logging.getLogger("uvicorn.error").removeHandler(log)
    assert not log.records, [record.getMessage() for record in log.records]


def test_a_client_leaving_mid_pipeline_leaves_nothing_in_the_log(served, records, monkeypatch):
    """A client that closes its connection while its first request runs and others wait behind
    it: uvicorn told only the last request parsed, and the one running wrote its answer to the
    closed connection ("Exception in ASGI application", a RuntimeError from uvloop)."""
    limits = Limits(inline_rows=0)  # every batch to the inference thread
    real_run = served.run
    monkeypatch.setattr(served, "run", lambda feed: (time.sleep(0.3), real_run(feed))[1])
    body = json.dumps({"records": records[:1]}).encode()
    request = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    with running(App(served, limits), limits) as address:
        log = LogRecords()
        logging.getLogger("uvicorn.error").addHandler(log)
        try:
            with socket.create_connection(address) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.sendall((request + body) * 3)
                time.sleep(0.1)  # the first is running (the test is the same if it is not yet)
            time.sleep(1)  # it has finished
            connection = HTTPConnection(*address, timeout=20)
            connection.request("GET", "/v2/health/ready")
            assert connection.getresponse().status == 200
        finally:
            logging.getLogger("uvicorn.error").removeHandler(log)
    assert not log.records, [record.getMessage() for record in log.records]


MALFORMED = {
    "a control character in a header": b"GET /v2 HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n",
    "Content-Length and Transfer-Encoding": (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n{}"
    ),
    "two Content-Lengths": (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"
    ),
    "Content-Length: -1": b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n{}",
    "an unknown method": b"BREW /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n",
    "the HTTP/2 preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "non-ASCII bytes in the path": "GET /v2/h\u00e9alth HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
    "a bad chunk size": (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    ),
}


def test_malformed_requests_get_a_json_400_after_the_answers_before_them(served):
    """uvicorn answered a request llhttp refuses with plain text (`Invalid HTTP request
    received.`), and a refusal was written at once, before the answers still owed to the
    requests pipelined ahead of it. Each is now a JSON 400 naming what is wrong, after those
    answers, and the connection closes."""
    limits = Limits()
    health = b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n"
    with running(App(served, limits), limits) as address:
        log = LogRecords()
        logging.getLogger("uvicorn.error").addHandler(log)
        try:
            for what, request in MALFORMED.items():
                for ahead in (0, 3):
                    with socket.create_connection(address) as sock:
                        sock.sendall(health * ahead + request + health)
                        answers = read_all(sock)
                    assert statuses(answers) == [200] * ahead + [400], (what, answers)
                    status, message = json_error(last(answers))
                    assert status == 400 and message.startswith("malformed HTTP request: "), (
                        what,
                        message,
                    )
            # An upgrade this server does not speak is ignored: the request answered, then closed.
            with socket.create_connection(address) as sock:
                sock.sendall(
                    b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, "
                    b"HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQC\r\n\r\n"
                )
                answers = read_all(sock)
            assert statuses(answers) == [200] and answers.endswith(b'{"ready":true}'), answers
        finally:
            logging.getLogger("uvicorn.error").removeHandler(log)
    assert not log.records, [record.getMessage() for record in log.records]


def test_refusals_of_the_http_layer_wait_for_the_answers_before_them(served):
    """A head over MAX_HEADER_BYTES or not finished within HEADER_TIMEOUT, pipelined behind
    requests still being answered: the 431 or 408 comes after their answers (it was written at
    once, and the connection closed under them)."""
    limits = Limits(header_timeout=0.5, max_header_bytes=4096)
    health = b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n"
    big = b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8192
    with running(App(served, limits), limits) as address:
        first = b"GET /v2/health/ready HTTP/1.1\r\nX-Big: /v2/health/ready " + b"a" * 8192
        cases = ((big + b"\r\n\r\n", 431), (big, 431), (first, 431), (health[:20], 408))
        for tail, status in cases:
            with socket.create_connection(address) as sock:
                sock.sendall(health * 3 + tail)
                answers = read_all(sock)
            assert statuses(answers) == [200, 200, 200, status], answers
            assert json_error(last(answers))[0] == status


def test_health_is_answered_while_large_batches_compute(served, records):
    """Large batches run in the inference thread: the event loop answers health checks meanwhile.
    Each check is timed by the client; the median must be under 100 ms and none over 1 s (the
    probe's timeout), on a machine whose cores other tests may be using."""
    limits = Limits()
    body = json.dumps({"records": records}).encode()
    with running(App(served, limits), limits) as address:
        finished: list[float] = []

        def big() -> None:
            connection = HTTPConnection(*address, timeout=120)
            for _ in range(4):
                connection.request("POST", "/predict", body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                assert response.status == 200
                response.read()
            finished.append(time.perf_counter())

        senders = [threading.Thread(target=big) for _ in range(4)]
        for sender in senders:
            sender.start()
        probe = HTTPConnection(*address, timeout=20)
        latencies, answered_at = [], []
        while len(finished) < len(senders):
            started = time.perf_counter()
            probe.request("GET", "/v2/health/live")
            response = probe.getresponse()
            assert response.status == 200 and response.read() == b'{"live":true}'
            answered_at.append(time.perf_counter())
            latencies.append(answered_at[-1] - started)
            time.sleep(0.01)
        for sender in senders:
            sender.join()
    during = [t for t, at in zip(latencies, answered_at, strict=True) if at < max(finished)]
    assert during, "no health check was answered while the batches were in flight"
    assert sorted(during)[len(during) // 2] < 0.1, during
    assert max(during) < 1.0, during
