"""The training recipes' parts, one step each: losses (WGAN-GP, hinge, non-saturating with lazy R1), the
spectral critics, minibatch stddev, FiLM conditioning, augmentation; the laptop recipe's first steps are
deterministic; options that do not fit together are refused with the combination named."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from instrument.main import main
from train import checkpoint as ckpt
from train.augment import SHIFT_FRACTION, augment_audio
from train.config import RECIPES, TrainConfig, resolve_config
from train.critics import CriticSet, SpectralCritic, aux_heads, group_size, minibatch_stddev
from train.losses import (aux_class_loss, category_line_contrast, category_line_penalty, category_means, category_spread, critic_loss,
                          generator_loss, gradient_penalty, line_contrast, line_penalty, mean_mismatch, mel_bands, r1_penalty,
                          spread_shortfall, spread_views, twin_confusion)
from train.models import ModelSpec, build_critics, build_generator
from train.previews import LossLog
from train.runtime import BatchSampler
from train.trainer import Trainer
from train.wavegan import WaveGANGenerator

from .conftest import TINY

CATS = ("trigger", "trigger_continuous", "continuous_variation", "continuous_repetition")


def _error(capsys, *argv: str) -> str:
    assert main(list(argv)) == 2
    return capsys.readouterr().err


def _params(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten().clone() for p in module.parameters()])


# -- losses -------------------------------------------------------------------------------------------


def test_losses_have_their_textbook_values():
    s_real = torch.tensor([[2.0, 0.0], [1.0, -1.0]])  # [2 critics, B=2]
    s_fake = torch.tensor([[-2.0, 0.0], [0.5, 0.5]])
    assert critic_loss("wgan-gp", s_real, s_fake) == pytest.approx((-1 - 1) + (0.5 - 0))  # per critic: mean fake - mean real
    # hinge: relu(1 - real) + relu(1 + fake), per critic, summed
    assert critic_loss("hinge", s_real, s_fake) == pytest.approx((0 + 1) / 2 + (0 + 1) / 2 + (0 + 2) / 2 + (1.5 + 1.5) / 2)
    sp = torch.nn.functional.softplus
    ns = (sp(-s_real).mean(1) + sp(s_fake).mean(1)).sum()
    assert critic_loss("ns", s_real, s_fake) == pytest.approx(float(ns))
    assert generator_loss("ns", s_fake) == pytest.approx(float(sp(-s_fake).mean(1).sum()))
    assert generator_loss("hinge", s_fake) == pytest.approx(-float(s_fake.mean(1).sum()))
    with pytest.raises(ValueError, match="loss must be one of"):
        critic_loss("lsgan", s_real, s_fake)


def test_r1_and_gradient_penalty_are_gradient_norms():
    x = torch.randn(3, 8, requires_grad=True)
    w = torch.randn(8)
    scores = torch.stack([x @ w, 2 * (x @ w)])  # two linear critics: gradients w and 2w
    assert float(r1_penalty(scores, x)) == pytest.approx(0.5 * float((3 * w).pow(2).sum()), rel=1e-5)
    gp = gradient_penalty(scores, x)
    n = float(w.norm())
    assert float(gp) == pytest.approx((n - 1) ** 2 + (2 * n - 1) ** 2, rel=1e-5)


# -- critics ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_fft", [256, 1024])
def test_spectral_critic_scores_waveforms_and_is_twice_differentiable(n_fft):
    torch.manual_seed(0)
    c = SpectralCritic(4, n_fft, width=4, mbstd=True)
    x = (torch.randn(8, 16384) * 0.1).requires_grad_(True)
    cat = torch.eye(4)[torch.arange(8) % 4]
    s = c(x, cat)
    assert s.shape == (8,) and torch.isfinite(s).all()
    r1 = r1_penalty(s[None], x)  # R1 needs the gradient of a gradient through the STFT
    r1.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    img = c.image(torch.zeros(1, 16384))
    assert img.shape[1] == n_fft // 2 and torch.allclose(img, torch.full_like(img, float(torch.log(torch.tensor(1e-4)) / 4)), atol=1e-3)
    full = c.image(torch.sin(torch.arange(16384) * 2 * torch.pi * 1000 / 16000)[None])
    assert float(full.max()) == pytest.approx(0.0, abs=0.05)  # a full-scale sine is about 0


def test_spectral_critic_uses_the_category():
    torch.manual_seed(0)
    c = SpectralCritic(2, 256, width=4)
    x = torch.randn(2, 16384) * 0.1
    assert not torch.allclose(c(x, torch.eye(2)), c(x, torch.eye(2).flip(0)))


def test_minibatch_stddev_groups_never_mix_real_and_generated():
    real = torch.randn(4, 3, 5)
    fake = torch.ones(4, 3, 5)  # a collapsed generator: every clip the same
    y = minibatch_stddev(torch.cat([real, fake]), group=4)
    assert y.shape == (8, 4, 5)
    assert torch.all(y[4:, 3] < 1e-3) and torch.all(y[:4, 3] > 0.1)
    assert group_size(6, 4) == 3 and group_size(7, 4) == 1 and group_size(2, 4) == 2
    assert torch.all(minibatch_stddev(torch.randn(1, 3, 5))[:, 3] == 0)


def test_critic_set_scores_one_row_per_critic_and_builds_for_each_architecture():
    spec = ModelSpec("wavegan", CATS, 16000, 16384, model_dim=4)
    d = build_critics(spec, (256, 1024), mbstd=True)
    assert isinstance(d, CriticSet) and d.names == ["main", "stft256", "stft1024"]
    assert d(torch.randn(4, 16384) * 0.1, torch.eye(4)).shape == (3, 4)
    spec2 = ModelSpec("specgan", CATS, 16000, 16384, model_dim=4, view="64")
    assert build_critics(spec2, (), mbstd=True)(torch.rand(4, 64, 64) * 2 - 1, torch.eye(4)).shape == (1, 4)
    with pytest.raises(ValueError, match="spectral critics judge waveforms"):
        build_critics(spec2, (256,))


def test_critics_with_aux_classify_every_clip_with_each_critic():
    spec = ModelSpec("wavegan", CATS, 16000, 16384, model_dim=4)
    d = build_critics(spec, (256,), mbstd=True, aux=True)
    x, cat = torch.randn(4, 16384) * 0.1, torch.eye(4)
    torch.manual_seed(0)  # the same phase shuffle both times
    scores, logits = d(x, cat, logits=True)
    assert d.aux and scores.shape == (2, 4) and logits.shape == (2, 4, 4)
    torch.manual_seed(0)
    assert torch.allclose(scores, d(x, cat))  # the classifier leaves the projection score as it was
    spec2 = ModelSpec("specgan", CATS, 16000, 16384, model_dim=4, view="64")
    assert build_critics(spec2, (), aux=True)(torch.rand(4, 64, 64) * 2 - 1, cat, logits=True)[1].shape == (1, 4, 4)
    with pytest.raises(ValueError, match="no category classifier"):
        build_critics(spec)(x, cat, logits=True)


def test_aux_class_loss_is_the_cross_entropy_of_each_critic_summed():
    logits = torch.tensor([[[4.0, 0.0], [0.0, 4.0]], [[0.0, 0.0], [1.0, 0.0]]])  # [2 critics, B=2, 2 categories]
    cat = torch.eye(2)
    ce = torch.nn.functional.cross_entropy
    want = ce(logits[0], torch.tensor([0, 1])) + ce(logits[1], torch.tensor([0, 1]))
    assert float(aux_class_loss(logits, cat)) == pytest.approx(float(want))
    assert float(aux_class_loss(logits[:1], cat)) < 0.05 < float(aux_class_loss(logits[1:], cat))  # right and sure vs unsure


def test_line_contrast_finds_a_tone_every_clip_has_and_not_one_that_moves():
    g = torch.Generator().manual_seed(0)
    n, sr = 16384, 16000
    t = torch.arange(n) / sr
    noise = torch.randn(32, n, generator=g) * 0.1
    buzz = noise + 0.05 * torch.sin(2 * math.pi * 1000 * t)  # the same line in every clip: the grid's buzz
    freqs = 300 + 4000 * torch.rand(32, 1, generator=g)
    partials = noise + 0.05 * torch.sin(2 * math.pi * freqs * t)  # one tone a clip, each somewhere else
    bin_1k = round(1000 * n / sr)
    c_noise, c_buzz, c_partials = line_contrast(noise), line_contrast(buzz), line_contrast(partials)
    assert c_buzz.shape == (n // 2 + 1,)
    assert float(c_buzz[bin_1k]) > 5 and abs(float(c_noise[bin_1k])) < 1  # nats
    assert float(c_partials.max()) < 2.5  # partials that move average away
    assert float(line_penalty(c_buzz, c_noise)) > 5 * float(line_penalty(c_partials, c_noise))
    assert float(line_penalty(c_noise, c_noise)) == 0.0
    fake = buzz.clone().requires_grad_(True)
    line_penalty(line_contrast(fake), c_noise).backward()
    assert fake.grad is not None and float(fake.grad.abs().sum()) > 0  # the generator can be pushed off the line


def test_the_category_line_penalty_hears_a_tone_that_only_one_category_makes():
    """A 1 kHz line in every clip of one category out of four: the batch-wide average thins it to a quarter,
    under its margin; ``--line-scope category`` compares that category with its own real clips."""
    g = torch.Generator().manual_seed(0)
    n, sr, per = 16384, 16000, 8
    t = torch.arange(n) / sr
    cat = torch.nn.functional.one_hot(torch.arange(4).repeat_interleave(per), 4).float()
    real = torch.randn(256, n, generator=g) * 0.1
    real_cat = torch.nn.functional.one_hot(torch.arange(4).repeat_interleave(64), 4).float()
    noise = torch.randn(4 * per, n, generator=g) * 0.1
    tone = noise.clone()
    tone[per : 2 * per] += 0.006 * torch.sin(2 * math.pi * 1000 * t)  # category 1 only, ~10 dB over its bin's noise
    r_mean, r_square, r_counts = category_line_contrast(real, real_cat)
    assert r_mean.shape == (4, n // 2 + 1) and r_counts.tolist() == [64.0] * 4
    f_mean, _, f_counts = category_line_contrast(tone, cat)
    assert f_counts.tolist() == [float(per)] * 4
    k = round(1000 * n / sr)
    assert float(f_mean[1, k] - r_mean[1, k]) > 2 and abs(float(f_mean[0, k] - r_mean[0, k])) < 1.5  # nats
    assert float(line_contrast(tone)[k] - line_contrast(real)[k]) < 1  # a quarter of it, batch-wide
    batch_gain = float(line_penalty(line_contrast(tone), line_contrast(real)) - line_penalty(line_contrast(noise), line_contrast(real)))
    clean = float(category_line_penalty(*category_line_contrast(noise, cat)[::2], r_mean, r_square))
    category_gain = float(category_line_penalty(f_mean, f_counts, r_mean, r_square)) - clean
    assert category_gain > 0.3 and category_gain > 4 * batch_gain and clean < 2
    # a category the batch lacks is left out, not NaN
    m, _, c = category_line_contrast(tone[: 2 * per], cat[: 2 * per])
    assert c.tolist() == [per, per, 0, 0] and torch.isnan(m[2:]).all()
    assert math.isfinite(float(category_line_penalty(m, c, r_mean, r_square)))
    fake = tone.clone().requires_grad_(True)
    category_line_penalty(category_line_contrast(fake, cat)[0], f_counts, r_mean, r_square).backward()
    at_k = torch.fft.rfft(fake.grad, dim=-1)[:, k].abs()
    assert float(at_k[per : 2 * per].min()) > 10 * float(at_k[:per].max())  # the pull at 1 kHz is on the toned clips


def test_generator_batches_come_in_category_order_like_real_ones():
    """The critics' minibatch-stddev groups are consecutive clips: a real batch comes sorted by category
    (sorted indices of a cache in category order), so the generator step's must too, or its groups mix
    categories the critics never saw mixed."""
    labels = np.repeat(np.arange(4), 50)
    s = BatchSampler(labels, 4, "balanced", np.random.default_rng(0))
    grouped = s.categories(32, labels)
    assert np.all(np.diff(grouped) >= 0) and len(set(grouped.tolist())) == 4
    assert np.all(np.diff(labels[s.indices(32)]) >= 0)  # the real batch it matches
    drawn = BatchSampler(labels, 4, "balanced", np.random.default_rng(0)).categories(32, labels, grouped=False)
    assert sorted(drawn.tolist()) == grouped.tolist() and not np.all(np.diff(drawn) >= 0)  # the same draw, unsorted


def test_aux_confidence_stops_rewarding_a_clip_once_it_is_recognised():
    # clip 0 is given its category at p = 0.98 (past 0.9), clip 1 at p = 0.5 (short of it)
    logits = torch.tensor([[[4.0, 0.0], [0.0, 0.0]]], requires_grad=True)
    cat = torch.eye(2)
    loss = aux_class_loss(logits, cat, confidence=0.9)
    ce1 = float(torch.nn.functional.cross_entropy(logits[0, 1:].detach(), torch.tensor([1])))
    assert float(loss.detach()) == pytest.approx((ce1 - math.log(1 / 0.9)) / 2)  # only clip 1's shortfall, averaged over the batch
    loss.backward()
    assert torch.all(logits.grad[0, 0] == 0) and torch.all(logits.grad[0, 1] != 0)  # the recognised clip is left alone
    assert float(aux_class_loss(logits.detach(), cat, confidence=0.0)) > float(loss.detach())  # unbounded: every clip counts


def test_twin_confusion_pays_for_clips_no_more_obvious_than_chance_and_no_further():
    # twin logits for 3 generated clips of category 0: sure (p ~ 1), unsure (uniform), and sure of the wrong category
    logits = torch.tensor([[[8.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 8.0, 0.0, 0.0]]], requires_grad=True)
    cat = torch.zeros(3, 4)
    cat[:, 0] = 1
    value = twin_confusion(logits, cat)
    chance = math.log(4)
    ce_sure = float(torch.nn.functional.cross_entropy(logits[0, :1].detach(), torch.tensor([0])))
    assert float(value.detach()) == pytest.approx((ce_sure + chance + chance) / 3, rel=1e-5)  # the wrong one capped at chance
    value.backward()
    assert torch.all(logits.grad[0, 2] == 0)  # past chance: nothing more to earn
    assert logits.grad[0, 0, 0] < 0  # the sure clip is pushed to look less surely like its category


def test_twin_classifiers_learn_generated_clips_only_and_push_the_generator_the_other_way(tiny_cache, tmp_path):
    """One critic step trains the twin heads on the generated half only; the generator's loss falls as the
    twins' cross-entropy on its clips rises (the TAC-GAN sign)."""
    cfg = resolve_config(str(tiny_cache), str(tmp_path / "r"), "laptop", model_dim=4, batch_size=4, steps=0, preview_every=0,
                         aux_class=1.0, aux_twin=1.0, progress=False)
    t = Trainer(cfg, log=lambda *a: None)
    try:
        assert t.D.aux == 2 and aux_heads(cfg) == 2 and aux_heads(resolve_config("c", "o", aux_class=1.0)) == 1
        steps = t.steps
        cat = torch.eye(t.spec.n_categories)[torch.tensor([0, 0, 1, 1])]
        z = torch.rand(4, t.spec.latent_dim) * 2 - 1
        with torch.no_grad():
            fake = t.G(z, cat)
            _, lg = t.D(fake, cat, logits=True)
        k = t.spec.n_categories
        assert lg.shape == (len(t.D.names), 4, 2 * k)
        g_out = steps.generator_step(cat)
        assert g_out is not None and math.isfinite(float(g_out["loss_g"]))
        real = fake * 0.5  # any batch: what matters is which heads the critic step trains on it
        d_out = steps.critic_step(real, cat)
        assert d_out is not None and float(d_out["aux_twin"]) > 0 and float(d_out["aux_class"]) > 0
    finally:
        t.close()


