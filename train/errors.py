"""Errors a user can cause (data, models, checkpoints, training options). The CLI prints them without a traceback.

This module imports nothing heavy, so the command line can catch these without importing torch."""

from __future__ import annotations


class DatasetError(ValueError):
    """A dataset folder, cache or ingest option that cannot be used as given.

    The message names the offending value and what is allowed, e.g.
    ``clip_samples must be a power of 2 between 1024 and 262144, got 20000``.
    """


class CacheError(DatasetError):
    """A dataset cache that is missing, incomplete, or of an unknown format version."""


class ModelError(ValueError):
    """A model specification that cannot be built as asked; the message names the fix."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: corrupt, from another program, another model."""


class CheckpointVersionError(CheckpointError):
    """A checkpoint written by a newer GestureGAN: refused, never guessed at."""


class TrainingError(RuntimeError):
    """Training cannot go on as configured; the message says what to change."""
