"""WaveGAN (Donahue, McAuley & Puckette, "Adversarial Audio Synthesis", ICLR 2019), category-conditioned.

The layer plan follows chrisdonahue/wavegan's defaults: a 100-d uniform latent, model size ``d`` (64 in
the paper, 32 for small/CPU runs), kernel 25, stride 4, ReLU, tanh out, no batch norm, phase shuffle of
radius 2 between the discriminator's layers. 16384 samples use 5 upsampling layers; 32768 add a final
stride-2 layer and 65536 a final stride-4 layer, as in the reference code.

Conditioning. The generator takes category *weights* ``[B, n_categories]`` (one-hot in training, any
convex mixture at inference). They enter linearly -- concatenated to the latent before the dense layer
and as a per-layer, per-channel bias -- so a mixture of two categories is the same mixture of their
feature offsets, which is what makes interpolation land *between* categories instead of off the data.
The discriminator is a projection discriminator (Miyato & Koyama, ICLR 2018): ``D(x, y) = psi(phi(x)) +
<E y, phi(x)>``. We chose it over an auxiliary classifier because it is part of the critic's value, so
it sits inside WGAN-GP's Lipschitz penalty unchanged; AC-GAN's extra classification loss pulls the
generator towards the easiest-to-classify sounds and costs diversity (Miyato & Koyama, sec. 4).
With one category the conditioning is a constant bias: that is the plain, unconditional model.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .config import UPSAMPLE_MODES
from .errors import ModelError

KERNEL = 25


def wavegan_strides(n_samples: int) -> list[int]:
    """Upsampling strides from the 16-step dense output to ``n_samples`` (16384, 32768 or 65536)."""
    if n_samples == 16384:
        return [4, 4, 4, 4, 4]
    if n_samples == 32768:
        return [4, 4, 4, 4, 4, 2]
    if n_samples == 65536:
        return [4, 4, 4, 4, 4, 4]
    raise ModelError(f"WaveGAN makes 16384, 32768 or 65536 samples, got n_samples={n_samples}; "
                     "rebuild the dataset cache with --clip-samples 16384 (or 32768, 65536)")


def wavegan_channels(d: int, n_layers: int) -> list[int]:
    """Channel counts entering each upsampling layer, then the output's 1.

    16384: ``[16d, 8d, 4d, 2d, d, 1]``; the longer models start at 32d, as in the reference code.
    """
    top = 16 if n_layers == 5 else 32
    chans = [d * top // (2**i) for i in range(n_layers)]
    return chans + [1]


class Upsample1d(nn.Module):
    """One generator layer that multiplies the length by ``stride``: ``[B, C_in, L] -> [B, C_out, L*stride]``.

    ``transpose``: ConvTranspose1d (the paper's; fast, prone to checkerboard/"buzz" artefacts at the
    stride's harmonics); ``nearest``: nearest-neighbour repeat then Conv1d (smoother, 4x the conv work);
    ``subpixel``: Conv1d (``K/stride`` taps) to ``C_out*stride`` channels then a 1-D pixel shuffle
    (the same work as transpose; ICNR-initialised, so it starts without checkerboard tones).
    """

    def __init__(self, c_in: int, c_out: int, stride: int, mode: str = "transpose") -> None:
        super().__init__()
        if mode not in UPSAMPLE_MODES:
            raise ModelError(f"upsample mode must be one of {', '.join(UPSAMPLE_MODES)}, got {mode!r}")
        self.mode, self.stride, self.c_out = mode, stride, c_out
        if mode == "transpose":
            # out = s(L-1) - 2p + K + op = sL  <=>  2p - op = K - s
            pad = (KERNEL - stride + 1) // 2
            self.conv = nn.ConvTranspose1d(c_in, c_out, KERNEL, stride, padding=pad, output_padding=2 * pad - KERNEL + stride)
        elif mode == "nearest":
            self.conv = nn.Conv1d(c_in, c_out, KERNEL, padding=KERNEL // 2)
        else:
            # a kernel of K/stride taps at the low rate spans the same output time as K taps after it, so
            # the layer costs what the transposed conv costs (K=25 taps here would be 4x the work)
            k = (KERNEL // stride) | 1  # odd: 7 for stride 4, 13 for stride 2
            self.conv = nn.Conv1d(c_in, c_out * stride, k, padding=k // 2)
            # ICNR initialisation (Aitken et al. 2017): every sub-sample phase starts with the same
            # filter, so at initialisation this is nearest-neighbour upsampling and has no checkerboard
            with torch.no_grad():
                w = self.conv.weight.view(c_out, stride, c_in, k)
                w.copy_(w[:, :1].expand_as(w).clone())
                b = self.conv.bias.view(c_out, stride)
                b.copy_(b[:, :1].expand_as(b).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "transpose":
            return self.conv(x)
        if self.mode == "nearest":
            return self.conv(F.interpolate(x, scale_factor=self.stride, mode="nearest"))
        y = self.conv(x)  # [B, C*s, L]
        b, _, length = y.shape
        # [B, C, s, L] -> [B, C, L, s] -> [B, C, L*s]: sub-sample j of step t comes from channel block j
        return y.reshape(b, self.c_out, self.stride, length).transpose(2, 3).reshape(b, self.c_out, length * self.stride)


class WaveGANGenerator(nn.Module):
    """``z : [B, latent_dim]``, ``category : [B, n_categories]`` -> ``audio : [B, n_samples]`` in [-1, 1]."""

    def __init__(self, n_categories: int, n_samples: int = 16384, latent_dim: int = 100, d: int = 64,
                 upsample: str = "transpose", post_filter_taps: int = 0) -> None:
        super().__init__()
        strides = wavegan_strides(n_samples)
        chans = wavegan_channels(d, len(strides))
        self.n_categories, self.n_samples, self.latent_dim = n_categories, n_samples, latent_dim
        self.c0 = chans[0]
        self.dense = nn.Linear(latent_dim + n_categories, 16 * chans[0])  # [B, 100+n] -> [B, 16*16d]
        self.ups = nn.ModuleList(Upsample1d(chans[i], chans[i + 1], s, upsample) for i, s in enumerate(strides))
        # per-layer category bias for every hidden activation (not the tanh output)
        self.cond = nn.ModuleList(nn.Linear(n_categories, c, bias=False) for c in chans[:-1])
        self.post = None
        if post_filter_taps:
            if post_filter_taps < 2:
                raise ModelError(f"post_filter_taps must be 0 (off) or >= 2, got {post_filter_taps}")
            # the reference code's learned post-processing FIR, to remove the transposed convs' tones
            self.post = nn.Conv1d(1, 1, post_filter_taps, bias=False)

    def forward(self, z: torch.Tensor, category: torch.Tensor) -> torch.Tensor:
        x = self.dense(torch.cat([z, category], dim=1))  # [B, 16*16d]
        x = x.view(z.shape[0], self.c0, 16)  # [B, 16d, 16]
        for i, up in enumerate(self.ups):
            x = F.relu(x + self.cond[i](category)[:, :, None])
            x = up(x)  # 16384: [B,1024,16] -> [B,512,64] -> [B,256,256] -> [B,128,1024] -> [B,64,4096] -> [B,1,16384] (d=64)
        if self.post is not None:
            taps = self.post.kernel_size[0]
            x = self.post(F.pad(x, ((taps - 1) // 2, taps // 2)))  # "same" length, explicit so it exports
        return torch.tanh(x)[:, 0]  # [B, n_samples]


def phase_shuffle(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Shift each example in time by its own random offset in ``[-radius, radius]``, reflect-padding the
    edges (Donahue et al. sec. 3.3): the critic can no longer judge by the phase of periodic artefacts.
    ``x : [B, C, L]`` -> same shape."""
    if radius <= 0:
        return x
    b, c, length = x.shape
    shift = torch.randint(-radius, radius + 1, (b, 1, 1), device=x.device)
    padded = F.pad(x, (radius, radius), mode="reflect")  # [B, C, L + 2r]
    idx = torch.arange(length, device=x.device)[None, None, :] + radius - shift  # [B, 1, L]
    return padded.gather(2, idx.expand(b, c, length))


class WaveGANDiscriminator(nn.Module):
    """Projection critic: ``audio : [B, n_samples]``, ``category : [B, n_categories]`` -> ``score : [B]``."""

    def __init__(self, n_categories: int, n_samples: int = 16384, d: int = 64, phase_shuffle_radius: int = 2) -> None:
        super().__init__()
        strides = wavegan_strides(n_samples)
        n = len(strides)
        top = 16 if n == 5 else 32
        chans = [1] + [d * top // (2 ** (n - 1 - i)) for i in range(n)]  # 16384: [1, d, 2d, 4d, 8d, 16d]
        self.radius = phase_shuffle_radius
        self.convs = nn.ModuleList(
            nn.Conv1d(chans[i], chans[i + 1], KERNEL, s, padding=KERNEL // 2) for i, s in enumerate(strides)
        )
        self.features = chans[-1] * 16
        self.out = nn.Linear(self.features, 1)
        self.embed = nn.Linear(n_categories, self.features, bias=False)  # projection: <E y, phi(x)>

    def forward(self, audio: torch.Tensor, category: torch.Tensor) -> torch.Tensor:
        x = audio[:, None, :]  # [B, 1, 16384]
        for i, conv in enumerate(self.convs):
            x = F.leaky_relu(conv(x), 0.2)  # [B,64,4096] -> [B,128,1024] -> [B,256,256] -> [B,512,64] -> [B,1024,16]
            if i < len(self.convs) - 1:
                x = phase_shuffle(x, self.radius)
        phi = x.flatten(1)  # [B, 16*16d]
        return self.out(phi)[:, 0] + (self.embed(category) * phi).sum(dim=1)  # [B]
