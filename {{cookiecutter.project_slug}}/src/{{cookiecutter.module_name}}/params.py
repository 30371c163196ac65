"""Read params.yaml, the one file of settings that DVC tracks for every stage."""

from pathlib import Path
from typing import Any

import yaml

PARAMS_FILE = Path("params.yaml")


def load_params(path: Path = PARAMS_FILE) -> dict[str, Any]:
    with open(path) as f:
        return yaml.safe_load(f)
