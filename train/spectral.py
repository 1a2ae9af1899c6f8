"""The SpecGAN view of the dataset cache: log-magnitude STFT images and per-bin statistics.

Donahue et al. (2019), SpecGAN: STFT with a 256-sample Hann window and hop 128, end-padded, so a
16384-sample clip gives 128 frames; the Nyquist bin is dropped, leaving 128 frequency bins; values are
``log(|X| + 1e-6)``. Each frequency bin is normalised by its mean and standard deviation over the whole
dataset, clipped at 3 standard deviations and scaled to [-1, 1]. The composer's smaller variant
averages 2x2 cells of that log-magnitude image into 64x64.

Statistics are accumulated as per-bin sums (sum, sum of squares, frame count) per source file, so an
incremental rebuild adds the new files' sums instead of recomputing the whole dataset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_FFT = 256
HOP = 128
N_BINS = N_FFT // 2  # Nyquist bin dropped
LOG_EPS = 1e-6
CLIP_NSTD = 3.0
VIEWS = ("128", "64")

_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)  # periodic Hann


def log_magnitude(clips: np.ndarray) -> np.ndarray:
    """``clips : [B, T]`` -> ``[B, 128, T // 128]`` float32 log magnitude (frequency, time)."""
    clips = np.asarray(clips, dtype=np.float32)
    if clips.ndim == 1:
        clips = clips[None]
    b, t = clips.shape
    n_frames = -(-t // HOP)
    padded = np.zeros((b, (n_frames - 1) * HOP + N_FFT), dtype=np.float32)
    padded[:, :t] = clips
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT, axis=1)[:, ::HOP][:, :n_frames]
    spec = np.fft.rfft(frames * _WINDOW, axis=-1)[..., :N_BINS]  # [B, frames, 128], complex64 on numpy >= 2
    mag = np.abs(spec).astype(np.float32, copy=False)
    return np.log(mag + np.float32(LOG_EPS), out=mag).transpose(0, 2, 1)


def downsample_2x2(logmag: np.ndarray) -> np.ndarray:
    """Average 2x2 cells: ``[B, F, N] -> [B, F // 2, N // 2]`` (the 64x64 view for 16384 samples)."""
    b, f, n = logmag.shape
    return logmag[:, : f // 2 * 2, : n // 2 * 2].reshape(b, f // 2, 2, n // 2, 2).mean(axis=(2, 4))


@dataclass
class BinSums:
    """Running per-frequency-bin sums for both views; add them, then :meth:`finish`."""

    s128: np.ndarray
    ss128: np.ndarray
    n128: int
    s64: np.ndarray
    ss64: np.ndarray
    n64: int

    @classmethod
    def zeros(cls) -> "BinSums":
        return cls(np.zeros(N_BINS), np.zeros(N_BINS), 0, np.zeros(N_BINS // 2), np.zeros(N_BINS // 2), 0)

    @classmethod
    def of_clips(cls, clips: np.ndarray, batch: int = 64) -> "BinSums":
        out = cls.zeros()
        for i in range(0, len(clips), batch):
            lm = log_magnitude(clips[i : i + batch])  # float32 work, float64 accumulation
            out.s128 += lm.sum(axis=(0, 2), dtype=np.float64)
            out.ss128 += np.einsum("bft,bft->f", lm, lm, dtype=np.float64)
            out.n128 += lm.shape[0] * lm.shape[2]
            ds = downsample_2x2(lm)
            out.s64 += ds.sum(axis=(0, 2), dtype=np.float64)
            out.ss64 += np.einsum("bft,bft->f", ds, ds, dtype=np.float64)
            out.n64 += ds.shape[0] * ds.shape[2]
        return out

    def __iadd__(self, other: "BinSums") -> "BinSums":
        self.s128 += other.s128
        self.ss128 += other.ss128
        self.n128 += other.n128
        self.s64 += other.s64
        self.ss64 += other.ss64
        self.n64 += other.n64
        return self

    #: Length of :meth:`to_vector`: sums and sums of squares for both views, then both frame counts.
    VECTOR_SIZE = 2 * N_BINS + 2 * (N_BINS // 2) + 2

    def to_vector(self) -> np.ndarray:
        """One row of the per-file sidecar array (float64 ``[VECTOR_SIZE]``)."""
        return np.concatenate([self.s128, self.ss128, self.s64, self.ss64, [self.n128, self.n64]])

    @classmethod
    def from_vector(cls, v: np.ndarray) -> "BinSums":
        v = np.asarray(v, dtype=np.float64)
        a, b, c, d = N_BINS, 2 * N_BINS, 2 * N_BINS + N_BINS // 2, 2 * N_BINS + N_BINS
        return cls(v[:a].copy(), v[a:b].copy(), int(v[d]), v[b:c].copy(), v[c:d].copy(), int(v[d + 1]))

    def finish(self) -> dict:
        """Per-bin mean/std for both views, as stored in the cache manifest."""
        out = {"n_fft": N_FFT, "hop": HOP, "log_eps": LOG_EPS, "clip_nstd": CLIP_NSTD}
        for view, s, ss, n in (("128", self.s128, self.ss128, self.n128), ("64", self.s64, self.ss64, self.n64)):
            if n == 0:
                mean, std = np.zeros_like(s), np.ones_like(s)
            else:
                mean = s / n
                std = np.sqrt(np.maximum(ss / n - mean**2, 0.0))
            out[view] = {"mean": mean.tolist(), "std": np.maximum(std, 1e-8).tolist(), "frames": n}
        return out


def normalise(logmag: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Per-bin standardise, clip at 3 sigma, scale to [-1, 1]. ``logmag : [B, F, N]``, stats ``[F]``."""
    z = (logmag - mean[None, :, None]) / std[None, :, None]
    return (np.clip(z, -CLIP_NSTD, CLIP_NSTD) / CLIP_NSTD).astype(np.float32)
