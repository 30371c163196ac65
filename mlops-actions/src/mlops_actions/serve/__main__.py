"""`python -m <module>.serve`: what `make serve` and the image run."""

from .cli import main

main()