def test_the_twins_reward_stops_at_aux_twin_until_and_the_twins_keep_learning(tiny_cache, tmp_path, monkeypatch):
    """``--aux-twin-until STEP``: the generator is paid for confusing the twins before STEP and not from it on
    (its loss then is the one without the term), while the critic step still trains the twin heads."""
    cfg = resolve_config(str(tiny_cache), str(tmp_path / "r"), "laptop", model_dim=4, batch_size=4, steps=0, preview_every=0,
                         aux_class=1.0, aux_twin=1.0, aux_twin_until=5, progress=False)
    t = Trainer(cfg, log=lambda *a: None)
    paid = []
    real_confusion = twin_confusion
    monkeypatch.setattr("train.adversarial.twin_confusion", lambda *a: (paid.append(1), real_confusion(*a))[1])
    try:
        cat = torch.eye(t.spec.n_categories)[torch.tensor([0, 0, 1, 1])]
        for step in (0, 4, 5, 9):
            assert t.steps.generator_step(cat, step=step) is not None
        assert len(paid) == 2  # steps 0 and 4 only
        with torch.no_grad():
            fake = t.G(torch.rand(4, t.spec.latent_dim) * 2 - 1, cat)
        d_out = t.steps.critic_step(fake * 0.5, cat)
        assert d_out is not None and float(d_out["aux_twin"]) > 0  # the twins still learn generated clips
    finally:
        t.close()


