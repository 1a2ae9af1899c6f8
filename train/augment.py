"""Differentiable augmentation for small datasets (DiffAugment, Zhao et al. 2020; ADA, Karras et al. 2020),
for audio: every clip the critic sees -- real and generated alike -- is first given a random time shift,
gain and polarity. The critic can no longer memorise the few hundred real clips by their exact waveform,
and because the same random transforms hit generated clips, and gradients flow back through them, the
generator is not pushed to imitate the transforms themselves (they are applied, never learnt).

Each transform leaves a gesture a gesture: a shift of a few tens of milliseconds moves an attack but
keeps it an attack, a gain keeps the envelope's shape, a polarity flip is inaudible.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

SHIFT_FRACTION = 1 / 64  # at most +-1/64 of the clip: 16 ms of a 16384-sample clip at 16 kHz
GAIN_DB = (-6.0, 3.0)  # quieter more than louder: most clips peak near full scale


def augment_audio(x: torch.Tensor, names: tuple[str, ...], generator: torch.Generator | None = None) -> torch.Tensor:
    """``x : [B, T]`` -> ``[B, T]``, each clip with its own random transforms; differentiable in ``x``.
    ``names`` is a subset of ``train.config.AUGMENTS`` (``TrainConfig.augment_names`` parses ``--augment``).

    ``shift`` moves the clip by up to ``T * SHIFT_FRACTION`` samples either way, filling with silence (a
    circular roll would wrap a trigger's attack round to its end); ``gain`` scales by -6 to +3 dB;
    ``polarity`` flips the sign of half the clips."""
    if not names:
        return x
    b, t = x.shape
    dev = x.device
    if "shift" in names:
        r = max(1, int(t * SHIFT_FRACTION))
        shift = torch.randint(-r, r + 1, (b, 1), device=dev, generator=generator)
        padded = F.pad(x, (r, r))  # [B, T + 2r], zeros either side
        idx = torch.arange(t, device=dev)[None, :] + r - shift  # [B, T]
        x = padded.gather(1, idx)
    if "gain" in names or "polarity" in names:
        scale = torch.ones(b, 1, device=dev, dtype=x.dtype)
        if "gain" in names:
            lo, hi = GAIN_DB
            db = lo + torch.rand(b, 1, device=dev, generator=generator) * (hi - lo)
            scale = scale * torch.pow(10.0, db / 20).to(x.dtype)
        if "polarity" in names:
            sign = torch.randint(0, 2, (b, 1), device=dev, generator=generator).to(x.dtype) * 2 - 1
            scale = scale * sign
        # a louder clip must stay a clip the generator could have made: keep it inside [-1, 1]
        x = torch.clamp(x * scale, -1.0, 1.0)
    return x
