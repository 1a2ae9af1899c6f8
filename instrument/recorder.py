"""Recording the output to a WAV, off the audio thread: the engine thread hands each block (a copy) to a
thread of the recorder's own through a queue, which writes it (32-bit float)."""

from __future__ import annotations

import queue
import threading

import numpy as np
import soundfile as sf


class Recorder:
    """Writes what the engine renders to a WAV from its own thread (never the audio thread): the engine
    thread hands it each block (a copy) through a queue."""

    def __init__(self, path, sample_rate: int, channels: int) -> None:
        self.path = path
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._file = sf.SoundFile(str(path), "w", samplerate=sample_rate, channels=channels, subtype="FLOAT")
        self._thread = threading.Thread(target=self._run, name="gesturegan-recorder", daemon=True)
        self._thread.start()
        self.frames = 0

    def __call__(self, block: np.ndarray, at: int) -> None:
        self._q.put(block.copy())

    def _run(self) -> None:
        while True:
            block = self._q.get()
            if block is None:
                break
            self._file.write(block)
            self.frames += len(block)

    def close(self) -> None:
        self._q.put(None)
        self._thread.join(timeout=10)
        self._file.close()