# -- generator conditioning -------------------------------------------------------------------------


def test_film_conditioning_starts_as_the_bias_model_and_then_scales_channels():
    torch.manual_seed(0)
    film = WaveGANGenerator(4, 16384, d=4, upsample="subpixel", conditioning="film")
    torch.manual_seed(0)
    bias = WaveGANGenerator(4, 16384, d=4, upsample="subpixel")
    bias.load_state_dict({k: v for k, v in film.state_dict().items() if not k.startswith("cond_scale")})
    z, cat = torch.rand(3, 100) * 2 - 1, torch.eye(4)[:3]
    with torch.no_grad():
        assert torch.equal(film(z, cat), bias(z, cat))  # zero-initialised scales: the same model at the start
        for lin in film.cond_scale:
            lin.weight.normal_()
        assert not torch.allclose(film(z, cat), bias(z, cat))
    with pytest.raises(ValueError, match="conditioning must be 'bias' or 'film'"):
        WaveGANGenerator(4, 16384, d=4, conditioning="cross-attention")


# -- augmentation -----------------------------------------------------------------------------------


def test_augment_shifts_scales_and_flips_within_bounds_and_passes_gradients():
    torch.manual_seed(0)
    x = torch.zeros(64, 4096)
    x[:, 1000] = 0.5  # one impulse per clip: where and how big it lands shows the transforms
    xg = x.clone().requires_grad_(True)
    y = augment_audio(xg, ("shift", "gain", "polarity"))
    assert y.shape == x.shape
    pos = y.abs().argmax(dim=1) - 1000
    r = int(4096 * SHIFT_FRACTION)
    assert pos.abs().max() <= r and len(set(pos.tolist())) > 5
    peak = y.abs().amax(dim=1)
    peak = peak.detach()
    assert float(peak.min()) >= 0.5 * 10 ** (-6 / 20) - 1e-6 and float(peak.max()) <= 0.5 * 10 ** (3 / 20) + 1e-6
    signs = torch.sign(y.sum(dim=1))
    assert (signs > 0).any() and (signs < 0).any()
    y.sum().backward()
    assert xg.grad is not None and xg.grad.abs().sum() > 0
    assert augment_audio(x, ()) is x
    loud = augment_audio(torch.full((8, 256), 0.99), ("gain",))
    assert float(loud.abs().max()) <= 1.0


