"""Stage data: write the starter dataset as the raw CSV the rest of the pipeline reads."""

import argparse
from pathlib import Path

from mlops_actions.errors import run_stage
from mlops_actions.params import load_params
from mlops_actions.schema import load_schema

from ..datasets import make_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--schema", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    params = load_params()
    schema = load_schema(args.schema)
    frame = make_dataset(
        name=params["data"]["dataset"],
        rows=params["data"]["rows"],
        seed=params["base"]["seed"],
        schema=schema,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False)
    print(f"data: wrote {len(frame)} rows to {args.out}")


if __name__ == "__main__":
    run_stage("data", main)
