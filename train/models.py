"""What a trained model *is*, independent of how it was trained: the architecture's hyper-parameters
(:class:`ModelSpec`), the generator and critic built from them, the "latent + category in, waveform out"
:class:`Synthesizer` that previews, evaluation and export all use, and the transform that turns real
clips into what the critic sees.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .config import ARCHITECTURES, PARTIALS, UPSAMPLE_MODES, VIEW_SIZES
from .critics import CriticSet, SpectralCritic
from .errors import ModelError
from .specgan import SpecGANDiscriminator, SpecGANGenerator
from .spectral import CLIP_NSTD
from .stft import DFTConv, SpecToAudio, log_magnitude
from .wavegan import WaveGANDiscriminator, WaveGANGenerator, wavegan_strides


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a generator, saved in every checkpoint and in exported metadata."""

    architecture: str
    categories: tuple[str, ...]
    sample_rate: int
    n_samples: int
    latent_dim: int = 100
    model_dim: int = 64
    upsample: str = "transpose"  # WaveGAN
    post_filter_taps: int = 0  # WaveGAN
    conditioning: str = "bias"  # WaveGAN: "bias" or "film"
    envelope: bool = False  # WaveGAN: a learned amplitude envelope multiplies the output
    oscillators: int = 0  # WaveGAN: a bank of this many sinusoidal oscillators adds partials (0 = none)
    noise_level: bool = False  # WaveGAN, with oscillators: a learned gain on the upsampling layers' output
    partials: str = "free"  # WaveGAN, with oscillators: "bounded" or "softmax" (train.oscillators)
    debuzz: int = 0  # WaveGAN: periods of the fixed notch comb at fs/16's multiples (train.debuzz; 0 = off)
    phase_shuffle: int = 2  # WaveGAN critic
    view: str = "128"  # SpecGAN
    griffin_lim_iters: int = 32  # SpecGAN

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ModelError(f"architecture must be one of {', '.join(ARCHITECTURES)}, got {self.architecture!r}")
        if not self.categories:
            raise ModelError("a model needs at least one category")
        if self.latent_dim < 1 or self.model_dim < 1:
            raise ModelError(f"latent_dim and model_dim must be >= 1, got {self.latent_dim} and {self.model_dim}")
        if self.architecture == "wavegan":
            wavegan_strides(self.n_samples)  # raises with the fix
            if self.upsample not in UPSAMPLE_MODES:
                raise ModelError(f"upsample must be one of {', '.join(UPSAMPLE_MODES)}, got {self.upsample!r}")
            if self.conditioning not in ("bias", "film"):
                raise ModelError(f"conditioning must be 'bias' or 'film', got {self.conditioning!r}")
            if self.oscillators < 0:
                raise ModelError(f"oscillators must be 0 (off) or >= 1, got {self.oscillators}")
            if self.noise_level and not self.oscillators:
                raise ModelError("noise_level needs oscillators: it scales the upsampling layers' output against their partials")
            if self.partials not in PARTIALS:
                raise ModelError(f"partials must be one of {', '.join(PARTIALS)}, got {self.partials!r}")
            if self.debuzz and (self.debuzz < 3 or self.debuzz % 2 == 0):
                raise ModelError(f"debuzz must be 0 (off) or an odd number of periods >= 3 (e.g. 129), got {self.debuzz}")
        else:
            if self.n_samples != 16384:
                raise ModelError(f"SpecGAN works on 16384-sample clips (128x128 spectrograms), the cache has {self.n_samples}; "
                                 "rebuild the cache with --clip-samples 16384 or train --arch wavegan")
            if self.view not in VIEW_SIZES:
                raise ModelError(f"SpecGAN view must be '128' or '64', got {self.view!r}")
            if self.debuzz:
                raise ModelError(f"debuzz={self.debuzz} on SpecGAN: the notch comb filters WaveGAN's waveform")

    @classmethod
    def for_config(cls, config, categories: tuple[str, ...], sample_rate: int, n_samples: int) -> "ModelSpec":
        """The spec a :class:`~train.config.TrainConfig` builds: its values for every field both have."""
        given = {f.name: getattr(config, f.name) for f in fields(cls) if hasattr(config, f.name)}
        return cls(config.arch, tuple(categories), sample_rate, n_samples, **given)

    @property
    def n_categories(self) -> int:
        return len(self.categories)

    def to_json(self) -> dict:
        d = asdict(self)
        d["categories"] = list(self.categories)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "ModelSpec":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ModelError(f"model spec has fields this version does not know: {', '.join(sorted(unknown))}; upgrade GestureGAN")
        return cls(**{**d, "categories": tuple(d["categories"])})

    def describe(self) -> str:
        if self.architecture == "wavegan":
            extra = (f"upsample={self.upsample}" + (f", post filter {self.post_filter_taps} taps" if self.post_filter_taps else "")
                     + (f", {self.conditioning} conditioning" if self.conditioning != "bias" else "")
                     + (", envelope" if self.envelope else "") + (f", {self.oscillators} oscillators" if self.oscillators else "")
                     + (", noise level" if self.noise_level else "")
                     + (f", {self.partials} partials" if self.partials != "free" else "")
                     + (f", debuzz comb {self.debuzz} periods" if self.debuzz else ""))
        else:
            extra = f"{self.view}x{self.view}, Griffin-Lim {self.griffin_lim_iters} iterations"
        return (f"{self.architecture} d={self.model_dim}, {self.n_samples} samples at {self.sample_rate} Hz, {extra}, "
                f"categories: {', '.join(self.categories)}")


