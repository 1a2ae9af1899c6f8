"""The Debian sound-package corpus builder, on packages unpacked into a temporary root: excerpts, onsets,
provenance and licences, and the errors for missing packages and broken files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from instrument.main import main
from train.errors import DatasetError
from train.sound_packages import PACKAGES, SOURCES, Source, build_debian_corpus, licence_for, licences

COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: 2016 Someone
License: MIT

Files: etc/samples/drone.flac
Copyright: 2013 A Recordist
 and a second line
Source: http://example.org/sounds/1
License: CC0

Files: debian/*
Copyright: 2020 The Packager
License: GPL-2+
"""

SRC = Source("fake-sounds", "usr/share/fake/samples", {
    "trigger": ("hit.*", "broken.*"),
    "continuous_variation": ("drone.*",),
})


@pytest.fixture()
def fake_root(tmp_path):
    root = tmp_path / "root"
    base = root / SRC.folder
    base.mkdir(parents=True)
    sr = 44100
    hit = np.zeros(int(1.7 * sr), np.float32)
    hit[int(0.25 * sr):] = np.exp(-np.arange(len(hit) - int(0.25 * sr)) / (0.1 * sr)) * 0.8  # an attack at 0.25 s
    sf.write(base / "hit.wav", hit, sr)
    t = np.arange(int(3.2 * sr)) / sr
    sf.write(base / "drone.flac", np.stack([0.3 * np.sin(2 * np.pi * 220 * t)] * 2, axis=1), sr)  # stereo, 3.2 s
    (base / "broken.wav").write_bytes(b"RIFF\x00\x00garbage")
    (base / "notes.txt").write_text("not a sound")
    doc = root / "usr/share/doc/fake-sounds"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(COPYRIGHT)
    return root


def test_one_shots_from_their_attack_continuous_sounds_whole_with_provenance(fake_root, tmp_path):
    out = tmp_path / "corpus"
    desc = build_debian_corpus(out, fake_root, sources=(SRC,), progress=False)
    assert desc["counts"]["trigger"] == 1 and desc["counts"]["continuous_variation"] == 1
    assert [s["file"].endswith("broken.wav") for s in desc["skipped"]] == [True]
    hit = [c for c in desc["files"] if c["category"] == "trigger"][0]
    assert hit["offset_seconds"] == pytest.approx(0.25, abs=1e-3) and hit["license"] == "MIT" and hit["package"] == "fake-sounds"
    x, sr = sf.read(out / hit["path"])
    assert sr == 44100 and len(x) == 44100 and abs(x[0]) > 0.5  # starts at the attack, one second long
    drone = [c for c in desc["files"] if c["category"] == "continuous_variation"][0]
    assert drone["license"] == "CC0" and drone["copyright"] == "2013 A Recordist and a second line" and drone["seconds"] == pytest.approx(3.2)
    info = sf.info(out / drone["path"])
    assert info.channels == 2 and info.frames == int(3.2 * 44100)
    assert json.loads((out / "corpus.json").read_text())["counts"] == desc["counts"]
    # the dataset pipeline takes it as it takes any recordings: the drone gives a clip every half second
    assert main(["dataset", "build", str(out), "--out", str(tmp_path / "cache"), "--min-clips", "1", "--jobs", "1", "--overlap", "0.5"]) == 0
    from train.cache import DatasetCache

    with DatasetCache.open(tmp_path / "cache") as cache:
        assert cache.counts()["trigger"] == 1 and cache.counts()["continuous_variation"] >= 5


def test_missing_packages_are_named_with_the_install_command(tmp_path, capsys):
    with pytest.raises(DatasetError, match="apt-get install fake-sounds"):
        build_debian_corpus(tmp_path / "out", tmp_path, sources=(SRC,), progress=False)
    assert main(["dataset", "debian", "--out", str(tmp_path / "out"), "--root", str(tmp_path), "-q"]) == 2
    err = capsys.readouterr().err
    assert "not installed" in err and "apt-get install" in err and "sonic-pi-samples" in err


def test_a_folder_that_another_package_fills_does_not_count_as_installed(monkeypatch, tmp_path):
    """Oxygen's sounds sit in /usr/share/sounds, which the freedesktop theme makes too: on the real root a
    package counts as there when dpkg says it is installed, not when its folder exists."""
    import train.sound_packages as sp

    monkeypatch.setattr(sp, "package_version", lambda package: None)
    shared = Source("fake-sounds", "usr", {"trigger": ("*",)})  # /usr exists on every machine
    with pytest.raises(DatasetError, match="apt-get install fake-sounds"):
        build_debian_corpus(tmp_path / "out", "/", sources=(shared,), progress=False)


def test_a_pattern_that_matches_nothing_is_an_error(fake_root, tmp_path):
    src = Source("fake-sounds", SRC.folder, {"trigger": ("nothing-*.wav",)})
    with pytest.raises(DatasetError, match="no file in .* matches"):
        build_debian_corpus(tmp_path / "out", fake_root, sources=(src,), progress=False)


def test_dep5_licences_match_by_file_name_and_skip_the_packaging():
    stanzas = licences(COPYRIGHT)
    assert [s[2] for s in stanzas] == ["MIT", "CC0", "GPL-2+"]
    assert licence_for("usr/share/fake/samples/drone.flac", stanzas)[1] == "CC0"
    assert licence_for("usr/share/fake/samples/other.flac", stanzas)[1] == "MIT"


def test_the_shipped_table_names_four_categories_and_no_drum_kits():
    assert len(set(PACKAGES)) == len(PACKAGES)
    cats = {c for s in SOURCES for c in s.files}
    assert cats == {"trigger", "trigger_continuous", "continuous_variation", "continuous_repetition"}
    for s in SOURCES:
        assert "drum" not in s.package and "soundfont" not in s.package and "freepats" not in s.package
        for pats in s.files.values():
            assert not any(p.startswith(("drums/", "drum_")) for p in pats)
