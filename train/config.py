"""Training configuration: one frozen dataclass, built from the command line, saved as ``config.json`` in
the run folder and inside every checkpoint.

A *recipe* is a named set of defaults for the options that decide how a model learns (``--recipe``);
any option given on the command line overrides its recipe's value, and the final values are what is
saved. ``paper`` is Donahue et al.'s WGAN-GP (lambda 10, Adam 1e-4, betas (0.5, 0.9), 5 critic steps
per generator step, batch 64, d=64) and the dataclass defaults; ``laptop`` is the recipe that learns the
gesture categories in an hour on a 2-core CPU (its choices and their measurements are in
tests/bench/README.md, "Recipes")."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, fields
from pathlib import Path

# Named here, not in the model modules, so building the command line does not import torch.
ARCHITECTURES = ("wavegan", "specgan")
UPSAMPLE_MODES = ("transpose", "nearest", "subpixel", "tied", "balanced", "smooth")
PARTIALS = ("free", "bounded", "softmax")  # WaveGAN oscillator bank: amplitudes as made, softly limited, or a distribution
VIEW_SIZES = {"128": 128, "64": 64}

LOSSES = ("wgan-gp", "hinge", "ns")  # implemented by train.losses; named here so the command line needs no torch
AUGMENTS = ("shift", "gain", "polarity")
SPREAD_BANDS = ("linear", "mel")  # --spread-bands: the rows of spread matching's spectrogram view
# which generator weights evaluate/export take (train.checkpoint.generator_weights); named here so the command line needs no torch
WEIGHTS = ("auto", "ema", "raw")
WEIGHTS_HELP = "the generator's moving average (a run trained with --ema) or its raw weights (auto: the average where there is one)"
DEBUZZ_HELP = ("WaveGAN: put the fixed notch comb at fs/16's multiples on the generator, averaging PERIODS periods (e.g. 129), "
               "or take it off (0), whatever the run was trained with (default: as trained)")

# The fields that define the networks' shapes: a resumed run must agree on them.
MODEL_FIELDS = ("arch", "model_dim", "latent_dim", "upsample", "post_filter_taps", "phase_shuffle", "view", "unconditional",
                "spectral_critics", "mbstd", "conditioning", "envelope", "oscillators", "noise_level",
                "partials", "debuzz")
# The fields that define how the networks learn: a resumed run must agree on them too.
RECIPE_FIELDS = ("recipe", "loss", "n_critic", "gp_lambda", "r1_gamma", "r1_every", "augment", "mode_seeking", "mode_seeking_from", "init",
                 "spread", "spread_from", "spread_bands", "mean_match", "aux_class", "aux_confidence", "aux_twin", "aux_twin_until", "line_penalty",
                 "line_scope", "fake_batches")

RECIPES: dict[str, dict] = {
    "paper": {},  # the dataclass defaults
    "laptop": {
        "model_dim": 16, "upsample": "subpixel", "conditioning": "film", "envelope": True, "batch_size": 32,
        "loss": "ns", "n_critic": 1, "r1_gamma": 1.0, "r1_every": 16, "lr": 2e-4, "beta1": 0.5, "beta2": 0.99,
        "augment": "shift,gain,polarity", "spectral_critics": "256,1024", "mbstd": True, "ema": 0.998,
        "steps": 2000, "checkpoint_every": 400, "preview_every": 400,
    },
}


@dataclass(frozen=True)
class TrainConfig:
    cache: str
    out: str
    recipe: str = "paper"
    arch: str = "wavegan"
    model_dim: int = 64
    latent_dim: int = 100
    upsample: str = "transpose"
    post_filter_taps: int = 0
    phase_shuffle: int = 2
    view: str = "128"
    griffin_lim_iters: int = 32
    unconditional: bool = False
    conditioning: str = "bias"  # generator: "bias" (per-layer category bias) or "film" (per-layer scale and bias)
    envelope: bool = False  # WaveGAN generator: a learned amplitude envelope multiplies the output
    oscillators: int = 0  # WaveGAN generator: a bank of this many sinusoidal oscillators adds partials (0 = off)
    noise_level: bool = False  # WaveGAN generator, with oscillators: a learned gain on the upsampling layers' noise
    partials: str = "free"  # WaveGAN generator, with oscillators: "bounded"/"softmax" keep the partials in the tanh's range
    debuzz: int = 0  # WaveGAN generator: a fixed notch comb at fs/16's multiples, averaging this many periods (0 = off)
    spectral_critics: str = "none"  # WaveGAN: STFT resolutions of extra critics, e.g. "256,1024"
    mbstd: bool = False  # minibatch standard deviation before the critics' heads
    batch_size: int = 64
    lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.9
    loss: str = "wgan-gp"
    n_critic: int = 5
    gp_lambda: float = 10.0
    r1_gamma: float = 0.0  # hinge and ns: R1 weight (0 = off)
    r1_every: int = 16  # lazy R1: every this many critic updates
    augment: str = "none"  # WaveGAN: "shift,gain,polarity", any subset, or "none"
    mode_seeking: float = 0.0  # weight of the mode-seeking term against conditional collapse (0 = off)
    mode_seeking_from: int = 0  # the step it starts at (0: from the first), so the categories are learnt first
    spread: float = 0.0  # weight of spread matching: each category's clips as varied as the data's, no more (0 = off)
    spread_from: int = 0  # the step it starts at (0: from the first)
    spread_bands: str = "linear"  # its spectrogram view's rows: 32 equal slices of the bins, or 32 mel bands
    mean_match: float = 0.0  # weight of mean matching: each category's mean envelope and spectrogram the data's (0 = off)
    aux_class: float = 0.0  # weight of the critics' category classifiers (AC-GAN, trained on real clips; 0 = off)
    aux_confidence: float = 0.0  # the generator's classifier reward stops at this probability of the category (0 = never)
    aux_twin: float = 0.0  # with aux_class: weight of the twin classifiers (trained on generated clips) the generator must confuse (TAC-GAN)
    aux_twin_until: int = 0  # the step the twins' reward to the generator stops at (0: never), once spread matching holds the spread
    fake_batches: str = "sorted"  # generator-step categories in category order like real batches ("drawn": the old order)
    line_penalty: float = 0.0  # WaveGAN: weight of the penalty on spectral lines the data lacks (the upsampling buzz; 0 = off)
    line_scope: str = "batch"  # the line penalty's clips: the whole batch against all real clips, or each "category" against its own
    ema: float = 0.0  # decay of an exponential moving average of the generator's weights, kept beside them (0 = off)
    init: str = "default"  # WaveGAN generator: PyTorch's "default" initialisation or "kaiming" (see wavegan.kaiming_init)
    steps: int = 100_000
    sampling: str = "balanced"
    device: str = "auto"
    threads: int = 0  # CPU threads for torch; 0 = this process's share of the cores
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
            (self.oscillators >= 0, "oscillators", ">= 0 (0 turns the bank off)"),
            (self.debuzz == 0 or (self.debuzz >= 3 and self.debuzz % 2 == 1), "debuzz", "0 (off) or an odd number of periods >= 3 (e.g. 129)"),
            (self.checkpoint_every >= 1, "checkpoint_every", ">= 1"),
            (self.keep_checkpoints >= 1, "keep_checkpoints", ">= 1"),
            (self.preview_every >= 0, "preview_every", ">= 0 (0 turns previews off)"),
            (self.griffin_lim_iters >= 0, "griffin_lim_iters", ">= 0"),
            (self.phase_shuffle >= 0, "phase_shuffle", ">= 0"),
            (self.recipe in RECIPES, "recipe", f"one of {', '.join(RECIPES)}"),
            (self.loss in LOSSES, "loss", f"one of {', '.join(LOSSES)}"),
            (self.conditioning in ("bias", "film"), "conditioning", "'bias' or 'film'"),
            (self.r1_gamma >= 0, "r1_gamma", ">= 0"),
            (self.r1_every >= 1, "r1_every", ">= 1"),
            (self.mode_seeking >= 0, "mode_seeking", ">= 0 (0 turns it off)"),
            (self.mode_seeking_from >= 0, "mode_seeking_from", ">= 0 (a step)"),
            (self.spread >= 0, "spread", ">= 0 (0 turns it off)"),
            (self.spread_from >= 0, "spread_from", ">= 0 (a step)"),
            (self.spread_bands in SPREAD_BANDS, "spread_bands", f"one of {', '.join(SPREAD_BANDS)}"),
            (self.mean_match >= 0, "mean_match", ">= 0 (0 turns it off)"),
            (self.aux_class >= 0, "aux_class", ">= 0 (0 turns it off)"),
            (0 <= self.aux_confidence < 1, "aux_confidence", "in [0, 1) (0: the reward never stops), e.g. 0.9"),
            (self.aux_twin >= 0, "aux_twin", ">= 0 (0 turns it off)"),
            (self.aux_twin_until >= 0, "aux_twin_until", ">= 0 (a step; 0: the reward never stops)"),
            (self.line_penalty >= 0, "line_penalty", ">= 0 (0 turns it off)"),
            (self.fake_batches in ("sorted", "drawn"), "fake_batches", "'sorted' or 'drawn'"),
            (self.line_scope in ("batch", "category"), "line_scope", "'batch' or 'category'"),
            (self.init in ("default", "kaiming"), "init", "'default' or 'kaiming'"),
            (self.ema == 0 or 0.5 <= self.ema < 1, "ema", "0 (off) or a decay in [0.5, 1), e.g. 0.998"),
            (self.threads >= 0, "threads", ">= 0 (0: this process's share of the cores)"),
        ]
        for ok, name, allowed in checks:
            if not ok:
                raise ValueError(f"{name} must be {allowed}, got {getattr(self, name)!r}")
        self.augment_names  # noqa: B018 -- parses, raising on unknown names
        self.spectral_resolutions  # noqa: B018
        self._check_combinations()

    def _check_combinations(self) -> None:
        """Options that each make sense but not together: refused with the combination named."""
        if self.loss == "wgan-gp" and self.r1_gamma > 0:
            raise ValueError(f"--r1-gamma {self.r1_gamma:g} with --loss wgan-gp: R1 regularises the hinge and ns losses; "
                             "WGAN-GP has its own gradient penalty (--gp-lambda). Use --loss ns or hinge, or --r1-gamma 0")
        if self.unconditional and self.aux_class > 0:
            raise ValueError(f"--aux-class {self.aux_class:g} with --unconditional: there are no categories to classify; "
                             "use --aux-class 0, or train with categories")
        if self.mode_seeking_from > 0 and self.mode_seeking == 0:
            raise ValueError(f"--mode-seeking-from {self.mode_seeking_from} with --mode-seeking 0: there is no term to start; "
                             "add --mode-seeking W, or leave --mode-seeking-from out")
        if self.spread_from > 0 and self.spread == 0:
            raise ValueError(f"--spread-from {self.spread_from} with --spread 0: there is no term to start; "
                             "add --spread W, or leave --spread-from out")
        if self.spread_bands != "linear" and self.spread == 0 and self.mean_match == 0:
            raise ValueError(f"--spread-bands {self.spread_bands} with --spread 0 and --mean-match 0: there is no spread or mean "
                             "matching to measure; add --spread W or --mean-match W, or leave --spread-bands out")
        if self.aux_confidence > 0 and self.aux_class == 0:
            raise ValueError(f"--aux-confidence {self.aux_confidence:g} with --aux-class 0: there is no classifier to be "
                             "confident; add --aux-class W, or use --aux-confidence 0")
        if self.aux_twin > 0 and self.aux_class == 0:
            raise ValueError(f"--aux-twin {self.aux_twin:g} with --aux-class 0: the twin classifiers balance the critics' "
                             "category classifiers; add --aux-class W, or use --aux-twin 0")
        if self.aux_twin_until > 0 and self.aux_twin == 0:
            raise ValueError(f"--aux-twin-until {self.aux_twin_until} with --aux-twin 0: there is no twins' reward to stop; "
                             "add --aux-twin W (with --aux-class), or leave --aux-twin-until out")
        if self.line_scope == "category" and self.line_penalty == 0:
            raise ValueError("--line-scope category with --line-penalty 0: there is no line penalty to scope; "
                             "add --line-penalty W, or leave --line-scope out")
        if self.line_scope == "category" and self.unconditional:
            raise ValueError("--line-scope category with --unconditional: the model has no categories to compare; "
                             "use --line-scope batch")
        if self.arch == "specgan" and self.line_penalty > 0:
            raise ValueError(f"--line-penalty {self.line_penalty:g} with --arch specgan: the penalty is on the waveform "
                             "generator's upsampling buzz and SpecGAN makes spectrograms; use --line-penalty 0, or --arch wavegan")
        if self.arch == "specgan" and self.spectral_critics != "none":
            raise ValueError(f"--spectral-critics {self.spectral_critics} with --arch specgan: SpecGAN's critic already judges "
                             "spectrograms and the extra critics need waveforms; use --spectral-critics none, or --arch wavegan")
        if self.arch == "specgan" and self.augment_names:
            raise ValueError(f"--augment {self.augment} with --arch specgan: the augmentations transform waveforms and SpecGAN's "
                             "critic sees spectrogram images; use --augment none, or --arch wavegan")
        if self.arch == "specgan" and self.conditioning != "bias":
            raise ValueError(f"--conditioning {self.conditioning} with --arch specgan: FiLM conditioning is WaveGAN's; "
                             "use --conditioning bias")
        if self.arch == "specgan" and self.init != "default":
            raise ValueError(f"--init {self.init} with --arch specgan: the initialisation is WaveGAN's; use --init default")
        if self.arch == "specgan" and self.oscillators:
            raise ValueError(f"--oscillators {self.oscillators} with --arch specgan: the oscillator bank is WaveGAN's; use --oscillators 0")
        if self.noise_level and not self.oscillators:
            raise ValueError("--noise-level on without --oscillators: it sets the upsampling layers' level against the "
                             "oscillators' partials; add --oscillators N (e.g. 128), or use --noise-level off")
        if self.partials != "free" and not self.oscillators:
            raise ValueError(f"--partials {self.partials} without --oscillators: it limits the oscillators' amplitudes; "
                             "add --oscillators N (e.g. 128), or leave --partials free")
        if self.arch == "specgan" and self.debuzz:
            raise ValueError(f"--debuzz {self.debuzz} with --arch specgan: the notch comb filters WaveGAN's waveform; use --debuzz 0")
        if self.arch == "specgan" and self.envelope:
            raise ValueError("--envelope on with --arch specgan: the envelope head is WaveGAN's; use --envelope off")
        if self.upsample != "transpose" and self.arch == "specgan":
            raise ValueError(f"--upsample {self.upsample} with --arch specgan: the upsampling modes are WaveGAN's")

    @property
    def augment_names(self) -> tuple[str, ...]:
        text = self.augment.strip()
        if text in ("", "none"):
            return ()
        names = tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
        bad = [n for n in names if n not in AUGMENTS]
        if bad:
            raise ValueError(f"augment must be 'none' or a comma list of {', '.join(AUGMENTS)}, got {self.augment!r}")
        return names

    @property
    def spectral_resolutions(self) -> tuple[int, ...]:
        text = self.spectral_critics.strip()
        if text in ("", "none"):
            return ()
        try:
            sizes = tuple(int(s) for s in text.split(",") if s.strip())
        except ValueError:
            sizes = ()
        if not sizes or any(n < 64 or n > 4096 or n & (n - 1) for n in sizes) or len(set(sizes)) != len(sizes):
            raise ValueError(f"spectral_critics must be 'none' or distinct powers of 2 from 64 to 4096, e.g. '256,1024', "
                             f"got {self.spectral_critics!r}")
        return sizes

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def model_differences(self, other: "TrainConfig") -> list[str]:
        """``name: ours vs theirs`` for every network-shaping or recipe field that differs."""
        return [f"{k}: {getattr(other, k)!r} vs {getattr(self, k)!r}" for k in MODEL_FIELDS + RECIPE_FIELDS
                if getattr(self, k) != getattr(other, k)]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``gesturegan train`` options; every field of :class:`TrainConfig`. Options a recipe sets have no
    argparse default (None): :func:`config_from_args` fills them from ``--recipe``."""
    d = TrainConfig(cache="", out="")
    b = argparse.SUPPRESS  # keeps "not given" apart from "given the default value"
    p.add_argument("cache", type=Path, help="dataset cache made by 'gesturegan dataset build'")
    p.add_argument("--out", "-o", type=Path, required=True, help="run folder: checkpoints, previews, config.json; re-running resumes from it")
    p.add_argument("--recipe", choices=tuple(RECIPES), default=d.recipe,
                   help="defaults for how the model learns: paper (WGAN-GP as in Donahue et al., the default) or laptop "
                        "(learns the categories in an hour on a 2-core CPU); any option below overrides its recipe's value")
    m = p.add_argument_group("model")
    m.add_argument("--arch", choices=ARCHITECTURES, default=b, help="wavegan (waveform) or specgan (spectrogram + Griffin-Lim)")
    m.add_argument("--model-dim", "-d", type=int, default=b, help="model size d (64 in the paper; laptop: 16)")
    m.add_argument("--latent-dim", type=int, default=b, help="latent size (default 100)")
    m.add_argument("--upsample", choices=UPSAMPLE_MODES, default=b, help="WaveGAN upsampling (paper: transpose; laptop: subpixel; tied: subpixel with one bias a channel, so no layer can "
                        "add a pattern that repeats every stride samples; balanced: tied, and every phase's filter sums to the same "
                        "DC gain, so a layer's mean cannot become one either; smooth: tone-free by construction, but starved of highs in our runs)")
    m.add_argument("--post-filter-taps", type=int, default=b, help="WaveGAN learned post-processing filter length, e.g. 512 (default 0: off)")
    m.add_argument("--phase-shuffle", type=int, default=b, help="WaveGAN critic phase-shuffle radius (default 2; 0 off)")
    m.add_argument("--view", choices=tuple(VIEW_SIZES), default=b, help="SpecGAN image size: 128 (paper) or 64 (2x2-averaged)")
    m.add_argument("--griffin-lim-iters", type=int, default=b, help="SpecGAN phase reconstruction iterations (default 32)")
    m.add_argument("--unconditional", action="store_true", default=b, help="ignore categories: one plain model of all the data")
    m.add_argument("--conditioning", choices=("bias", "film"), default=b,
                   help="WaveGAN generator: category as a per-layer bias (paper) or as a per-layer scale and bias (film; laptop)")
    m.add_argument("--envelope", choices=("on", "off"), default=b,
                   help="WaveGAN generator: a learned amplitude envelope (4 ms steps) multiplies the output (laptop: on)")
    m.add_argument("--oscillators", type=int, default=b, metavar="N",
                   help="WaveGAN generator: N sinusoidal oscillators (40 Hz to 7.2 kHz at 16 kHz) whose amplitudes it sets every "
                        "4 ms, added to its waveform: partials it need not build from the upsampling layers (default 0: off)")
    m.add_argument("--noise-level", choices=("on", "off"), default=b,
                   help="WaveGAN generator, with --oscillators: a learned gain (4 ms steps) on the upsampling layers' output, "
                        "so a frame can be partials, noise or a mix (default off)")
    m.add_argument("--partials", choices=PARTIALS, default=b,
                   help="WaveGAN generator, with --oscillators: 'bounded' limits each 4 ms frame's amplitudes softly so the "
                        "partials cannot drive the output's tanh into clipping (broadband noise); 'softmax' makes each frame a "
                        "loudness below 1 shared out over the oscillators (DDSP's harmonic distribution: a few partials are "
                        "as cheap as many); default free")
    m.add_argument("--debuzz", type=int, default=b, metavar="PERIODS",
                   help="WaveGAN generator: a fixed, zero-phase comb of notches at the multiples of fs/16 (where the upsampling "
                        "layers put their buzz), averaging PERIODS periods of 16 samples (odd): 129 makes each notch 20 Hz wide "
                        "(default 0: off; no weights, so it can also be put on at evaluate and export)")
    m.add_argument("--spectral-critics", default=b, metavar="N,N|none",
                   help="WaveGAN: extra critics on the log-magnitude STFT at these FFT sizes (laptop: 256,1024; paper: none)")
    m.add_argument("--mbstd", choices=("on", "off"), default=b, help="minibatch standard deviation in the critics (laptop: on)")
    o = p.add_argument_group("optimisation")
    o.add_argument("--loss", choices=LOSSES, default=b, help="wgan-gp (paper), ns (non-saturating; laptop) or hinge")
    o.add_argument("--batch-size", "-b", type=int, default=b, help="global batch size (paper: 64; laptop: 32)")
    o.add_argument("--lr", type=float, default=b, help="Adam learning rate (paper: 1e-4; laptop: 2e-4)")
    o.add_argument("--beta1", type=float, default=b)
    o.add_argument("--beta2", type=float, default=b)
    o.add_argument("--n-critic", type=int, default=b, help="critic steps per generator step (paper: 5; laptop: 1)")
    o.add_argument("--gp-lambda", type=float, default=b, help="wgan-gp: gradient penalty weight (default 10)")
    o.add_argument("--r1-gamma", type=float, default=b, help="ns/hinge: R1 penalty weight on real clips (laptop: 1; 0 off)")
    o.add_argument("--r1-every", type=int, default=b, help="ns/hinge: lazy R1, every this many critic steps (default 16)")
    o.add_argument("--augment", default=b, metavar="LIST|none",
                   help="WaveGAN: random shift,gain,polarity on real and generated clips before the critics (laptop: all three)")
    o.add_argument("--init", choices=("default", "kaiming"), default=b,
                   help="WaveGAN generator's initial weights: PyTorch's default, or Kaiming so the latent matters from step 1")
    o.add_argument("--mode-seeking", type=float, default=b,
                   help="weight of the mode-seeking term: latents that differ make clips that differ (default 0: off)")
    o.add_argument("--mode-seeking-from", type=int, default=b, metavar="STEP",
                   help="start the mode-seeking term at this step, once the categories are learnt (default 0: from the first)")
    o.add_argument("--spread", type=float, default=b, metavar="W",
                   help="weight of spread matching: each category's generated clips pushed apart (envelope and "
                        "spectrogram) until they are as varied as the data's, and no further (default 0: off)")
    o.add_argument("--spread-from", type=int, default=b, metavar="STEP",
                   help="start spread matching at this step, once the categories are learnt (default 0: from the first)")
    o.add_argument("--spread-bands", choices=SPREAD_BANDS, default=b,
                   help="spread matching's spectrogram view: 32 equal slices of n_fft 256's bins (linear, the default) or "
                        "32 mel bands of n_fft 512's, fine enough below 250 Hz to tell pitches apart (mel)")
    o.add_argument("--mean-match", type=float, default=b, metavar="W",
                   help="weight of mean matching: each category's mean envelope and spectrogram pulled to the data's (L1; default 0: off)")
    o.add_argument("--aux-class", type=float, default=b,
                   help="weight of a category classifier in each critic, trained on real clips, that the generator "
                        "must convince (AC-GAN; default 0: off)")
    o.add_argument("--aux-confidence", type=float, default=b, metavar="P",
                   help="with --aux-class: a clip stops earning the classifiers' reward once they give its category "
                        "probability P, e.g. 0.9, so the generator is not pushed on to one sure clip a category (default 0: never)")
    o.add_argument("--aux-twin", type=float, default=b, metavar="W",
                   help="with --aux-class: a twin classifier in each critic learns the categories of generated clips, and "
                        "the generator is rewarded (weight W) for clips it cannot tell apart more than real ones are "
                        "(TAC-GAN: keeps each category as varied as the data; default 0: off)")
    o.add_argument("--aux-twin-until", type=int, default=b, metavar="STEP",
                   help="with --aux-twin: stop the twins' reward at this step, once the categories are learnt and spread "
                        "matching holds the spread: the reward is paid in clips a classifier is unsure of, which is what "
                        "the inception score counts (default 0: never stops); the twins themselves keep learning")
    o.add_argument("--line-penalty", type=float, default=b, metavar="W",
                   help="WaveGAN: weight of a penalty on spectral lines every generated clip has and the data lacks "
                        "(the upsampling layers' buzz at fixed frequencies; default 0: off)")
    o.add_argument("--line-scope", choices=("batch", "category"), default=b,
                   help="with --line-penalty: compare the whole batch's lines with all real clips' (default), or each "
                        "category's generated clips with that category's real clips, so a tone only one category makes "
                        "is not thinned by the others")
    o.add_argument("--fake-batches", choices=("sorted", "drawn"), default=b,
                   help="the generator step's categories: sorted, so the critics' minibatch-stddev groups hold one "
                        "category as in the critic step (default), or drawn in any order (before 2026-12-02: how the "
                        "bundled model was made)")
    o.add_argument("--ema", type=float, default=b, metavar="DECAY",
                   help="keep an exponential moving average of the generator's weights (laptop: 0.998; paper: 0, off); "
                        "previews, evaluate and export then use the average (evaluate/export --weights raw for the live ones)")
    o.add_argument("--steps", type=int, default=b, help="generator steps to train to (paper: 100000; laptop: 2000); raise it and re-run to continue")
    o.add_argument("--sampling", choices=("balanced", "uniform"), default=b,
                   help="balanced: every category equally often (default); uniform: every clip equally often")
    o.add_argument("--seed", type=int, default=b)
    r = p.add_argument_group("runtime")
    r.add_argument("--device", default=b, help="auto (CUDA if present, else CPU), cpu, cuda, cuda:1 ...")
    r.add_argument("--threads", type=int, default=b, help="CPU threads for torch (default 0: this process's share of the cores)")
    r.add_argument("--bf16", choices=("auto", "on", "off"), default=b, help="bf16 autocast (auto: on for CUDA)")
    r.add_argument("--compile", action="store_true", default=b, help="torch.compile the generator and the critic's forward")
    r.add_argument("--checkpoint-every", type=int, default=b, help="steps between checkpoints (paper: 1000; laptop: 400)")
    r.add_argument("--keep-checkpoints", type=int, default=b, help="how many recent checkpoints to keep besides the best (default 3)")
    r.add_argument("--preview-every", type=int, default=b, help="steps between WAV/PNG previews (paper: 1000; laptop: 400; 0 off)")
    r.add_argument("--preview-latents", type=int, default=b, help="fixed latents per category in previews (default 4)")
    r.add_argument("--log-every", type=int, default=b, help="steps between loss log lines/TensorBoard points (default 20)")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    r.add_argument("--inject-nan-at", type=int, default=b, help=argparse.SUPPRESS)


# Recipe values that only WaveGAN has: a recipe applied to --arch specgan leaves them at the defaults.
WAVEGAN_ONLY = ("upsample", "conditioning", "envelope", "spectral_critics", "augment", "post_filter_taps", "init", "debuzz")


def resolve_config(cache: str, out: str, recipe: str = "paper", **given) -> TrainConfig:
    """The recipe's values, then what was given explicitly: the final config."""
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {', '.join(RECIPES)}, got {recipe!r}")
    values = dict(RECIPES[recipe])
    if given.get("arch", values.get("arch", "wavegan")) == "specgan":
        values = {k: v for k, v in values.items() if k not in WAVEGAN_ONLY}
    return TrainConfig(cache=cache, out=out, recipe=recipe, **{**values, **given})


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    names = {f.name for f in fields(TrainConfig)} - {"cache", "out", "recipe", "progress"}
    given = {k: v for k, v in vars(args).items() if k in names}
    for flag in ("mbstd", "envelope", "noise_level"):
        if flag in given:
            given[flag] = given[flag] == "on"
    return resolve_config(str(args.cache), str(args.out), args.recipe, progress=not args.quiet, **given)