def build_generator(spec: ModelSpec) -> nn.Module:
    if spec.architecture == "wavegan":
        return WaveGANGenerator(spec.n_categories, spec.n_samples, spec.latent_dim, spec.model_dim, spec.upsample, spec.post_filter_taps,
                                spec.conditioning, spec.envelope, spec.oscillators, spec.noise_level, spec.partials,
                                spec.debuzz)
    return SpecGANGenerator(spec.n_categories, spec.view, spec.latent_dim, spec.model_dim)


def build_discriminator(spec: ModelSpec, mbstd: bool = False, aux: int = 0) -> nn.Module:
    """The architecture's own critic: WaveGAN's on samples, SpecGAN's on images; ``aux`` category
    classifiers on its features (0: none; 1: ``--aux-class``; 2: and its twin, ``--aux-twin``)."""
    if spec.architecture == "wavegan":
        return WaveGANDiscriminator(spec.n_categories, spec.n_samples, spec.model_dim, spec.phase_shuffle, mbstd, aux)
    return SpecGANDiscriminator(spec.n_categories, spec.view, spec.model_dim, mbstd, aux)


def build_critics(spec: ModelSpec, spectral_resolutions: tuple[int, ...] = (), mbstd: bool = False,
                  aux: int = 0) -> CriticSet:
    """The architecture's critic plus a :class:`~train.critics.SpectralCritic` per STFT size (WaveGAN only),
    each ``model_dim`` channels wide at its first layer."""
    if spectral_resolutions and spec.architecture != "wavegan":
        raise ModelError("spectral critics judge waveforms: they exist for WaveGAN, not SpecGAN")
    return CriticSet(build_discriminator(spec, mbstd, aux),
                     [SpectralCritic(spec.n_categories, n, spec.model_dim, mbstd, aux) for n in spectral_resolutions])


class RealTransform(nn.Module):
    """Real clips ``[B, n_samples]`` -> what the critic compares with the generator's output: the clips
    themselves for WaveGAN, normalised log-magnitude images ``[B, S, S]`` for SpecGAN (computed on the
    training device with the same DFT as the cache, normalised with the cache's per-bin statistics)."""

    def __init__(self, spec: ModelSpec, stats: tuple[np.ndarray, np.ndarray] | None) -> None:
        super().__init__()
        self.spectral = spec.architecture == "specgan"
        self.downsample = spec.view == "64"
        if self.spectral:
            if stats is None:
                raise ModelError("SpecGAN needs the dataset's spectral statistics")
            self.dft = DFTConv()
            self.register_buffer("mean", torch.tensor(stats[0], dtype=torch.float32)[None, :, None])
            self.register_buffer("std", torch.tensor(stats[1], dtype=torch.float32)[None, :, None])

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        if not self.spectral:
            return clips
        lm = log_magnitude(self.dft, clips)  # [B, 128, 128]
        if self.downsample:
            lm = F.avg_pool2d(lm[:, None], 2)[:, 0]  # [B, 64, 64]
        return torch.clamp((lm - self.mean) / self.std, -CLIP_NSTD, CLIP_NSTD) / CLIP_NSTD


class Synthesizer(nn.Module):
    """``z : [B, latent_dim]``, ``category : [B, n_categories]`` -> ``audio : [B, n_samples]`` in [-1, 1],
    whatever the architecture: the contract the exported ONNX model keeps."""

    def __init__(self, spec: ModelSpec, generator: nn.Module, stats: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        super().__init__()
        self.spec = spec
        self.generator = generator
        self.to_audio = None
        if spec.architecture == "specgan":
            if stats is None:
                raise ModelError("a SpecGAN synthesizer needs the dataset's spectral statistics")
            self.to_audio = SpecToAudio(stats[0], stats[1], spec.n_samples, spec.griffin_lim_iters)

    def forward(self, z: torch.Tensor, category: torch.Tensor) -> torch.Tensor:
        out = self.generator(z, category)
        return out if self.to_audio is None else self.to_audio(out)


def sample_latents(n: int, latent_dim: int, generator: torch.Generator | None = None, device: str | torch.device = "cpu") -> torch.Tensor:
    """``[n, latent_dim]`` uniform in [-1, 1], WaveGAN's latent distribution."""
    return (torch.rand(n, latent_dim, generator=generator) * 2 - 1).to(device)
