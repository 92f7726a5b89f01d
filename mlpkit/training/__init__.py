"""Training: build a model from its config, the epoch loop, evaluation, schedules, random streams,
checkpoint state, early stopping, divergence diagnosis and the augmentation pipeline.

May import: ``mlpkit.nn``, ``mlpkit.data`` (its dependency-free core),
``mlpkit.config``, ``mlpkit.errors``. Never YAML, typer, rich, tqdm, urllib,
http, platformdirs or PIL: importing it loads none of them (tested).
"""
