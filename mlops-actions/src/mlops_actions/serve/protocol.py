"""Request bodies decoded by type (msgspec) straight into the model's feed, and answers encoded.

A wrong type, a bad shape or a size over a limit is a `RequestError` naming the field by its JSON
path (`$.records[3].mean_radius`, `$.data[3][0]`), never a 5xx. Types follow the Open Inference
Protocol v2 REST spec (https://github.com/kserve/open-inference-protocol,
specification/protocol/inference_rest.md): `id` is a string, `parameters` maps names to strings,
numbers or booleans, a requested output is `{"name": ...}`. Infer also takes tensors as binary data
after the JSON, and answers with them (Triton's binary tensor data extension: `binary`). /predict
also takes pandas' "split" orientation (`DataFrame.to_json(orient="split")`: columns, data and an
index left aside), as MLflow's scoring server does (its `dataframe_split`). Why msgspec rather
than pydantic: bench/decoding.py in the template.
"""

import re
import struct
import sys
from collections.abc import Iterable, Iterator
from itertools import chain
from operator import itemgetter
from types import GenericAlias
from typing import Annotated, Any

import msgspec
import numpy as np
from msgspec.structs import astuple

from . import binary
from .errors import SHOWN_CHARS, RequestError, cut, shown
from .model import ServedModel
from .settings import Limits

FLOAT32_MAX = float(np.finfo(np.float32).max)
NAN = float("nan")
# A JSON number that float32 can hold; true/false and "1.5" are refused, not coerced.
Number = Annotated[float, msgspec.Meta(ge=-FLOAT32_MAX, le=FLOAT32_MAX)]
# The same, its range checked once the numbers are packed (`Codec.predict_feed`).
Unchecked = float
Parameters = dict[str, str | int | float | bool]
# A shape's dimension: 2 or 2.0. The document types it as JSON Schema's integer, as OIP's own
# REST schema does (specification/protocol/open_inference_rest.yaml), and that integer takes 2.0:
# no schema can refuse 2.0 and take 2, so the server takes what the document promises and reads
# it as 2 (`rows_of`); 2.5 is refused. One bound per type: msgspec bounds no union.
Dimension = (
    Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
    | Annotated[float, msgspec.Meta(ge=0, le=2**63 - 1)]
)
# Bytes one JSON value of an answer can take at most, its comma included: msgspec writes a float
# in 24 characters or fewer (-0.000031638202926842496: a sign, "0.0000" and 17 digits).
FLOAT_BYTES = 25
# Batches of up to this many rows decoded on the event loop are written into arrays kept from one
# request to the next (one set per row count): `Codec.numeric_feed`.
KEPT_FEED_ROWS = 64
NESTING = "JSON is nested too deeply"
PREDICT_FORMS = (
    'send {"records": [{"<feature>": <value>, ...}, ...]} or '
    '{"columns": ["<feature>", ...], "data": [[<value>, ...], ...]}'
)
# A value's place in `data`, as msgspec writes it in an error: row, then column.
DATA_CELL = re.compile(r"`\$(?:\.data)?\[(\d+)\]\[(\d+)\]`")
DATA_ROW = re.compile(r"`\$(?:\.data)?\[(\d+)\]`")
# Where msgspec says JSON broke, and what Python's json writes for floats JSON lacks.
BYTE = re.compile(r"\(byte (\d+)\)")
NOT_JSON = re.compile(rb"-?(?:NaN|Infinity)")
# Tensor data given nested, [[v], [v], ...]: its first value is an array.
NESTED = re.compile(rb"\[\s*\[")
# The outputs an infer request gets, each once, in order: (name, as binary data).
Wanted = list[tuple[str, bool]]


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
    # Decoded once the datatype and shape are known to be right (`Codec.tensor`); absent when the
    # values follow the JSON as binary data (`parameters.binary_data_size`).
    data: msgspec.Raw | Unset = UNSET
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
        # msgspec quotes an unknown field's name whole: cut it, keep where it is.
        what, at, where = message.rpartition(" - at `")
        if at and len(what) > SHOWN_CHARS:
            message = f"{cut(what, SHOWN_CHARS)}`{at}{where}"
        raise RequestError(message) from None
    except msgspec.DecodeError as err:
        reason = str(err).removeprefix("JSON is malformed: ")
        found = BYTE.search(reason)
        if found and NOT_JSON.match(body, int(found.group(1))):
            reason += ": NaN and Infinity are not JSON (send null for a gap)"
        raise RequestError(f"malformed JSON: {reason}") from None
    except RecursionError:  # a backstop: unknown fields are refused before their value is read
        raise RequestError(NESTING) from None


