"""WaveGAN (Donahue, McAuley & Puckette, "Adversarial Audio Synthesis", ICLR 2019), category-conditioned.

The layer plan follows chrisdonahue/wavegan's defaults: a 100-d uniform latent, model size ``d`` (64 in
the paper, 32 for small/CPU runs), kernel 25, stride 4, ReLU, tanh out, no batch norm, phase shuffle of
radius 2 between the discriminator's layers. 16384 samples use 5 upsampling layers; 32768 add a final
stride-2 layer and 65536 a final stride-4 layer, as in the reference code.

Conditioning. The generator takes category *weights* ``[B, n_categories]`` (one-hot in training, any
convex mixture at inference). They enter linearly -- concatenated to the latent before the dense layer
and as a per-layer, per-channel bias -- so a mixture of two categories is the same mixture of their
feature offsets, which is what makes interpolation land *between* categories instead of off the data.
``conditioning="film"`` adds a per-layer, per-channel *scale* ``1 + W_l y`` (FiLM, Perez et al. 2018;
conditional normalisation without the normalisation): a category can then switch whole feature
channels on and off -- the ringing partials of a bell, the pulse of a roll -- not only shift them. Its
weights start at zero, so training starts from the bias-only model; mixtures stay linear in ``y``.

Envelope (``envelope=True``). A gesture is first of all an amplitude envelope: a hit decays, a swell
rises, a roll pulses. The plain generator can only make silence by driving every layer's output to
exactly zero -- with per-channel biases and upsampling kernels that fight it, so early models hiss
where the data is silent. The envelope head reads the third layer's input (256 steps for 16384
samples: 4 ms a step), makes one sigmoid gain per step (its logits scaled by ``ENVELOPE_RATE``), interpolates it linearly to the output rate
and multiplies the waveform by it: silence is a gain near 0, an attack a jump of the gain, and the
upsampling layers are left to make the sound inside the envelope.

Oscillators (``oscillators=N``). The upsampling layers make noise easily and pitch hardly: a steady
partial is a pattern every layer must keep in phase for thousands of samples. The data is mostly
pitched (plucks, bells, bowed notes, drones). The oscillator bank gives the generator partials
directly: N sinusoids at fixed frequencies, log-spaced from 0.0025 to 0.45 of the sample rate (40 Hz
to 7.2 kHz at 16 kHz), whose amplitudes the generator sets every 4 ms (from the same features as the
envelope), added to the waveform before the tanh. Each oscillator has a quadrature pair of amplitudes,
so it can start at any phase and glide off its grid frequency by turning that pair; amplitudes are
linear in the weights, so their gradients are as tame as any layer's (a learnt *frequency* would not
be: gradients through ``sin(2 pi f t)`` swing with ``t``). The synthesis is an overlap-add of Hann
grains at 50%, phase-continuous across grains: fixed rotation tables, one matrix product with fixed
windowed-sinusoid kernels and two slices (:class:`train.oscillators.OscillatorBank`), so it exports to ONNX as it is.

Noise level (``noise_level=True``, with oscillators). A pitched note needs the upsampling layers'
output quiet under its partials, and that output is noise until five layers learn otherwise. A second
sigmoid gain, read like the envelope, scales that output before the partials are added, so a frame
can be partials, noise, or any mix of them (the harmonic-plus-noise split of spectral modelling
synthesis, Serra & Smith 1990, and DDSP, Engel et al. 2020), while the envelope still shapes both.

The discriminator is a projection discriminator (Miyato & Koyama, ICLR 2018): ``D(x, y) = psi(phi(x)) +
<E y, phi(x)>``. We chose it over an auxiliary classifier because it is part of the critic's value, so
it sits inside WGAN-GP's Lipschitz penalty unchanged; AC-GAN's extra classification loss pulls the
generator towards the easiest-to-classify sounds and costs diversity (Miyato & Koyama, sec. 4).
With one category the conditioning is a constant bias: that is the plain, unconditional model.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .config import UPSAMPLE_MODES
from .critics import critic_head, minibatch_stddev
from .debuzz import Debuzz
from .errors import ModelError
from .oscillators import OscillatorBank

KERNEL = 25
ENVELOPE_LAYER = 2  # the envelope head reads the input of upsampling layer 2: 256 steps for every clip length
# The head's logits are scaled up: silence (-60 dB) is a logit of -7, and Adam moves a weight by about the
# learning rate a step (2e-4: 0.56 in a 2,800-step run), so unscaled the head could not get a tail quiet
# in time -- triggers stayed at 0-22% while every other category was learnt. x8 is an 8x learning rate for it.
ENVELOPE_RATE = 8.0


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
    (the same work as transpose; ICNR-initialised, so it starts without checkerboard tones);
    ``tied``: subpixel with one bias per output channel instead of one per channel and phase. With a
    bias per phase, the phases' biases drift apart as they train and the layer adds, to every clip,
    a constant pattern that repeats every ``stride`` samples: a steady tone at multiples of its input
    rate, whatever the latent asks for, loudest where the ReLUs pass silence. Tied, silence in is a
    constant out (the phases' weights can still treat a signal differently, as any subpixel layer's can).
    ``balanced``: tied, and every phase's filter has the same DC gain, for every pair of channels (the
    weights are reparametrised in the forward pass: each phase's taps are shifted by the same amount per
    tap so their sums equal the phases' mean). A ReLU layer's output has a large mean, and phases whose
    filters sum differently turn that mean into a pattern every ``stride`` samples: the learnt buzz at
    multiples of the layer's input rate that tied biases alone leave (+16 dB over the data in run F).
    Balanced, a constant in is a constant out, whatever the weights learn; a signal still meets each
    phase's own filter (what lets the layer make high frequencies at all).
    ``smooth``: subpixel followed by a fixed box filter ``stride`` samples long. A layer's checkerboard
    is a pattern that repeats every ``stride`` output samples, i.e. tones at multiples of the layer's
    *input* rate; the box filter's nulls fall exactly on those frequencies, so the tones cannot be made
    however the weights train (subpixel starts tone-free but learns them: +41 dB after 750 steps of the
    laptop recipe). The cost is one tiny depthwise filter a layer, and a gentle high-frequency tilt
    the next layer's convolution can undo.
    """

    def __init__(self, c_in: int, c_out: int, stride: int, mode: str = "transpose") -> None:
        super().__init__()
        if mode not in UPSAMPLE_MODES:
            raise ModelError(f"upsample mode must be one of {', '.join(UPSAMPLE_MODES)}, got {mode!r}")
        self.mode, self.stride, self.c_out = mode, stride, c_out
        self.bias = None  # tied mode's shared bias (every other mode's bias is its convolution's)
        if mode == "transpose":
            # out = s(L-1) - 2p + K + op = sL  <=>  2p - op = K - s
            pad = (KERNEL - stride + 1) // 2
            self.conv = nn.ConvTranspose1d(c_in, c_out, KERNEL, stride, padding=pad, output_padding=2 * pad - KERNEL + stride)
        elif mode == "nearest":
            self.conv = nn.Conv1d(c_in, c_out, KERNEL, padding=KERNEL // 2)
        else:  # subpixel, tied, balanced, smooth
            # a kernel of K/stride taps at the low rate spans the same output time as K taps after it, so
            # the layer costs what the transposed conv costs (K=25 taps here would be 4x the work)
            k = (KERNEL // stride) | 1  # odd: 7 for stride 4, 13 for stride 2
            self.conv = nn.Conv1d(c_in, c_out * stride, k, padding=k // 2, bias=mode not in ("tied", "balanced"))
            if mode in ("tied", "balanced"):  # the bias after the shuffle: one per output channel, the same for every phase
                self.bias = nn.Parameter(torch.empty(c_out).uniform_(-1 / math.sqrt(c_in * k), 1 / math.sqrt(c_in * k)))
            # ICNR initialisation (Aitken et al. 2017): every sub-sample phase starts with the same
            # filter, so at initialisation this is nearest-neighbour upsampling and has no checkerboard
            with torch.no_grad():
                w = self.conv.weight.view(c_out, stride, c_in, k)
                w.copy_(w[:, :1].expand_as(w).clone())
                if self.conv.bias is not None:
                    b = self.conv.bias.view(c_out, stride)
                    b.copy_(b[:, :1].expand_as(b).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "transpose":
            return self.conv(x)
        if self.mode == "nearest":
            return self.conv(F.interpolate(x, scale_factor=self.stride, mode="nearest"))
        if self.mode == "balanced":
            y = F.conv1d(x, balanced_weight(self.conv.weight, self.c_out, self.stride), None, padding=self.conv.padding)
        else:
            y = self.conv(x)  # [B, C*s, L]
        b, _, length = y.shape
        # [B, C, s, L] -> [B, C, L, s] -> [B, C, L*s]: sub-sample j of step t comes from channel block j
        y = y.reshape(b, self.c_out, self.stride, length).transpose(2, 3).reshape(b, self.c_out, length * self.stride)
        if self.bias is not None:
            y = y + self.bias[:, None]
        if self.mode == "smooth":
            s = self.stride
            # box filter of s taps, "same" length (explicit padding so it exports): nulls at multiples of fs_out / s
            y = F.avg_pool1d(F.pad(y, ((s - 1) // 2, s // 2), mode="replicate"), s, stride=1)
        return y


def balanced_weight(weight: torch.Tensor, c_out: int, stride: int) -> torch.Tensor:
    """A sub-pixel layer's ``[c_out * stride, c_in, k]`` weights with every phase's DC gain (the sum of its
    taps) moved to the mean over the phases, per output and input channel (``balanced`` mode)."""
    w = weight.view(c_out, stride, weight.shape[1], weight.shape[2])
    dc = w.sum(dim=3, keepdim=True)
    return (w - (dc - dc.mean(dim=1, keepdim=True)) / w.shape[3]).reshape(weight.shape)


@torch.no_grad()
def bake_balanced(module: nn.Module) -> int:
    """Fold every ``balanced`` layer's reparametrisation into its stored weights and make it the ``tied``
    layer that computes the same function, in place; returns how many layers changed. For export: the
    graph then holds the weights themselves (named, so ``--half`` stores them as fp16) instead of
    computing them from the raw ones (a folded constant, which stayed float32)."""
    n = 0
    for up in module.modules():
        if isinstance(up, Upsample1d) and up.mode == "balanced":
            up.conv.weight.copy_(balanced_weight(up.conv.weight, up.c_out, up.stride))
            up.mode = "tied"
            n += 1
    return n


class WaveGANGenerator(nn.Module):
    """``z : [B, latent_dim]``, ``category : [B, n_categories]`` -> ``audio : [B, n_samples]`` in [-1, 1]."""

    def __init__(self, n_categories: int, n_samples: int = 16384, latent_dim: int = 100, d: int = 64,
                 upsample: str = "transpose", post_filter_taps: int = 0, conditioning: str = "bias", envelope: bool = False,
                 oscillators: int = 0, noise_level: bool = False, partials: str = "free", debuzz: int = 0) -> None:
        super().__init__()
        strides = wavegan_strides(n_samples)
        chans = wavegan_channels(d, len(strides))
        self.n_categories, self.n_samples, self.latent_dim = n_categories, n_samples, latent_dim
        self.c0 = chans[0]
        self.dense = nn.Linear(latent_dim + n_categories, 16 * chans[0])  # [B, 100+n] -> [B, 16*16d]
        self.ups = nn.ModuleList(Upsample1d(chans[i], chans[i + 1], s, upsample) for i, s in enumerate(strides))
        # per-layer category bias for every hidden activation (not the tanh output)
        self.cond = nn.ModuleList(nn.Linear(n_categories, c, bias=False) for c in chans[:-1])
        if conditioning not in ("bias", "film"):
            raise ModelError(f"conditioning must be 'bias' or 'film', got {conditioning!r}")
        self.cond_scale = None
        if conditioning == "film":
            self.cond_scale = nn.ModuleList(nn.Linear(n_categories, c, bias=False) for c in chans[:-1])
            for lin in self.cond_scale:
                nn.init.zeros_(lin.weight)
        self.envelope = None
        if envelope:
            self.envelope = nn.Conv1d(chans[ENVELOPE_LAYER], 1, 5, padding=2)  # [B, 4d, 256] -> [B, 1, 256] gain logits
            nn.init.zeros_(self.envelope.weight)  # a flat gain of 0.5 at the start; the head learns the shape
            nn.init.zeros_(self.envelope.bias)
        self.oscillators = None
        if oscillators:  # reads the envelope's features: 256 steps for every clip length
            self.oscillators = OscillatorBank(chans[ENVELOPE_LAYER], oscillators, n_samples, 16 * 4**ENVELOPE_LAYER, partials)
        self.noise_level = None
        if noise_level:
            if not oscillators:
                raise ModelError("noise_level scales the upsampling layers' output against the oscillators' partials: it needs oscillators")
            self.noise_level = nn.Conv1d(chans[ENVELOPE_LAYER], 1, 5, padding=2)  # [B, 4d, 256] -> [B, 1, 256] gain logits
            nn.init.zeros_(self.noise_level.weight)
            nn.init.zeros_(self.noise_level.bias)
        self.post = None
        if post_filter_taps:
            if post_filter_taps < 2:
                raise ModelError(f"post_filter_taps must be 0 (off) or >= 2, got {post_filter_taps}")
            # the reference code's learned post-processing FIR, to remove the transposed convs' tones
            self.post = nn.Conv1d(1, 1, post_filter_taps, bias=False)
        self.debuzz = None if not debuzz else Debuzz(debuzz, n_samples)  # no weights: see train.debuzz

    def forward(self, z: torch.Tensor, category: torch.Tensor) -> torch.Tensor:
        x = self.dense(torch.cat([z, category], dim=1))  # [B, 16*16d]
        x = x.view(z.shape[0], self.c0, 16)  # [B, 16d, 16]
        gain = partials = level = None
        for i, up in enumerate(self.ups):
            if self.cond_scale is not None:
                x = x * (1 + self.cond_scale[i](category)[:, :, None])
            x = F.relu(x + self.cond[i](category)[:, :, None])
            if i == ENVELOPE_LAYER:  # the heads that shape the whole clip read these 256 steps
                gain = None if self.envelope is None else torch.sigmoid(ENVELOPE_RATE * self.envelope(x))  # [B, 1, 256]
                level = None if self.noise_level is None else torch.sigmoid(ENVELOPE_RATE * self.noise_level(x))  # [B, 1, 256]
                partials = None if self.oscillators is None else self.oscillators(x)  # [B, 1, n_samples]
            x = up(x)  # 16384: [B,1024,16] -> [B,512,64] -> [B,256,256] -> [B,128,1024] -> [B,64,4096] -> [B,1,16384] (d=64)
        if self.post is not None:
            taps = self.post.kernel_size[0]
            x = self.post(F.pad(x, ((taps - 1) // 2, taps // 2)))  # "same" length, explicit so it exports
        if level is not None:
            x = x * _to_output_rate(level, x.shape[-1])
        if partials is not None:
            x = x + partials
        y = torch.tanh(x)
        if self.debuzz is not None:
            # after the tanh, which puts k kHz content back (the bundled model's fs/16 excess over the neighbouring
            # bins: +0.3 dB over the data's with the comb before the tanh, 10.5 dB under it here), and before the
            # envelope's gain, so a hit's faint ringing at k kHz (the comb's 64 ms either side) stays inside the
            # envelope: put after the gain the excess was 33 dB under, but a trigger's silence after its hit
            # carried the ring (-64 dBFS after a -10 dBFS hit)
            y = self.debuzz(y)
        if gain is not None:
            y = y * _to_output_rate(gain, y.shape[-1])
        if self.debuzz is not None:
            y = y.clamp(-1.0, 1.0)  # the contract's range (the bundled model peaked at 0.60: a no-op in practice)
        return y[:, 0]  # [B, n_samples]


def _to_output_rate(gain: torch.Tensor, n_samples: int) -> torch.Tensor:
    """A gain at 256 steps, ``[B, 1, 256]``, interpolated linearly to ``[B, 1, n_samples]``."""
    return F.interpolate(gain, size=n_samples, mode="linear", align_corners=False)


def kaiming_init(g: WaveGANGenerator, cond_gain: float = 0.1) -> None:
    """Re-initialise a generator so its output depends on the latent from the first step.

    With PyTorch's default initialisation every layer shrinks the signal (about 0.4x a ReLU layer) while
    the per-layer category biases are added at full size; after five layers the output hardly depends on
    the latent at all (log-spectrogram spread across latents 0.0004, across categories 0.0018, d=16), and
    training starts from one sound per category. He/Kaiming-normal weights (gain for ReLU), zero biases
    and category weights scaled by ``cond_gain`` put the latent back in charge (spread 0.021 across
    latents, 0.013 across categories). Sub-pixel layers keep their ICNR symmetry."""
    with torch.no_grad():
        nn.init.kaiming_normal_(g.dense.weight, nonlinearity="relu")
        nn.init.zeros_(g.dense.bias)
        for up in g.ups:
            nn.init.kaiming_normal_(up.conv.weight, nonlinearity="relu")
            for bias in (up.conv.bias, up.bias):
                if bias is not None:
                    nn.init.zeros_(bias)
            if up.mode in ("subpixel", "tied", "balanced", "smooth"):
                w = up.conv.weight.view(up.c_out, up.stride, up.conv.in_channels, -1)
                w.copy_(w[:, :1].expand_as(w).clone())
        for lin in g.cond:
            lin.weight.mul_(cond_gain)


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
    """Projection critic: ``audio : [B, n_samples]``, ``category : [B, n_categories]`` -> ``score : [B]``;
    with ``aux`` it also has a category classifier on the same features (``logits=True``: ``(score,
    logits : [B, n_categories])``, see :func:`train.losses.aux_class_loss`)."""

    def __init__(self, n_categories: int, n_samples: int = 16384, d: int = 64, phase_shuffle_radius: int = 2,
                 mbstd: bool = False, aux: int = 0) -> None:
        super().__init__()
        strides = wavegan_strides(n_samples)
        n = len(strides)
        top = 16 if n == 5 else 32
        chans = [1] + [d * top // (2 ** (n - 1 - i)) for i in range(n)]  # 16384: [1, d, 2d, 4d, 8d, 16d]
        self.radius = phase_shuffle_radius
        self.convs = nn.ModuleList(
            nn.Conv1d(chans[i], chans[i + 1], KERNEL, s, padding=KERNEL // 2) for i, s in enumerate(strides)
        )
        self.mbstd = mbstd
        self.features = (chans[-1] + int(mbstd)) * 16
        self.out = nn.Linear(self.features, 1)
        self.embed = nn.Linear(n_categories, self.features, bias=False)  # projection: <E y, phi(x)>
        self.classify = nn.Linear(self.features, n_categories * int(aux)) if aux else None  # aux heads side by side

    def forward(self, audio: torch.Tensor, category: torch.Tensor, logits: bool = False):
        x = audio[:, None, :]  # [B, 1, 16384]
        for i, conv in enumerate(self.convs):
            x = F.leaky_relu(conv(x), 0.2)  # [B,64,4096] -> [B,128,1024] -> [B,256,256] -> [B,512,64] -> [B,1024,16]
            if i < len(self.convs) - 1:
                x = phase_shuffle(x, self.radius)
        if self.mbstd:
            x = minibatch_stddev(x)  # [B, 16d + 1, 16]
        phi = x.flatten(1)  # [B, 16*16d]
        return critic_head(self, phi, category, logits)  # [B]
