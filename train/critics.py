"""Critics beside the architecture's own, and the set that scores a batch with all of them.

- :class:`SpectralCritic`: a projection critic over one STFT resolution's log-magnitude image
  (MelGAN / HiFi-GAN's multi-resolution idea, applied to gestures). The waveform critic must discover
  envelopes and spectra from raw samples; here they are the input, so "a trigger decays, a repetition
  pulses" is visible to the critic from the first step. Each resolution trades time for frequency:
  n_fft 256 sees attacks to 4 ms, n_fft 1024 resolves pitch to 16 Hz.
- :func:`minibatch_stddev`: the feature standard deviation across a small group of clips, appended as
  one more channel before the critic's head (Karras et al. 2018): a generator that makes the same clip
  every time shows a zero there, which the critic learns to punish -- a cheap guard against collapse.
- :func:`critic_head`: every critic's head, a projection score and, optionally (``--aux-class``), a
  category classifier on the same features (AC-GAN, Odena et al. 2017, trained on real clips only):
  the projection says "real for this category", the classifier "which category", a direct gradient
  that pulls the generator's categories apart.
- :class:`CriticSet`: the architecture's critic plus any spectral critics, ``[n_critics, B]`` scores.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .errors import ModelError

MBSTD_GROUP = 4
LOG_FLOOR = 1e-4  # magnitude floor: -80 dB below a full-scale sine, so silence is a flat image, not log(0)


def log_spectrogram(audio: torch.Tensor, n_fft: int, window: torch.Tensor | None = None, floor: float = LOG_FLOOR) -> torch.Tensor:
    """``audio : [B, T]`` -> ``[B, n_fft/2, frames]`` log magnitude (hop ``n_fft/4``, Hann, Nyquist dropped),
    scaled so a full-scale sine is about 0 and silence sits at log(floor)/4 (by default log(1e-4)/4:
    roughly [-2.3, 0.3]). ``torch.stft``, differentiable twice (R1 needs that); training only, never exported."""
    if window is None:
        window = torch.hann_window(n_fft, device=audio.device)
    spec = torch.stft(audio.float(), n_fft, n_fft // 4, window=window, center=True, return_complex=True)
    mag = torch.sqrt(spec.real[:, :-1] ** 2 + spec.imag[:, :-1] ** 2 + 1e-12) * (4.0 / n_fft)  # a Hann window sums to n_fft/2
    return torch.log(mag + floor) / 4.0


def critic_head(critic: nn.Module, phi: torch.Tensor, category: torch.Tensor, logits: bool = False):
    """A critic's projection head over its features ``phi : [B, F]``: ``score : [B] = out(phi) + <embed(y),
    phi>`` (Miyato & Koyama 2018), and with ``logits`` also ``classify(phi) : [B, n]`` (the critic must have
    been built with ``aux``)."""
    score = critic.out(phi)[:, 0] + (critic.embed(category) * phi).sum(dim=1)
    if not logits:
        return score
    if critic.classify is None:
        raise ModelError("this critic has no category classifier (build it with aux=True)")
    return score, critic.classify(phi)


def aux_heads(config) -> int:
    """How many category classifiers a :class:`~train.config.TrainConfig` puts in each critic: none, the
    classifier of ``--aux-class`` (learns the categories of real clips), and with ``--aux-twin`` its twin
    (learns the categories of generated clips; TAC-GAN, Gong et al. 2019)."""
    return 0 if config.aux_class == 0 else 1 + int(config.aux_twin > 0)


def minibatch_stddev(x: torch.Tensor, group: int = MBSTD_GROUP) -> torch.Tensor:
    """``x : [B, C, *S]`` -> ``[B, C + 1, *S]``: one more channel holding, for every clip, the mean standard
    deviation of the features across its group of ``group`` consecutive clips. Groups are consecutive so
    that a batch made of ``cat([real, fake])`` never mixes real and generated clips in one group (both
    halves have a size divisible by the group, which :func:`group_size` ensures)."""
    b = x.shape[0]
    g = group_size(b, group)
    if g < 2:
        return torch.cat([x, torch.zeros_like(x[:, :1])], dim=1)
    y = x.reshape(b // g, g, *x.shape[1:]).float()  # [B/g, g, C, *S]
    sd = torch.sqrt(y.var(dim=1, unbiased=False) + 1e-8).mean(dim=tuple(range(1, y.dim() - 1)), keepdim=True)  # [B/g, 1, ...]
    sd = sd.to(x.dtype).repeat_interleave(g, dim=0).expand(b, 1, *x.shape[2:])
    return torch.cat([x, sd], dim=1)


def group_size(batch: int, group: int = MBSTD_GROUP) -> int:
    """The largest divisor of ``batch`` that is at most ``group``."""
    for g in range(min(group, batch), 0, -1):
        if batch % g == 0:
            return g
    return 1


class SpectralCritic(nn.Module):
    """``audio : [B, T]``, ``category : [B, n]`` -> ``score : [B]``, judged on the log-magnitude STFT.

    The log-magnitude STFT (:func:`log_spectrogram`) is ``[B, n_fft/2, frames]``. Frequency bins are the channels of a 1-D
    convolution stack over time -- absolute frequency matters to a gesture, so nothing is shared across
    it -- with four stride-2 layers, ``4 * width`` channels wide, then the minibatch-stddev channel
    (optionally), one more convolution, global average pooling and a projection head like WaveGAN's.
    On the 2-core CPU this costs about a fifth of a 2-D convolution stack over the same image."""

    def __init__(self, n_categories: int, n_fft: int, width: int = 16, mbstd: bool = False, aux: int = 0) -> None:
        super().__init__()
        if n_fft < 64 or n_fft & (n_fft - 1):
            raise ModelError(f"spectral critic resolutions must be powers of 2 >= 64, got {n_fft}")
        self.n_fft, self.hop = n_fft, n_fft // 4
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.mbstd = mbstd
        c = 4 * width
        chans = [n_fft // 2, c, c, 2 * c, 2 * c]
        self.convs = nn.ModuleList(nn.Conv1d(chans[i], chans[i + 1], 5, stride=2, padding=2) for i in range(4))
        self.final = nn.Conv1d(chans[-1] + int(mbstd), chans[-1], 3, padding=1)
        self.out = nn.Linear(chans[-1], 1)
        self.embed = nn.Linear(n_categories, chans[-1], bias=False)
        self.classify = nn.Linear(chans[-1], n_categories * int(aux)) if aux else None  # aux heads side by side

    def image(self, audio: torch.Tensor) -> torch.Tensor:
        """``[B, T]`` -> ``[B, n_fft/2, frames]``, roughly in [-2.3, 0.3] (:func:`log_spectrogram`)."""
        return log_spectrogram(audio, self.n_fft, self.window)

    def forward(self, audio: torch.Tensor, category: torch.Tensor, logits: bool = False):
        x = self.image(audio).to(audio.dtype)
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)  # n_fft 256, 16384 samples: [B,128,257] -> [B,64,129] -> [B,64,65] -> [B,128,33] -> [B,128,17]
        if self.mbstd:
            x = minibatch_stddev(x)
        phi = F.leaky_relu(self.final(x), 0.2).mean(dim=2)  # [B, 8*width]
        return critic_head(self, phi, category, logits)


class CriticSet(nn.Module):
    """The architecture's critic (``main``: WaveGAN's on samples, SpecGAN's on its images) and the
    spectral critics on the waveform: ``forward(x, category) -> [n_critics, B]``. The spectral critics
    need waveforms, so they exist only for WaveGAN (the trainer refuses the combination otherwise)."""

    def __init__(self, main: nn.Module, spectral: list[SpectralCritic] | None = None) -> None:
        super().__init__()
        self.main = main
        self.spectral = nn.ModuleList(spectral or [])

    @property
    def names(self) -> list[str]:
        return ["main"] + [f"stft{c.n_fft}" for c in self.spectral]

    @property
    def aux(self) -> int:
        """How many category classifiers each critic has side by side (0, 1, or 2 with the twin)."""
        head = self.main.classify
        return 0 if head is None else head.out_features // self.main.embed.in_features

    def forward(self, x: torch.Tensor, category: torch.Tensor, logits: bool = False):
        """``[n_critics, B]`` scores; with ``logits`` (critics built with ``aux``) also ``[n_critics, B, aux * n]``
        category logits: each critic's classifier, then its twin's (:func:`aux_heads`)."""
        if not logits:
            return torch.stack([self.main(x, category)] + [c(x, category) for c in self.spectral])
        both = [self.main(x, category, True)] + [c(x, category, True) for c in self.spectral]
        return torch.stack([s for s, _ in both]), torch.stack([lg for _, lg in both])