class Feed:
    """The numeric part of a feed for one row count: the values row by row as a request sends
    them, the same values feature by feature, and the model's [rows, 1] input arrays (views of
    the latter). With one row both orders are one block."""

    def __init__(self, names: list[str], rows: int):
        block = np.empty((len(names), rows, 1), dtype=np.float32)
        self.columns = block[:, :, 0]
        self.rows = self.columns.T if rows == 1 else np.empty((rows, len(names)), np.float32)
        # The rows' memory, which the packer writes (an array is a buffer; numpy types it as one
        # from Python 3.12, PEP 688's __buffer__).
        self.buffer = self.rows.data
        self.feed = dict(zip(names, block, strict=True))
        self.packer = struct.Struct(f"{rows * len(names)}f")


class Codec:
    """Decoders and encoders for one model: its features are the fields of a /predict record."""

    def __init__(self, model: ServedModel, limits: Limits):
        self.model, self.limits = model, limits
        self.order = [*model.numeric, *model.categorical]
        self.kinds = dict(zip(self.order, self.kinds_of(Number), strict=True))
        # Columns and data (pandas' "split" orientation) give each value's feature by its column,
        # in any order. With numeric features only, every column takes the same type, so the rows
        # are typed while the body is decoded; otherwise `data` is decoded once `columns` says
        # which column takes which type (`split_rows`).
        self.numeric_only = not model.categorical
        self.numeric = frozenset(model.numeric)
        self.records = self.predict_decoder(Number)
        # Checking each number's range as it is decoded costs 0.2 ms in 1,000 rows of 30: a large
        # body is decoded without, and its packed numbers checked at once (`predict_feed`).
        self.unchecked = self.predict_decoder(Unchecked)
        # Which columns are numeric, in a body's order -> the decoder of its rows (`row_decoder`).
        self.row_decoders: dict[tuple, msgspec.json.Decoder] = {}
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
        # Types made at run time are written GenericAlias(list, v), the same object as list[v]
        # (which a type checker reads as a static type, and refuses for a variable).
        values = {"FP32": Number | None, "BYTES": str | None}
        self.flat = {
            kind: msgspec.json.Decoder(GenericAlias(list, v)) for kind, v in values.items()
        }
        # Nested data's [v] as a one-field struct: 24 bytes a value where a tuple takes 48; as a
        # tuple for the words of an error (msgspec 0.23 leaves the path out of a struct's "at
        # most length 1").
        self.nested_tuples = {
            kind: msgspec.json.Decoder(GenericAlias(list, GenericAlias(tuple, v)))
            for kind, v in values.items()
        }
        cells = {
            kind: msgspec.defstruct(
                "Cell", [("value", v)], array_like=True, forbid_unknown_fields=True, gc=False
            )
            for kind, v in values.items()
        }
        self.nested = {
            kind: msgspec.json.Decoder(GenericAlias(list, cell)) for kind, cell in cells.items()
        }
        self.encode = msgspec.json.Encoder().encode
        self.reply_head = b'{"model_version":' + self.encode(model.version) + b',"predictions":['
        if model.labels:
            # A /predict row's pieces: its label and probabilities go into the empty ones.
            self.label_json = {label: self.encode(label) for label in model.labels}
            keys = [b"," + self.label_json[label] + b":" for label in model.labels]
            keys[0] = b',"probabilities":{' + keys[0][1:]
            self.row_pieces = [b'{"label":', b"", *chain.from_iterable((k, b"") for k in keys)]
            self.row_pieces.append(b"}},")
        self.binary_labels = {label: binary.element(label) for label in model.labels or []}
        # A decoded row's most bytes: its struct or tuple and list slot, a float per numeric
        # value, an empty str per categorical one (whose characters `held_bytes` adds).
        width = len(self.order)
        self.tuple_bytes = sys.getsizeof(tuple(range(width)))
        self.row_bytes = (
            max(self.tuple_bytes, 16 + 8 * width)
            + 8
            + len(model.numeric) * sys.getsizeof(1.0)
            + len(model.categorical) * sys.getsizeof("")
        )
        # Row count -> its kept `Feed`.
        self.kept_feeds: dict[int, Feed] = {}
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

    def held_bytes(self, rows: int, body: int, logged: bool) -> int:
        """At most what /predict rows decoded from `body` bytes hold while they wait for the
        model: a str's characters take at most 4 bytes each, and each came from at least one
        byte of the body; `logged`, the tuples of their columns for the prediction log too, and
        a tuple a row they are made from (freed, but kept by CPython's free list for reuse)."""
        held = rows * self.row_bytes + (4 * body if self.model.categorical else 0)
        if logged:
            held += len(self.order) * (sys.getsizeof(()) + 8 * rows) + rows * self.tuple_bytes
        return held

    def feed_bytes(self, feed: dict[str, np.ndarray], rows: int) -> int:
        """What a feed of `rows` rows holds: a float32 a numeric value, a slot and its str a
        categorical one (counted one by one: a few µs for 1,000 rows)."""
        size = rows * 4 * len(self.model.numeric)
        for name in self.model.categorical:
            size += rows * 8 + sum(map(sys.getsizeof, feed[name].ravel().tolist()))
        return size

    # --- /predict -------------------------------------------------------------------------------

    def kinds_of(self, number: Any) -> list:
        """Each feature's type in `self.order`, `number` a numeric feature's; null is a gap."""
        numeric, categorical = len(self.model.numeric), len(self.model.categorical)
        return [number | None] * numeric + [str | None] * categorical

    def predict_decoder(self, number: Any) -> msgspec.json.Decoder:
        """A /predict body's decoder, `number` the type of a numeric feature's value."""
        kinds = self.kinds_of(number)
        # Field names are f0, f1, ...: feature names need not be Python identifiers.
        record = msgspec.defstruct(
            "Record",
            [(f"f{i}", kind) for i, kind in enumerate(kinds)],
            rename={f"f{i}": name for i, name in enumerate(self.order)},
            forbid_unknown_fields=True,
            gc=False,
        )
        data = (
            GenericAlias(list, GenericAlias(tuple, tuple(kinds)))
            if self.numeric_only
            else msgspec.Raw
        )
        return msgspec.json.Decoder(
            msgspec.defstruct(
                "PredictRequest",
                [
                    ("records", GenericAlias(list, record) | Unset, UNSET),
                    ("columns", list[str] | Unset, UNSET),
                    ("data", data, UNSET),
                    # What pandas writes beside them unless index=False: its bytes left aside
                    # (a list of its values took 28 bytes a JSON byte for `[0,0,...]`).
                    ("index", msgspec.Raw | Unset, UNSET),
                ],
                forbid_unknown_fields=True,
                gc=False,
            )
        )

    def predict_feed(
        self, body: bytes, keep: bool = False
    ) -> tuple[dict[str, np.ndarray], int, list]:
        """The feed, its row count and its rows (`predict_rows`, for the prediction log).
        `keep`: the numbers may go into kept arrays (`numeric_feed`).

        The body is decoded first without a check of each number's range, and the packed numbers
        checked at once. With a number at or past float32's largest, or any error, the first
        decoding is let go and the body decoded again with every check, which decides: what is
        refused, and in which words, is the same as on the event loop's path (`predict_rows` with
        the checked decoder), even where an error further on, or too many rows, would otherwise
        be named before a number out of range.
        """
        rows: list | None = None
        try:
            rows = self.predict_rows(body, self.unchecked)
            return self.records_feed(rows, len(rows), keep, checked=False), len(rows), rows
        except (OverflowError, RequestError):
            rows = None  # not held while the body is decoded again (MAX_BODY_BYTES x 17, once)
        rows = self.predict_rows(body)
        return self.records_feed(rows, len(rows), keep), len(rows), rows

    def predict_rows(self, body: bytes, decoder: msgspec.json.Decoder | None = None) -> list:
        """A /predict body's rows in `self.order`, checked against the limits: records by feature
        name (as decoded: `row_tuples` reads them as tuples), or columns and data (tuples)."""
        try:
            request = _decode(decoder or self.records, body)
        except RequestError as err:
            message = str(err)
            columns = self.columns_of(body) if "`$.data[" in message else None
            if columns is not None:
                # A column unknown or missing (a row's length is then wrong too) is the error:
                # a frame sent with its target column, or without a feature.
                self.check_columns(columns)
            raise RequestError(_explain_predict(message, columns)) from None
        split = request.columns is not UNSET or request.data is not UNSET
        if request.index is not UNSET and memoryview(request.index)[:1] != b"[":
            raise RequestError("Expected `array` - at `$.index`: the index pandas writes, or none")
        if request.records is not UNSET:
            if split or request.index is not UNSET:
                raise RequestError(f"records and columns/data/index together: {PREDICT_FORMS}")
            self.check_rows(len(request.records))
            rows = request.records
        elif request.columns is UNSET or request.data is UNSET:
            if not split:
                raise RequestError(f"no rows: {PREDICT_FORMS}")
            given, needed = ("columns", "data") if request.data is UNSET else ("data", "columns")
            raise RequestError(f"'{given}' without '{needed}': {PREDICT_FORMS}")
        else:
            rows = self.split_rows(request.columns, request.data)
        self.check_response(len(rows), self.prediction_bytes)
        return rows

    def split_rows(self, columns: list[str], data: Any) -> list[tuple]:
        """Columns and data as rows in `self.order`: each feature once, in any order; their
        number checked against the limit."""
        self.check_columns(columns)
        if not self.numeric_only:
            try:
                data = _decode(self.row_decoder(columns), data)
            except RequestError as err:
                raise RequestError(_explain_data(str(err), columns)) from None
        # As records are, before more is made of the rows: decoding is when their number is known.
        self.check_rows(len(data))
        if columns == self.order:  # always so with one feature
            return data
        position = {name: index for index, name in enumerate(columns)}
        return list(map(itemgetter(*[position[name] for name in self.order]), data))

    def check_columns(self, columns: list[str]) -> None:
        """Each feature once, in any order."""
        if columns != self.order:
            seen: set[str] = set()
            for position, name in enumerate(columns):
                if name not in self.kinds:
                    raise RequestError(
                        f"unknown feature {shown(name)} - at `$.columns[{position}]`"
                    )
                if name in seen:
                    raise RequestError(f"feature {name!r} is given twice - at `$.columns`")
                seen.add(name)
            missing = [name for name in self.order if name not in seen]
            if missing:
                raise RequestError(
                    f"missing feature {missing[0]!r} in `$.columns` (send null in its column "
                    "for a gap)"
                )

    def row_decoder(self, columns: list[str]) -> msgspec.json.Decoder:
        """A decoder of rows whose values take the types of `columns` in that order; up to 64
        are kept (a client sends one order, usually)."""
        key = tuple(name in self.numeric for name in columns)
        decoder = self.row_decoders.get(key)
        if decoder is None:
            if len(self.row_decoders) >= 64:
                self.row_decoders.clear()
            kinds = tuple(self.kinds[name] for name in columns)
            rows = GenericAlias(list, GenericAlias(tuple, kinds))
            decoder = self.row_decoders[key] = msgspec.json.Decoder(rows)
        return decoder

    def columns_of(self, body: bytes) -> list[str] | None:
        """The columns of a body whose data did not decode, to name a bad value's feature."""
        try:
            return msgspec.json.decode(body, type=_Columns).columns
        except (msgspec.MsgspecError, RecursionError):
            return None

    def records_feed(
        self, rows: list, count: int, keep: bool, checked: bool = True
    ) -> dict[str, np.ndarray]:
        """The model's feed for /predict rows (of one request, or of several run as one batch).
        `checked`: the numbers' range was checked as they were decoded (else `numeric_feed`)."""
        feed = self.numeric_feed(rows, count, keep, checked)
        if self.model.categorical:
            numeric = len(self.model.numeric)
            columns = list(zip(*row_tuples(rows), strict=True))[numeric:]
            for name, column in zip(self.model.categorical, columns, strict=True):
                # "" is the missing category the model was trained with (features.MISSING_CATEGORY).
                values = ["" if value is None else value for value in column]
                feed[name] = np.array(values, dtype=object)[:, None]
        return feed

    def numeric_feed(
        self, rows: list, count: int, keep: bool, checked: bool = True
    ) -> dict[str, np.ndarray]:
        """The numeric features' [rows, 1] float32 arrays, null read as NaN (a gap the model
        imputes): the rows' numbers packed in one call (`struct`, about 150 instructions a
        number where numpy's conversions take 250 to 370) into a block the arrays are views of.
        Unless `checked`, a number float32 cannot hold, or its largest (a number just past it is
        rounded to it), raises OverflowError.

        With `keep`, a batch the event loop runs itself (up to INLINE_ROWS rows, and at most
        KEPT_FEED_ROWS) goes into a block and views kept for its row count: making 30 array views
        and their dict costs about 45,000 instructions, a third of all a one-row request adds to
        the floor and the model. The next such request overwrites them, so the caller runs a kept
        feed on the loop right away (`batching.Coalescer`), before any other request can start.
        Kept blocks take at most 8 bytes x features x 2,080 (rows 1 to 64 summed): 500 KiB for
        30 features.
        """
        numeric = len(self.model.numeric)
        if not numeric:
            return {}
        keep = keep and count <= min(KEPT_FEED_ROWS, self.limits.inline_rows)
        kept = self.kept_feeds.get(count) if keep else None
        if kept is None:
            kept = Feed(self.model.numeric, count)
            if keep:
                self.kept_feeds[count] = kept
        try:  # straight from the rows, no list between (1,000 rows of 30: 0.42 ms, not 0.49)
            kept.packer.pack_into(kept.buffer, 0, *self.numbers(rows))
        except struct.error:  # a null: a gap
            numbers = [NAN if n is None else n for n in self.numbers(rows)]
            kept.packer.pack_into(kept.buffer, 0, *numbers)
        if not checked and (np.abs(kept.rows) >= FLOAT32_MAX).any():
            raise OverflowError("a number float32 cannot hold, or its largest")
        if count > 1:
            np.copyto(kept.columns, kept.rows.T)
        return kept.feed if not self.model.categorical else dict(kept.feed)

    def numbers(self, rows: list) -> Iterable:
        """The rows' numeric values, row by row (numeric features come first in a row)."""
        tuples = row_tuples(rows)
        if self.model.categorical:
            numeric = len(self.model.numeric)
            return chain.from_iterable(row[:numeric] for row in tuples)
        return next(tuples) if len(rows) == 1 else chain.from_iterable(tuples)

    def columns(self, rows: list) -> dict[str, tuple]:
        """The rows' values by feature, for the prediction log."""
        return dict(zip(self.order, zip(*row_tuples(rows), strict=True), strict=True))

    def predict_reply(self, outputs: dict[str, np.ndarray]) -> bytes:
        """The /predict answer: msgspec writes all the numbers at once (NaN and infinity as null,
        as it writes them anywhere), and one join puts them between the rows' fixed pieces."""
        if self.model.labels is None:
            numbers = self.encode(outputs["variable"].ravel().tolist())[1:-1]
            return self.reply_head + b'{"value":' + numbers.replace(b",", b'},{"value":') + b"}]}"
        try:
            labels = list(map(self.label_json.__getitem__, outputs["label"].ravel().tolist()))
        except KeyError:  # a label the metadata lacks: answered below, from `predictions`
            labels = None
        probabilities = outputs["probabilities"]
        width = len(self.model.labels)
        if labels is None or probabilities.shape[1:] != (width,):
            return self.encode(
                {"model_version": self.model.version, "predictions": self.predictions(outputs)}
            )
        cells = self.encode(probabilities.ravel().tolist())[1:-1].split(b",")
        pieces, size = self.row_pieces * len(labels), len(self.row_pieces)
        pieces[1::size] = labels
        for position in range(width):
            pieces[3 + 2 * position :: size] = cells[position::width]
        pieces[-1] = b"}}]}"
        return self.reply_head + b"".join(pieces)

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

    def infer_feed(
        self, body: bytes, header: int | None = None
    ) -> tuple[dict[str, np.ndarray], int, Wanted, str | None]:
        """The feed, its rows, the outputs to answer (each once, and whether as binary data) and
        the request's id. `header`: the JSON's length (Inference-Header-Content-Length), binary
        tensor data after it; None: the body is all JSON."""
        if header is None:
            document, after = body, memoryview(b"")
        elif header > len(body):
            raise RequestError(
                f"Inference-Header-Content-Length is {header}, the body has {len(body)} bytes"
            )
        else:
            document, after = body[:header], memoryview(body)[header:]
        try:
            request = _decode(self.infer, document)
        except RequestError as err:
            raise RequestError(_explain_infer(str(err), header)) from None
        if not request.inputs:
            raise RequestError("'inputs' must be a non-empty list of tensors")
        wanted = self.wanted_outputs(request.outputs, request.parameters)
        feed: dict[str, np.ndarray] = {}
        rows: int | None = None
        taken = 0  # bytes after the JSON read so far
        for position, tensor in enumerate(request.inputs):
            name = tensor.name
            if name not in self.model.inputs:
                raise RequestError(f"inputs[{position}]: unknown input {shown(name)}")
            if name in feed:
                raise RequestError(f"input {name!r} is given twice")
            expected = self.model.inputs[name]
            if expected is None or tensor.datatype != expected:  # None: a type OIP lacks
                raise RequestError(
                    f"input {name!r}: datatype must be {expected}, got {shown(tensor.datatype)}"
                )
            shape = tensor.shape
            if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
                raise RequestError(
                    f"input {name!r}: shape must be [rows] or [rows, 1], got {shape}"
                )
            count = rows_of(shape, name, position)
            if rows is not None and count != rows:
                raise RequestError(f"input {name!r} has {count} rows, other inputs have {rows}")
            rows = count
            self.check_rows(rows)
            what = f"input {name!r}"
            binary.supported(tensor.parameters, what)
            size = binary.size(tensor.parameters, what)
            if size is None:
                if tensor.data is UNSET:
                    raise RequestError(
                        f"input {name!r}: no data - at `$.inputs[{position}]` (send `data`, or "
                        "parameters.binary_data_size and the bytes after the JSON)"
                    )
                feed[name] = self.tensor(position, name, expected, tensor.data, rows)
                continue
            if header is None:
                raise RequestError(
                    f"input {name!r}: binary_data_size needs the Inference-Header-Content-Length "
                    "header (the JSON's length, binary data after it)"
                )
            if tensor.data is not UNSET:
                raise RequestError(f"input {name!r}: data and binary_data_size together")
            if size > len(after) - taken:
                raise RequestError(
                    f"input {name!r}: binary_data_size is {size}, {len(after) - taken} bytes "
                    "are left after the JSON"
                )
            feed[name] = binary.tensor(name, expected, after[taken : taken + size], rows)
            taken += size
        if taken != len(after):
            raise RequestError(
                f"{len(after) - taken} bytes after the JSON belong to no input (binary_data_size)"
            )
        missing = [name for name in self.model.inputs if name not in feed]
        if missing:
            raise RequestError(f"missing input {', '.join(missing)}")
        assert rows is not None
        per_row = sum(self.output_bytes(name) for name, _ in wanted)
        echoed = 0 if request.id is UNSET else len(self.encode(request.id))
        self.check_response(rows, per_row, echoed)
        return feed, rows, wanted, None if request.id is UNSET else request.id

    def tensor(self, position: int, name: str, datatype: str, data: msgspec.Raw, rows: int):
        """A [rows] or [rows, 1] tensor's data, flat or nested, as a [rows, 1] array."""
        try:
            values = _decode(self.flat[datatype], data)
        except RequestError as flat_error:
            try:
                values = _decode(self.nested[datatype], data)
            except RequestError:
                # In the words of the form the data takes: nested if its first value is an array.
                error = flat_error
                if NESTED.match(data):
                    try:
                        _decode(self.nested_tuples[datatype], data)
                    except RequestError as tuple_error:
                        error = tuple_error
                message = str(error).replace(" - at `$", f" - at `$.inputs[{position}].data")
                raise RequestError(f"input {name!r}: {message}") from None
            if len(values) == rows:
                values = [cell.value for cell in values]
        if len(values) != rows:
            raise RequestError(
                f"input {name!r}: shape [{rows}, 1] needs {rows} values, got {len(values)}"
            )
        if datatype == "BYTES":
            values = ["" if value is None else value for value in values]
            return np.array(values, dtype=object)[:, None]
        return np.array(values, dtype=np.float32)[:, None]

    def wanted_outputs(
        self, requested: list[RequestedOutput] | Unset, parameters: Parameters | Unset
    ) -> Wanted:
        """Each requested output once, in the order first asked (asking twice costs nothing more),
        and whether it is answered as binary data: its own `binary_data` parameter, else the
        request's `binary_data_output` (what tritonclient sends when it names no output)."""
        default = binary.flag(parameters, "binary_data_output", "parameters") or False
        wanted: dict[str, bool] = {}
        if not requested:  # none named, or an empty list: every output, as Triton answers
            requested = [RequestedOutput(name) for name in self.model.outputs]
        for item in requested:
            if item.name not in self.model.outputs:
                known = ", ".join(self.model.outputs)
                raise RequestError(f"unknown output {shown(item.name)}: has {known}")
            what = f"output {item.name!r}"
            binary.supported(item.parameters, what)
            as_binary = binary.flag(item.parameters, "binary_data", what)
            wanted.setdefault(item.name, default if as_binary is None else as_binary)
        for name, as_binary in wanted.items():
            datatype = self.model.outputs[name]
            if as_binary and datatype != "BYTES" and datatype not in binary.TYPES:
                raise RequestError(f"output {name!r} ({datatype}) cannot be sent as binary data")
        return list(wanted.items())

    def output_bytes(self, name: str) -> int:
        """An output's most bytes per row, as JSON or binary data: a label is its quoted JSON and
        a comma, or its 4-byte length and bytes (the latter one more); a number at most 25."""
        size = self.label_bytes + 2 if self.model.outputs[name] == "BYTES" else FLOAT_BYTES
        return self.model.widths[name] * size

    def infer_reply(
        self, outputs: dict[str, np.ndarray], wanted: Wanted, request_id: str | None
    ) -> tuple[bytes, int | None]:
        """The infer answer, and the length of its JSON when binary data follows it (None: the
        answer is all JSON)."""
        tensors, chunks = [], []
        for name, as_binary in wanted:
            values, datatype = outputs[name], self.model.outputs[name]
            tensor: dict[str, Any] = {
                "name": name,
                "datatype": datatype,
                "shape": list(values.shape),
            }
            if as_binary:
                assert datatype is not None  # `wanted_outputs` refuses binary data of other types
                data = self.binary_data(datatype, values)
                tensor["parameters"] = {"binary_data_size": len(data)}
                chunks.append(data)
            else:
                tensor["data"] = values.ravel().tolist()
            tensors.append(tensor)
        response: dict[str, Any] = {
            "model_name": self.model.name,
            "model_version": self.model.version,
            "outputs": tensors,
        }
        if request_id is not None:
            response["id"] = request_id
        document = self.encode(response)
        if not chunks:
            return document, None
        return b"".join([document, *chunks]), len(document)

    def binary_data(self, datatype: str, values: np.ndarray) -> bytes:
        """An output as binary tensor data: row-major, little-endian; a BYTES element as its
        length and UTF-8 bytes (a label's made once: 1,000 labels in 30 µs, not 300)."""
        return binary.output(datatype, values, self.binary_labels)

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


