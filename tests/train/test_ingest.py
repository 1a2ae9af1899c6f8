"""The dataset build: a tree with corrupt files, incremental rebuilds, interruption, bad options."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import peak_frequency, sine
from train.cache import DatasetCache, read_manifest
from train.errors import CacheError, DatasetError
from train.build import build_cache
from train.ingest import IngestSettings
from train.slicing import OnsetSettings
from train.spectral import BinSums

REPO = Path(__file__).resolve().parents[2]


def _tree(root: Path, per_cat: int = 6, rate: int = 44100) -> None:
    """Good files of several formats in two categories, with freq = 200 Hz * (index + 1)."""
    for c, cat in enumerate(["trigger", "continuous_variation"]):
        for i in range(per_cat):
            x = sine(200.0 * (i + 1) + 50 * c, 1.0, rate, amp=0.3 + 0.05 * i)
            fmt = [("wav", "PCM_16"), ("wav", "PCM_24"), ("flac", "PCM_16"), ("aiff", "PCM_32"), ("wav", "FLOAT")][i % 5]
            p = root / cat / ("sub" if i % 2 else "") / f"f{i}.{fmt[0]}"
            p.parent.mkdir(parents=True, exist_ok=True)
            data = np.stack([x, x], axis=1) if i % 3 == 0 else x
            sf.write(p, data, rate, subtype=fmt[1])


def _add_bad_files(root: Path) -> dict[str, str]:
    good = root / "trigger" / "f0.wav"
    raw = good.read_bytes()
    (root / "trigger" / "zero.wav").write_bytes(b"")
    (root / "trigger" / "garbage.flac").write_bytes(os.urandom(3000))
    (root / "trigger" / "cut.wav").write_bytes(raw[: len(raw) // 3])
    (root / "continuous_variation" / "notes.txt").write_text("session notes")
    os.symlink(root / "nowhere.wav", root / "continuous_variation" / "dangling.wav")
    sf.write(root / "continuous_variation" / "silent.wav", np.zeros(16000, np.float32), 16000)
    return {
        "trigger/zero.wav": "empty",
        "trigger/garbage.flac": "not audio",
        "trigger/cut.wav": "truncated",
        "continuous_variation/dangling.wav": "unreadable",
    }


def test_build_over_a_tree_with_corrupt_files(tmp_path):
    root = tmp_path / "root"
    _tree(root)
    bad = _add_bad_files(root)
    report = build_cache(root, tmp_path / "cache", jobs=2, min_clips=8, progress=False)
    assert {p: r for p, r, _ in report.skipped} == bad  # every bad file named, with its reason
    assert report.ignored == [("continuous_variation/notes.txt", "not an audio file extension")]
    assert report.below_threshold == 1  # the silent file's only clip
    assert report.n_clips == 12 and report.categories == {"trigger": 6, "continuous_variation": 6}
    assert report.too_few == ["trigger", "continuous_variation"]
    text = report.summary()
    assert "4 files skipped" in text and "trigger/cut.wav: truncated" in text and "too few" in text

    with DatasetCache.open(tmp_path / "cache", verify=True) as cache:
        assert cache.clips.shape == (12, 16384) and cache.clips.dtype == np.float32
        assert cache.sample_rate == 16000 and cache.categories == ["trigger", "continuous_variation"]
        assert float(np.max(np.abs(cache.clips))) <= 1.0
        for k in range(len(cache)):
            path, offset = cache.source(k)
            i = int(Path(path).stem[1:])
            cat = cache.categories[cache.category_index[k]]
            expected = 200.0 * (i + 1) + 50 * (cat == "continuous_variation")
            clip = np.asarray(cache.clips[k, :15000])
            assert abs(peak_frequency(clip, 16000) - expected) < 1.0, (path, cat)  # resampled at the right pitch
            assert offset == 0 and not cache.clips[k, 16001:].any()  # zero-padded tail


def test_same_cache_for_any_number_of_workers(tmp_path):
    root = tmp_path / "root"
    _tree(root, per_cat=5)
    a = build_cache(root, tmp_path / "a", jobs=1, progress=False)
    b = build_cache(root, tmp_path / "b", jobs=2, progress=False)
    assert a.content_hash == b.content_hash


def test_incremental_rebuild_processes_only_new_and_changed_files(tmp_path):
    root = tmp_path / "root"
    _tree(root)
    first = build_cache(root, tmp_path / "cache", jobs=1, progress=False)
    assert first.files_processed == 12 and first.files_reused == 0

    again = build_cache(root, tmp_path / "cache", jobs=1, progress=False)
    assert again.files_processed == 0 and again.content_hash == first.content_hash
    assert first.too_few == ["trigger", "continuous_variation"] and again.too_few == first.too_few
    lenient = build_cache(root, tmp_path / "cache", jobs=1, min_clips=6, progress=False)
    assert lenient.files_processed == 0 and lenient.too_few == []  # judged by this run's --min-clips

    sf.write(root / "trigger" / "new.wav", sine(3000.0, 2.5, 48000), 48000)  # new: 3 clips
    changed = root / "continuous_variation" / "f0.wav"
    sf.write(changed, sine(5000.0, 1.0, 22050), 22050)
    os.utime(changed, ns=(time.time_ns(), time.time_ns() + 10**9))
    (root / "trigger" / "sub" / "f1.wav").unlink()
    grown = build_cache(root, tmp_path / "cache", jobs=1, progress=False)
    assert grown.files_processed == 2 and grown.files_reused == 10
    assert grown.n_clips == 12 - 1 + 3

    scratch = build_cache(root, tmp_path / "scratch", jobs=2, progress=False)
    assert scratch.content_hash == grown.content_hash  # the same bytes as a build from nothing
    with DatasetCache.open(tmp_path / "cache", verify=True) as inc, DatasetCache.open(tmp_path / "scratch") as ref:
        assert np.array_equal(np.asarray(inc.clips), np.asarray(ref.clips))
        for view in ("128", "64"):  # accumulated per-file statistics == statistics of the whole cache
            direct = BinSums.of_clips(np.asarray(ref.clips)).finish()[view]
            mean, std = inc.spectral_stats(view)
            assert np.allclose(mean, direct["mean"], atol=1e-5) and np.allclose(std, direct["std"], atol=1e-5)
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.name.startswith("clips-")] == [read_manifest(tmp_path / "cache")["data_file"]]


def test_changed_settings_rebuild_everything(tmp_path):
    root = tmp_path / "root"
    _tree(root, per_cat=3)
    build_cache(root, tmp_path / "cache", jobs=1, progress=False)
    r = build_cache(root, tmp_path / "cache", IngestSettings(clip_samples=8192), jobs=1, progress=False)
    assert r.files_processed == 6 and r.rebuilt_from_scratch
    with DatasetCache.open(tmp_path / "cache") as c:
        assert c.clip_samples == 8192 and len(c) == 12  # 16000 samples -> 2 clips of 8192 each


def test_hop_threshold_and_normalisation(tmp_path):
    root = tmp_path / "root"
    x = np.concatenate([sine(500.0, 1.0, 16000, 0.5), sine(500.0, 1.0, 16000, 0.001)])  # loud then -60 dBFS
    (root / "trigger").mkdir(parents=True)
    sf.write(root / "trigger" / "a.wav", x, 16000, subtype="FLOAT")
    s = IngestSettings(clip_samples=8192, hop_samples=4096, min_level_dbfs=-40, normalize="clip")
    r = build_cache(root, tmp_path / "cache", s, jobs=1, min_clips=1, progress=False)
    with DatasetCache.open(tmp_path / "cache") as c:
        assert c.offsets.tolist() == [0, 4096, 8192, 12288]  # the quiet half's clips are gone
        assert np.allclose(np.max(np.abs(c.clips), axis=1), 1.0)
    assert r.below_threshold == 3  # 7 candidates (6 full clips at hop 4096 in 32000 samples + 1 padded) - 4 kept


def test_onset_aligned_build(tmp_path):
    root = tmp_path / "root"
    (root / "trigger").mkdir(parents=True)
    rng = np.random.default_rng(1)
    x = np.zeros(48000, np.float32)
    for p in (4000, 20000, 36000):
        x[p : p + 4000] += (rng.standard_normal(4000) * np.exp(-np.arange(4000) / 400) * 0.6).astype(np.float32)
    sf.write(root / "trigger" / "hits.wav", x, 16000)
    s = IngestSettings(clip_samples=4096, align="onset", onset=OnsetSettings(preroll_seconds=0.0))
    build_cache(root, tmp_path / "cache", s, jobs=1, min_clips=1, progress=False)
    with DatasetCache.open(tmp_path / "cache") as c:
        assert np.all(np.abs(c.offsets - np.array([4000, 20000, 36000])) <= 16)
        assert np.all(np.argmax(np.abs(c.clips), axis=1) < 400)  # each clip starts at its attack


def test_spectrogram_views(tmp_path):
    root = tmp_path / "root"
    _tree(root, per_cat=3)
    build_cache(root, tmp_path / "cache", jobs=1, progress=False)
    with DatasetCache.open(tmp_path / "cache") as c:
        big, small = c.spectrograms(slice(0, 4)), c.spectrograms(slice(0, 4), view="64")
        assert big.shape == (4, 128, 128) and small.shape == (4, 64, 64)
        assert big.min() >= -1 and big.max() <= 1 and small.min() >= -1 and small.max() <= 1
        mean, std = c.spectral_stats("128")
        assert mean.shape == (128,) and np.all(std > 0)
        with pytest.raises(ValueError, match="'128' or '64'"):
            c.spectral_stats("32")


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda root: None, "does not exist"),
        (lambda root: root.write_text("x"), "is not a folder"),
        (lambda root: root.mkdir(), "has no category folders"),
        (lambda root: (root / "trigger").mkdir(parents=True), "contains no audio files"),
    ],
)
def test_unusable_roots_are_named(tmp_path, setup, message):
    root = tmp_path / "root"
    setup(root)
    with pytest.raises(DatasetError, match=message):
        build_cache(root, tmp_path / "cache", progress=False)
    assert not (tmp_path / "cache" / "manifest.json").exists()


def test_category_with_nothing_usable_is_an_error(tmp_path):
    root = tmp_path / "root"
    _tree(root, per_cat=2)
    (root / "trigger_continuous").mkdir()
    sf.write(root / "trigger_continuous" / "quiet.wav", sine(100, 1.0, 16000, 1e-5), 16000)
    with pytest.raises(DatasetError, match="'trigger_continuous' has no usable clips"):
        build_cache(root, tmp_path / "cache", jobs=1, progress=False)
    assert not list((tmp_path / "cache").glob("clips-*"))


def test_explicit_categories_choose_and_order(tmp_path):
    root = tmp_path / "root"
    _tree(root, per_cat=2)
    build_cache(root, tmp_path / "cache", categories=["continuous_variation"], jobs=1, progress=False)
    with DatasetCache.open(tmp_path / "cache") as c:
        assert c.categories == ["continuous_variation"] and len(c) == 2
    with pytest.raises(DatasetError, match="category folder\\(s\\) drones not found"):
        build_cache(root, tmp_path / "cache", categories=["drones"], progress=False)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"clip_samples": 20000}, "clip_samples must be a power of 2"),
        ({"clip_samples": 1 << 20}, "clip_samples must be a power of 2"),
        ({"align": "beats"}, "align must be one of grid, onset"),
        ({"level_mode": "lufs"}, "level_mode must be one of peak, rms"),
        ({"normalize": "loud"}, "normalize must be one of none, file, clip"),
        ({"resample_quality": "best"}, "resample_quality must be one of"),
        ({"hop_samples": 0}, "hop_samples must be in 1..clip_samples"),
        ({"sample_rate": 100}, "sample_rate must be an integer in 4000..192000"),
        ({"min_level_dbfs": 6.0}, "min_level_dbfs must be in"),
    ],
)
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(DatasetError, match=message):
        IngestSettings(**kwargs)


def test_interrupted_build_keeps_the_old_cache(tmp_path):
    root = tmp_path / "root"
    _tree(root)
    first = build_cache(root, tmp_path / "cache", jobs=1, progress=False)
    sf.write(root / "trigger" / "extra.wav", sine(900.0, 1.0, 16000), 16000)

    def ctrl_c(i: int) -> None:
        if i == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_cache(root, tmp_path / "cache", jobs=2, progress=False, on_file=ctrl_c)
    assert not list((tmp_path / "cache").glob("*.partial"))
    with DatasetCache.open(tmp_path / "cache", verify=True) as c:
        assert c.content_hash == first.content_hash


def test_killed_build_leaves_nothing_a_later_run_would_trust(tmp_path):
    """SIGKILL mid-write: the manifest still names the old, intact data; the next build cleans up."""
    root = tmp_path / "root"
    _tree(root, per_cat=2)
    first = build_cache(root, tmp_path / "cache", jobs=1, progress=False)
    for i in range(400):  # enough work that the kill lands mid-build
        sf.write(root / "continuous_variation" / f"more{i}.wav", sine(300.0 + i, 2.0, 44100), 44100)
    code = (
        "import sys; sys.path.insert(0, %r)\n"
        "from train.build import build_cache\n"
        "build_cache(%r, %r, jobs=2, progress=False)\n" % (str(REPO), str(root), str(tmp_path / "cache"))
    )
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)  # its own group: the kill takes its workers too
    deadline = time.time() + 60
    while time.time() < deadline and not list((tmp_path / "cache").glob("*.partial")):
        time.sleep(0.01)
    time.sleep(0.3)
    assert proc.poll() is None, "the build finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the build, its forkserver and its decoders (killed alone, they outlived the test)
    proc.wait()
    assert list((tmp_path / "cache").glob("*.partial"))  # it really died mid-write
    with DatasetCache.open(tmp_path / "cache", verify=True) as c:
        assert c.content_hash == first.content_hash
    again = build_cache(root, tmp_path / "cache", jobs=2, progress=False)
    assert again.n_clips == 4 + 400 * 2 and not list((tmp_path / "cache").glob("*.partial"))


def test_cache_refuses_unknown_versions_and_damaged_data(tmp_path):
    root = tmp_path / "root"
    _tree(root, per_cat=2)
    build_cache(root, tmp_path / "cache", jobs=1, progress=False)
    m = json.loads((tmp_path / "cache" / "manifest.json").read_text())
    data = tmp_path / "cache" / m["data_file"]
    with open(data, "r+b") as f:  # flip bytes: size is right, hash is not
        f.write(b"\x00\x00\x80\x7f")
    DatasetCache.open(tmp_path / "cache").close()
    with pytest.raises(CacheError, match="does not match the SHA-256"):
        DatasetCache.open(tmp_path / "cache", verify=True)
    with open(data, "ab") as f:
        f.write(b"\x00" * 4)
    with pytest.raises(CacheError, match="bytes, the manifest says"):
        DatasetCache.open(tmp_path / "cache")
    m["version"] = 2
    (tmp_path / "cache" / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(CacheError, match="version 2; this GestureGAN reads version 1 only"):
        DatasetCache.open(tmp_path / "cache")
    with pytest.raises(CacheError, match="does not exist"):
        DatasetCache.open(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CacheError, match="holds no manifest.json"):
        DatasetCache.open(tmp_path / "empty")


def test_close_is_idempotent(tmp_path):
    root = tmp_path / "root"
    _tree(root, per_cat=1)
    build_cache(root, tmp_path / "cache", jobs=1, progress=False)
    c = DatasetCache.open(tmp_path / "cache")
    c.close()
    c.close()
    assert len(c.clips) == 0


def test_symlinked_folders_are_followed_once_and_cycles_do_not_hang(tmp_path):
    root = tmp_path / "root"
    _tree(root, per_cat=2)
    shared = tmp_path / "samples"
    shared.mkdir()
    sf.write(shared / "linked.wav", sine(440.0, 1.0, 16000), 16000)
    os.symlink(shared, root / "trigger" / "library")
    os.symlink(root / "trigger", root / "trigger" / "loop")  # a cycle
    r = build_cache(root, tmp_path / "cache", jobs=1, progress=False)
    assert r.categories["trigger"] == 3 and not r.skipped
