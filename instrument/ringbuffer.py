"""A single-producer / single-consumer ring buffer of audio frames, for the audio callback.

Contract:

- ``capacity`` frames, a power of two, each frame ``channels`` float32 samples.
- Exactly **one** thread writes (:meth:`write`, :meth:`write_available`) and exactly **one** thread reads
  (:meth:`readinto`, :meth:`read_available`). Under those rules no lock is needed: the writer only
  advances ``_write`` after the samples are in place, the reader only advances ``_read`` after copying
  them out, and each index is a single Python int that only its owner changes (an attribute store is
  atomic under the GIL). The indices count frames forever; ``index & mask`` is the position.
- :meth:`readinto` copies into a caller-owned array and never allocates beyond the slice views numpy makes,
  so the audio callback can call it. It returns how many frames it copied (fewer than asked when the
  writer is behind; the caller fills the rest with silence and counts an underrun).
- :meth:`write` copies what fits and returns how many frames it took; it never blocks.
"""

from __future__ import annotations

import numpy as np


class RingBuffer:
    def __init__(self, capacity: int, channels: int = 1) -> None:
        if capacity < 1 or capacity & (capacity - 1):
            raise ValueError(f"capacity must be a power of 2, got {capacity}")
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        self.capacity = capacity
        self.channels = channels
        self._mask = capacity - 1
        self._data = np.zeros((capacity, channels), np.float32)
        self._write = 0  # frames written so far (only the writer changes it)
        self._read = 0  # frames read so far (only the reader changes it)

    @property
    def read_available(self) -> int:
        return self._write - self._read

    @property
    def write_available(self) -> int:
        return self.capacity - (self._write - self._read)

    @property
    def frames_read(self) -> int:
        return self._read

    def write(self, frames: np.ndarray) -> int:
        """Copy ``frames : [n, channels]`` (or ``[n]`` for one channel) in; return how many fit."""
        if frames.ndim == 1:
            frames = frames[:, None]
        n = min(len(frames), self.write_available)
        start = self._write & self._mask
        first = min(n, self.capacity - start)
        self._data[start : start + first] = frames[:first]
        if n > first:
            self._data[: n - first] = frames[first:n]
        self._write += n  # publish after the copy
        return n

    def readinto(self, out: np.ndarray) -> int:
        """Copy up to ``len(out)`` frames into ``out : [frames, channels]``; return how many were copied."""
        n = min(len(out), self._write - self._read)
        start = self._read & self._mask
        first = min(n, self.capacity - start)
        out[:first] = self._data[start : start + first]
        if n > first:
            out[first:n] = self._data[: n - first]
        self._read += n  # release after the copy
        return n
