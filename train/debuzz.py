"""A fixed comb of notches at the multiples of fs/16, where WaveGAN's upsampling layers put their buzz.

The last two stride-4 layers repeat their kernels' phases every 4 and 16 output samples, so whatever
the weights learn, what is left of a checkerboard pattern is a set of steady tones at the multiples of
fs/16 (1, 2, ... 7 kHz at 16 kHz; fs/4's multiples are among them). The ``balanced`` layers remove the
part a constant input makes; a signal still meets each phase's own filter, and a trained model keeps a
faint buzz there (run P2C95, the bundled model's weights, without the comb: +1.6 dB at those bins over
the bins around them, +0.3 dB over the data's own level). Training cannot be relied on to unlearn it, and the paper's learnt
512-tap post-filter (31 Hz resolution) is too coarse to remove a line without the band around it.

This filter removes a steady pattern of period ``P = 16`` samples by construction (a synchronous
average, the hum/buzz remover of audio restoration): the periodic part of the signal around sample
``n`` is estimated as the Hann-weighted mean of the samples ``n + P*m`` for ``|m| <= (M-1)/2``, its
local mean (a ``P``-sample box, whose nulls are the same frequencies) is kept, and the rest is
subtracted::

    y = x - c(x) + b(c(x))      c: the comb (M taps, P apart), b: the P-sample box (P+1 taps, half-weight ends)

In frequency, ``H = 1 - C (1 - B)``: exactly 0 at every multiple of fs/P up to Nyquist (``C = 1``,
``B = 0``), exactly 1 at DC, and within +0.25 dB of 1 away from the notches (Hann sidelobes). The
kernel is symmetric, so the filter is zero-phase (no bump where the notches' phases turn: a causal
comb has +3.9 dB beside each notch). With ``M = 129`` periods (2,065 samples, 129 ms at 16 kHz) each
notch is 20 Hz wide at -3 dB, 1.8% of the band in all; what it costs is that much of any real sound
at those frequencies, and a faint pre-echo of a hit's own k kHz content (-23 dB of an impulse's
energy, spread over the 64 ms before it). At the clip's edges the comb sees only part of its window;
its weights are renormalised there, so the estimate stays unbiased and the notch stays whole (and
the box reads the periodic part one period on, past the ends).

No weights: the comb is three running sums along each phase's samples (the Hann taps are a constant
and a cosine, so the M-tap sum is O(n) whatever M: 0.15-0.23 ms a clip in onnxruntime on one core,
where the dilated convolution was 0.45-0.55 ms; tests/bench/bench_debuzz.py) and the box a 17-tap
convolution, so it exports to ONNX as it is, and it can be put on a generator trained without it
(``--debuzz`` at evaluate and export). It runs on the tanh's output (the tanh puts content back at
those frequencies) and before the envelope head's gain, so the ring a hit leaves at k kHz (the comb's
64 ms either side) stays inside the envelope: after the gain, a trigger's silence after its hit
carried it at -64 dBFS. A clamp to [-1, 1] after the gain keeps the output contract; ``x - c + b(c)``
leaves that range only where a clip near full scale has a strong periodic part (the bundled model's
peak was 0.60, so the clamp did nothing there).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .errors import ModelError

PERIOD = 16  # samples: the last two stride-4 layers' pattern (fs/16's multiples include fs/4's)


def comb_weights(periods: int) -> np.ndarray:
    """The comb's ``periods`` taps (Hann, summing to 1), ``PERIOD`` samples apart."""
    w = np.hanning(periods + 2)[1:-1]
    return w / w.sum()


def box_weights(period: int = PERIOD) -> np.ndarray:
    """A zero-phase ``period``-sample moving average: ``period + 1`` taps, the two ends at half weight."""
    b = np.ones(period + 1)
    b[0] = b[-1] = 0.5
    return b / period


