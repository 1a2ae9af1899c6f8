"""Cutting a mono signal into fixed-length training clips.

Two ways to place clips:

* ``grid``: starts at 0, ``hop``, ``2*hop``, ... (hop < clip length overlaps clips); the tail that
  does not fill a whole clip is zero-padded into one more clip when ``pad_end`` is set, which is what
  makes a one-second file (16000 samples) yield one 16384-sample clip, as in WaveGAN's loader.
* ``onset``: one clip per detected attack, starting ``preroll`` before it, so one-shot recordings
  (hits, plucks) give clips that begin at the attack rather than mid-decay.

Clips quieter than a threshold (peak or RMS, in dBFS) are dropped afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Clip lengths a model can be built for: powers of two in this range (WaveGAN uses 16384..65536).
MIN_CLIP_SAMPLES = 1024
MAX_CLIP_SAMPLES = 262144
LEVEL_MODES = ("peak", "rms")


def check_clip_samples(clip_samples: int) -> int:
    if (
        not isinstance(clip_samples, (int, np.integer))
        or clip_samples < MIN_CLIP_SAMPLES
        or clip_samples > MAX_CLIP_SAMPLES
        or clip_samples & (clip_samples - 1)
    ):
        raise ValueError(
            f"clip_samples must be a power of 2 between {MIN_CLIP_SAMPLES} and {MAX_CLIP_SAMPLES} "
            f"(e.g. 16384, 32768, 65536), got {clip_samples!r}"
        )
    return int(clip_samples)


def grid_starts(n_samples: int, clip_samples: int, hop_samples: int, pad_end: bool) -> np.ndarray:
    """Start offsets of grid clips in a signal of ``n_samples``."""
    if hop_samples <= 0:
        raise ValueError(f"hop_samples must be positive, got {hop_samples}")
    full = np.arange(0, max(n_samples - clip_samples, -1) + 1, hop_samples, dtype=np.int64)
    if not pad_end:
        return full
    # One more, zero-padded clip if the samples after the last full clip would otherwise be lost.
    next_start = int(full[-1]) + hop_samples if full.size else 0
    covered_to = int(full[-1]) + clip_samples if full.size else 0
    if covered_to < n_samples and next_start < n_samples:
        full = np.append(full, next_start)
    return full


@dataclass(frozen=True)
class OnsetSettings:
    """Attack detection on a short-time RMS envelope (frames of 4 ms at 16 kHz)."""

    rise_db: float = 12.0  # how far the envelope must climb above its recent minimum
    lookback_seconds: float = 0.03  # the "recent" window for that minimum
    min_gap_seconds: float = 0.1  # attacks closer than this merge into one
    floor_dbfs: float = -50.0  # envelope level an attack must reach
    preroll_seconds: float = 0.005  # clip starts this long before the attack


def detect_onsets(x: np.ndarray, sample_rate: int, settings: OnsetSettings = OnsetSettings()) -> np.ndarray:
    """Sample positions of attacks in ``x : [T]``, sorted ascending.

    The envelope is frame RMS in dB; an onset frame is the first frame of a run whose level stands
    ``rise_db`` above the minimum of the preceding ``lookback`` window (the signal before the file
    start counts as silence, so a file that starts with a hit has an onset at 0). Each onset is then
    refined to the first sample reaching 20 % of the local peak, so clips start at the attack edge.
    """
    hop = max(16, int(round(sample_rate * 0.004)))
    frame = 4 * hop
    n = x.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    n_frames = 1 + max(0, (n - 1)) // hop
    padded = np.zeros(n_frames * hop + frame, dtype=np.float32)
    padded[:n] = x
    frames = np.lib.stride_tricks.sliding_window_view(padded, frame)[::hop][:n_frames]
    env_db = 10.0 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    look = max(1, int(round(settings.lookback_seconds * sample_rate / hop)))
    history = np.concatenate([np.full(look, -120.0), env_db])
    recent_min = np.lib.stride_tricks.sliding_window_view(history, look)[:n_frames].min(axis=1)
    active = (env_db - recent_min >= settings.rise_db) & (env_db >= settings.floor_dbfs)
    edges = np.flatnonzero(active & ~np.concatenate([[False], active[:-1]]))

    min_gap = int(settings.min_gap_seconds * sample_rate)
    peak_window = int(0.02 * sample_rate)
    onsets: list[int] = []
    for f in edges:
        lo = max(0, int(f) * hop - hop)
        hi = min(n, int(f) * hop + frame + hop)
        local_peak = float(np.max(np.abs(x[lo : min(n, hi + peak_window)])))
        if local_peak <= 0:
            continue
        above = np.flatnonzero(np.abs(x[lo:hi]) >= 0.2 * local_peak)
        pos = lo + int(above[0]) if above.size else int(f) * hop
        if onsets and pos - onsets[-1] < min_gap:
            continue
        onsets.append(pos)
    return np.asarray(onsets, dtype=np.int64)


def onset_starts(x: np.ndarray, sample_rate: int, settings: OnsetSettings = OnsetSettings()) -> np.ndarray:
    preroll = int(round(settings.preroll_seconds * sample_rate))
    return np.maximum(detect_onsets(x, sample_rate, settings) - preroll, 0)


def take_clips(x: np.ndarray, starts: np.ndarray, clip_samples: int) -> np.ndarray:
    """``clips : [len(starts), clip_samples]`` float32, zero-padded past the end of ``x``."""
    clips = np.zeros((len(starts), clip_samples), dtype=np.float32)
    n = x.shape[0]
    for i, s in enumerate(starts):
        s = int(s)
        seg = x[s : min(n, s + clip_samples)]
        clips[i, : seg.shape[0]] = seg
    return clips


def clip_levels_dbfs(clips: np.ndarray, mode: str) -> np.ndarray:
    """Per-clip level in dBFS (``-inf`` for digital silence). ``clips : [N, T]`` -> ``[N]``."""
    if mode == "peak":
        lin = np.max(np.abs(clips), axis=1) if clips.size else np.zeros(len(clips))
    elif mode == "rms":
        lin = np.sqrt(np.mean(clips.astype(np.float64) ** 2, axis=1)) if clips.size else np.zeros(len(clips))
    else:
        raise ValueError(f"level mode must be one of {', '.join(LEVEL_MODES)}, got {mode!r}")
    with np.errstate(divide="ignore"):
        return 20.0 * np.log10(lin)
