"""Where the mixer's clips come from. Both sources look in the generation worker's cache first; they
differ in what happens when a clip is not there yet:

- :class:`WorkerClips` (live): the worker thread is asked to make it, and the mixer plays it when it
  arrives (render-ahead asks for the next triggers' clips before they are wanted);
- :class:`ClipsOnTheSpot` (offline): it is generated at once, in the caller's thread, so the output does
  not depend on timing -- an offline render and the same commands played live give the same samples.
"""

from __future__ import annotations

import numpy as np

from .worker import GenerationWorker, Request


class ClipSource:
    """The worker's cache, and what to do about a clip that is not in it (:meth:`want`)."""

    prefetch = False  # whether the mixer should ask for the next triggers' clips ahead of time

    def __init__(self, worker: GenerationWorker) -> None:
        self.worker = worker

    def get(self, key: bytes) -> np.ndarray | None:
        """The clip if it is ready."""
        return self.worker.get(key)

    def want(self, key: bytes, z: np.ndarray, mix: np.ndarray) -> np.ndarray | None:
        """The clip for ``key`` (latent ``z``, category ``mix``) if it can be had now, else None."""
        raise NotImplementedError


class WorkerClips(ClipSource):
    """Live: a missing clip is requested from the worker thread (None until it arrives)."""

    def __init__(self, worker: GenerationWorker, prefetch: bool = True) -> None:
        super().__init__(worker)
        self.prefetch = prefetch

    def want(self, key: bytes, z: np.ndarray, mix: np.ndarray) -> np.ndarray | None:
        clip = self.worker.get(key)
        if clip is None:
            self.worker.request(Request(key, z, mix, self.worker.model_id))
        return clip


class ClipsOnTheSpot(ClipSource):
    """Offline: a missing clip is generated now, in the calling thread; never None."""

    def want(self, key: bytes, z: np.ndarray, mix: np.ndarray) -> np.ndarray | None:
        clip = self.worker.get(key)
        if clip is None:
            self.worker.generate_now([Request(key, z, mix, self.worker.model_id)])
            clip = self.worker.get(key)
        return clip
