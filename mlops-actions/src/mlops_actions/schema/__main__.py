"""`python -m mlops_actions.schema`, as `make schema` runs it: draft data/schema.yaml from a CSV."""

from ..errors import run_stage
from .proposer import main

if __name__ == "__main__":
    run_stage("schema", main)
