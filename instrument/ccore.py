"""The C core: instrument/core.c built and loaded (placeholder until the C side lands)."""

from __future__ import annotations

from .core import PyCore


def make_core(kind: str, sample_rate: int, channels: int, block_frames: int, **kw):
    return PyCore(sample_rate, channels, block_frames, **kw)
