"""Offline rendering: the mixer's own ``process_block`` on a manual clock, written to a WAV.

Faster than real time (nothing waits for a sound card), deterministic (clips are generated on the
spot, :class:`~instrument.worker.ClipsOnTheSpot`), and nothing half-written: the WAV goes to a temporary file beside the target and
is renamed at the end. The default format is 24-bit PCM: libsndfile stamps float WAVs with the time
they were written (a PEAK chunk), so only integer WAVs are byte-identical from run to run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from .files import atomic_file
from .mixer import Mixer
from .worker import ClipsOnTheSpot


def render_to(engine: Mixer, seconds: float, path: str | Path | None = None, progress: bool = False,
              subtype: str = "PCM_24") -> np.ndarray | None:
    if not (seconds > 0 and np.isfinite(seconds)):
        raise ValueError(f"seconds must be a positive number, got {seconds}")
    if getattr(engine, "ring", None) is not None or getattr(engine, "_native", False):
        raise RuntimeError("this engine is playing live; render offline with an engine of its own (sync=True)")
    if not isinstance(engine.clips, ClipsOnTheSpot):
        engine.clips = ClipsOnTheSpot(engine.worker)  # offline never waits for a thread: clips are made on the spot
    b = engine.config.block_frames
    n_blocks = int(np.ceil(seconds * engine.sample_rate / b))
    total = int(round(seconds * engine.sample_rate))
    bar = None
    if progress:
        bar = tqdm(total=round(seconds, 1), unit="s", desc="rendering", unit_scale=False,
                   bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s [{elapsed}<{remaining}]")
    if path is None:
        out = np.empty((n_blocks * b, engine.config.channels), np.float32)
        for i in range(n_blocks):
            out[i * b : (i + 1) * b] = engine.process_block()
            if bar is not None and i % 64 == 0:
                bar.n = min(seconds, (i + 1) * b / engine.sample_rate)
                bar.refresh()
        if bar is not None:
            bar.n = seconds
            bar.close()
        return out[:total]

    written = 0
    try:
        with atomic_file(path) as fh, sf.SoundFile(fh, "w", samplerate=engine.sample_rate, channels=engine.config.channels,
                                                    subtype=subtype, format="WAV") as f:
            for i in range(n_blocks):
                block = engine.process_block()
                take = min(len(block), total - written)
                f.write(block[:take])
                written += take
                if bar is not None and i % 64 == 0:
                    bar.n = min(seconds, written / engine.sample_rate)
                    bar.refresh()
    finally:
        if bar is not None:
            bar.n = seconds
            bar.close()
    return None
