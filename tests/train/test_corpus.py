"""The built-in gesture corpus: deterministic, valid, varied, and each category shaped as defined."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import soundfile as sf

from train.corpus import RECIPES, synth_one, write_corpus
from train.errors import DatasetError
from train.ingest import DEFAULT_CATEGORIES

SR, N = 16000, 16384


def _energy_fractions(x):
    e = x.astype(np.float64) ** 2
    return e[: len(x) // 4].sum() / e.sum(), e[len(x) // 2 :].sum() / e.sum()


def _envelope(x, hop):
    n = len(x) // hop
    return np.sqrt((x[: n * hop].astype(np.float64).reshape(n, hop) ** 2).mean(axis=1))


def _periodicity(x):
    """Autocorrelation peak of the envelope after removing its slow trend (0 = none, 1 = exact)."""
    env = _envelope(x, 80)
    trend = np.convolve(np.pad(env, 15, mode="edge"), np.ones(31) / 31, "valid")
    d = (env - trend)[15:-15]
    m = len(d)
    ac = np.correlate(d, d, "full")[m - 1 :]
    ac /= ac[0] + 1e-12
    z = int(np.argmax(ac < 0))
    return float(ac[z : m // 2].max()) if 0 < z < m // 2 else 0.0


@pytest.fixture(scope="module")
def sounds():
    return {c: [synth_one(c, i, 0, SR, N)[0] for i in range(48)] for c in DEFAULT_CATEGORIES}


def test_every_category_has_a_recipe_set():
    assert set(RECIPES) == set(DEFAULT_CATEGORIES)


def test_trigger_clips_are_front_loaded(sounds):
    for x in sounds["trigger"]:
        front, second = _energy_fractions(x)
        assert front >= 0.75 and second <= 0.05


def test_trigger_continuous_has_an_initial_peak_then_keeps_sounding(sounds):
    for x in sounds["trigger_continuous"]:
        env = _envelope(x, 160)
        assert env[:2].max() >= 0.5 * env.max()  # at its peak level within 20 ms
        assert _energy_fractions(x)[1] >= 0.08  # still sounding in the second half


def test_continuous_variation_has_no_attack(sounds):
    for x in sounds["continuous_variation"]:
        env = _envelope(x, 160)
        assert env[:2].max() <= 0.3 * env.max()
        assert _energy_fractions(x)[0] <= 0.6


def test_continuous_repetition_is_steady_and_periodic(sounds):
    p = []
    for x in sounds["continuous_repetition"]:
        front, second = _energy_fractions(x)
        assert 0.1 <= front <= 0.4 and 0.3 <= second <= 0.7
        p.append(_periodicity(x))
    assert min(p) >= 0.2 and np.median(p) >= 0.6
    assert np.median([_periodicity(x) for x in sounds["continuous_variation"]]) < 0.4


def test_variety_inside_each_category(sounds):
    for c in DEFAULT_CATEGORIES:
        recipes = Counter(synth_one(c, i, 0, SR, N)[1]["recipe"] for i in range(48))
        assert len(recipes) >= 3, (c, recipes)
        centroids = []
        for x in sounds[c]:
            mag = np.abs(np.fft.rfft(x))
            centroids.append((mag * np.fft.rfftfreq(len(x), 1 / SR)).sum() / mag.sum())
        assert np.percentile(centroids, 90) / np.percentile(centroids, 10) > 1.5, c  # timbres differ
        peaks = [np.abs(x).max() for x in sounds[c]]
        assert 0.25 <= min(peaks) and max(peaks) <= 0.9 + 1e-6


def test_a_file_does_not_depend_on_how_many_are_made():
    a, _ = synth_one("trigger", 2, 7, SR, N)
    b, _ = synth_one("trigger", 2, 7, SR, N)
    c, _ = synth_one("trigger", 2, 8, SR, N)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_written_corpus_is_deterministic_and_valid(tmp_path):
    d1 = write_corpus(tmp_path / "a", per_category=3, seed=5, progress=False)
    write_corpus(tmp_path / "b", per_category=5, seed=5, progress=False, jobs=2)
    d3 = write_corpus(tmp_path / "c", per_category=3, seed=6, progress=False)
    assert len(d1["files"]) == 12
    for f in d1["files"]:
        a, b = (tmp_path / "a" / f["path"]).read_bytes(), (tmp_path / "b" / f["path"]).read_bytes()
        assert a == b, f["path"]
        info = sf.info(str(tmp_path / "a" / f["path"]))
        assert info.samplerate == SR and info.frames == N and info.channels == 1 and info.subtype == "PCM_16"
    assert any((tmp_path / "a" / f["path"]).read_bytes() != (tmp_path / "c" / f["path"]).read_bytes() for f in d3["files"])
    saved = json.loads((tmp_path / "a" / "corpus.json").read_text())
    assert saved["seed"] == 5 and saved["categories"] == list(DEFAULT_CATEGORIES)
    assert {f["recipe"] for f in saved["files"]} <= {r.__name__ for rs in RECIPES.values() for r in rs}


def test_other_rates_and_lengths(tmp_path):
    write_corpus(tmp_path, per_category=1, seed=0, sample_rate=44100, seconds=2.0, categories=("trigger",), subtype="FLOAT", progress=False)
    info = sf.info(str(tmp_path / "trigger" / "trigger_00000.wav"))
    assert info.samplerate == 44100 and info.frames == 88200 and info.subtype == "FLOAT"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"per_category": 0}, "per_category must be at least 1"),
        ({"seconds": 0.0}, "seconds must be in"),
        ({"sample_rate": 100}, "sample_rate must be in"),
        ({"subtype": "PCM_12"}, "subtype must be one of"),
        ({"categories": ("drones",)}, "category must be one of"),
    ],
)
def test_bad_options_are_named(tmp_path, kwargs, message):
    with pytest.raises(DatasetError, match=message):
        write_corpus(tmp_path, progress=False, **kwargs)
