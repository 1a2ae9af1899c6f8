"""Shapes and building blocks of WaveGAN and SpecGAN, for every architecture option."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from train.config import UPSAMPLE_MODES
from train.errors import ModelError
from train.models import ModelSpec, RealTransform, Synthesizer, build_discriminator, build_generator
from train.specgan import SpecGANDiscriminator, SpecGANGenerator, specgan_channels
from train.oscillators import OscillatorBank
from train.wavegan import (Upsample1d, WaveGANDiscriminator, WaveGANGenerator, bake_balanced, phase_shuffle,
                           wavegan_channels, wavegan_strides)

CATS = ("a", "b", "c")


@pytest.mark.parametrize("n_samples", [16384, 32768, 65536])
@pytest.mark.parametrize("mode", UPSAMPLE_MODES)
def test_wavegan_shapes(n_samples, mode):
    g = WaveGANGenerator(3, n_samples, latent_dim=100, d=4, upsample=mode)
    d = WaveGANDiscriminator(3, n_samples, d=4)
    z = torch.rand(2, 100) * 2 - 1
    cat = torch.eye(3)[[0, 2]]
    audio = g(z, cat)
    assert audio.shape == (2, n_samples)
    assert audio.abs().max() <= 1.0
    assert d(audio, cat).shape == (2,)


def test_wavegan_layer_plan_matches_the_paper():
    assert wavegan_strides(16384) == [4] * 5
    assert wavegan_strides(32768) == [4] * 5 + [2]
    assert wavegan_channels(64, 5) == [1024, 512, 256, 128, 64, 1]
    g = WaveGANGenerator(1, 16384, d=64)
    d = WaveGANDiscriminator(1, 16384, d=64)
    # Donahue et al. report ~19M parameters in each network at d=64
    assert 18e6 < sum(p.numel() for p in g.parameters()) < 20e6
    assert 17e6 < sum(p.numel() for p in d.parameters()) < 18.5e6
    with pytest.raises(ModelError, match="16384, 32768 or 65536"):
        wavegan_strides(8192)


@pytest.mark.parametrize("mode", UPSAMPLE_MODES)
@pytest.mark.parametrize("stride", [2, 4])
@pytest.mark.parametrize("length", [1, 16, 33])
def test_upsample_multiplies_length(mode, stride, length):
    up = Upsample1d(3, 5, stride, mode)
    assert up(torch.randn(2, 3, length)).shape == (2, 5, length * stride)


def test_subpixel_shuffle_interleaves_channel_blocks():
    up = Upsample1d(1, 1, 4, "subpixel")
    with torch.no_grad():
        up.conv.weight.zero_()
        up.conv.bias.copy_(torch.tensor([0.0, 1.0, 2.0, 3.0]))  # channel block j -> sub-sample j
    y = up(torch.zeros(1, 1, 3))[0, 0]
    assert y.tolist() == [0, 1, 2, 3] * 3


def test_post_filter_keeps_length():
    g = WaveGANGenerator(2, 16384, d=4, post_filter_taps=512)
    assert g(torch.rand(1, 100), torch.tensor([[1.0, 0.0]])).shape == (1, 16384)


def test_phase_shuffle_shifts_within_radius_with_reflection():
    torch.manual_seed(0)
    x = torch.arange(32.0).view(1, 1, 32).repeat(64, 3, 1)
    y = phase_shuffle(x, 2)
    assert y.shape == x.shape
    shifts = set()
    for row in y[:, 0]:
        s = int(row[10] - 10)  # away from the edges: a pure shift
        assert -2 <= -s <= 2
        assert torch.equal(row[5:27], x[0, 0, 5 - (-s) : 27 - (-s)]) if s else torch.equal(row, x[0, 0])
        shifts.add(s)
    assert len(shifts) == 5  # every offset in [-2, 2] occurs
    assert torch.equal(y[:, 0], y[:, 2])  # the same shift for all channels of an example
    assert torch.equal(phase_shuffle(x, 0), x)


@pytest.mark.parametrize("view,size", [("128", 128), ("64", 64)])
def test_specgan_shapes(view, size):
    g = SpecGANGenerator(3, view, d=4)
    d = SpecGANDiscriminator(3, view, d=4)
    cat = torch.tensor([[0.5, 0.5, 0.0]])
    img = g(torch.rand(1, 100), cat)
    assert img.shape == (1, size, size)
    assert d(img, cat).shape == (1,)
    assert specgan_channels(64, "128") == [1024, 512, 256, 128, 64, 1]


def test_generator_is_affine_in_the_category_weights_at_the_input():
    """Mixtures enter linearly: the first activation of a 50/50 mix is the mean of the two pure ones."""
    g = WaveGANGenerator(2, 16384, d=4)
    z = torch.rand(1, 100)
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    h = lambda c: g.dense(torch.cat([z, c], 1))  # noqa: E731
    assert torch.allclose(h((a + b) / 2), (h(a) + h(b)) / 2, atol=1e-6)


def test_projection_critic_uses_the_category():
    d = WaveGANDiscriminator(2, 16384, d=4, phase_shuffle_radius=0)
    with torch.no_grad():
        d.embed.weight.normal_()
    x = torch.randn(1, 16384) * 0.1
    assert not torch.allclose(d(x, torch.tensor([[1.0, 0.0]])), d(x, torch.tensor([[0.0, 1.0]])))


def test_model_spec_round_trip_and_errors():
    spec = ModelSpec("wavegan", CATS, 16000, 16384, model_dim=8, upsample="nearest")
    assert ModelSpec.from_json(spec.to_json()) == spec
    with pytest.raises(ModelError, match="16384-sample"):
        ModelSpec("specgan", CATS, 16000, 32768)
    with pytest.raises(ModelError, match="architecture"):
        ModelSpec("melgan", CATS, 16000, 16384)
    with pytest.raises(ModelError, match="does not know"):
        ModelSpec.from_json({**spec.to_json(), "future_field": 1})


def test_specgan_synthesizer_is_latent_and_category_in_waveform_out():
    stats = (np.zeros(64, np.float32) - 4, np.ones(64, np.float32))
    spec = ModelSpec("specgan", CATS, 16000, 16384, model_dim=4, view="64", griffin_lim_iters=2)
    synth = Synthesizer(spec, build_generator(spec), stats)
    audio = synth(torch.rand(2, 100), torch.eye(3)[:2])
    assert audio.shape == (2, 16384) and torch.isfinite(audio).all() and audio.abs().max() <= 1
    real = RealTransform(spec, stats)(torch.randn(2, 16384) * 0.1)
    assert real.shape == (2, 64, 64) and real.abs().max() <= 1
    assert build_discriminator(spec)(real, torch.eye(3)[:2]).shape == (2,)


def test_checkerboard_tones_at_initialisation_by_upsampling_mode():
    """Transposed convolutions start with tones at multiples of fs/16 (Odena et al. 2016); nearest-neighbour
    and ICNR-initialised sub-pixel layers start without them."""
    from train.metrics import periodic_artefact_db

    torch.manual_seed(0)
    z, cat = torch.rand(16, 100) * 2 - 1, torch.eye(2)[torch.arange(16) % 2]
    db = {}
    for mode in UPSAMPLE_MODES:
        with torch.no_grad():
            db[mode] = periodic_artefact_db(WaveGANGenerator(2, 16384, d=8, upsample=mode)(z, cat).numpy())
    assert db["transpose"] > 20
    assert db["nearest"] < 3 and db["subpixel"] < 3


# -- the oscillator bank (--oscillators N) -----------------------------------------------------------


@pytest.mark.parametrize("n_samples", [16384, 32768])
def test_oscillator_bank_makes_exact_sinusoids_at_its_grid_frequencies(n_samples):
    bank = OscillatorBank(3, 24, n_samples, 256)
    f = bank.frequencies.double().numpy()
    assert np.isclose(f[0] * 16000, 40.0) and np.isclose(f[-1] * 16000, 7200.0) and np.all(np.diff(np.log(f)) > 0)
    t = np.arange(n_samples)
    amp = torch.zeros(3, 48, 256)
    amp[0, 5] = 0.5  # oscillator 5's sine
    amp[1, 24 + 17] = 0.3  # oscillator 17's cosine
    amp[2, 9], amp[2, 24 + 9] = 0.6, 0.8  # oscillator 9 at amplitude 1, phase atan2(0.8, 0.6)
    y = bank.synthesize(amp)[:, 0].double().numpy()
    assert y.shape == (3, n_samples)
    w = 2 * np.pi * f
    # constant amplitudes: one sinusoid over the whole clip, its last samples included
    assert np.abs(y[0] - 0.5 * np.sin(w[5] * t)).max() < 1e-5
    assert np.abs(y[1] - 0.3 * np.cos(w[17] * t)).max() < 1e-5
    assert np.abs(y[2] - np.sin(w[9] * t + np.arctan2(0.8, 0.6))).max() < 1e-5


def test_oscillator_amplitudes_follow_their_frames_and_the_bank_starts_silent():
    bank = OscillatorBank(3, 8, 16384, 256)
    amp = torch.zeros(1, 16, 256)
    amp[0, 4, 128:] = 1.0  # the second half of the clip only
    y = bank.synthesize(amp)[0, 0].numpy()
    hop = 64
    assert np.abs(y[: 127 * hop]).max() == 0.0  # nothing before the grain that starts the note
    assert np.abs(y[129 * hop:]).max() > 0.99 and np.sqrt(np.mean(y[129 * hop:] ** 2)) > 0.7
    assert bank(torch.randn(2, 3, 256)).abs().max() == 0.0  # zero-initialised head: silent until trained


def test_generator_with_oscillators_starts_as_the_generator_without():
    torch.manual_seed(0)
    plain = WaveGANGenerator(4, 16384, d=4, upsample="balanced", conditioning="film", envelope=True)
    bank = WaveGANGenerator(4, 16384, d=4, upsample="balanced", conditioning="film", envelope=True, oscillators=16)
    missing = bank.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert sorted(missing) == ["oscillators.head.bias", "oscillators.head.weight"]  # the fixed tables are rebuilt, not saved
    z, cat = torch.rand(2, 100) * 2 - 1, torch.eye(4)[[0, 3]]
    with torch.no_grad():
        assert torch.equal(plain(z, cat), bank(z, cat))
        bank.oscillators.head.bias[3] = 2.0  # oscillator 3's sine, at amplitude 2 x OSCILLATOR_RATE before the tanh
        louder = bank(z, cat)
    assert not torch.equal(plain(z, cat), louder) and louder.abs().max() <= 1.0
    spec = ModelSpec("wavegan", CATS, 16000, 16384, model_dim=4, oscillators=16)
    assert build_generator(spec).oscillators.n == 16 and "16 oscillators" in spec.describe()
    with pytest.raises(ModelError, match="oscillators must be 0"):
        ModelSpec("wavegan", CATS, 16000, 16384, oscillators=-1)


def test_bounded_partials_stay_in_the_tanh_working_range_and_keep_their_gradient():
    torch.manual_seed(3)
    free, bounded = OscillatorBank(3, 16, 16384, 256), OscillatorBank(3, 16, 16384, 256, "bounded")
    bounded.load_state_dict(free.state_dict())
    features = torch.randn(2, 3, 256)
    with torch.no_grad():
        free.head.weight.normal_(0.0, 1e-4)
        bounded.head.weight.copy_(free.head.weight)
        small_free, small_bounded = free(features), bounded(features)
        assert torch.allclose(small_free, small_bounded, rtol=1e-2, atol=1e-7)  # near zero: the same bank
        free.head.weight.normal_(0.0, 10.0)  # a runaway head: the free bank drives the tanh flat
        bounded.head.weight.copy_(free.head.weight)
        loud_free, loud_bounded = free(features), bounded(features)
    rms = lambda y: float(y.pow(2).mean().sqrt())  # noqa: E731
    assert rms(loud_free) > 10 and rms(loud_bounded) < 2 ** -0.5 + 1e-3
    # however loud the frame, the timbre keeps a gradient: a change of direction changes the sound
    bounded.head.weight.grad = None
    (bounded(features)[:, 0, :4096] * torch.randn(2, 4096)).sum().backward()
    assert bounded.head.weight.grad.abs().max() > 1e-4
    spec = ModelSpec("wavegan", CATS, 16000, 16384, model_dim=4, oscillators=16, partials="bounded")
    assert build_generator(spec).oscillators.partials == "bounded" and "bounded partials" in spec.describe()
    with pytest.raises(ModelError, match="partials must be one of"):
        ModelSpec("wavegan", CATS, 16000, 16384, oscillators=16, partials="clipped")


def test_softmax_partials_start_quiet_never_leave_the_tanh_range_and_make_a_single_partial_cleanly():
    torch.manual_seed(4)
    bank = OscillatorBank(3, 16, 16384, 256, "softmax")
    features = torch.randn(2, 3, 256)
    rms = lambda y: float(y.pow(2).mean().sqrt())  # noqa: E731
    with torch.no_grad():
        quiet = bank(features)
        assert 1e-3 < rms(quiet) < 0.05  # loudness 0.12 spread over 16 oscillators: quiet, not silent
        bank.head.weight.normal_(0.0, 10.0)  # a runaway head: the amplitudes still sum to a loudness below 1
        assert bank(features).abs().max() <= 1.0
        # a frame's level costs the same in one partial: all of it on oscillator 9 makes one clean sinusoid
        bank.head.weight.zero_()
        bank.head.bias.zero_()
        bank.head.bias[9], bank.head.bias[-1] = 10.0, 10.0
        y = bank(features)[0, 0].numpy()
    assert abs(float(np.abs(y).max()) - 1.0) < 0.01
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    peak = int(spectrum.argmax())
    assert abs(peak / y.size - float(bank.frequencies[9])) < 2 / y.size
    assert spectrum[np.abs(np.arange(spectrum.size) - peak) > 8].max() < 1e-3 * spectrum[peak]
    fresh = OscillatorBank(3, 16, 16384, 256, "softmax")  # learns from its first step: the timbre and the level
    (fresh(features)[:, 0, :4096] * torch.randn(2, 4096)).sum().backward()
    assert fresh.head.weight.grad[:16].abs().max() > 1e-4 and fresh.head.weight.grad[16].abs().max() > 1e-4
    spec = ModelSpec("wavegan", CATS, 16000, 16384, model_dim=4, oscillators=16, partials="softmax")
    assert build_generator(spec).oscillators.head.out_channels == 17 and "softmax partials" in spec.describe()


def test_bake_balanced_stores_the_weights_the_layer_computes():
    torch.manual_seed(1)
    g = WaveGANGenerator(2, 16384, d=4, upsample="balanced", envelope=True)
    baked = copy.deepcopy(g)
    assert bake_balanced(baked) == 5 and all(up.mode == "tied" for up in baked.ups)
    z, cat = torch.rand(3, 100) * 2 - 1, torch.eye(2)[[0, 1, 1]]
    with torch.no_grad():
        assert torch.allclose(g(z, cat), baked(z, cat), atol=1e-6)
    assert bake_balanced(baked) == 0


def test_noise_level_turns_the_upsampling_layers_down_under_the_partials():
    torch.manual_seed(2)
    g = WaveGANGenerator(2, 16384, d=4, upsample="balanced", conditioning="film", envelope=True, oscillators=8, noise_level=True)
    z, cat = torch.rand(2, 100) * 2 - 1, torch.eye(2)
    with torch.no_grad():
        g.oscillators.head.bias[2] = 0.1  # one steady partial
        g.noise_level.bias.fill_(-30.0)  # level ~ 0: only the partial is left, under the envelope
        quiet = g(z, cat)
        g.noise_level.bias.fill_(30.0)  # level ~ 1: the layers' output at full level, as without the head
        full = g(z, cat)
        g.noise_level = None
        assert torch.allclose(full, g(z, cat), atol=1e-6)
        partial = torch.tanh(g.oscillators(torch.zeros(2, 16, 256)))[:, 0] * 0.5  # the envelope's flat start: 0.5
    assert torch.allclose(quiet, partial, atol=1e-5) and not torch.allclose(quiet, full, atol=1e-3)
    with pytest.raises(ModelError, match="needs oscillators"):
        ModelSpec("wavegan", CATS, 16000, 16384, noise_level=True)
