"""One critic update and one generator update, for every recipe (``--loss``, ``--augment``, R1 or the
gradient penalty, the critics in the set). The trainer decides how many of each make a step and what
happens around them; this module only knows how to score a batch and apply a gradient.

Shapes: real clips ``[B, T]``; what the critics see ``[B, T]`` (WaveGAN) or ``[B, S, S]`` (SpecGAN);
scores ``[n_critics, B]``.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .augment import augment_audio
from .config import TrainConfig
from .critics import log_spectrogram
from .losses import (SPREAD_MEL_FFT, aux_class_loss, category_line_contrast, category_line_penalty, category_means, category_spread, critic_loss,
                     generator_loss, gradient_penalty, line_contrast, line_penalty, mel_bands, mode_seeking, r1_penalty,
                     mean_mismatch, spread_shortfall, spread_views, twin_confusion)
from .models import sample_latents


LINE_REFERENCE_RATE = 0.02  # the real clips' line contrast: a moving average over ~50 critic batches
SPREAD_REFERENCE_RATE = 0.02  # the real clips' spread per category (--spread): the same horizon


def _fold(ref: torch.Tensor | None, batch: torch.Tensor, rate: float) -> torch.Tensor:
    """A per-category moving average: ``batch`` folded into ``ref`` at ``rate``; a category this batch lacks
    (NaN) keeps its old value, one seen for the first time takes the batch's."""
    if ref is None:
        return batch
    seen = torch.isfinite(batch)
    return torch.where(seen & torch.isfinite(ref), ref.lerp(batch, rate), torch.where(seen, batch, ref))


@dataclass
class Networks:
    """The modules a step touches. ``g_train``/``d_train`` may be DDP or compiled wrappers of ``G``/``D``;
    ``d_for_g`` is the critic as the generator step calls it (never DDP-wrapped: its gradients are not
    applied there)."""

    G: nn.Module
    D: nn.Module
    g_train: nn.Module
    d_train: nn.Module
    d_for_g: nn.Module
    real_transform: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer


