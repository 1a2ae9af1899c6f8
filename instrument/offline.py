"""Offline rendering: the mixer's control and the core's blocks on a manual clock, written to a WAV.

Block by block as live (each block's commands handed to the core before it renders), except that the
blocks in which nothing needs Python -- no command due, no clip awaited, the layer only playing on -- are
rendered by the core in one call (:meth:`~instrument.mixer.Mixer.quiet_blocks`): the same samples, hundreds
of times faster than real time when clips repeat.

Faster than real time (nothing waits for a sound card), deterministic (clips are generated on the
spot, :class:`~instrument.worker.ClipsOnTheSpot`), and nothing half-written: the WAV goes to a temporary file beside the target and
is renamed at the end. The default format is 24-bit PCM: libsndfile stamps float WAVs with the time
they were written (a PEAK chunk), so only integer WAVs are byte-identical from run to run.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from .files import atomic_file
from .mixer import Mixer
from .worker import ClipsOnTheSpot

CHUNK_BLOCKS = 1024  # blocks rendered between writes to the file


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
    out = np.empty((n_blocks * b, engine.config.channels), np.float32) if path is None else None
    chunk = np.empty((CHUNK_BLOCKS * b, engine.config.channels), np.float32)
    written = 0
    try:
        with contextlib.ExitStack() as stack:
            f = None
            if path is not None:
                fh = stack.enter_context(atomic_file(path))
                f = stack.enter_context(sf.SoundFile(fh, "w", samplerate=engine.sample_rate, channels=engine.config.channels,
                                                     subtype=subtype, format="WAV"))
            done = 0
            while done < n_blocks:
                k = _render_some(engine, chunk, min(CHUNK_BLOCKS, n_blocks - done))
                audio = chunk[: k * b]
                take = min(len(audio), total - written)
                if f is not None:
                    f.write(audio[:take])
                else:
                    out[done * b : done * b + len(audio)] = audio
                written += take
                done += k
                if bar is not None and done % 256 < k:
                    bar.n = min(seconds, written / engine.sample_rate)
                    bar.refresh()
    finally:
        if bar is not None:
            bar.n = seconds
            bar.close()
    return None if out is None else out[:total]


def _render_some(engine: Mixer, chunk: np.ndarray, most: int) -> int:
    """Blocks into ``chunk`` (at most ``most``): one with the engine's control as a live block has it, then as
    many as need no control (:meth:`Mixer.quiet_blocks`) in one call to the core. Returns how many."""
    b = engine.config.block_frames
    t = engine.now()
    engine.control(t, t + b)
    k = 1 + engine.quiet_blocks(t + b, b, most - 1)
    got = engine.core.render_blocks(chunk[: k * b], b)
    if engine._block_listeners:  # the chunk is reused: listeners get their own copy
        engine._emit(chunk[: got * b].copy(), t)
    engine.telemetry.blocks += got
    return got
