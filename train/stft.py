"""STFT, inverse STFT and Griffin-Lim as fixed DFT convolutions, so SpecGAN's phase reconstruction is an
ordinary graph of conv1d / conv_transpose1d / elementwise ops that exports to ONNX (``torch.stft`` with
complex output and ``torch.istft`` do not export).

The framing is exactly the dataset cache's (``train.spectral``): periodic Hann window of 256, hop 128,
frames start at sample 0 and the end is zero-padded, so ``T`` samples give ``ceil(T / 128)`` frames; the
Nyquist bin is dropped, leaving 128 bins. A test checks this module against ``spectral.log_magnitude``.

Griffin-Lim here is the "fast" variant with momentum (Perraudin, Balazs & Sondergaard 2013; librosa's
default ``momentum=0.99``). Phase is carried as a unit phasor ``X / |X|`` rather than an angle: no
``atan2``/``cos``/``sin`` in the loop, only multiply, add and sqrt.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .spectral import CLIP_NSTD, HOP, LOG_EPS, N_BINS, N_FFT


def _hann(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)  # periodic


class DFTConv(nn.Module):
    """Forward and inverse STFT with the DFT as fixed convolution kernels (float32 buffers).

    ``stft(x : [B, T]) -> (re, im) : [B, K, N]`` with ``K = n_fft/2 + 1`` bins and ``N = ceil(T/hop)``;
    ``istft(re, im : [B, K, N], length) -> [B, length]`` (weighted overlap-add, divided by the summed
    squared window).
    """

    def __init__(self, n_fft: int = N_FFT, hop: int = HOP) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        k = n_fft // 2 + 1
        n = np.arange(n_fft)
        w = _hann(n_fft)
        ang = 2 * np.pi * np.outer(np.arange(k), n) / n_fft  # [K, n_fft]
        analysis = np.concatenate([w * np.cos(ang), -w * np.sin(ang)])  # [2K, n_fft]
        scale = np.full(k, 2.0)
        scale[0] = 1.0
        scale[-1] = 1.0  # DC and Nyquist appear once in a real signal's spectrum
        synthesis = np.concatenate([(scale[:, None] * np.cos(ang)), -(scale[:, None] * np.sin(ang))]) / n_fft * w  # [2K, n_fft]
        self.register_buffer("analysis", torch.tensor(analysis, dtype=torch.float32)[:, None, :], persistent=False)
        self.register_buffer("synthesis", torch.tensor(synthesis, dtype=torch.float32)[:, None, :], persistent=False)
        self.register_buffer("window_sq", torch.tensor(w**2, dtype=torch.float32)[None, None, :], persistent=False)
        self.k = k

    def n_frames(self, n_samples: int) -> int:
        return -(-n_samples // self.hop)

    def stft(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.n_frames(x.shape[-1])
        pad = (n - 1) * self.hop + self.n_fft - x.shape[-1]
        y = F.conv1d(F.pad(x[:, None, :], (0, pad)), self.analysis, stride=self.hop)  # [B, 2K, N]
        return y[:, : self.k], y[:, self.k :]

    def istft(self, re: torch.Tensor, im: torch.Tensor, length: int) -> torch.Tensor:
        y = F.conv_transpose1d(torch.cat([re, im], dim=1), self.synthesis, stride=self.hop)[:, 0]  # [B, (N-1)hop + n_fft]
        ones = torch.ones(1, 1, re.shape[-1], dtype=re.dtype, device=re.device)
        env = F.conv_transpose1d(ones, self.window_sq, stride=self.hop)[0, 0]  # [(N-1)hop + n_fft]
        # the first samples are covered only by the rising edge of one window: do not amplify noise there
        env = torch.clamp(env, min=1e-3)
        return (y / env)[:, :length]


class GriffinLim(nn.Module):
    """Magnitude ``[B, 128, N]`` (bins 0..127, the cache's layout) -> audio ``[B, n_samples]``.

    ``n_iter`` is unrolled at construction, so an exported graph has a fixed cost. The start phase is
    a fixed pseudo-random phasor (seed 0), so the same magnitude always gives the same audio.
    """

    def __init__(self, n_samples: int, n_iter: int = 32, momentum: float = 0.99) -> None:
        super().__init__()
        self.dft = DFTConv()
        self.n_samples, self.n_iter, self.momentum = n_samples, n_iter, momentum
        n = self.dft.n_frames(n_samples)
        phase = np.random.default_rng(0).uniform(0, 2 * np.pi, (self.dft.k, n))
        self.register_buffer("phase0", torch.tensor(np.stack([np.cos(phase), np.sin(phase)]), dtype=torch.float32), persistent=False)

    def forward(self, magnitude: torch.Tensor) -> torch.Tensor:
        mag = F.pad(magnitude, (0, 0, 0, self.dft.k - magnitude.shape[1]))  # [B, 129, N]: the dropped Nyquist bin is 0
        ur, ui = self.phase0[0][None], self.phase0[1][None]  # [1, K, N] unit phasor
        pr = torch.zeros_like(mag)
        pi = torch.zeros_like(mag)
        for _ in range(self.n_iter):
            audio = self.dft.istft(mag * ur, mag * ui, self.n_samples)
            cr, ci = self.dft.stft(audio)  # consistent spectrum of that signal
            # momentum: push past the projection by `momentum` of the last step's change
            tr = cr + self.momentum * (cr - pr)
            ti = ci + self.momentum * (ci - pi)
            pr, pi = cr, ci
            norm = torch.rsqrt(tr * tr + ti * ti + 1e-16)
            ur, ui = tr * norm, ti * norm
        return self.dft.istft(mag * ur, mag * ui, self.n_samples)


def log_magnitude(dft: DFTConv, audio: torch.Tensor) -> torch.Tensor:
    """The cache's log-magnitude view in torch: ``audio : [B, T] -> [B, 128, ceil(T/128)]``."""
    re, im = dft.stft(audio)
    return torch.log(torch.sqrt(re[:, :N_BINS] ** 2 + im[:, :N_BINS] ** 2) + LOG_EPS)


def spectral_convergence(dft: DFTConv, audio: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """``|| |STFT(audio)| - M ||_F / || M ||_F`` per example: 0 means the magnitude was matched exactly."""
    re, im = dft.stft(audio)
    m = torch.sqrt(re[:, :N_BINS] ** 2 + im[:, :N_BINS] ** 2)
    return torch.linalg.vector_norm(m - magnitude, dim=(1, 2)) / torch.linalg.vector_norm(magnitude, dim=(1, 2)).clamp_min(1e-12)


class SpecToAudio(nn.Module):
    """A SpecGAN image in [-1, 1] ``[B, F, N]`` (128x128, or the 64x64 view) -> audio ``[B, n_samples]``.

    De-normalises with the dataset's per-bin statistics (carried as buffers, so they travel inside a
    checkpoint and the exported graph), brings the 64x64 view back to 128x128 by bilinear
    interpolation, exponentiates and runs Griffin-Lim.
    """

    def __init__(self, mean: np.ndarray, std: np.ndarray, n_samples: int = 16384, n_iter: int = 32) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(np.asarray(mean), dtype=torch.float32)[None, :, None])
        self.register_buffer("std", torch.tensor(np.asarray(std), dtype=torch.float32)[None, :, None])
        self.griffin_lim = GriffinLim(n_samples, n_iter)
        self.n_frames = self.griffin_lim.dft.n_frames(n_samples)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        logmag = image * CLIP_NSTD * self.std + self.mean  # [B, F, N]
        if logmag.shape[1] != N_BINS:
            logmag = F.interpolate(logmag[:, None], size=(N_BINS, self.n_frames), mode="bilinear", align_corners=False)[:, 0]
        mag = torch.clamp(torch.exp(logmag) - LOG_EPS, min=0.0)  # [B, 128, N]
        audio = self.griffin_lim(mag)
        return torch.clamp(audio, -1.0, 1.0)

