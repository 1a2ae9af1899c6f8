"""The gesture classifier, the evaluation numbers and dataset sorting, on synthetic data."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from instrument.main import main
from train.cache import DatasetCache
from train.classifier import load_classifier, mel_filterbank, split_by_file
from train.corpus import write_corpus
from train.errors import CheckpointError
from train.build import build_cache
from train.ingest import IngestSettings
from train.metrics import inception_score, nearest_neighbour_distances, spectral_distance_db, spectral_profile

from .conftest import TINY


@pytest.fixture(scope="module")
def clf_cache(tmp_path_factory):
    """Enough of the built-in corpus for a classifier to learn: 24 recordings per category."""
    root = tmp_path_factory.mktemp("clfcorpus")
    write_corpus(root, per_category=24, seed=11, progress=False)
    out = tmp_path_factory.mktemp("clfcache") / "cache"
    build_cache(root, out, IngestSettings(), jobs=1, min_clips=1, progress=False)
    return out


@pytest.fixture(scope="module")
def classifier(clf_cache, tmp_path_factory):
    path = tmp_path_factory.mktemp("clf") / "classifier.pt"
    assert main(["classifier", "train", str(clf_cache), "--out", str(path), "--epochs", "30", "--batch-size", "16", "-q"]) == 0
    return path


def test_inception_score_bounds():
    n = 4
    assert inception_score(np.full((100, n), 1 / n)) == pytest.approx(1.0)  # no confidence
    assert inception_score(np.tile(np.eye(n)[0], (100, 1))) == pytest.approx(1.0)  # confident, one class only
    assert inception_score(np.tile(np.eye(n), (25, 1))) == pytest.approx(n, rel=1e-6)  # confident and spread
    assert 1 < inception_score(np.tile(0.7 * np.eye(n) + 0.075, (25, 1))) < n


def test_nearest_neighbour_distances():
    bank = np.array([[0.0, 0.0], [10.0, 0.0]])
    d = nearest_neighbour_distances(np.array([[1.0, 0.0], [10.0, 2.0], [0.0, 0.0]]), bank)
    assert d == pytest.approx([1.0, 2.0, 0.0])


def test_spectral_distance_is_zero_for_the_same_data_and_grows_with_difference():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.1, (8, 16384)).astype(np.float32)
    ref = {0: spectral_profile(noise)}
    assert spectral_distance_db({0: noise}, ref) == pytest.approx(0.0, abs=1e-6)
    # half the amplitude: every bin's mean drops 6.02 dB, the spread of log magnitudes stays the same
    assert spectral_distance_db({0: noise * 0.5}, ref) == pytest.approx(6.02, rel=0.01)


def test_mel_filterbank_covers_the_spectrum():
    fb = mel_filterbank(16000, 512, 64)
    assert fb.shape == (64, 257) and np.allclose(fb.sum(axis=1), 1, atol=1e-5)
    assert (fb.argmax(axis=1)[1:] >= fb.argmax(axis=1)[:-1]).all()


def test_split_by_file_keeps_recordings_on_one_side(clf_cache):
    with DatasetCache.open(clf_cache) as cache:
        split = split_by_file(cache)
        files = {p: set(cache.file_index[split[p]]) for p in ("train", "val", "test")}
        assert not files["train"] & files["test"] and not files["train"] & files["val"] and not files["val"] & files["test"]
        assert sum(len(split[p]) for p in ("train", "val", "test")) == len(cache)
        for k in range(4):  # every category is in the test split
            assert (cache.category_index[split["test"]] == k).any()


def test_classifier_learns_the_gesture_categories(classifier):
    clf = load_classifier(classifier)
    info = clf.info
    assert info["test_accuracy"] >= 0.6, info  # chance is 0.25; the composer's overfit classifier scored 0.09
    assert set(info["per_category_test_accuracy"]) == set(clf.categories)
    assert np.asarray(info["confusion"]).sum() == info["clips"]["test"]
    assert info["class_weights"] is None  # a balanced corpus: the plain loss, exactly
    assert info["balanced_test_accuracy"] == pytest.approx(np.mean(list(info["per_category_test_accuracy"].values())))


def test_an_unbalanced_corpus_weighs_its_rare_category_up(tmp_path, capsys):
    """Real corpora are unbalanced: the loss weighs each category by the inverse of its share of the
    training clips (n / (k x count)), and the command line says so."""
    root = tmp_path / "corpus"
    write_corpus(root, per_category=12, seed=5, progress=False)
    for f in sorted((root / "trigger_continuous").rglob("*.wav"))[4:]:
        f.unlink()  # 4 recordings left beside 12 of each other category
    cache = tmp_path / "cache"
    build_cache(root, cache, IngestSettings(), jobs=1, min_clips=1, progress=False)
    out = tmp_path / "clf.pt"
    assert main(["classifier", "train", str(cache), "--out", str(out), "--epochs", "3", "--batch-size", "16", "-q"]) == 0
    info = load_classifier(out).info
    with DatasetCache.open(cache) as c:
        y = c.category_index[split_by_file(c)["train"]]
        rare = list(c.categories).index("trigger_continuous")
    counts = np.bincount(y, minlength=4)
    assert info["class_weights"] == pytest.approx(list(counts.sum() / (4 * counts)), abs=1e-4)
    assert max(info["class_weights"]) == info["class_weights"][rare] > 1
    assert "weighed by the inverse of their share" in capsys.readouterr().out


def test_evaluate_reports_accuracy_is_mixtures_and_copying(tiny_cache, clf_cache, classifier, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(tiny_cache), "--out", str(run), *TINY, "--steps", "1", "--checkpoint-every", "1", "--preview-every", "0"]) == 0
    capsys.readouterr()
    report_path = tmp_path / "report.json"
    assert main(["evaluate", str(run), "--classifier", str(classifier), "--cache", str(clf_cache), "-n", "8",
                 "--json", str(report_path), "--png", str(tmp_path / "eval.png")]) == 0
    out = capsys.readouterr().out
    assert "generated clips classified as the requested category" in out and "inception score: generated" in out
    r = json.loads(report_path.read_text())
    assert set(r["category_accuracy"]) == {"trigger", "trigger_continuous", "continuous_variation", "continuous_repetition"}
    assert all(0 <= a <= 1 for a in r["category_accuracy"].values())
    # each request's clips are heard as some category: the shares sum to one, the diagonal is the accuracy
    assert set(r["heard_as"]) == set(r["category_accuracy"])
    for c, heard in r["heard_as"].items():
        assert abs(sum(heard.values()) - 1) < 1e-6 and heard[c] == pytest.approx(r["category_accuracy"][c])
    assert "asked for trigger, heard as:" in out
    assert 1 <= r["inception_score_generated"] <= 4 and 1 <= r["inception_score_real"] <= 4
    assert r["inception_score_real"] > 1.5  # real data: confident and spread over the categories
    assert len(r["mixtures"]) == 3 and all(len(m["share_of_to"]) == 5 for m in r["mixtures"])
    assert r["nearest_neighbour"]["training_clips_searched"] > 0
    assert (tmp_path / "eval.png").read_bytes()[:4] == b"\x89PNG"
    assert r["spectral_lines"]["bins"] == 8192 + 1 and "spectral lines the data lacks" in out
    # each category against its own real clips too: a tone one category makes is not thinned by the others
    per = r["periodic_artefact_db"]["per_category"]
    assert per and set(per) <= set(r["category_accuracy"]) and set(per) == set(r["spectral_lines"]["per_category"])
    assert all(v["excess"] == pytest.approx(v["generated"] - v["real"]) for v in per.values())
    assert "per category (excess over that category's real clips)" in out and "against its own real clips:" in out


def test_spectral_lines_name_a_buzz_every_clip_has():
    from train.evaluate import _spectral_lines

    rng = np.random.default_rng(0)
    t = np.arange(16384) / 16000
    real = rng.normal(0, 0.1, (256, 16384))  # 256 clips a side: the contrast's noise is ~0.5 dB a bin
    buzzing = rng.normal(0, 0.1, (256, 16384)) + 0.03 * np.sin(2 * np.pi * 1000 * t)
    found = _spectral_lines(buzzing, real, 16000)
    assert 1 <= found["bins_over_3db"] <= 5 and abs(found["worst"][0]["hz"] - 1000) < 2 and found["worst"][0]["excess_db"] > 10
    assert _spectral_lines(rng.normal(0, 0.1, (256, 16384)), real, 16000)["bins_over_3db"] == 0


def test_evaluate_refuses_a_classifier_for_other_categories(tiny_cache, cache_two_categories, tmp_path, capsys):
    clf = tmp_path / "clf2.pt"
    assert main(["classifier", "train", str(cache_two_categories), "--out", str(clf), "--epochs", "1", "-q"]) == 0
    run = tmp_path / "run"
    assert main(["train", str(tiny_cache), "--out", str(run), *TINY, "--steps", "1", "--checkpoint-every", "1", "--preview-every", "0"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--classifier", str(clf), "-n", "2"]) == 2
    assert "does not know categories ['trigger_continuous', 'continuous_repetition']" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="not a GestureGAN classifier"):
        load_classifier(run / "best.pt")


def test_sort_files_confident_recordings_and_reports_the_rest(classifier, tmp_path, capsys):
    src = tmp_path / "unlabelled"
    write_corpus(tmp_path / "fresh", per_category=3, seed=99, progress=False)
    src.mkdir()
    for p in (tmp_path / "fresh").rglob("*.wav"):
        shutil.copy(p, src / p.name)
    (src / "broken.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    # a long file: classified from all its clips
    sf.write(src / "long.wav", np.tile(sf.read(src / "trigger_00000.wav")[0], 3), 16000)
    root = tmp_path / "dataset"
    report = tmp_path / "sort.json"
    assert main(["dataset", "sort", str(src), "--into", str(root), "--classifier", str(classifier), "--threshold", "0.5",
                 "--report", str(report), "-q"]) == 0
    out = capsys.readouterr().out
    r = json.loads(report.read_text())
    placed = {name: c for c, files in r["placed"].items() for name, _ in files}
    assert len(placed) + len(r["uncertain"]) == 13 and [f[0] for f in r["failed"]] == ["broken.wav"]
    for name, c in placed.items():
        assert (root / c / name).is_file() and (src / name).is_file()  # copied, not moved
    correct = sum(c == name.rsplit("_", 1)[0] for name, c in placed.items() if name != "long.wav")
    assert correct >= 0.6 * (len(placed) - ("long.wav" in placed))
    assert "could not be read" in out
    # a second sort into the same root never overwrites
    assert main(["dataset", "sort", str(src), "--into", str(root), "--classifier", str(classifier), "--threshold", "0.5", "-q"]) == 0
    for name, c in placed.items():
        assert (root / c / (name[:-4] + "-1.wav")).is_file()
    # threshold 1.0: nothing is certain enough, nothing is copied
    capsys.readouterr()
    assert main(["dataset", "sort", str(src), "--into", str(tmp_path / "none"), "--classifier", str(classifier),
                 "--threshold", "1.0", "-q"]) == 0
    assert not (tmp_path / "none").exists()


def test_research_commands_name_the_bad_input(corpus_dir, classifier, tmp_path, capsys):
    one = tmp_path / "one-category"
    build_cache(corpus_dir, one, IngestSettings(), categories=["trigger"], jobs=1, min_clips=1, progress=False)
    cases = [
        (["classifier", "train", str(one), "--out", str(tmp_path / "c.pt"), "-q"], "a classifier needs at least 2 categories"),
        (["evaluate", str(tmp_path), "--classifier", str(classifier)], f"{tmp_path} holds no checkpoints"),
        (["evaluate", str(tmp_path / "x.pt"), "--classifier", str(tmp_path / "missing.pt")], "no checkpoint at"),
        (["dataset", "sort", str(corpus_dir), "--into", str(tmp_path / "d"), "--classifier", str(tmp_path / "missing.pt")],
         "no classifier at"),
        (["dataset", "sort", str(corpus_dir), "--into", str(tmp_path / "d"), "--classifier", str(classifier), "--threshold", "1.5"],
         "threshold must be between 0 and 1, got 1.5"),
        (["dataset", "sort", str(tmp_path / "nowhere"), "--into", str(tmp_path / "d"), "--classifier", str(classifier)],
         "is not a folder of recordings"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err, argv
    state = torch.load(classifier, weights_only=False)
    state["version"] = 7
    newer = tmp_path / "newer.pt"
    torch.save(state, newer)
    with pytest.raises(CheckpointError, match="classifier format version 7; this GestureGAN reads up to version 1"):
        load_classifier(newer)
