"""Block DSP: constant-power crossfades, the limiter's ceiling under hostile input, DC blocking,
smoothing, pitch by resampling."""

from __future__ import annotations

import numpy as np
import pytest

from instrument.dsp import SafetyChain, Smoother, db_to_gain, equal_power, read_resampled
from instrument.voices import Layer, Voice, pitch_ratio

from ..conftest import peak_frequency


def test_equal_power_gains_keep_power_constant():
    t = np.linspace(0, 1, 1001)
    g_out, g_in = equal_power(t)
    assert np.allclose(g_out**2 + g_in**2, 1.0)
    assert g_out[0] == 1 and g_in[0] == 0 and np.isclose(g_out[-1], 0) and g_in[-1] == 1


def test_layer_crossfade_between_uncorrelated_clips_keeps_the_level():
    rng = np.random.default_rng(0)
    a = rng.standard_normal(48000).astype(np.float32) * 0.3
    b = rng.standard_normal(48000).astype(np.float32) * 0.3
    layer = Layer()
    layer.offer(a, b"a", 1)
    layer.render(1000, 1.0)
    layer.offer(b, b"b", 24000)  # a half-second crossfade
    out = np.concatenate([layer.render(1000, 1.0) for _ in range(30)])
    rms = np.sqrt(np.mean(out[:24000].reshape(-1, 2000) ** 2, axis=1))
    assert np.all(np.abs(20 * np.log10(rms / 0.3)) < 0.5)  # within 0.5 dB all through the fade
    assert layer.crossfades == 2 and not layer.fading


@pytest.mark.parametrize("block", [1, 64, 65, 8193])
def test_limiter_never_exceeds_the_ceiling_on_full_scale_nan_laden_input(block):
    chain = SafetyChain(48000, ceiling_db=-0.3, gain_db=6.0)
    ceiling = db_to_gain(-0.3)
    rng = np.random.default_rng(block)
    n_blocks = max(4, 40000 // block)
    peak, nonfinite_in = 0.0, 0
    for _ in range(n_blocks):
        x = rng.uniform(-1, 1, block).astype(np.float32) * rng.choice([1, 4, 1000])
        bad = rng.random(block) < 0.05
        x[bad] = rng.choice([np.nan, np.inf, -np.inf], bad.sum())
        nonfinite_in += int(bad.sum())
        y = chain.process(x)
        assert y.dtype == np.float32 and len(y) == block and np.all(np.isfinite(y))
        peak = max(peak, float(np.abs(y).max()))
    assert peak <= ceiling
    assert chain.nonfinite_samples == nonfinite_in


def test_limiter_leaves_quiet_signals_alone_and_recovers():
    chain = SafetyChain(48000, ceiling_db=-0.3)
    quiet = 0.1 * np.sin(np.arange(4800) * 0.05).astype(np.float32)
    chain.process(np.full(480, 50.0, np.float32))  # a blast
    for _ in range(200):  # 2 s of release
        y = chain.process(quiet[:480])
    assert np.allclose(np.abs(y).max(), 0.1, rtol=0.05)


def test_dc_blocker_removes_an_offset():
    chain = SafetyChain(48000)
    x = (0.3 + 0.2 * np.sin(2 * np.pi * 440 * np.arange(48000) / 48000)).astype(np.float32)
    y = np.concatenate([chain.process(x[i : i + 128]) for i in range(0, 48000, 128)])
    assert abs(y[24000:].mean()) < 1e-3 and np.isclose(y[24000:].std(), x.std(), rtol=0.02)


def test_smoother_glides_without_jumps_and_lands():
    s = Smoother(0.0, 0.01, 48000)  # 480 samples
    s.set(1.0)
    vals = np.concatenate([np.atleast_1d(s.block(100)) for _ in range(6)])
    assert np.all(np.diff(vals) >= 0) and np.max(np.diff(vals)) <= 1 / 480 + 1e-6 and vals[-1] == 1.0
    assert s.block(64) == 1.0  # steady: a scalar


@pytest.mark.parametrize("semitones", [-12, -5, 0, 7, 12])
def test_pitch_by_resampling_ratio(semitones):
    sr = 48000
    clip = np.sin(2 * np.pi * 440 * np.arange(sr * 2) / sr).astype(np.float32)
    v = Voice(clip, pitch_ratio(semitones), 1.0, 1, 100)
    out = np.concatenate([v.render(128) for _ in range(200)])
    assert peak_frequency(out[2000:22000], sr) == pytest.approx(440 * 2 ** (semitones / 12), rel=2e-3)


def test_read_resampled_past_the_end_is_silence():
    clip = np.ones(10, np.float32)
    out, pos = read_resampled(clip, 5.0, 1.5, 8)
    assert out[:3].tolist() == [1, 1, 1] and (out[4:] == 0).all() and pos == 17.0
