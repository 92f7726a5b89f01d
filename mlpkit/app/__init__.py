"""The application: config files, the API the commands call, run folders, export, plots, rendering, the CLI.

``api`` is the programmatic surface (train, resume, evaluate, predict,
export); ``cli`` is a thin typer shell over it that only parses, calls and
renders (``render``). ``configfile`` reads YAML and applies ``--set``;
``runs`` and ``catalog`` write and list run folders.

May import: every other mlpkit package. Nothing imports it.
"""