# -- recipes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("recipe", [
    ["--loss", "wgan-gp"],
    ["--loss", "hinge", "--r1-gamma", "1", "--r1-every", "1"],
    ["--loss", "ns", "--r1-gamma", "1", "--r1-every", "2", "--spectral-critics", "256,1024", "--mbstd", "on",
     "--augment", "shift,gain,polarity", "--conditioning", "film", "--upsample", "subpixel"],
    ["--recipe", "laptop"],
    ["--loss", "wgan-gp", "--aux-class", "1"],
    ["--recipe", "laptop", "--aux-class", "0.5", "--aux-confidence", "0.9", "--line-penalty", "0.001"],
    ["--recipe", "laptop", "--line-penalty", "0.001", "--line-scope", "category"],
    ["--recipe", "laptop", "--aux-class", "1", "--aux-twin", "1"],
    ["--loss", "wgan-gp", "--aux-class", "1", "--aux-twin", "0.5", "--arch", "specgan"],
    ["--recipe", "laptop", "--upsample", "balanced", "--oscillators", "8", "--noise-level", "on"],
    ["--recipe", "laptop", "--upsample", "balanced", "--oscillators", "8", "--partials", "bounded"],
    ["--recipe", "laptop", "--upsample", "balanced", "--oscillators", "8", "--partials", "softmax"],
    ["--recipe", "laptop", "--spread", "1"],
    ["--loss", "wgan-gp", "--arch", "specgan", "--spread", "1", "--spread-bands", "mel"],
    ["--recipe", "laptop", "--spread", "1", "--spread-bands", "mel"],
    ["--recipe", "laptop", "--mean-match", "1", "--spread-bands", "mel"],
    ["--loss", "wgan-gp", "--arch", "specgan", "--mean-match", "1", "--spread", "0.5"],
], ids=["wgan-gp", "hinge-r1", "ns-everything", "laptop", "wgan-gp-aux", "laptop-aux-lines", "laptop-category-lines", "laptop-twin", "specgan-twin",
        "laptop-oscillators", "laptop-bounded-partials", "laptop-softmax-partials", "laptop-spread", "specgan-spread-mel", "laptop-spread-mel",
        "laptop-mean-match-mel", "specgan-mean-match-spread"])
def test_one_step_of_each_recipe_trains_both_networks(tiny_cache, tmp_path, recipe):
    run = tmp_path / "run"
    assert main(["train", str(tiny_cache), "--out", str(run), *TINY, "--steps", "2", "--checkpoint-every", "1",
                 "--preview-every", "0", *recipe]) == 0
    first, last = ckpt.load(run / "ckpt-00000000.pt"), ckpt.load(run / "ckpt-00000002.pt")
    for net in ("generator", "discriminator"):
        before = torch.cat([v.flatten().float() for v in first[net].values()])
        after = torch.cat([v.flatten().float() for v in last[net].values()])
        assert torch.isfinite(after).all() and not torch.equal(before, after), net
    rows = (run / "losses.csv").read_text().splitlines()
    assert len(rows) >= 3
    aux = [r["aux_class"] for r in LossLog.read(run / "losses.csv") if not math.isnan(r["loss_d"])]
    if "--aux-class" in recipe:  # the critics' classifiers: their own parameters, trained, and logged
        assert all(math.isfinite(a) and a > 0 for a in aux) and "main.classify.weight" in last["discriminator"]
        assert not torch.equal(first["discriminator"]["main.classify.weight"], last["discriminator"]["main.classify.weight"])
    else:
        assert all(math.isnan(a) for a in aux) and not any("classify" in k for k in last["discriminator"])
    twin = [r["aux_twin"] for r in LossLog.read(run / "losses.csv") if not math.isnan(r["loss_d"])]
    n = len(json.loads((run / "config.json").read_text())["model"]["categories"])
    if "--aux-twin" in recipe:  # the twins: a second block of logits in each critic's classifier, trained on generated clips
        assert all(math.isfinite(a) and a > 0 for a in twin) and last["discriminator"]["main.classify.weight"].shape[0] == 2 * n
    else:
        assert all(math.isnan(a) for a in twin)
    lines = [r["line_penalty"] for r in LossLog.read(run / "losses.csv") if not math.isnan(r["loss_d"])]
    if "--line-penalty" in recipe:  # logged from the first generator step (the reference is the critic's real batch)
        assert lines and all(math.isfinite(v) and v >= 0 for v in lines)
    else:
        assert all(math.isnan(v) for v in lines)
    spread = [r["spread"] for r in LossLog.read(run / "losses.csv") if not math.isnan(r["loss_d"])]
    if "--spread" in recipe:  # logged from the first generator step (the reference is the critic's real batch)
        assert spread and all(math.isfinite(v) and v >= 0 for v in spread)
    else:
        assert all(math.isnan(v) for v in spread)
    matched = [r["mean_match"] for r in LossLog.read(run / "losses.csv") if not math.isnan(r["loss_d"])]
    if "--mean-match" in recipe:  # logged from the first generator step, like the spread
        assert matched and all(math.isfinite(v) and v > 0 for v in matched)
    else:
        assert all(math.isnan(v) for v in matched)
    if "--oscillators" in recipe:  # the bank's head starts silent and learns from the first step
        assert not last["generator"]["oscillators.head.weight"].eq(0).all()
        if "--noise-level" in recipe:
            assert not last["generator"]["noise_level.weight"].eq(0).all()
        spec = json.loads((run / "config.json").read_text())["model"]
        assert spec["partials"] == next((p for p in ("bounded", "softmax") if p in recipe), "free")


def test_laptop_recipe_first_steps_are_deterministic(tiny_cache, tmp_path):
    def run(out):
        cfg = resolve_config(str(tiny_cache), str(out), "laptop", model_dim=4, batch_size=4, steps=3, preview_every=0,
                             checkpoint_every=100, progress=False)
        t = Trainer(cfg, log=lambda *a: None)
        try:
            t.train()
            return _params(t.G), _params(t.D)
        finally:
            t.close()

    g1, d1 = run(tmp_path / "a")
    g2, d2 = run(tmp_path / "b")
    assert torch.equal(g1, g2) and torch.equal(d1, d2)


