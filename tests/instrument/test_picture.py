"""The numpy-only PNG spectrogram writer produces valid images of the right size."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from instrument.picture import spectrogram_db, write_png, write_spectrogram_png


def _read_png(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, size = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        crc = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])[0]
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    w, h = size
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + 3 * w)
    return raw[:, 1:].reshape(h, w, 3)


def test_png_round_trip(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, size=(7, 5, 3), dtype=np.uint8)
    write_png(tmp_path / "a.png", img)
    assert np.array_equal(_read_png(tmp_path / "a.png"), img)


def test_spectrogram_shows_a_tone_at_its_frequency():
    sr = 16000
    x = np.sin(2 * np.pi * 2000 * np.arange(sr) / sr)
    db = spectrogram_db(x)
    assert db.shape[0] == 257 and abs(int(np.argmax(db.mean(axis=1))) - 2000 / (sr / 512)) <= 1
    assert db.max() == pytest.approx(0.0, abs=0.2)  # full-scale sine reads 0 dBFS


def test_grid_of_tiles_with_labels(tmp_path):
    sounds = [np.random.default_rng(i).standard_normal(4000) * 0.1 for i in range(5)]
    write_spectrogram_png(tmp_path / "g.png", sounds, 16000, labels=[f"clip {i}" for i in range(5)], columns=3)
    img = _read_png(tmp_path / "g.png")
    assert img.shape[0] > 2 * 128 and img.shape[1] > 3 * 28
    with pytest.raises(ValueError, match="at least one sound"):
        write_spectrogram_png(tmp_path / "e.png", [], 16000)
