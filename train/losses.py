"""Adversarial losses and their regularisers, as small functions of critic scores.

Scores are ``[n_critics, B]`` (one row per critic of a :class:`~train.critics.CriticSet`); every loss is
the sum over critics of each critic's own loss, so adding a critic adds a term and changes nothing else.

- ``wgan-gp`` (Gulrajani et al. 2017; the paper's): critic ``E[D(fake)] - E[D(real)] + lambda * GP``,
  generator ``-E[D(fake)]``. GP is ``(||grad D(mixed)|| - 1)^2`` on random interpolates, which needs a
  third critic pass and a double backward at *every* critic step; with the paper's 5 critic steps per
  generator step it is the slowest option per step.
- ``hinge`` (Miyato et al. 2018): critic ``E[relu(1 - D(real))] + E[relu(1 + D(fake))]``, generator
  ``-E[D(fake)]``.
- ``ns``, the non-saturating loss (Goodfellow et al. 2014): critic ``softplus(-D(real)) +
  softplus(D(fake))``, generator ``softplus(-D(fake))``.

hinge and ns are regularised with R1 (Mescheder et al. 2018): ``gamma / 2 * E||grad_x D(real)||^2`` on
real clips only, computed lazily every ``r1_every`` critic steps and scaled by ``r1_every`` (StyleGAN2),
so most critic steps cost two forward passes and one backward.

Mode seeking (Mao et al., "Mode Seeking GANs", CVPR 2019) is a generator-only term against conditional
collapse -- one sound per category whatever the latent: pairs of clips made from two latents with the
same category are pushed apart, ``1 / (mean|S(G(z1)) - S(G(z2))| / mean|z1 - z2| + eps)``, with ``S`` the
log-magnitude spectrogram (distances between waveforms would mostly measure phase).

The line penalty is a generator-only term against the upsampling layers' buzz: tones at fixed
frequencies (multiples of fs/4, fs/16, fs/64: the strides' grid) that every generated clip has and no
recording does. :func:`line_contrast` measures, per frequency bin, how far each clip's periodogram
stands out from the bins 5-40 away (in nats), averaged over the clips: a line every clip has at the
same place survives the average, a partial that moves from clip to clip averages away. The penalty is
what the generated batch's contrast exceeds the real clips' (a moving average over the critic's real
batches) by more than a margin, summed over bins: any narrow line the data lacks, at any frequency,
not only where a metric looks. Averaged over the whole batch, a line that only one category's clips have
is thinned by that category's share (a +10 dB tone in every trigger continuous clip of a four-category
batch reads +2.5 dB, under the margin); ``--line-scope category`` compares each category's clips with the
real clips of that category instead, against a margin of three standard deviations of the mean over
that many clips, per bin, from the spread of the real clips' contrast (a moving average too).

Spread matching is a generator-only term against the narrowing that the critics' classifiers bring (each
category settling on its surest sound): per category, the generated batch's spread -- the mean pairwise
distance between clips of one category -- is compared with the real clips' (a moving average over the
critic's real batches), in two views that a listener and any outside classifier hear, the amplitude
envelope (log energy in 64 frames) and the spectrogram (log magnitude, n_fft 256, pooled to 32 bands x
64 frames). The term is how far the generated spread falls short of the data's, as a share, summed over
the two views and averaged over the categories: 0 once a category is as varied as the data, so unlike
mode seeking it never pays for spreading further (mode seeking turned triggers into runs of hits at
150-170% of the data's spread; see tests/bench/README.md).

Mean matching (``--mean-match``) is its first-moment partner: per category, the generated batch's mean
in the same two views is pulled towards the real clips' mean (a moving average too), L1 per feature.
It is feature matching (Salimans et al., "Improved Techniques for Training GANs", 2016), conditional
and in a fixed feature space rather than the critic's: a category's average clip must have the data's
envelope over time and the data's spectrum in each band and frame -- a bell's ring still sounding at the
clip's end, a hit's silence after it -- which a critic's learnt features (and a classifier head fed by
them) can be satisfied without. It does not narrow a category: any spread with the right mean costs 0.
Its views are floored at -100 dB (``spread_views(deep=True)``), not spread matching's -60 dB: there,
hiss at -60 dB after a hit reads as the silence the data has, and a classifier (its log-mel floor is
-108 dB) hears it as a sound that goes on. Measured on the Debian corpus with the -60 dB views, the
live weights' triggers kept a -60 dB tail and were heard as trigger continuous (70-77%). It is an
option, off: on the built-in corpus it cost the bundled recipe its IS, spread and triggers (run MM in
tests/bench/README.md), and on the Debian corpus it did not bring every category to 80%.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F

from .config import LOSSES  # the names --loss takes, defined once (the command line needs no torch)
from .classifier import mel_filterbank
from .critics import LOG_FLOOR, log_spectrogram


def critic_loss(kind: str, s_real: torch.Tensor, s_fake: torch.Tensor) -> torch.Tensor:
    """``s_real, s_fake : [n_critics, B]`` -> scalar (before any penalty)."""
    if kind == "wgan-gp":
        return (s_fake.mean(dim=1) - s_real.mean(dim=1)).sum()
    if kind == "hinge":
        return (F.relu(1 - s_real).mean(dim=1) + F.relu(1 + s_fake).mean(dim=1)).sum()
    if kind == "ns":
        return (F.softplus(-s_real).mean(dim=1) + F.softplus(s_fake).mean(dim=1)).sum()
    raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {kind!r}")


def generator_loss(kind: str, s_fake: torch.Tensor) -> torch.Tensor:
    """``s_fake : [n_critics, B]`` -> scalar."""
    if kind in ("wgan-gp", "hinge"):
        return -s_fake.mean(dim=1).sum()
    if kind == "ns":
        return F.softplus(-s_fake).mean(dim=1).sum()
    raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {kind!r}")


def aux_class_loss(logits: torch.Tensor, cat: torch.Tensor, confidence: float = 0.0) -> torch.Tensor:
    """The critics' category classifiers against the categories asked for: ``logits : [n_critics, B, n]``,
    one-hot ``cat : [B, n]`` -> scalar, the cross-entropy summed over critics (each classifier is its own
    judge, as each critic's score is).

    ``confidence`` in (0, 1): a clip stops counting once a classifier gives its category at least this
    probability (the cross-entropy less ``-log(confidence)``, floored at 0). Unbounded, the reward drives
    the generator on to the one clip each classifier is surest of (AC-GAN's loss of diversity); bounded,
    a clip need only be recognisable, and the adversarial loss decides the rest."""
    target = cat.argmax(dim=1)
    total = logits.new_zeros((), dtype=torch.float32)
    for row in logits:
        ce = F.cross_entropy(row.float(), target, reduction="none")
        if confidence > 0:
            ce = (ce + math.log(confidence)).clamp(min=0.0)
        total = total + ce.mean()
    return total


def twin_confusion(logits: torch.Tensor, cat: torch.Tensor) -> torch.Tensor:
    """How little the twin classifiers (trained on generated clips) can tell the generated categories
    apart: ``logits : [n_critics, B, n]`` of generated clips made for one-hot ``cat`` -> scalar, their
    cross-entropy summed over critics, each clip's capped at chance (``log n``). The generator maximises it
    (TAC-GAN, Gong et al. 2019): with :func:`aux_class_loss` alone it may make only the surest clip of a
    category; the twin's term pays it for every clip whose category is no more obvious than the data's,
    so a category keeps the spread it has in the data. Capped, so a clip earns nothing by looking like
    another category more than like none."""
    target = cat.argmax(dim=1)
    chance = math.log(max(logits.shape[-1], 2))
    total = logits.new_zeros((), dtype=torch.float32)
    for row in logits:
        total = total + F.cross_entropy(row.float(), target, reduction="none").clamp(max=chance).mean()
    return total


def mode_seeking(features: torch.Tensor, z: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """``features : [2P, ...]`` of clips made from ``z : [2P, latent]`` where clip ``i`` and ``P + i`` share a
    category -> scalar to minimise (larger output distance per unit of latent distance = lower)."""
    p = features.shape[0] // 2
    d_out = (features[:p] - features[p : 2 * p]).abs().flatten(1).mean(dim=1)
    d_z = (z[:p] - z[p : 2 * p]).abs().mean(dim=1)
    return (1.0 / (d_out / d_z + eps)).mean()


LINE_NEAR, LINE_FAR = 5, 40  # a bin's neighbourhood for the line contrast: 5..40 bins away on either side
LINE_MARGIN = math.log(10 ** 0.3)  # 3 dB of contrast over the data's is tolerated (batch noise is ~1 dB a bin)


def line_contrast(audio: torch.Tensor) -> torch.Tensor:
    """``audio : [B, T]`` -> ``[T // 2 + 1]``: each bin's log power over its neighbourhood's mean log power,
    per clip (Hann-windowed periodogram), averaged over the clips (see the module docstring)."""
    return clip_line_contrast(audio).mean(dim=0)


LINE_SIGMAS = 3.0  # --line-scope category: a category's tolerance, in standard deviations of its mean over the batch's clips


def category_line_contrast(audio: torch.Tensor, cat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``audio : [B, T]``, one-hot ``cat : [B, n]`` -> (mean, mean square, counts): each category's clips'
    line contrast ``[n, T // 2 + 1]`` averaged, its square averaged (for the spread of one clip's
    contrast), and ``[n]`` clip counts; a category the batch lacks has NaN rows and count 0."""
    per_clip = clip_line_contrast(audio)
    onehot = F.one_hot(cat.argmax(dim=1), cat.shape[1]).to(per_clip.dtype)  # [B, n]
    counts = onehot.sum(dim=0)
    have = counts[:, None] > 0
    mean = torch.where(have, (onehot.t() @ per_clip) / counts.clamp(min=1)[:, None], float("nan"))
    square = torch.where(have, (onehot.t() @ per_clip.square()) / counts.clamp(min=1)[:, None], float("nan"))
    return mean, square, counts


def category_line_penalty(fake: torch.Tensor, counts: torch.Tensor, real: torch.Tensor, real_square: torch.Tensor) -> torch.Tensor:
    """Scalar, ``--line-scope category``: for each category, the nats by which its generated clips' mean line
    contrast ``fake : [n, F]`` (over ``counts : [n]`` clips) exceeds the real clips' of that category ``real :
    [n, F]`` by more than :data:`LINE_SIGMAS` standard deviations of a mean over that many real clips (the
    per-bin spread from ``real_square``, the real contrast's mean square), summed over bins; averaged over
    the categories both measure. A line that one category's clips all have counts in full, where the
    batch-wide average would thin it by the category's share of the batch; a bin where the category's
    recordings vary (moving partials) tolerates more than one where they are smooth."""
    ok = (counts > 0) & torch.isfinite(real).all(dim=1) & torch.isfinite(fake).all(dim=1)
    if not bool(ok.any()):
        return fake.new_zeros(())
    sigma = (torch.where(ok[:, None], real_square - real.square(), 0.0)).clamp(min=0).sqrt()
    margin = LINE_SIGMAS * sigma / counts.clamp(min=1).sqrt()[:, None]
    excess = F.relu(torch.where(ok[:, None], fake, 0.0) - torch.where(ok[:, None], real, 0.0) - margin)
    return excess.sum(dim=1)[ok].mean()


def clip_line_contrast(audio: torch.Tensor) -> torch.Tensor:
    """``audio : [B, T]`` -> ``[B, T // 2 + 1]``: :func:`line_contrast` of each clip, before the average."""
    n = audio.shape[-1]
    spec = torch.fft.rfft(audio.float() * torch.hann_window(n, device=audio.device), dim=-1)
    logp = torch.log(spec.real.square() + spec.imag.square() + 1e-10)
    side = LINE_FAR - LINE_NEAR + 1
    kernel = torch.zeros(2 * LINE_FAR + 1, device=audio.device)
    kernel[:side] = 1
    kernel[-side:] = 1
    kernel /= kernel.sum()
    around = F.conv1d(F.pad(logp[:, None], (LINE_FAR, LINE_FAR), mode="replicate"), kernel.view(1, 1, -1))[:, 0]
    return logp - around


def line_penalty(fake_contrast: torch.Tensor, real_contrast: torch.Tensor, margin: float = LINE_MARGIN) -> torch.Tensor:
    """Scalar: the nats by which the generated clips' line contrast exceeds the real clips' plus ``margin``,
    summed over frequency bins (0 when no bin stands out more than the data's do)."""
    return F.relu(fake_contrast - real_contrast - margin).sum()


def gradient_penalty(s_mixed: torch.Tensor, mixed: torch.Tensor) -> torch.Tensor:
    """WGAN-GP: ``mean((||d sum(D) / d mixed|| - 1)^2)``, one penalty per critic summed (each critic is
    held to its own Lipschitz bound). ``s_mixed : [n_critics, B]``, ``mixed`` requires grad."""
    total = s_mixed.new_zeros(())
    for row in s_mixed:
        grad = torch.autograd.grad(row.sum(), mixed, create_graph=True)[0]
        total = total + ((grad.float().flatten(1).norm(dim=1) - 1) ** 2).mean()
    return total


def r1_penalty(s_real: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """R1: ``mean(||d sum_critics D(real) / d real||^2) / 2`` (``real`` requires grad)."""
    grad = torch.autograd.grad(s_real.sum(), real, create_graph=True)[0]
    return 0.5 * grad.float().flatten(1).pow(2).sum(dim=1).mean()


SPREAD_FRAMES = 64  # the envelope view: log energy in 64 frames (16 ms at 16 kHz, 16384 samples)
SPREAD_IMAGE = (32, 64)  # the spectrogram view: n_fft 256 log magnitude pooled to 32 bands x 64 frames
SPREAD_FLOOR = 1e-6  # energy floor of the envelope view: -60 dB below full scale, where a tail stops being heard
DEEP_FLOOR = 1e-10  # mean matching's floor (energy): -100 dB, about the classifier's log-mel floor (-108 dB re a full-scale sine)


SPREAD_MEL_FFT = 512  # --spread-bands mel: a waveform's spectrogram at n_fft 512 (31 Hz bins at 16 kHz) before the mel bands


def mel_bands(sample_rate: int, n_bins: int) -> torch.Tensor:
    """``[32, n_bins]``: the spectrogram view's rows as 32 mel bands (each a weighted mean of the bins under
    its triangle) over ``n_bins`` linear bins from 0 to just below Nyquist (``--spread-bands mel``)."""
    fb = mel_filterbank(sample_rate, 2 * n_bins, SPREAD_IMAGE[0])[:, :n_bins]
    return torch.from_numpy(fb / np.maximum(fb.sum(axis=1, keepdims=True), 1e-9))


def spread_views(x: torch.Tensor, bands: torch.Tensor | None = None, deep: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Waveforms ``[B, T]`` (or SpecGAN images ``[B, F, frames]``) -> the envelope ``[B, 64]`` and the pooled
    spectrogram ``[B, 32 * 64]`` that spread matching compares. ``bands`` (:func:`mel_bands`): the
    spectrogram's rows are those mel bands (a waveform's at n_fft 512) instead of 32 equal slices of
    n_fft 256's bins, 250 Hz wide, in which pitches an octave apart below 250 Hz look alike. ``deep``
    (mean matching's views): both views floored at -100 dB instead of -60 (envelope) and -80 dB
    (spectrogram), so hiss at -60 dB after a hit is not the silence the data has there."""
    x = x.float()
    if x.dim() == 2:
        energy = F.adaptive_avg_pool1d(x.square()[:, None], SPREAD_FRAMES)[:, 0]
        # log rms / 2: from -3.5 (floor; deep: -5.8) to 0, near the image view's range
        envelope = torch.log(energy + (DEEP_FLOOR if deep else SPREAD_FLOOR)) / 4.0
        image = log_spectrogram(x, 256 if bands is None else 2 * bands.shape[1], floor=math.sqrt(DEEP_FLOOR) if deep else LOG_FLOOR)
    else:  # a SpecGAN image is a log-magnitude spectrogram already: its envelope is its mean over frequency
        envelope = F.adaptive_avg_pool1d(x.mean(dim=1, keepdim=True), SPREAD_FRAMES)[:, 0]
        image = x
    if bands is not None:
        image = torch.einsum("mk,bkn->bmn", bands.to(image.device), image)
    return envelope, F.adaptive_avg_pool2d(image[:, None], SPREAD_IMAGE).flatten(1)


def category_spread(views: tuple[torch.Tensor, ...], cat: torch.Tensor) -> torch.Tensor:
    """``[n_views, n]``: for each view ``[B, F]`` and category of one-hot ``cat : [B, n]``, the mean L1 distance
    per feature between two clips of that category; NaN where the batch holds fewer than 2 of them."""
    labels = cat.argmax(dim=1)
    groups = [(labels == k).nonzero()[:, 0] for k in range(cat.shape[1])]  # once for every view
    rows = []
    for v in views:
        dist = torch.cdist(v, v, p=1) / v.shape[1]
        row = [dist[i][:, i].sum() / (i.numel() * (i.numel() - 1)) if i.numel() >= 2 else dist.new_tensor(float("nan"))
               for i in groups]
        rows.append(torch.stack(row))
    return torch.stack(rows)


def category_means(views: tuple[torch.Tensor, ...], cat: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """For each view ``[B, F]``, ``[n, F]``: the mean of the batch's clips of each category of one-hot
    ``cat : [B, n]`` (mean matching's statistic); NaN rows for a category the batch holds none of."""
    onehot = F.one_hot(cat.argmax(dim=1), cat.shape[1]).to(views[0].dtype)  # [B, n]
    counts = onehot.sum(dim=0)[:, None]  # [n, 1]
    out = []
    for v in views:
        total = onehot.t() @ v  # [n, F]
        out.append(torch.where(counts > 0, total / counts.clamp(min=1), torch.full_like(total, float("nan"))))
    return tuple(out)


def mean_mismatch(fake: tuple[torch.Tensor, ...], real: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Scalar: ``sum over views, mean over categories of the mean L1 distance per feature`` between the
    generated and real category means (:func:`category_means`), over the categories both hold (0 when none)."""
    total = fake[0].new_zeros(())
    for f, r in zip(fake, real, strict=True):
        ok = torch.isfinite(f[:, 0]) & torch.isfinite(r[:, 0])  # a category is held whole or not at all
        if not bool(ok.any()):
            continue
        # rows chosen before subtracting, so no NaN reaches the gradient
        total = total + (f[ok] - r[ok]).abs().mean(dim=1).mean()
    return total


def spread_shortfall(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Scalar: ``sum over views, mean over categories of relu(1 - fake / real)`` for ``[n_views, n]`` spreads,
    over the categories both measure (0 when none does, or when every category is as varied as the data)."""
    ok = torch.isfinite(fake) & torch.isfinite(real) & (real > 0)
    if not bool(ok.any()):
        return fake.new_zeros(())
    # a ratio of 1 (no shortfall) where unmeasured, chosen before dividing so no NaN or 0 reaches the gradient
    short = F.relu(1 - torch.where(ok, fake, 1.0) / torch.where(ok, real, 1.0))
    counted = ok.any(dim=0)  # the categories measured in some view
    return short.sum() / counted.sum()