def test_recipe_fills_defaults_and_explicit_options_win(tiny_cache, tmp_path):
    cfg = resolve_config("c", "o", "laptop", model_dim=64)
    assert cfg.model_dim == 64 and cfg.loss == "ns" and cfg.spectral_resolutions == (256, 1024) and cfg.n_critic == 1
    assert resolve_config("c", "o").loss == "wgan-gp" and resolve_config("c", "o").n_critic == 5
    spec = resolve_config("c", "o", "laptop", arch="specgan")  # WaveGAN-only parts of the recipe stay off
    assert spec.arch == "specgan" and spec.spectral_critics == "none" and spec.augment == "none" and spec.loss == "ns"
    assert set(RECIPES) == {"paper", "laptop"}
    run = tmp_path / "run"
    assert main(["train", str(tiny_cache), "--out", str(run), "--recipe", "laptop", *TINY, "--steps", "1", "--preview-every", "0",
                 "--threads", "1"]) == 0
    saved = json.loads((run / "config.json").read_text())["train"]
    assert saved["recipe"] == "laptop" and saved["loss"] == "ns" and saved["model_dim"] == 4 and saved["threads"] == 1
    assert TrainConfig.from_json(saved).mbstd is True


@pytest.mark.parametrize("argv, message", [
    (["--loss", "wgan-gp", "--r1-gamma", "1"], "--r1-gamma 1 with --loss wgan-gp"),
    (["--arch", "specgan", "--spectral-critics", "256"], "--spectral-critics 256 with --arch specgan"),
    (["--arch", "specgan", "--augment", "gain"], "--augment gain with --arch specgan"),
    (["--arch", "specgan", "--conditioning", "film"], "--conditioning film with --arch specgan"),
    (["--spectral-critics", "300"], "spectral_critics must be 'none' or distinct powers of 2"),
    (["--augment", "reverse"], "augment must be 'none' or a comma list of shift, gain, polarity"),
    (["--mbstd", "on", "--batch-size", "6"], "--mbstd on needs a per-process batch divisible by 4"),
    (["--r1-every", "0", "--loss", "ns"], "r1_every must be >= 1"),
    (["--unconditional", "--aux-class", "1"], "--aux-class 1 with --unconditional"),
    (["--aux-class", "-1"], "aux_class must be >= 0"),
    (["--aux-confidence", "0.9"], "--aux-confidence 0.9 with --aux-class 0"),
    (["--aux-class", "1", "--aux-confidence", "1"], "aux_confidence must be in [0, 1)"),
    (["--aux-twin", "1"], "--aux-twin 1 with --aux-class 0"),
    (["--aux-class", "1", "--aux-twin", "-0.5"], "aux_twin must be >= 0"),
    (["--aux-class", "1", "--aux-twin-until", "1600"], "--aux-twin-until 1600 with --aux-twin 0"),
    (["--aux-class", "1", "--aux-twin", "1", "--aux-twin-until", "-1"], "aux_twin_until must be >= 0"),
    (["--arch", "specgan", "--line-penalty", "0.01"], "--line-penalty 0.01 with --arch specgan"),
    (["--line-penalty", "-1"], "line_penalty must be >= 0"),
    (["--line-scope", "category"], "--line-scope category with --line-penalty 0"),
    (["--unconditional", "--line-penalty", "0.001", "--line-scope", "category"], "--line-scope category with --unconditional"),
    (["--arch", "specgan", "--oscillators", "8"], "--oscillators 8 with --arch specgan"),
    (["--oscillators", "-1"], "oscillators must be >= 0"),
    (["--noise-level", "on"], "--noise-level on without --oscillators"),
    (["--partials", "bounded"], "--partials bounded without --oscillators"),
    (["--mode-seeking-from", "800"], "--mode-seeking-from 800 with --mode-seeking 0"),
    (["--mode-seeking", "0.05", "--mode-seeking-from", "-1"], "mode_seeking_from must be >= 0"),
    (["--spread-from", "800"], "--spread-from 800 with --spread 0"),
    (["--spread", "-1"], "spread must be >= 0"),
    (["--spread", "0.2", "--spread-from", "-1"], "spread_from must be >= 0"),
    (["--spread-bands", "mel"], "--spread-bands mel with --spread 0 and --mean-match 0"),
    (["--mean-match", "-0.5"], "mean_match must be >= 0"),
])
def test_combinations_that_do_not_fit_are_refused_by_name(tiny_cache, tmp_path, capsys, argv, message):
    tiny = [a for a in TINY if a != "--quiet"]
    err = _error(capsys, "train", str(tiny_cache), "--out", str(tmp_path / "r"), *tiny, "--steps", "1", *argv)
    assert message in err and "Traceback" not in err


def test_resuming_with_another_recipe_is_refused(tiny_cache, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(tiny_cache), "--out", str(run), *TINY, "--steps", "1", "--preview-every", "0"]) == 0
    capsys.readouterr()
    err = _error(capsys, "train", str(tiny_cache), "--out", str(run), *TINY, "--steps", "2", "--preview-every", "0", "--recipe", "laptop")
    assert "is a different model" in err and "recipe: 'paper' vs 'laptop'" in err and "loss: 'wgan-gp' vs 'ns'" in err


def test_a_checkpoint_from_before_critic_sets_still_resumes(tiny_cache, tmp_path):
    run = tmp_path / "run"
    assert main(["train", str(tiny_cache), "--out", str(run), *TINY, "--steps", "1", "--preview-every", "0"]) == 0
    path = run / "ckpt-00000001.pt"
    state = ckpt.load(path)
    state["discriminator"] = {k.removeprefix("main."): v for k, v in state["discriminator"].items()}  # the old layout
    for key in ("recipe", "loss", "r1_gamma", "r1_every", "augment", "spectral_critics", "mbstd", "conditioning", "threads"):
        state["config"].pop(key)
    ckpt.save_atomic(state, path)
    assert main(["train", str(tiny_cache), "--out", str(run), *TINY, "--steps", "2", "--preview-every", "0"]) == 0
    assert ckpt.load(run / "ckpt-00000002.pt")["step"] == 2


