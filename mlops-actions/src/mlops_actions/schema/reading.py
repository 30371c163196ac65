"""Reading a CSV as the contract expects it: every cell as text, and what exports commonly get
wrong refused by name. Whole (`read_csv`), or chunk by chunk in flat memory (`read_csv_chunks`,
for batches of any size)."""

import codecs
import csv
import io
from collections.abc import Collection, Generator, Iterator, Sequence
from pathlib import Path

import pandas as pd

from .contract import Schema, SchemaError, validate

# What the checks of a file's head (encoding, delimiter, header) read of it.
HEAD_BYTES = 65536
# The options that read every cell as text and an empty cell as a gap (`read_csv`'s docstring).
AS_TEXT = {"dtype": str, "keep_default_na": False, "na_values": [""]}


def read_csv(path: Path) -> pd.DataFrame:
    """Read every cell as text (an empty cell is a gap); `validate` decides the types. What
    spreadsheets and exports commonly get wrong (encoding, delimiter, repeated or unnamed
    headers) is refused here, before pandas would guess around it."""
    try:
        text = _decode(Path(path).read_bytes(), path)
    except FileNotFoundError:
        raise SchemaError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise SchemaError(f"{path}: is a directory, not a CSV file") from None
    _check_header(text, path)
    try:
        return pd.read_csv(io.StringIO(text), **AS_TEXT)
    except pd.errors.EmptyDataError:
        raise SchemaError(f"{path}: file is empty") from None
    except pd.errors.ParserError as err:
        raise SchemaError(f"{path}: not a well-formed CSV ({str(err).strip()})") from None


def _decode(raw: bytes, path: Path, complete: bool = True) -> str:
    """`raw` as text; `complete=False`: the head of a file, which may end inside a character."""
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise SchemaError(
            f"{path}: UTF-16 text (as 'Unicode text' exports write): save it as UTF-8"
        )
    if b"\0" in raw[:HEAD_BYTES]:
        raise SchemaError(f"{path}: not a text file (it holds NUL bytes): export the table as CSV")
    try:
        # A byte-order mark, as Excel writes, is dropped.
        return codecs.getincrementaldecoder("utf-8-sig")().decode(raw, final=complete)
    except UnicodeDecodeError as err:
        raise _not_utf8(path, err, lines_before=0) from None


def _not_utf8(path: Path, err: UnicodeDecodeError, lines_before: int) -> SchemaError:
    # err.object is what the decoder held (without a byte-order mark): the place is counted there.
    line = lines_before + err.object[: err.start].count(b"\n") + 1
    return SchemaError(
        f"{path}: not UTF-8 text (byte 0x{err.object[err.start]:02x} on line {line}): save it as "
        "UTF-8, e.g. iconv -f latin1 -t utf-8 old.csv > new.csv or 'CSV UTF-8' in a spreadsheet"
    )


