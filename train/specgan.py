"""SpecGAN (Donahue et al. 2019, sec. 4), category-conditioned: a DCGAN-style 2-D generator and critic over
the dataset cache's normalised log-magnitude images.

``view="128"``: 128x128 images (128 bins x 128 frames of a 16384-sample clip), 5 layers of kernel 5 /
stride 2, as in the paper. ``view="64"``: the composer's 2x2-averaged 64x64 images, 4 layers. The
images are per-bin standardised, clipped at 3 sigma and scaled to [-1, 1] (``train.spectral``); the
waveform comes back through ``train.stft.SpecToAudio`` (de-normalisation + Griffin-Lim).

Conditioning is the same as WaveGAN's (see ``train.wavegan``): category weights concatenated to the
latent and added as a per-layer channel bias in the generator; a projection critic.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .config import VIEW_SIZES
from .critics import critic_head, minibatch_stddev
from .errors import ModelError

KERNEL = 5


def specgan_channels(d: int, view: str) -> list[int]:
    """Channels entering each generator layer, then the output's 1. 128: ``[16d, 8d, 4d, 2d, d, 1]``;
    64: ``[8d, 4d, 2d, d, 1]``."""
    if view not in VIEW_SIZES:
        raise ModelError(f"SpecGAN view must be '128' or '64', got {view!r}")
    n = 5 if view == "128" else 4
    return [d * 2 ** (n - 1 - i) for i in range(n)] + [1]


class SpecGANGenerator(nn.Module):
    """``z : [B, latent_dim]``, ``category : [B, n_categories]`` -> ``image : [B, S, S]`` in [-1, 1]."""

    def __init__(self, n_categories: int, view: str = "128", latent_dim: int = 100, d: int = 64) -> None:
        super().__init__()
        chans = specgan_channels(d, view)
        self.n_categories, self.latent_dim, self.view = n_categories, latent_dim, view
        self.size = VIEW_SIZES[view]
        self.c0 = chans[0]
        self.dense = nn.Linear(latent_dim + n_categories, 16 * chans[0])  # [B, 100+n] -> [B, 4*4*16d]
        # out = 2(L-1) - 2*2 + 5 + 1 = 2L
        self.ups = nn.ModuleList(nn.ConvTranspose2d(chans[i], chans[i + 1], KERNEL, 2, padding=2, output_padding=1)
                                 for i in range(len(chans) - 1))
        self.cond = nn.ModuleList(nn.Linear(n_categories, c, bias=False) for c in chans[:-1])

    def forward(self, z: torch.Tensor, category: torch.Tensor) -> torch.Tensor:
        x = self.dense(torch.cat([z, category], dim=1)).view(z.shape[0], self.c0, 4, 4)  # [B, 16d, 4, 4]
        for i, up in enumerate(self.ups):
            x = F.relu(x + self.cond[i](category)[:, :, None, None])
            x = up(x)  # 128: [B,1024,4,4] -> [B,512,8,8] -> [B,256,16,16] -> [B,128,32,32] -> [B,64,64,64] -> [B,1,128,128] (d=64)
        return torch.tanh(x)[:, 0]  # [B, S, S]


class SpecGANDiscriminator(nn.Module):
    """Projection critic: ``image : [B, S, S]``, ``category : [B, n_categories]`` -> ``score : [B]`` (with
    ``aux``, also category logits, as :class:`~train.wavegan.WaveGANDiscriminator`)."""

    def __init__(self, n_categories: int, view: str = "128", d: int = 64, mbstd: bool = False, aux: int = 0) -> None:
        super().__init__()
        chans = specgan_channels(d, view)[::-1]  # 128: [1, d, 2d, 4d, 8d, 16d]
        self.convs = nn.ModuleList(nn.Conv2d(chans[i], chans[i + 1], KERNEL, 2, padding=2) for i in range(len(chans) - 1))
        self.mbstd = mbstd
        self.features = (chans[-1] + int(mbstd)) * 16
        self.out = nn.Linear(self.features, 1)
        self.embed = nn.Linear(n_categories, self.features, bias=False)
        self.classify = nn.Linear(self.features, n_categories * int(aux)) if aux else None  # aux heads side by side

    def forward(self, image: torch.Tensor, category: torch.Tensor, logits: bool = False):
        x = image[:, None]  # [B, 1, 128, 128]
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)  # [B,64,64,64] -> [B,128,32,32] -> [B,256,16,16] -> [B,512,8,8] -> [B,1024,4,4]
        if self.mbstd:
            x = minibatch_stddev(x)  # [B, 16d + 1, 4, 4]
        phi = x.flatten(1)  # [B, 16*16d]
        return critic_head(self, phi, category, logits)  # [B]