def test_generator_built_from_a_spec_carries_its_conditioning():
    spec = ModelSpec("wavegan", CATS, 16000, 16384, model_dim=4, upsample="subpixel", conditioning="film")
    assert ModelSpec.from_json(spec.to_json()) == spec and "film conditioning" in spec.describe()
    assert build_generator(spec).cond_scale is not None


# -- generator structure: envelope, smooth upsampling, initialisation ------------------------------


def test_envelope_head_gates_the_output_and_exports_its_shape():
    torch.manual_seed(0)
    g = WaveGANGenerator(4, 16384, d=4, upsample="smooth", envelope=True)
    z, cat = torch.rand(2, 100) * 2 - 1, torch.eye(4)[:2]
    with torch.no_grad():
        open_ = g(z, cat)
        g.envelope.bias.fill_(-30.0)  # gain ~ 0 everywhere: silence, whatever the upsampling layers make
        assert float(g(z, cat).abs().max()) < 1e-9 < float(open_.abs().max())
        g.envelope.bias.fill_(0.0)
        g.envelope.weight.zero_()
        half = g(z, cat)  # gain 0.5 everywhere
        g.envelope = None
        assert torch.allclose(half, 0.5 * g(z, cat), atol=1e-6)


def test_smooth_upsampling_cannot_make_checkerboard_tones_whatever_its_weights():
    from train.metrics import periodic_artefact_db

    torch.manual_seed(0)
    z, cat = torch.rand(16, 100) * 2 - 1, torch.eye(2)[torch.arange(16) % 2]
    db = {}
    for mode in ("subpixel", "smooth"):
        g = WaveGANGenerator(2, 16384, d=8, upsample=mode)
        with torch.no_grad():
            for up in g.ups:
                up.conv.weight.normal_(0, 0.05)  # weights as training may leave them: the sub-pixel phases differ
            db[mode] = periodic_artefact_db(g(z, cat).numpy())
    assert db["subpixel"] > 20 and db["smooth"] < 3, db


def test_kaiming_init_makes_the_latent_matter_from_the_first_step():
    from train.critics import log_spectrogram
    from train.wavegan import kaiming_init

    def spread(g):
        torch.manual_seed(1)
        z = torch.rand(8, 100) * 2 - 1
        with torch.no_grad():
            out = torch.stack([log_spectrogram(g(z, torch.eye(4)[[k] * 8]), 256) for k in range(4)])  # [4, 8, F, T]
        return float((out - out.mean(1, keepdim=True)).abs().mean())

    torch.manual_seed(0)
    g = WaveGANGenerator(4, 16384, d=16, upsample="smooth", conditioning="film", envelope=True)
    before = spread(g)
    kaiming_init(g)
    assert spread(g) > 10 * before
    w = g.ups[0].conv.weight.view(g.ups[0].c_out, 4, g.ups[0].conv.in_channels, -1)
    assert torch.equal(w[:, 0], w[:, 3])  # ICNR symmetry kept


def test_mode_seeking_pairs_keep_every_category_of_a_sorted_batch_and_start_when_asked(tiny_cache, tmp_path):
    """The mode-seeking term pairs two latents of one category: the batch's second half repeats the first
    half's categories. Taken from every other label, so a batch in category order (the default) keeps every
    category; its first half alone held only the first two of four, and the others got no generator step."""
    cfg = resolve_config(str(tiny_cache), str(tmp_path / "run"), "laptop", model_dim=4, batch_size=8, steps=3, preview_every=0,
                         checkpoint_every=100, progress=False, mode_seeking=0.05, mode_seeking_from=2)
    t = Trainer(cfg, log=lambda *a: None)
    seen = []
    g = t.steps.nets.g_train
    t.steps.nets.g_train = lambda z, cat: (seen.append(cat.argmax(1).tolist()), g(z, cat))[1]
    try:
        labels = torch.nn.functional.one_hot(torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]), 4).float()
        before = t.steps.generator_step(labels, step=1)
        after = t.steps.generator_step(labels, step=2)
    finally:
        t.close()
    assert "mode_seeking" not in before and math.isfinite(float(after["mode_seeking"]))
    assert seen == [[0, 0, 1, 1, 2, 2, 3, 3], [0, 1, 2, 3, 0, 1, 2, 3]]


def test_mode_seeking_falls_as_pairs_of_clips_differ_more():
    from train.losses import mode_seeking

    z = torch.rand(8, 100) * 2 - 1
    same = torch.zeros(8, 10)
    apart = torch.cat([torch.zeros(4, 10), torch.ones(4, 10)])
    assert float(mode_seeking(apart, z)) < float(mode_seeking(same + 0.01 * torch.randn(8, 10), z))


def test_spread_matching_pays_only_for_what_a_category_lacks_against_the_data():
    """The term is each category's shortfall of spread against the data's, as a share: a collapsed category
    (every clip the same) costs 1 a view, one as varied as the data or more costs nothing, a category the
    batch lacks is skipped, and its gradient pushes a collapsed category's clips apart."""
    torch.manual_seed(0)
    t = torch.arange(16384) / 16000
    decays = torch.tensor([3.0, 6.0, 12.0, 24.0, 48.0, 96.0])[:, None]
    varied = torch.sin(2 * math.pi * 440 * t) * torch.exp(-decays * t)  # six decays: a varied category
    cat = torch.nn.functional.one_hot(torch.tensor([0, 0, 0, 1, 1, 1]), 3).float()
    real = category_spread(spread_views(varied), cat)
    assert real.shape == (2, 3) and torch.isnan(real[:, 2]).all() and (real[:, :2] > 0).all()
    assert float(spread_shortfall(real, real)) == 0.0
    assert float(spread_shortfall(2 * real, real)) == 0.0  # more varied than the data: no reward, no cost
    same = (varied[:1].repeat(6, 1) + 1e-7 * torch.randn(6, 16384)).requires_grad_(True)  # far below the views' floors
    short = spread_shortfall(category_spread(spread_views(same), cat), real)
    assert 1.9 < short.item() <= 2.0  # both views, both measured categories collapsed
    short.backward()
    stepped = (same - 1e-2 * same.grad / same.grad.abs().max()).detach()
    assert float(spread_shortfall(category_spread(spread_views(stepped), cat), real)) < short.item()
    assert float(spread_shortfall(torch.full((2, 3), float("nan")), real)) == 0.0  # nothing measured: nothing owed