class AdversarialSteps:
    def __init__(self, config: TrainConfig, nets: Networks, device: torch.device,
                 autocast: Callable[[], AbstractContextManager], finite: Callable[[torch.Tensor], bool],
                 sample_rate: int) -> None:
        self.c = config
        self.sample_rate = sample_rate
        self.nets = nets
        self.device = device
        self.autocast = autocast
        self.finite = finite
        self.augment = config.augment_names
        self.critic_updates = 0  # counts critic updates, for the lazy R1 schedule
        self.poison_next = False  # tests: make the next critic loss NaN
        self.aux = config.aux_class > 0
        self.line_reference: torch.Tensor | None = None  # the real clips' line contrast, a moving average (--line-penalty)
        self.spread_reference: torch.Tensor | None = None  # the real clips' [views, categories] spread, likewise (--spread)
        self.spread_bands: torch.Tensor | None = None  # --spread-bands mel: the spectrogram view's mel bands, made once
        self.mean_reference: tuple[torch.Tensor, ...] | None = None  # the real clips' per-category view means (--mean-match)

    def _score(self, critic: nn.Module, x: torch.Tensor, cat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``[n_critics, B']`` scores and, with ``--aux-class``, ``[n_critics, B', n]`` category logits, in one
        forward (one DDP reduction)."""
        if not self.aux:
            return critic(x, cat).float(), None
        scores, logits = critic(x, cat, logits=True)
        return scores.float(), logits

    def _latents(self, b: int) -> torch.Tensor:
        return sample_latents(b, self.c.latent_dim, device=self.device)

    def critic_step(self, clips: torch.Tensor, cat: torch.Tensor) -> dict[str, torch.Tensor] | None:
        """One critic update on real ``clips : [B, T]`` with one-hot ``cat : [B, n]``; None if the loss was
        NaN/Inf (nothing applied)."""
        c, n = self.c, self.nets
        b = clips.shape[0]
        with torch.no_grad():
            if c.line_penalty > 0 and c.line_scope == "category":
                self._update_line_reference(torch.stack(category_line_contrast(clips, cat)[:2]))
            elif c.line_penalty > 0:
                contrast = line_contrast(clips)
                ref = self.line_reference
                self.line_reference = contrast if ref is None else ref.lerp_(contrast, LINE_REFERENCE_RATE)
            real = n.real_transform(clips)
            if c.spread > 0:
                self._update_spread_reference(category_spread(self._spread_views(real), cat))
            if c.mean_match > 0:
                means = category_means(self._spread_views(real, deep=True), cat)
                ref = self.mean_reference
                self.mean_reference = means if ref is None else tuple(
                    _fold(r, m, SPREAD_REFERENCE_RATE) for r, m in zip(ref, means, strict=True))
            with self.autocast():
                fake = n.G(self._latents(b), cat).float()
            real, fake = augment_audio(real, self.augment), augment_audio(fake, self.augment)
        out: dict[str, torch.Tensor] = {}
        if c.loss == "wgan-gp":
            alpha = torch.rand((b,) + (1,) * (real.dim() - 1), device=self.device)
            mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
            with self.autocast():
                # one forward over real, fake and interpolates: one DDP reduction, one launch per layer
                scores, logits = self._score(n.d_train, torch.cat([real, fake, mixed]), cat.repeat(3, 1))
            s_real, s_fake, s_mixed = scores.split(b, dim=1)
            penalty = gradient_penalty(s_mixed, mixed)
            loss = critic_loss(c.loss, s_real, s_fake) + c.gp_lambda * penalty
            out["gradient_penalty"] = penalty.detach()
        else:
            lazy_r1 = c.r1_gamma > 0 and self.critic_updates % c.r1_every == 0
            if lazy_r1:
                real.requires_grad_(True)
            with self.autocast():
                scores, logits = self._score(n.d_train, torch.cat([real, fake]), cat.repeat(2, 1))
            s_real, s_fake = scores.split(b, dim=1)
            loss = critic_loss(c.loss, s_real, s_fake)
            if lazy_r1:
                penalty = r1_penalty(s_real, real)
                # applied every r1_every updates, so weighted by r1_every: the same regularisation on average
                loss = loss + c.r1_gamma * c.r1_every * penalty
                out["gradient_penalty"] = penalty.detach()
        if logits is not None:
            # the classifiers learn the categories from real clips only: judged on fakes they would learn the
            # generator's mistakes as the category (AC-GAN's known failure; Gong et al. 2019 "TAC-GAN")
            k = cat.shape[1]
            aux = aux_class_loss(logits[:, :b, :k], cat)
            loss = loss + c.aux_class * aux
            out["aux_class"] = aux.detach()
            if c.aux_twin > 0:  # the twins learn the categories the generator makes, from its clips only
                twin = aux_class_loss(logits[:, b : 2 * b, k:], cat)
                loss = loss + c.aux_class * twin
                out["aux_twin"] = twin.detach()
        if self.poison_next:
            self.poison_next = False
            loss = loss * float("nan")
        if not self.finite(loss):
            return None
        n.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        n.opt_d.step()
        self.critic_updates += 1
        out["loss_d"] = loss.detach()
        out["wasserstein"] = (s_real.mean(dim=1) - s_fake.mean(dim=1)).sum().detach()  # the critics' real-minus-fake gap
        return out

    def _spread_views(self, x: torch.Tensor, deep: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Spread matching's views of ``x`` (``deep``: mean matching's, floored at -100 dB; see :func:`spread_views`)."""
        if self.c.spread_bands == "linear":
            return spread_views(x, deep=deep)
        if self.spread_bands is None:  # a SpecGAN image's rows are its bins; a waveform's spectrogram is made at SPREAD_MEL_FFT
            self.spread_bands = mel_bands(self.sample_rate, x.shape[1] if x.dim() == 3 else SPREAD_MEL_FFT // 2).to(x.device)
        return spread_views(x, self.spread_bands, deep=deep)

    def _update_line_reference(self, contrast: torch.Tensor) -> None:
        """``--line-scope category``: fold one real batch's ``[2, n, F]`` per-category line contrast (mean and
        mean square) into the moving average (see :func:`_fold`)."""
        self.line_reference = _fold(self.line_reference, contrast, LINE_REFERENCE_RATE)

    def _update_spread_reference(self, spread: torch.Tensor) -> None:
        """Fold one real batch's ``[views, n]`` spread into the moving average (see :func:`_fold`)."""
        self.spread_reference = _fold(self.spread_reference, spread, SPREAD_REFERENCE_RATE)

    def generator_step(self, cat: torch.Tensor, step: int = 0) -> dict[str, torch.Tensor] | None:
        """One generator update for one-hot ``cat : [B, n]`` at training step ``step``; None if the loss was
        NaN/Inf. With mode seeking (from step ``--mode-seeking-from``) the batch's second half repeats the
        first half's categories (pairs of latents, one category), taken from every other label: a batch in
        category order keeps every category (its first half would hold only the first ones) and its
        minibatch-stddev groups still hold one category each."""
        c, n = self.c, self.nets
        b = cat.shape[0]
        seeking = c.mode_seeking > 0 and b >= 2 and step >= c.mode_seeking_from
        if seeking:
            h = b // 2
            half = cat[0 : 2 * h : 2]
            cat = torch.cat([half, half, cat[2 * h :]])
        for p in n.D.parameters():
            p.requires_grad_(False)
        out = {}
        try:
            with self.autocast():
                z = self._latents(b)
                fake = n.g_train(z, cat).float()
                scores, logits = self._score(n.d_for_g, augment_audio(fake, self.augment), cat)
                loss = generator_loss(c.loss, scores)
                if logits is not None:  # make clips the critics' classifiers hear as the category asked for
                    k = cat.shape[1]
                    loss = loss + c.aux_class * aux_class_loss(logits[..., :k], cat, c.aux_confidence)
                    if c.aux_twin > 0 and not 0 < c.aux_twin_until <= step:  # ... and no more obvious than the data's (TAC-GAN)
                        loss = loss - c.aux_class * c.aux_twin * twin_confusion(logits[..., k:], cat)
                if c.line_penalty > 0 and self.line_reference is not None:
                    if c.line_scope == "category":
                        mean, _, counts = category_line_contrast(fake, cat)
                        lines = category_line_penalty(mean, counts, *self.line_reference)
                    else:
                        lines = line_penalty(line_contrast(fake), self.line_reference)
                    loss = loss + c.line_penalty * lines
                    out["line_penalty"] = lines.detach()
                if c.spread > 0 and step >= c.spread_from and self.spread_reference is not None:
                    short = spread_shortfall(category_spread(self._spread_views(fake), cat), self.spread_reference)
                    loss = loss + c.spread * short
                    out["spread"] = short.detach()
                if c.mean_match > 0 and self.mean_reference is not None:
                    mismatch = mean_mismatch(category_means(self._spread_views(fake, deep=True), cat), self.mean_reference)
                    loss = loss + c.mean_match * mismatch
                    out["mean_match"] = mismatch.detach()
                if seeking:
                    feats = fake if fake.dim() == 3 else log_spectrogram(fake, 256)  # SpecGAN images, or WaveGAN's spectrogram
                    ms = mode_seeking(feats[: 2 * h], z[: 2 * h])
                    loss = loss + c.mode_seeking * ms
                    out["mode_seeking"] = ms.detach()
            if not self.finite(loss):
                return None
            n.opt_g.zero_grad(set_to_none=True)
            loss.backward()
            n.opt_g.step()
        finally:
            for p in n.D.parameters():
                p.requires_grad_(True)
        out["loss_g"] = loss.detach()
        return out