def rows_of(shape: list[int | float], name: str, position: int) -> int:
    """The rows an input's shape gives, as an int: 2.0 is 2 (see `Dimension`), 2.5 is refused."""
    rows = shape[0]
    if isinstance(rows, int):  # never a bool: msgspec refuses true for a dimension
        return rows
    if not rows.is_integer():
        raise RequestError(
            f"input {name!r}: expected a whole number, got {rows!r} - at "
            f"`$.inputs[{position}].shape[0]`"
        )
    return int(rows)


def _explain_infer(message: str, header: int | None) -> str:
    """msgspec's words for an infer body: bytes after the JSON, with no header to say where it
    ends, are binary data sent without it (the whole body is then read as the JSON)."""
    if header is None and message.startswith("malformed JSON: trailing characters"):
        return (
            f"{message}: binary data after the JSON needs the Inference-Header-Content-Length "
            "header (the JSON's length)"
        )
    return message


def row_tuples(rows: list) -> Iterator[tuple]:
    """/predict rows as tuples in `Codec.order`: records (structs) made into tuples one at a time,
    as they are read, rather than kept in a list of tuples first (1,000 rows of 30 features: 0.25
    ms less), and columns and data's rows as they are."""
    return map(astuple, rows) if rows and not isinstance(rows[0], tuple) else iter(rows)


class _Columns(msgspec.Struct, gc=False):
    columns: list[str] | None = None


def _explain_data(message: str, columns: list[str] | None) -> str:
    """msgspec's words for a value of `data`: its path from the body, and its feature named."""
    message = DATA_ROW.sub(r"`$.data[\1]`", message)
    found = DATA_CELL.search(message)
    if found is None:
        return message.replace("- at `$`", "- at `$.data`")
    row, column = int(found.group(1)), int(found.group(2))
    named = f" (feature {columns[column]!r})" if columns and column < len(columns) else ""
    return DATA_CELL.sub(f"`$.data[{row}][{column}]`{named}", message, count=1)


def _explain_predict(message: str, columns: list[str] | None) -> str:
    """msgspec's words for a /predict body, in the terms of /predict."""
    if " - at `$.records[" in message:
        message = message.replace("Object contains unknown field", "unknown feature")
        if message.startswith("Object missing required field"):
            message = message.replace("Object missing required field", "missing feature")
            message += " (send null for a gap)"
        return message
    if " - at `$.data[" in message:
        return _explain_data(message, columns)
    if message.startswith(("malformed JSON", NESTING)):
        return message
    return f"{message}: {PREDICT_FORMS}"
