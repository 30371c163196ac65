"""`python -m mlops_actions.tune`: see experiments.py."""

from .experiments import cli

cli()
