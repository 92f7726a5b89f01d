"""Exceptions mlpkit raises on purpose.

Every error a user can cause (a bad config, a missing or corrupt file, an
unwritable folder) is an :class:`MlpkitError` whose message is one sentence
naming the key, file or value. The CLI prints it and exits with ``exit_code``;
anything else escaping is a bug.
"""

from __future__ import annotations


class MlpkitError(Exception):
    """Base class: a problem the user can fix; the CLI exits with ``exit_code``."""

    exit_code = 2


class ConfigError(MlpkitError):
    """The config (file, key or value) is invalid."""


class DataError(MlpkitError):
    """A dataset is missing, unreadable or malformed."""


class CheckpointError(MlpkitError):
    """A run folder or checkpoint is missing, truncated or inconsistent."""


class OutputError(MlpkitError):
    """The output folder or file cannot be created or written."""


class ShapeError(MlpkitError):
    """An array has the wrong shape for the operation."""


class StateError(MlpkitError):
    """An operation was called out of order (e.g. backward before forward)."""


class DivergenceError(MlpkitError):
    """The loss or a gradient became NaN or infinite during training."""

    exit_code = 1


class Interrupted(MlpkitError):
    """Training was stopped by a signal after writing a resumable checkpoint."""

    def __init__(self, message: str, exit_code: int = 130) -> None:
        super().__init__(message)
        self.exit_code = exit_code
