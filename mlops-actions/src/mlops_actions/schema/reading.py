"""Reading a CSV as the contract expects it: every cell as text, and what exports commonly get
wrong refused by name."""

import csv
import io
from pathlib import Path

import pandas as pd

from .contract import Schema, SchemaError, validate


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
        return pd.read_csv(
            io.StringIO(text),
            dtype=str,
            keep_default_na=False,
            na_values=[""],
        )
    except pd.errors.EmptyDataError:
        raise SchemaError(f"{path}: file is empty") from None
    except pd.errors.ParserError as err:
        raise SchemaError(f"{path}: not a well-formed CSV ({str(err).strip()})") from None


def _decode(raw: bytes, path: Path) -> str:
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise SchemaError(
            f"{path}: UTF-16 text (as 'Unicode text' exports write): save it as UTF-8"
        )
    if b"\0" in raw[:65536]:
        raise SchemaError(f"{path}: not a text file (it holds NUL bytes): export the table as CSV")
    try:
        return raw.decode("utf-8-sig")  # a byte-order mark, as Excel writes, is dropped
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise SchemaError(
            f"{path}: not UTF-8 text (byte 0x{raw[err.start]:02x} on line {line}): save it as "
            "UTF-8, e.g. iconv -f latin1 -t utf-8 old.csv > new.csv or 'CSV UTF-8' in a spreadsheet"
        ) from None


def _check_header(text: str, path: Path) -> None:
    sample = text[:65536]
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


def load_frame(path: Path, schema: Schema) -> pd.DataFrame:
    """Read and validate a CSV in one step: every stage sees typed, checked data."""
    return validate(read_csv(path), schema, source=str(path))
