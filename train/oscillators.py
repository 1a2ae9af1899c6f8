"""The oscillator bank: sinusoidal partials for the WaveGAN generator (see :mod:`train.wavegan`'s docstring).

``partials="free"`` (the bundled model's): the head's amplitudes are used as they are. Measured on the
Debian corpus (session 11), a free bank ran away: the partials reached an rms of 12-46 before the tanh
against the upsampling layers' 0.4-1.3, 79-87% of the samples sat where the tanh is flat (|drive| > 2),
and the clip was the *sign* of a sum of sinusoids -- broadband noise whatever the amplitudes -- with
the envelope setting the level after the tanh. A saturated tanh passes no gradient, so nothing pulled
the drive back. ``partials="bounded"`` limits each frame's amplitude vector softly,
``v / sqrt(1 + |v|^2)`` over all 2n amplitudes: linear near zero (the bank still starts silent and
learns from the first step), never above norm 1, so the partials' rms stays under 1/sqrt(2) and in the
tanh's working range; the timbre (the vector's direction) keeps its gradient however loud the frame is.
Measured, a bounded bank stays in range but sits at the bound with every oscillator on: a dense comb.

``partials="softmax"`` is DDSP's harmonic distribution (Engel et al., ICLR 2020) over the fixed bank:
the head makes n logits and a loudness logit per frame; the frame's amplitudes are
``sigmoid(loudness) * softmax(logits)``, sine phase only (each oscillator's phase runs on from the
clip's start, so a partial is one continuous sinusoid). The amplitudes sum to the loudness, below 1, so
the partials' peak never leaves the tanh's working range; and a frame's level costs the same however
few partials carry it, so a bell's few partials are as easy to make as a comb. It starts quiet
(loudness 0.12 spread over every oscillator) rather than silent: a softmax has no all-zero point.
Measured on the Debian corpus (session 12, run S) the generator turned the loudness down to
0.001-0.02 (one partial could reach ten times the upsampling layers' level) and made its sound
with them: the uniform comb it starts as is rejected at once, and a quiet bank's shares learn slowly.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import PARTIALS
from .errors import ModelError

OSCILLATOR_RANGE = (0.0025, 0.45)  # the oscillator bank's lowest and highest frequency, in cycles per sample
OSCILLATOR_RATE = 4.0  # the bank's amplitudes are scaled up for the same reason as the envelope's logits
SOFTMAX_LOUDNESS_START = -2.0  # "softmax" partials: the loudness logit at initialisation (sigmoid: 0.12)


class OscillatorBank(nn.Module):
    """``n`` sinusoidal oscillators at fixed log-spaced frequencies, their quadrature amplitudes read from
    features at ``frames`` steps: ``[B, c_in, frames] -> [B, 1, n_samples]`` (see the module docstring).

    Amplitudes ``(a, b)`` of oscillator k at frame f make ``a sin(w_k t) + b cos(w_k t)`` around the frame;
    frames are Hann grains ``2 * hop`` long centred every ``hop`` samples, whose sum is 1, so constant
    amplitudes make an exact sinusoid (the last frame's amplitudes are held for the grain after it, so
    the clip's last ``hop`` samples are whole too). A grain centred at ``f * hop`` is ``cos(w_k tau)`` and
    ``sin(w_k tau)`` kernels weighted by ``a, b`` rotated by the phase ``w_k f hop`` the oscillator has
    reached there (fixed tables): one matrix product makes every grain, and overlap-add is two slices."""

    def __init__(self, c_in: int, n: int, n_samples: int, frames: int, partials: str = "free") -> None:
        super().__init__()
        if n < 1:
            raise ModelError(f"oscillators must be 0 (off) or >= 1, got {n}")
        if partials not in PARTIALS:
            raise ModelError(f"partials must be one of {', '.join(PARTIALS)}, got {partials!r}")
        self.n, self.hop, self.frames, self.partials = n, n_samples // frames, frames, partials
        self.head = nn.Conv1d(c_in, n + 1 if partials == "softmax" else 2 * n, 3, padding=1)
        nn.init.zeros_(self.head.weight)  # silent (softmax: quiet) at the start: training starts from the bank-less model
        nn.init.zeros_(self.head.bias)
        if partials == "softmax":
            with torch.no_grad():
                self.head.bias[-1] = SOFTMAX_LOUDNESS_START / OSCILLATOR_RATE
        w = 2 * math.pi * self.frequencies.double()
        centres = torch.arange(frames + 1, dtype=torch.float64) * self.hop
        theta = torch.remainder(w[:, None] * centres[None, :], 2 * math.pi)  # [n, frames + 1]
        # fixed tables, rebuilt from n and the clip length: not saved in checkpoints
        self.register_buffer("rot_cos", torch.cos(theta).float(), persistent=False)
        self.register_buffer("rot_sin", torch.sin(theta).float(), persistent=False)
        j = torch.arange(2 * self.hop, dtype=torch.float64)
        window = 0.5 - 0.5 * torch.cos(math.pi * j / self.hop)  # periodic Hann, 2*hop long, peak at j = hop
        tau = w[:, None] * (j - self.hop)[None, :]
        kernel = torch.cat([window * torch.cos(tau), window * torch.sin(tau)])  # [2n, 2*hop]
        self.register_buffer("kernel", kernel.float(), persistent=False)

    @property
    def frequencies(self) -> torch.Tensor:
        """The oscillators' frequencies in cycles per sample, lowest first."""
        lo, hi = OSCILLATOR_RANGE
        return torch.logspace(math.log10(lo), math.log10(hi), self.n, dtype=torch.float64).float()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        amplitudes = OSCILLATOR_RATE * self.head(features)  # [B, 2n, frames]; softmax: [B, n + 1, frames], logits
        if self.partials == "bounded":  # each frame's vector of 2n amplitudes to norm < 1, softly (module docstring)
            amplitudes = amplitudes * torch.rsqrt(1 + amplitudes.pow(2).sum(dim=1, keepdim=True))
        elif self.partials == "softmax":  # a loudness < 1 shared out over the oscillators, sine phase only
            shares = torch.sigmoid(amplitudes[:, -1:]) * torch.softmax(amplitudes[:, :-1], dim=1)  # [B, n, frames]
            amplitudes = torch.cat([shares, torch.zeros_like(shares)], dim=1)
        return self.synthesize(amplitudes)

    def synthesize(self, amplitudes: torch.Tensor) -> torch.Tensor:
        """``amplitudes : [B, 2n, frames]`` (the sine amplitudes, then the cosine ones) -> ``[B, 1, n_samples]``."""
        amplitudes = torch.cat([amplitudes, amplitudes[:, :, -1:]], dim=2)  # hold the last frame for one more grain
        a, b = amplitudes[:, : self.n], amplitudes[:, self.n :]
        # a sin(w(fh + tau)) + b cos(w(fh + tau)) = (a s + b c) cos(w tau) + (a c - b s) sin(w tau), c, s of w f h
        weights = torch.cat([a * self.rot_sin + b * self.rot_cos, a * self.rot_cos - b * self.rot_sin], dim=1)  # [B, 2n, frames + 1]
        grains = torch.matmul(weights.transpose(1, 2), self.kernel)  # [B, frames + 1, 2 hop]: grain f spans (f - 1) hop .. (f + 1) hop
        y = grains[:, :-1, self.hop :] + grains[:, 1:, : self.hop]  # [B, frames, hop]: the two grains over each hop
        return y.reshape(y.shape[0], 1, self.frames * self.hop)
