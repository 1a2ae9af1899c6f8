"""The fixed notch comb at fs/16's multiples (train.debuzz): its response, what it removes and keeps,
and that it goes on and off a trained generator without touching its weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from train.config import resolve_config
from train.debuzz import PERIOD, Debuzz, box_weights, comb_weights, debuzz_kernel
from train.errors import ModelError
from train.metrics import periodic_artefact_db
from train.models import ModelSpec, build_generator
from train.wavegan import ENVELOPE_RATE, WaveGANGenerator

CATS = ("trigger", "trigger_continuous", "continuous_variation", "continuous_repetition")
SR, N = 16000, 16384


def _response(h: np.ndarray, n: int = 1 << 18) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(n // 2 + 1) * SR / n, np.abs(np.fft.rfft(h, n))


@pytest.mark.parametrize("periods", [33, 129])
def test_the_kernel_is_zero_phase_nulls_every_multiple_of_fs16_and_stays_within_a_quarter_db_elsewhere(periods):
    h = debuzz_kernel(periods)
    assert len(h) == PERIOD * (periods - 1) + PERIOD + 1 and np.allclose(h, h[::-1])  # symmetric: zero-phase
    f, H = _response(h)
    assert abs(H[0] - 1) < 1e-9  # DC passes: the comb keeps the periodic part's mean
    for k in range(1, 9):  # 1 ... 8 kHz (Nyquist included)
        assert H[np.argmin(np.abs(f - k * SR / PERIOD))] < 1e-9
    distance = np.abs(((f + 500) % 1000) - 500)  # Hz to the nearest multiple of 1 kHz
    assert 20 * np.log10(H.max()) < 0.25
    # the notches are narrow: beyond 4000/periods Hz of a multiple the response is within 1 dB of flat
    assert 20 * np.log10(H[distance > 4000 / periods].min()) > -1.0


def test_the_module_is_the_kernel_away_from_the_edges_and_renormalises_at_them():
    periods = 17
    f = Debuzz(periods, 4096)
    x = torch.randn(3, 1, 4096, dtype=torch.float32)
    y = f(x)[:, 0].double().numpy()
    ref = np.stack([np.convolve(r, debuzz_kernel(periods), "same") for r in x[:, 0].double().numpy()])
    inner = slice(f.pad + PERIOD, 4096 - f.pad - PERIOD)
    assert np.abs(y[:, inner] - ref[:, inner]).max() < 1e-5
    # the running sums are the Hann-weighted comb, renormalised at the edges, to the last sample (here in float64)
    for m in (3, 17, 129):
        xr = x[:, 0].double().numpy()
        w, p = comb_weights(m), PERIOD * (m - 1) // 2
        taps = [(k - (m - 1) // 2) * PERIOD for k in range(m)]
        comb = np.zeros_like(xr)
        inside = np.zeros(4096)
        for wk, off in zip(w, taps):
            lo, hi = max(0, -off), min(4096, 4096 - off)
            comb[:, lo:hi] += wk * xr[:, lo + off:hi + off]
            inside[lo:hi] += wk
        comb /= inside
        ext = np.concatenate([comb[:, 8:16], comb, comb[:, -16:-8]], axis=1)
        want = xr - comb + np.stack([np.convolve(e, box_weights(), "valid") for e in ext])
        assert p < 4096 and np.abs(Debuzz(m, 4096)(x)[:, 0].double().numpy() - want).max() < 1e-5
    # a steady buzz is removed to the last sample, the edges included, where the comb sees half its window
    t = np.arange(4096)
    buzz = sum(np.cos(2 * np.pi * k * t / PERIOD + k) for k in range(1, 8)) * 0.1 + 0.3  # period 16, a DC offset
    out = f(torch.tensor(buzz, dtype=torch.float32).view(1, 1, -1))[0, 0].numpy()
    assert np.abs(out - 0.3).max() < 1e-4


def test_it_removes_a_buzz_from_noise_and_keeps_the_noise():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((32, N)) * 0.1
    t = np.arange(N)
    buzz = 0.02 * sum(np.cos(2 * np.pi * k * t / PERIOD + k) for k in range(1, 8))
    f = Debuzz(129, N)
    with torch.no_grad():
        out = f(torch.tensor(noise + buzz, dtype=torch.float32)[:, None])[:, 0].double().numpy()
        clean = f(torch.tensor(noise, dtype=torch.float32)[:, None])[:, 0].double().numpy()
    assert periodic_artefact_db(noise + buzz, SR) > 20  # the buzz stands out ...
    assert periodic_artefact_db(out, SR) < 0  # ... and is gone: the notches' bins fall below the bins around them
    assert abs((clean**2).sum() / (noise**2).sum() - 1) < 0.03  # broadband noise keeps its energy (notches: ~2% of the band)
    assert np.abs(out - clean).max() < 0.01  # what it took out of the buzzed clips is the buzz


def test_generator_with_the_comb_has_the_same_weights_and_stays_in_range():
    torch.manual_seed(0)
    plain = WaveGANGenerator(4, N, d=4, upsample="balanced", conditioning="film", envelope=True, oscillators=8)
    combed = WaveGANGenerator(4, N, d=4, upsample="balanced", conditioning="film", envelope=True, oscillators=8, debuzz=65)
    assert set(plain.state_dict()) == set(combed.state_dict())  # no weights, no saved buffers: checkpoints fit either way
    combed.load_state_dict(plain.state_dict())
    z, cat = torch.rand(16, 100) * 2 - 1, torch.eye(4).repeat(4, 1)
    seen, envelope = [], []
    combed.debuzz.register_forward_hook(lambda module, args, out: seen.append((args[0], out)))
    combed.envelope.register_forward_hook(lambda module, args, out: envelope.append(out))
    with torch.no_grad():
        a, b = plain(z, cat), combed(z, cat)
    assert b.shape == a.shape and b.abs().max() <= 1.0 and not torch.equal(a, b)
    # the comb takes the tanh's output (which puts k kHz content back in a trained model) and the envelope's gain
    # comes after it, so a hit's ringing stays inside the envelope; then only the clamp to [-1, 1]
    comb_in, comb_out = seen[0]
    gain = F.interpolate(torch.sigmoid(ENVELOPE_RATE * envelope[0]), size=N, mode="linear", align_corners=False)
    assert torch.allclose(comb_in * gain, a[:, None], atol=1e-6)
    assert torch.equal(b, (comb_out * gain)[:, 0].clamp(-1, 1))
    assert periodic_artefact_db(b.double().numpy(), SR) < min(periodic_artefact_db(a.double().numpy(), SR), 0) - 10
    z, cat = z[:3], cat[:3]
    combed(z, cat).sum().backward()  # trainable through it: the gradient reaches the first layer
    assert combed.dense.weight.grad is not None and combed.dense.weight.grad.abs().sum() > 0


def test_spec_and_config_name_it_and_refuse_what_does_not_fit():
    spec = ModelSpec("wavegan", CATS, SR, N, model_dim=4, upsample="balanced", debuzz=129)
    assert build_generator(spec).debuzz.periods == 129 and "debuzz comb 129 periods" in spec.describe()
    assert ModelSpec.from_json(spec.to_json()) == spec
    for bad in (1, 2, 128):  # an even count would put the taps half a period off the sample's phase
        with pytest.raises(ModelError, match="debuzz must be 0"):
            ModelSpec("wavegan", CATS, SR, N, debuzz=bad)
    with pytest.raises(ModelError, match="odd"):
        Debuzz(128, N)
    with pytest.raises(ModelError, match="SpecGAN"):
        ModelSpec("specgan", CATS, SR, N, debuzz=129)
    with pytest.raises(ModelError, match="clips longer than that"):
        Debuzz(2001, N)
    with pytest.raises(ValueError, match="--debuzz 129 with --arch specgan"):
        resolve_config("c", "o", "laptop", arch="specgan", debuzz=129)
    with pytest.raises(ValueError, match="debuzz"):
        resolve_config("c", "o", "laptop", debuzz=1)
    with pytest.raises(ValueError, match="odd"):
        resolve_config("c", "o", "laptop", debuzz=64)
    assert resolve_config("c", "o", "laptop", debuzz=129).debuzz == 129


def test_evaluate_counts_the_line_contrast_its_notches_raise_apart():
    from train.evaluate import _spectral_lines

    rng = np.random.default_rng(1)
    real = rng.standard_normal((128, N)).astype(np.float32) * 0.1  # enough clips that noise alone makes no 3 dB line
    with torch.no_grad():
        combed = Debuzz(129, N)(torch.from_numpy(rng.standard_normal((128, N)).astype(np.float32) * 0.1)[:, None])[:, 0].numpy()
    plain = _spectral_lines(combed, real, SR)
    marked = _spectral_lines(combed, real, SR, notch_hz=SR / PERIOD)
    assert "near_notches" not in plain and plain["bins_over_3db"] == marked["bins_over_3db"] > 0
    # white noise through the comb has no line anywhere: every bin it lifts over 3 dB is beside a notch
    assert marked["near_notches"] == marked["bins_over_3db"]
