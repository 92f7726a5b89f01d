"""``python -m mlpkit``: the same command line as ``mlpkit``."""

from mlpkit.app.cli import run

run()
