"""Errors a user can cause while preparing data. The CLI prints them without a traceback."""

from __future__ import annotations


class DatasetError(ValueError):
    """A dataset folder, cache or ingest option that cannot be used as given.

    The message names the offending value and what is allowed, e.g.
    ``clip_samples must be a power of 2 between 1024 and 262144, got 20000``.
    """


class CacheError(DatasetError):
    """A dataset cache that is missing, incomplete, or of an unknown format version."""