def test_mean_matching_pulls_each_category_to_the_datas_average_clip():
    """Per category, the L1 distance per feature between the generated and the real mean clip, in the
    envelope and spectrogram views, averaged over the categories both batches hold and summed over views:
    0 for the data itself and for its clips in another order; a bell that stops short costs
    what it lacks at the clip's end; a category one batch lacks is skipped; its gradient lengthens a short ring."""
    torch.manual_seed(0)
    t = torch.arange(16384) / 16000
    ring = torch.sin(2 * math.pi * 440 * t) * torch.exp(-2.0 * t)  # a bell still sounding at the end
    hit = torch.sin(2 * math.pi * 440 * t) * torch.exp(-40.0 * t)  # a hit, silent after 0.2 s
    cat = torch.nn.functional.one_hot(torch.tensor([0, 0, 1, 1]), 3).float()
    real_clips = torch.stack([hit, 0.5 * hit, ring, 0.5 * ring])
    real = category_means(spread_views(real_clips, deep=True), cat)
    assert [m.shape for m in real] == [(3, 64), (3, 32 * 64)] and all(torch.isnan(m[2]).all() for m in real)
    assert torch.allclose(real[0][1], spread_views(real_clips[2:], deep=True)[0].mean(dim=0))
    assert float(mean_mismatch(real, real)) == 0.0
    assert float(mean_mismatch(category_means(spread_views(real_clips[[1, 0, 3, 2]], deep=True), cat), real)) == 0.0  # same clips, reordered
    decay = torch.tensor(40.0, requires_grad=True)  # category 1 asked for a ring, made hits: a decay to learn
    made = torch.sin(2 * math.pi * 440 * t) * torch.exp(-decay * t)
    short = torch.stack([hit, 0.5 * hit, made, 0.5 * made])
    cost = mean_mismatch(category_means(spread_views(short, deep=True), cat), real)
    asked, got = spread_views(real_clips[2:], deep=True)[0].mean(dim=0), spread_views(short[2:].detach(), deep=True)[0].mean(dim=0)
    gap = float((got - asked).abs().mean())  # category 1's envelope gap; category 0 costs nothing
    assert gap > 1.0 and cost.item() > gap / 2  # averaged over the two categories, plus the spectrogram view's gap
    cost.backward()
    assert decay.grad > 0  # a slower decay, a longer ring, costs less
    with torch.no_grad():
        longer = torch.sin(2 * math.pi * 440 * t) * torch.exp(-(decay - 10.0) * t)
        assert float(mean_mismatch(category_means(spread_views(torch.stack([hit, 0.5 * hit, longer, 0.5 * longer]), deep=True), cat), real)) < cost
    # hiss at -80 dB after the hits: spread matching's views (floored at -60 dB) see the data's silence, the deep ones do not
    hiss = torch.stack([hit, 0.5 * hit, ring, 0.5 * ring]) + 1e-4 * torch.randn(4, 16384) * (t > 0.3)
    shallow = category_means(spread_views(real_clips), cat)
    unheard = float(mean_mismatch(category_means(spread_views(hiss), cat), shallow))
    assert unheard < 0.05 and float(mean_mismatch(category_means(spread_views(hiss, deep=True), cat), real)) > 10 * unheard  # 0.021, 0.54
    nothing = tuple(torch.full_like(m, float("nan")) for m in real)
    assert float(mean_mismatch(nothing, real)) == 0.0  # nothing measured: nothing owed


def test_mean_reference_follows_the_real_batches_and_pulls_the_generator(tiny_cache, tmp_path):
    cfg = resolve_config(str(tiny_cache), str(tmp_path / "run"), "laptop", model_dim=4, batch_size=8, steps=3, preview_every=0,
                         checkpoint_every=100, progress=False, mean_match=1.0)
    t = Trainer(cfg, log=lambda *a: None)
    try:
        steps = t.steps
        labels = torch.nn.functional.one_hot(torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]), 4).float()
        clips = torch.from_numpy(np.array(t.cache.clips[:8]))
        assert "mean_match" not in steps.generator_step(labels, step=0)  # no real batch seen: no reference yet
        assert steps.critic_step(clips, labels) is not None and steps.spread_reference is None
        first = tuple(m.clone() for m in steps.mean_reference)
        assert [m.shape for m in first] == [(4, 64), (4, 32 * 64)] and all(torch.isfinite(m).all() for m in first)
        assert steps.critic_step(clips.flip(0), labels.flip(0)) is not None
        assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(first, steps.mean_reference))  # the same clips: the same means
        out = steps.generator_step(labels, step=1)
        assert math.isfinite(float(out["mean_match"])) and float(out["mean_match"]) > 0
    finally:
        t.close()


def test_mel_bands_tell_apart_low_pitches_that_the_linear_slices_merge():
    """``--spread-bands mel``: the spectrogram view's rows are 32 mel bands (weighted means of the bins under
    each triangle), so two low notes an octave apart differ in the view, where 250 Hz slices see one band."""
    bands = mel_bands(16000, 256)
    assert bands.shape == (32, 256) and torch.allclose(bands.sum(dim=1), torch.ones(32)) and (bands >= 0).all()
    t = torch.arange(16384) / 16000
    notes = torch.stack([torch.sin(2 * math.pi * f * t) for f in (65.0, 130.0)]) * 0.5

    def apart(views):
        return float((views[1][0] - views[1][1]).abs().mean() / views[1].abs().mean())

    linear, mel = apart(spread_views(notes)), apart(spread_views(notes, bands))
    assert mel > 3 * linear  # measured: 4.2x (n_fft 512 bins of 31 Hz against slices of 250 Hz)
    image = torch.randn(3, 128, 128)  # a SpecGAN image's rows are its bins: mel bands over them
    envelope, view = spread_views(image, mel_bands(16000, 128))
    assert envelope.shape == (3, 64) and view.shape == (3, 32 * 64)


def test_spread_reference_follows_the_real_batches_and_keeps_categories_a_batch_lacks(tiny_cache, tmp_path):
    cfg = resolve_config(str(tiny_cache), str(tmp_path / "run"), "laptop", model_dim=4, batch_size=8, steps=3, preview_every=0,
                         checkpoint_every=100, progress=False, spread=1.0, spread_from=2)
    t = Trainer(cfg, log=lambda *a: None)
    try:
        steps = t.steps
        nan = float("nan")
        steps._update_spread_reference(torch.tensor([[1.0, nan], [2.0, nan]]))
        steps._update_spread_reference(torch.tensor([[2.0, 5.0], [nan, 6.0]]))
        assert torch.allclose(steps.spread_reference, torch.tensor([[1.02, 5.0], [2.0, 6.0]]))
        labels = torch.nn.functional.one_hot(torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]), 4).float()
        steps.spread_reference = None
        clips = torch.from_numpy(np.array(t.cache.clips[:8]))
        assert steps.critic_step(clips, labels) is not None and steps.spread_reference.shape == (2, 4)
        assert "spread" not in steps.generator_step(labels, step=1)
        assert math.isfinite(float(steps.generator_step(labels, step=2)["spread"]))
    finally:
        t.close()


