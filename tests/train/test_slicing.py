"""Slicing with hop, padding, level threshold, onset alignment, clip-length validation."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import sine
from train.slicing import (
    OnsetSettings,
    check_clip_samples,
    clip_levels_dbfs,
    detect_onsets,
    grid_starts,
    onset_starts,
    take_clips,
)


@pytest.mark.parametrize(
    "n, clip, hop, pad, expected",
    [
        (16000, 16384, 16384, True, [0]),  # a one-second file gives one zero-padded clip
        (16000, 16384, 16384, False, []),
        (16384, 16384, 16384, True, [0]),  # exactly one clip: nothing to pad
        (32768, 16384, 16384, True, [0, 16384]),
        (40000, 16384, 8192, False, [0, 8192, 16384]),  # 50 % overlap
        (40000, 16384, 8192, True, [0, 8192, 16384, 24576]),
        (1, 1024, 1024, True, [0]),
        (0, 1024, 1024, True, []),
    ],
)
def test_grid_starts(n, clip, hop, pad, expected):
    assert grid_starts(n, clip, hop, pad).tolist() == expected


def test_every_sample_is_covered_by_padded_grid():
    for n in (1, 1023, 1024, 1025, 5000, 8193):
        starts = grid_starts(n, 1024, 512, True)
        covered = np.zeros(n, bool)
        for s in starts:
            covered[s : s + 1024] = True
        assert covered.all(), n


def test_take_clips_zero_pads_the_tail():
    x = np.arange(1, 2501, dtype=np.float32)
    clips = take_clips(x, np.array([0, 2048]), 1024 * 2)
    assert clips.shape == (2, 2048)
    assert clips[0, 0] == 1 and clips[0, -1] == 2048
    assert clips[1, :452].tolist() == list(range(2049, 2501)) and not clips[1, 452:].any()


def test_levels_peak_and_rms():
    x = sine(1000.0, 1.0, 16000, amp=0.1)[None]  # -20 dBFS peak, -23.01 dBFS RMS
    assert clip_levels_dbfs(x, "peak")[0] == pytest.approx(-20.0, abs=0.01)
    assert clip_levels_dbfs(x, "rms")[0] == pytest.approx(-23.01, abs=0.02)
    assert clip_levels_dbfs(np.zeros((1, 10), np.float32), "peak")[0] == -np.inf
    with pytest.raises(ValueError, match="level mode must be one of peak, rms"):
        clip_levels_dbfs(x, "loudness")


def _hits(positions, n, sr=16000, seed=0):
    rng = np.random.default_rng(seed)
    x = np.zeros(n, np.float32)
    for p in positions:
        m = min(3000, n - p)
        x[p : p + m] += (rng.standard_normal(m) * np.exp(-np.arange(m) / 500) * 0.5).astype(np.float32)
    return x


def test_onsets_found_at_the_attacks():
    true = [0, 3000, 20000, 41000]
    found = detect_onsets(_hits(true, 60000), 16000)
    assert len(found) == len(true)
    assert np.max(np.abs(found - true)) <= 32  # 2 ms at 16 kHz


def test_onset_clips_start_at_the_attack_with_preroll():
    x = _hits([5000, 30000], 50000)
    starts = onset_starts(x, 16000, OnsetSettings(preroll_seconds=0.005))
    assert np.all(np.abs(starts - np.array([5000, 30000]) + 80) <= 32)
    clips = take_clips(x, starts, 4096)
    env = np.abs(clips)
    assert np.all(env[:, :40].max(axis=1) < 1e-6)  # pre-roll is silence ...
    assert np.all(env[:, 60:400].max(axis=1) > 0.2)  # ... and the hit follows right away


def test_close_attacks_merge_and_quiet_ones_are_ignored():
    x = _hits([4000, 4400], 20000)  # 25 ms apart: one gesture
    assert len(detect_onsets(x, 16000, OnsetSettings(min_gap_seconds=0.1))) == 1
    quiet = _hits([4000], 20000) * 10 ** (-70 / 20)
    assert len(detect_onsets(quiet, 16000)) == 0


def test_steady_tone_has_one_onset_only():
    x = np.concatenate([np.zeros(4000, np.float32), sine(440, 2.0, 16000)])
    assert len(detect_onsets(x, 16000)) == 1


@pytest.mark.parametrize("bad", [20000, 512, 2**19, 0, -16384, 16384.0])
def test_clip_length_must_be_power_of_two_in_range(bad):
    with pytest.raises(ValueError, match="power of 2"):
        check_clip_samples(bad)


@pytest.mark.parametrize("ok", [1024, 16384, 32768, 65536])
def test_clip_lengths_allowed(ok):
    assert check_clip_samples(ok) == ok
