"""Errors a user can cause on the instrument side. The command line prints them as one line, no traceback.

This module imports nothing, so anything (the CLI, export) can catch these cheaply.
"""

from __future__ import annotations


class ModelFileError(ValueError):
    """A model file the engine refuses: missing, truncated, not ONNX, or not keeping the model contract.

    The message names the file and what is wrong, e.g.
    ``model.onnx: input 'z' is tensor(double), the contract needs tensor(float)``.
    """


class ContractVersionError(ModelFileError):
    """A model made for a newer contract version: refused, never guessed at."""


class ProviderError(RuntimeError):
    """An inference provider that was asked for by name (``--provider cuda``) and cannot be used here."""


class MissingExtraError(RuntimeError):
    """A command that needs an optional part this install lacks (the ``[train]`` extra's PyTorch, say)."""
