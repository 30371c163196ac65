"""The data contract: which columns the raw CSV holds and what type each one is.

`data/schema.yaml` is kept next to the data and edited by hand when the data changes. Validation
fails with one message that names the column and how many rows are wrong, so a bad file is caught
before training rather than as a confusing scikit-learn error.

The package, by responsibility: `contract` (the schema file and typing a frame by it), `reading`
(a CSV read as text, whole or in chunks, what exports get wrong refused), `proposer` (`make
schema`'s draft).
"""

from .contract import (
    GAP_MARKERS,
    KINDS,
    NAME_PATTERN,
    Schema,
    SchemaError,
    data_rows,
    drop_empty_target,
    empty_target_rows,
    load_schema,
    require_values,
    validate,
    validate_features,
    with_gaps,
)
from .proposer import draft, draft_notes, main
from .reading import csv_files, load_frame, read_csv, read_csv_chunks

__all__ = [
    "GAP_MARKERS",
    "KINDS",
    "NAME_PATTERN",
    "Schema",
    "SchemaError",
    "csv_files",
    "data_rows",
    "draft",
    "draft_notes",
    "drop_empty_target",
    "empty_target_rows",
    "load_frame",
    "load_schema",
    "main",
    "read_csv",
    "read_csv_chunks",
    "require_values",
    "validate",
    "validate_features",
    "with_gaps",
]