def debuzz_kernel(periods: int, period: int = PERIOD) -> np.ndarray:
    """The whole filter as one symmetric FIR (for tests and plots): ``delta - c + b * c``."""
    c = np.zeros(period * (periods - 1) + 1)
    c[::period] = comb_weights(periods)
    h = np.convolve(c, box_weights(period)) - np.pad(c, period // 2)
    h[len(h) // 2] += 1.0
    return h


class Debuzz(nn.Module):
    """``[B, 1, n_samples] -> [B, 1, n_samples]``: the notch comb, ``periods`` (M: odd, >= 3) taps long."""

    def __init__(self, periods: int, n_samples: int) -> None:
        super().__init__()
        if periods < 3:
            raise ModelError(f"debuzz is the number of periods the comb averages over: 0 (off) or an odd number >= 3, got {periods}")
        if periods % 2 == 0:
            raise ModelError(f"debuzz={periods}: the comb's taps sit on the sample and on whole periods either side of it, "
                             f"so their number is odd; use {periods + 1}")
        span = PERIOD * (periods - 1)
        if span >= n_samples or n_samples % PERIOD:
            raise ModelError(f"debuzz={periods} spans {span + 1} samples on clips of {n_samples}: it needs clips longer than "
                             f"that and a whole number of {PERIOD}-sample periods; use fewer periods")
        self.periods, self.pad, self.half = periods, span // 2, (periods - 1) // 2
        taps = comb_weights(periods)
        comb = torch.tensor(taps, dtype=torch.float32).view(1, 1, periods)
        box = torch.tensor(box_weights(), dtype=torch.float32).view(1, 1, PERIOD + 1)
        # the share of the comb's weight that falls inside the clip at each sample (1 away from the edges)
        inside = F.conv1d(F.pad(torch.ones(1, 1, n_samples), (self.pad, self.pad)), comb, dilation=PERIOD)
        # The Hann taps are 0.5 + 0.5 cos(phi m), phi = 2 pi / (M + 1), over the period index m, so the comb is a
        # sum of three running sums along each phase's samples (plain, cos- and sin-modulated): O(n) whatever M,
        # where the M-tap dilated convolution was 2.4x slower in onnxruntime on one core (tests/bench/bench_debuzz.py).
        # mod: [2, L + 2H + 1, 16] (cos, sin) at the padded positions; demod: [3, L, 16] taking the window sums back
        # to each output period, with the taps' norm and the renormalisation at the edges folded in. The tables are
        # full-sized: broadcasting them inside a period was onnxruntime's slow part (0.26 ms for the filter, 0.15 without).
        h, periods_in_clip = self.half, n_samples // PERIOD
        phi = 2 * np.pi / (periods + 1)
        norm = 0.5 * taps[h]  # the taps are (0.5 + 0.5 cos) / their sum, and the centre one is 1 / that sum
        j = np.arange(periods_in_clip + 2 * h + 1) - (h + 1)
        k = np.arange(periods_in_clip)
        mod = np.stack([np.cos(phi * j), np.sin(phi * j)])
        edge = inside.view(periods_in_clip, PERIOD).numpy().astype(np.float64)
        demod = np.stack([np.ones(periods_in_clip), np.cos(phi * k), np.sin(phi * k)])[:, :, None] * norm / edge
        # buffers, not parameters, and not saved: a checkpoint trained without the filter loads with it
        self.register_buffer("box", box, persistent=False)
        self.register_buffer("mod", torch.tensor(np.repeat(mod[:, :, None], PERIOD, axis=2), dtype=torch.float32), persistent=False)
        self.register_buffer("demod", torch.tensor(demod, dtype=torch.float32), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n = x.shape[0], x.shape[-1]
        h, periods_in_clip = self.half, n // PERIOD
        r = F.pad(x.reshape(b, periods_in_clip, PERIOD), (0, 0, h + 1, h))  # [B, L + 2H + 1, 16]: each column one phase

        def window(run: torch.Tensor) -> torch.Tensor:  # the sums over periods k - H .. k + H, from a running sum
            return run[:, 2 * h + 1:] - run[:, :periods_in_clip]

        c = (window(torch.cumsum(r, dim=1)) * self.demod[0] + window(torch.cumsum(r * self.mod[0], dim=1)) * self.demod[1]
             + window(torch.cumsum(r * self.mod[1], dim=1)) * self.demod[2]).reshape(b, 1, n)  # the periodic part
        half = PERIOD // 2
        # the periodic part goes on past the clip's ends as it went one period inside them
        c_ext = torch.cat([c[..., half:PERIOD], c, c[..., -PERIOD:-half]], dim=-1)
        local = F.conv1d(c_ext, self.box)  # its mean over one period
        return x - c + local
