"""Diagnostics: gradient checks against finite differences, the per-layer gradient profile, the dropout report.

May import: ``mlpkit.nn``, ``mlpkit.training``, ``mlpkit.data``, ``mlpkit.config``,
``mlpkit.errors``. Results are plain dataclasses; drawing them is the app's job.
"""
