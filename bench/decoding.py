"""Typed request decoding for the server: msgspec vs pydantic v2, on the server's request shapes.

The default project's features (breast cancer: 30 numbers); a `/predict` body of 1, 64 and 1,000
records (`{"records": [{"<feature>": <number or null>, ...}]}`, unknown fields refused, numbers
within float32, true and "1.5" refused) decoded and validated into typed objects, then into one
float32 block, median of repeated calls on one core; the same rows as columns and data (pandas'
split orientation, `{"columns": [...], "data": [[...], ...]}`, each row a typed tuple); and as an
OIP infer body (one tensor per feature, data validated by datatype). Installed size: the
package's own files.
"""

import json
import statistics
import time
from importlib.metadata import files
from typing import Annotated

import msgspec
import numpy as np
import pydantic
from msgspec.structs import astuple
from sklearn.datasets import load_breast_cancer

F32 = float(np.finfo(np.float32).max)


def median_us(call, seconds: float = 1.0) -> float:
    times, until = [], time.perf_counter() + seconds
    while time.perf_counter() < until or len(times) < 20:
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def installed_kib(*distributions: str) -> float:
    total = 0
    for name in distributions:
        total += sum(f.size or 0 for f in files(name) or [])
    return total / 1024


def main() -> None:
    data = load_breast_cancer()
    names = [str(n).replace(" ", "_") for n in data.feature_names]
    rows = [dict(zip(names, map(float, row), strict=True)) for row in data.data]
    rows = (rows * 2)[:1000]

    # msgspec: one Struct per record, fields renamed to the feature names.
    number = Annotated[float, msgspec.Meta(ge=-F32, le=F32)]
    record = msgspec.defstruct(
        "Record",
        [(f"f{i}", number | None) for i in range(len(names))],
        rename={f"f{i}": n for i, n in enumerate(names)},
        forbid_unknown_fields=True,
        gc=False,
    )
    msgspec_records = msgspec.json.Decoder(
        msgspec.defstruct("Body", [("records", list[record])], forbid_unknown_fields=True)
    )
    msgspec_data = msgspec.json.Decoder(list[number | None])
    row = tuple[(number | None,) * len(names)]
    msgspec_split = msgspec.json.Decoder(
        msgspec.defstruct(
            "Split", [("columns", list[str]), ("data", list[row])], forbid_unknown_fields=True
        )
    )

    def msgspec_columns(body: bytes) -> np.ndarray:
        return np.array(msgspec_split.decode(body).data, dtype=np.float32).T

    def msgspec_predict(body: bytes) -> np.ndarray:
        decoded = msgspec_records.decode(body).records
        return np.array(list(zip(*map(astuple, decoded), strict=True)), dtype=np.float32)

    # pydantic v2: the same record model, strict (no coercion), unknown fields forbidden.
    strict = pydantic.ConfigDict(strict=True, extra="forbid")
    bounded = Annotated[float, pydantic.Field(ge=-F32, le=F32)]
    model = pydantic.create_model(
        "Record", __config__=strict, **{n: (bounded | None, ...) for n in names}
    )
    pydantic_records = pydantic.TypeAdapter(
        pydantic.create_model("Body", __config__=strict, records=(list[model], ...))
    )
    pydantic_data = pydantic.TypeAdapter(list[bounded | None], config=strict)
    pydantic_split = pydantic.TypeAdapter(
        pydantic.create_model(
            "Split",
            __config__=strict,
            columns=(list[str], ...),
            data=(list[tuple[(bounded | None,) * len(names)]], ...),
        )
    )

    def pydantic_columns(body: bytes) -> np.ndarray:
        return np.array(pydantic_split.validate_json(body).data, dtype=np.float32).T

    def pydantic_predict(body: bytes) -> np.ndarray:
        decoded = pydantic_records.validate_json(body).records
        return np.array([[getattr(r, n) for r in decoded] for n in names], dtype=np.float32)

    print("| request | rows | body | msgspec | pydantic v2 | pydantic / msgspec |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")

    def compare(request: str, count: int, body: bytes, fast_one, slow_one) -> None:
        """Both decoders agree on the body, then one table row of their times."""
        assert np.array_equal(fast_one(body), slow_one(body), equal_nan=True)
        fast, slow = median_us(lambda: fast_one(body)), median_us(lambda: slow_one(body))
        print(
            f"| {request} | {count:,} | {len(body) / 1024:,.1f} KiB | {fast:,.0f} µs | "
            f"{slow:,.0f} µs | {slow / fast:.1f}x |"
        )

    records = {}
    for count in (1, 64, 1000):
        records[count] = json.dumps({"records": rows[:count]}).encode()
        compare("/predict", count, records[count], msgspec_predict, pydantic_predict)
    for count in (1, 64, 1000):
        body = json.dumps(
            {"columns": names, "data": [list(row.values()) for row in rows[:count]]}
        ).encode()
        assert np.array_equal(msgspec_columns(body), msgspec_predict(records[count]))
        compare("/predict, columns and data", count, body, msgspec_columns, pydantic_columns)
    for count in (1, 64, 1000):
        tensors = [json.dumps([row[n] for row in rows[:count]]).encode() for n in names]
        size = sum(map(len, tensors))
        fast = median_us(lambda t=tensors: [msgspec_data.decode(x) for x in t])
        slow = median_us(lambda t=tensors: [pydantic_data.validate_json(x) for x in t])
        print(
            f"| infer tensors' data | {count:,} | {size / 1024:,.1f} KiB | {fast:,.0f} µs | "
            f"{slow:,.0f} µs | {slow / fast:.1f}x |"
        )
    print()
    print(
        f"- Installed size: msgspec {installed_kib('msgspec'):,.0f} KiB; pydantic v2 "
        f"{installed_kib('pydantic', 'pydantic-core', 'annotated-types', 'typing-inspection'):,.0f}"
        " KiB (pydantic, pydantic-core, annotated-types, typing-inspection)."
    )


if __name__ == "__main__":
    main()
