"""The DFT-convolution STFT/ISTFT and Griffin-Lim used for SpecGAN (and later inside the ONNX graph)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from train import spectral
from train.models import ModelSpec, RealTransform
from train.stft import DFTConv, GriffinLim, log_magnitude, spectral_convergence


def _chirp(n=16384, sr=16000):
    t = np.arange(n) / sr
    return (0.5 * np.sin(2 * np.pi * (200 * t + 900 * t**2)) * np.exp(-2 * t) + 0.1 * np.sin(2 * np.pi * 3000 * t)).astype(np.float32)


@pytest.mark.parametrize("n", [16384, 1000, 129])
def test_stft_matches_the_cache_log_magnitude(n):
    x = _chirp(n)
    ours = log_magnitude(DFTConv(), torch.from_numpy(x)[None]).numpy()
    ref = spectral.log_magnitude(x[None])
    assert ours.shape == ref.shape
    loud = ref > np.log(1e-3)  # the log of tiny magnitudes magnifies float32 rounding
    assert np.abs(np.exp(ours) - np.exp(ref)).max() < 1e-4
    assert np.abs(ours - ref)[loud].max() < 1e-3


def test_realtransform_matches_the_cache_normalised_images():
    noise = np.random.default_rng(0).normal(0, 0.05, (2, 16384)).astype(np.float32)
    x = np.stack([_chirp(), _chirp()[::-1]]) + noise
    mean = spectral.log_magnitude(x).mean(axis=(0, 2))
    std = spectral.log_magnitude(x).std(axis=(0, 2)) + 0.1
    spec = ModelSpec("specgan", ("a",), 16000, 16384)
    ours = RealTransform(spec, (mean, std))(torch.from_numpy(x)).numpy()
    lm = spectral.log_magnitude(x)
    ref = spectral.normalise(lm, mean, std)
    loud = lm > np.log(1e-3)
    assert loud.mean() > 0.5
    assert np.abs(ours - ref)[loud].max() < 2e-3


def test_istft_inverts_stft_after_the_first_window_edge():
    x = torch.from_numpy(_chirp())[None]
    dft = DFTConv()
    y = dft.istft(*dft.stft(x), x.shape[1])
    assert torch.abs(y - x)[:, 32:].max() < 1e-5  # sample 0 sits under a zero of the first window: unobservable


def test_griffin_lim_reconstructs_a_known_signal():
    x = torch.from_numpy(_chirp())[None]
    dft = DFTConv()
    re, im = dft.stft(x)
    mag = torch.sqrt(re**2 + im**2)[:, :128]
    sc = {n: float(spectral_convergence(dft, GriffinLim(16384, n)(mag), mag)) for n in (0, 8, 32, 64)}
    assert sc[0] > 0.3  # random phase is far off
    assert sc[8] < sc[0] and sc[32] < sc[8] and sc[64] < sc[32]
    assert sc[32] < 0.12 and sc[64] < 0.08
    # deterministic: the start phase is fixed
    assert torch.equal(GriffinLim(16384, 4)(mag), GriffinLim(16384, 4)(mag))