def test_ema_keeps_a_moving_average_that_previews_evaluate_and_export_use(tiny_cache, tmp_path):
    """--ema: the checkpoint holds the average beside the live weights; the average follows the live
    weights (decay ramped up from 0.5), is what the run previews and scores, and export/evaluate take it
    unless told --weights raw; a run trained without it refuses --weights ema with a clear error."""
    run = tmp_path / "run"
    assert main(["train", str(tiny_cache), "--out", str(run), *TINY, "--steps", "3", "--checkpoint-every", "1",
                 "--preview-every", "0", "--ema", "0.99", "--keep-checkpoints", "10"]) == 0
    start, one, three = (ckpt.load(run / ckpt.checkpoint_name(s)) for s in (0, 1, 3))
    for name, avg in three["generator_ema"].items():
        assert torch.isfinite(avg).all()
    flat = {k: torch.cat([v.flatten().float() for v in three[k].values()]) for k in ("generator", "generator_ema")}
    assert not torch.equal(flat["generator"], flat["generator_ema"])
    # step 1's average: the initial weights moved (1 - decay(0)) = 0.9 of the way to the live ones (decay(0) = 1/10)
    init = torch.cat([v.flatten().float() for v in start["generator"].values()])
    live1 = torch.cat([v.flatten().float() for v in one["generator"].values()])
    avg1 = torch.cat([v.flatten().float() for v in one["generator_ema"].values()])
    assert torch.allclose(avg1, init + 0.9 * (live1 - init), atol=1e-6)
    synth_avg, _, state = ckpt.load_synthesizer(run / ckpt.checkpoint_name(3))
    synth_raw, _, raw_state = ckpt.load_synthesizer(run / ckpt.checkpoint_name(3), weights="raw")
    assert (state["weights"], raw_state["weights"]) == ("ema", "raw")
    z, cat = torch.randn(2, synth_avg.spec.latent_dim), torch.eye(synth_avg.spec.n_categories)[:2]
    assert not torch.allclose(synth_avg(z, cat), synth_raw(z, cat))
    # a resumed run goes on averaging from the saved average
    assert main(["train", str(tiny_cache), "--out", str(run), *TINY, "--steps", "4", "--checkpoint-every", "1",
                 "--preview-every", "0", "--ema", "0.99"]) == 0
    four = ckpt.load(run / ckpt.checkpoint_name(4))
    assert four["generator_ema"] is not None
    plain = tmp_path / "plain"
    assert main(["train", str(tiny_cache), "--out", str(plain), *TINY, "--steps", "1", "--preview-every", "0"]) == 0
    with pytest.raises(ckpt.CheckpointError, match="no moving average.*--weights raw"):
        ckpt.load_synthesizer(plain, weights="ema")
    with pytest.raises(ValueError, match="ema must be 0"):
        TrainConfig(cache="c", out="o", ema=1.0)


def test_tied_upsampling_makes_no_tone_from_silence():
    """--upsample tied: one bias per channel, shared by the stride's phases. Whatever the weights, a
    silent input gives a constant output; with a bias per phase (subpixel) it gives a pattern repeating
    every stride samples: a tone at multiples of the layer's input rate. (Its export parity is one of
    test_export's variants.)"""
    from train.wavegan import Upsample1d

    torch.manual_seed(0)
    for mode, tone in (("subpixel", True), ("tied", False)):
        up = Upsample1d(8, 4, 4, mode)
        with torch.no_grad():
            for p in up.parameters():
                p.normal_()  # as if trained: nothing left of the ICNR symmetry
        with torch.no_grad():
            y = up(torch.zeros(1, 8, 32))[0]  # [4, 128]
        varies = float((y - y.mean(dim=1, keepdim=True)).abs().max())
        assert (varies > 1e-3) == tone, (mode, varies)
    g = WaveGANGenerator(4, 16384, d=4, upsample="tied", conditioning="film", envelope=True)
    assert sum("ups.0.bias" == k for k, _ in g.named_parameters()) == 1 and g.ups[0].conv.bias is None
    assert g(torch.randn(2, 100), torch.eye(4)[:2]).shape == (2, 16384)


def test_balanced_upsampling_turns_no_mean_into_a_tone():
    """--upsample balanced: tied, and the phases' filters share their DC gain. A ReLU layer's output has a
    large mean; through phases whose filters sum differently (tied, once trained) a constant input becomes
    a pattern every stride samples. Balanced, whatever the weights, a constant is a constant, while a
    signal still meets each phase's own filter; the weights the optimiser sees are the free ones."""
    from train.wavegan import Upsample1d, balanced_weight

    torch.manual_seed(0)
    for mode, tone in (("tied", True), ("balanced", False)):
        up = Upsample1d(8, 4, 4, mode)
        with torch.no_grad():
            for p in up.parameters():
                p.normal_()
            y = up(torch.full((1, 8, 32), 0.7))[0, :, 16:-16]  # a constant (the edges see the zero padding)
        varies = float((y - y.mean(dim=1, keepdim=True)).abs().max())
        assert (varies > 1e-3) == tone, (mode, varies)
    up = Upsample1d(8, 4, 4, "balanced")
    with torch.no_grad():
        up.conv.weight.normal_()
    w = balanced_weight(up.conv.weight, 4, 4).view(4, 4, 8, -1)
    dc = w.sum(dim=3)
    assert torch.allclose(dc, dc.mean(dim=1, keepdim=True).expand_as(dc), atol=1e-5)
    x = torch.randn(1, 8, 32)
    y = up(x)
    assert y.shape == (1, 4, 128)
    phases = y.detach()[0, :, 16:-16].reshape(4, -1, 4)  # [C, L, s]: the phases still differ for a signal
    assert float((phases - phases.mean(dim=2, keepdim=True)).abs().max()) > 1e-2
    y.sum().backward()
    assert up.conv.weight.grad is not None and float(up.conv.weight.grad.abs().sum()) > 0
