"""``python -m mlpkit``: the same command line as ``mlpkit``."""

from .cli import run

run()