def _undecodable(path: Path) -> SchemaError:
    """Where a file stops being UTF-8, found by reading it again block by block (flat memory)."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    lines = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as err:
                return _not_utf8(path, err, lines)
            lines += block.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as err:
        return _not_utf8(path, err, lines)
    return SchemaError(f"{path}: not UTF-8 text: save it as UTF-8")


def _check_header(text: str, path: Path) -> list[str]:
    """The header's names, once it is one CSV can be read by: comma-separated, each column named
    once."""
    sample = text[:HEAD_BYTES]
    # The first row that holds anything: pandas skips blank lines before the header too.
    header = next((row for row in csv.reader(io.StringIO(sample)) if row), [])
    if len(header) == 1:
        try:
            delimiter = csv.Sniffer().sniff(sample, delimiters=";\t|").delimiter
        except csv.Error:
            delimiter = None
        if delimiter:
            raise SchemaError(
                f"{path}: columns are separated by {delimiter!r}, not commas: save it as "
                "comma-separated CSV"
            )
    unnamed = [str(number) for number, name in enumerate(header, 1) if not name.strip()]
    if unnamed and len(header) > 1:
        raise SchemaError(
            f"{path}: header has no name for column(s) {', '.join(unnamed)}: name or delete them"
        )
    positions: dict[str, list[int]] = {}
    for number, name in enumerate(header, 1):
        positions.setdefault(name, []).append(number)
    repeated = {name: where for name, where in positions.items() if len(where) > 1}
    if repeated:
        name, where = next(iter(repeated.items()))
        raise SchemaError(
            f"{path}: column {name!r} appears {len(where)} times in the header (columns "
            f"{', '.join(map(str, where))}): rename or delete the copies"
        )
    return header


def load_frame(path: Path, schema: Schema) -> pd.DataFrame:
    """Read and validate a CSV in one step: every stage sees typed, checked data."""
    return validate(read_csv(path), schema, source=str(path))


def csv_files(
    source: Path, suffixes: Sequence[str] = (".csv",), none: str = "no CSV files in it"
) -> list[Path]:
    """A batch's files: the file `source`, or every file of the folder `source` whose suffix is
    one of `suffixes` (CSV by default), by name; `none` says what an empty folder lacks."""
    source = Path(source)
    if source.is_dir():
        files = sorted(path for suffix in suffixes for path in source.glob(f"*{suffix}"))
        if not files:
            raise SchemaError(f"{source}: {none}")
        return files
    if not source.exists():
        raise SchemaError(f"{source}: file not found")
    return [source]


def read_csv_chunks(
    path: Path, rows: int, columns: Sequence[str] | None = None, numbers: Collection[str] = ()
) -> Iterator[pd.DataFrame]:
    """`read_csv` in chunks of `rows` rows, for a file of any size in flat memory: the same checks
    of the file's head and the same text, and each chunk's index counts the file's data rows from
    0 (validate's messages name "data row N" of the file). Only `columns` that the header holds,
    when given; a chunk with no rows is not yielded.

    `numbers` are read by pandas' own number parsing where a chunk's column holds numbers and gaps
    only: the values validate makes of their text (tests/test_batch.py compares them), at a
    fraction of the cost; a chunk's column that holds anything else comes as text, for validate's
    checks. A column of true/false words alone, which pandas would read as booleans, makes the
    rest of the file read as text, so validate refuses them as words."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(HEAD_BYTES)
    except FileNotFoundError:
        raise SchemaError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise SchemaError(f"{path}: is a directory, not a CSV file") from None
    header = _check_header(_decode(head, path, complete=False), path)
    wanted = header if columns is None else [name for name in header if name in set(columns)]
    parsed = [name for name in wanted if name in set(numbers)]
    done = 0
    chunks = _chunks(path, rows, wanted, parsed)
    for chunk in chunks:
        if any(_booleans(chunk[name]) for name in parsed):
            chunks.close()
            yield from _text_from(path, rows, wanted, done)
            return
        done += len(chunk)
        yield chunk


def _text_from(path: Path, rows: int, columns: list[str], done: int) -> Iterator[pd.DataFrame]:
    """The file's chunks as text, from data row `done` (0-based) on."""
    for chunk in _chunks(path, rows, columns, []):
        if chunk.index[-1] >= done:
            yield chunk[chunk.index >= done]


def _chunks(
    path: Path, rows: int, columns: list[str], numbers: list[str]
) -> Generator[pd.DataFrame]:
    # Text as object, not pandas' string dtype: the same strings, without a copy into it.
    text = {name: object for name in columns if name not in numbers}
    options = {**AS_TEXT, "dtype": text, "usecols": columns, "encoding": "utf-8-sig"}
    try:
        with pd.read_csv(path, chunksize=rows, **options) as reader:
            for chunk in reader:
                if len(chunk):
                    yield chunk
    except pd.errors.EmptyDataError:
        raise SchemaError(f"{path}: file is empty") from None
    except pd.errors.ParserError as err:
        raise SchemaError(f"{path}: not a well-formed CSV ({str(err).strip()})") from None
    except UnicodeDecodeError:
        raise _undecodable(path) from None


def _booleans(column: pd.Series) -> bool:
    return column.dtype == bool or (
        column.dtype == object and pd.api.types.infer_dtype(column, skipna=True) == "boolean"
    )
