"""Training configuration: one frozen dataclass, built from the command line, saved as ``config.json`` in
the run folder and inside every checkpoint. Defaults are the paper's (WGAN-GP, lambda 10, Adam 1e-4,
betas (0.5, 0.9), 5 critic steps per generator step, batch 64)."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

# Named here, not in the model modules, so building the command line does not import torch.
ARCHITECTURES = ("wavegan", "specgan")
UPSAMPLE_MODES = ("transpose", "nearest", "subpixel")
VIEW_SIZES = {"128": 128, "64": 64}

# The fields that define the networks' shapes: a resumed run must agree on them.
MODEL_FIELDS = ("arch", "model_dim", "latent_dim", "upsample", "post_filter_taps", "phase_shuffle", "view", "unconditional")


@dataclass(frozen=True)
class TrainConfig:
    cache: str
    out: str
    arch: str = "wavegan"
    model_dim: int = 64
    latent_dim: int = 100
    upsample: str = "transpose"
    post_filter_taps: int = 0
    phase_shuffle: int = 2
    view: str = "128"
    griffin_lim_iters: int = 32
    unconditional: bool = False
    batch_size: int = 64
    lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.9
    n_critic: int = 5
    gp_lambda: float = 10.0
    steps: int = 100_000
    sampling: str = "balanced"
    device: str = "auto"
    bf16: str = "auto"
    compile: bool = False
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    preview_every: int = 1000
    preview_latents: int = 4
    log_every: int = 20
    seed: int = 0
    progress: bool = True
    inject_nan_at: int = -1  # tests only: make the critic loss NaN once at this step

    def __post_init__(self) -> None:
        checks = [
            (self.arch in ARCHITECTURES, "arch", f"one of {', '.join(ARCHITECTURES)}"),
            (self.upsample in UPSAMPLE_MODES, "upsample", f"one of {', '.join(UPSAMPLE_MODES)}"),
            (self.view in VIEW_SIZES, "view", "'128' or '64'"),
            (self.sampling in ("balanced", "uniform"), "sampling", "'balanced' or 'uniform'"),
            (self.bf16 in ("auto", "on", "off"), "bf16", "'auto', 'on' or 'off'"),
            (self.batch_size >= 1, "batch_size", ">= 1"),
            (self.n_critic >= 1, "n_critic", ">= 1"),
            (self.steps >= 0, "steps", ">= 0"),
            (self.lr > 0, "lr", "> 0"),
            (self.model_dim >= 1, "model_dim", ">= 1"),
            (self.checkpoint_every >= 1, "checkpoint_every", ">= 1"),
            (self.keep_checkpoints >= 1, "keep_checkpoints", ">= 1"),
            (self.preview_every >= 0, "preview_every", ">= 0 (0 turns previews off)"),
            (self.griffin_lim_iters >= 0, "griffin_lim_iters", ">= 0"),
            (self.phase_shuffle >= 0, "phase_shuffle", ">= 0"),
        ]
        for ok, name, allowed in checks:
            if not ok:
                raise ValueError(f"{name} must be {allowed}, got {getattr(self, name)!r}")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def model_differences(self, other: "TrainConfig") -> list[str]:
        """``name: ours vs theirs`` for every network-shaping field that differs."""
        return [f"{k}: {getattr(other, k)!r} vs {getattr(self, k)!r}" for k in MODEL_FIELDS if getattr(self, k) != getattr(other, k)]

    def with_(self, **changes) -> "TrainConfig":
        return replace(self, **changes)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``gesturegan train`` options; every field of :class:`TrainConfig`."""
    d = TrainConfig(cache="", out="")
    p.add_argument("cache", type=Path, help="dataset cache made by 'gesturegan dataset build'")
    p.add_argument("--out", "-o", type=Path, required=True, help="run folder: checkpoints, previews, config.json; re-running resumes from it")
    m = p.add_argument_group("model")
    m.add_argument("--arch", choices=ARCHITECTURES, default=d.arch, help="wavegan (waveform) or specgan (spectrogram + Griffin-Lim)")
    m.add_argument("--model-dim", "-d", type=int, default=d.model_dim, help="model size d (64 in the paper; 32 for small or CPU runs)")
    m.add_argument("--latent-dim", type=int, default=d.latent_dim, help="latent size (default 100)")
    m.add_argument("--upsample", choices=UPSAMPLE_MODES, default=d.upsample, help="WaveGAN upsampling (default transpose)")
    m.add_argument("--post-filter-taps", type=int, default=d.post_filter_taps, help="WaveGAN learned post-processing filter length, e.g. 512 (default 0: off)")
    m.add_argument("--phase-shuffle", type=int, default=d.phase_shuffle, help="WaveGAN critic phase-shuffle radius (default 2; 0 off)")
    m.add_argument("--view", choices=tuple(VIEW_SIZES), default=d.view, help="SpecGAN image size: 128 (paper) or 64 (2x2-averaged)")
    m.add_argument("--griffin-lim-iters", type=int, default=d.griffin_lim_iters, help="SpecGAN phase reconstruction iterations (default 32)")
    m.add_argument("--unconditional", action="store_true", help="ignore categories: one plain model of all the data")
    o = p.add_argument_group("optimisation (WGAN-GP)")
    o.add_argument("--batch-size", "-b", type=int, default=d.batch_size, help="global batch size (default 64)")
    o.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate (default 1e-4)")
    o.add_argument("--beta1", type=float, default=d.beta1)
    o.add_argument("--beta2", type=float, default=d.beta2)
    o.add_argument("--n-critic", type=int, default=d.n_critic, help="critic steps per generator step (default 5)")
    o.add_argument("--gp-lambda", type=float, default=d.gp_lambda, help="gradient penalty weight (default 10)")
    o.add_argument("--steps", type=int, default=d.steps, help="generator steps to train to (default 100000); raise it and re-run to continue")
    o.add_argument("--sampling", choices=("balanced", "uniform"), default=d.sampling,
                   help="balanced: every category equally often (default); uniform: every clip equally often")
    o.add_argument("--seed", type=int, default=d.seed)
    r = p.add_argument_group("runtime")
    r.add_argument("--device", default=d.device, help="auto (CUDA if present, else CPU), cpu, cuda, cuda:1 ...")
    r.add_argument("--bf16", choices=("auto", "on", "off"), default=d.bf16, help="bf16 autocast (auto: on for CUDA)")
    r.add_argument("--compile", action="store_true", help="torch.compile the generator and the critic's forward")
    r.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every, help="steps between checkpoints (default 1000)")
    r.add_argument("--keep-checkpoints", type=int, default=d.keep_checkpoints, help="how many recent checkpoints to keep besides the best (default 3)")
    r.add_argument("--preview-every", type=int, default=d.preview_every, help="steps between WAV/PNG previews (default 1000; 0 off)")
    r.add_argument("--preview-latents", type=int, default=d.preview_latents, help="fixed latents per category in previews (default 4)")
    r.add_argument("--log-every", type=int, default=d.log_every, help="steps between loss log lines/TensorBoard points (default 20)")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    r.add_argument("--inject-nan-at", type=int, default=-1, help=argparse.SUPPRESS)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    names = {f.name for f in fields(TrainConfig)}
    values = {k: v for k, v in vars(args).items() if k in names}
    values["cache"], values["out"] = str(args.cache), str(args.out)
    values["progress"] = not args.quiet
    return TrainConfig(**values)
