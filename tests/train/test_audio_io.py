"""Decoding: pitch survives resampling, every sample format scales the same, mixdown, bad files."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import peak_frequency, sine
from train.audio_io import DecodeError, read_mono


@pytest.mark.parametrize("source_rate", [8000, 22050, 44100, 48000, 96000])
def test_sine_keeps_its_pitch_and_length_through_resampling(tmp_path, source_rate):
    p = tmp_path / "s.wav"
    sf.write(p, sine(440.0, 1.0, source_rate), source_rate, subtype="PCM_24")
    a = read_mono(str(p), 16000)
    assert a.sample_rate == 16000 and a.source_sample_rate == source_rate
    assert abs(len(a.samples) - 16000) <= 1
    assert abs(peak_frequency(a.samples, 16000) - 440.0) < 0.5  # played at the right speed, not sped up
    assert abs(np.max(np.abs(a.samples[1000:-1000])) - 0.5) < 0.01  # level kept


def test_high_frequency_above_new_nyquist_is_removed_not_aliased(tmp_path):
    p = tmp_path / "hf.wav"
    sf.write(p, sine(11000.0, 1.0, 44100), 44100, subtype="FLOAT")  # above 8 kHz Nyquist of 16 kHz
    a = read_mono(str(p), 16000)
    assert np.sqrt(np.mean(a.samples[2000:-2000] ** 2)) < 1e-3


@pytest.mark.parametrize("container", ["wav", "flac", "aiff"])
def test_int16_int24_int32_float_normalise_identically(tmp_path, container):
    ref = sine(1000.0, 0.25, 16000, amp=0.9)
    subtypes = ["PCM_16", "PCM_24", "PCM_32", "FLOAT"] if container != "flac" else ["PCM_16", "PCM_24"]
    tolerance = {"PCM_16": 2 / 32768, "PCM_24": 2 / 2**23, "PCM_32": 1e-6, "FLOAT": 1e-7}
    for st in subtypes:
        p = tmp_path / f"x_{st}.{container}"
        sf.write(p, ref, 16000, subtype=st)
        got = read_mono(str(p), 16000).samples
        assert got.shape == ref.shape
        assert np.max(np.abs(got - ref)) <= tolerance[st], st


def test_raw_int32_full_scale_reads_as_plus_minus_one(tmp_path):
    """The research bug: int32 audio divided by 32768 came out 65536x too loud."""
    data = np.array([2**31 - 1, -(2**31), 2**30, 0] * 100, dtype=np.int32)
    p = tmp_path / "i32.wav"
    sf.write(p, data, 16000, subtype="PCM_32")
    got = read_mono(str(p), 16000).samples
    assert got.max() == pytest.approx(1.0, abs=1e-6)
    assert got.min() == pytest.approx(-1.0, abs=1e-6)
    assert got[2] == pytest.approx(0.5, abs=1e-6)


def test_unsigned_8bit_is_centred(tmp_path):
    p = tmp_path / "u8.wav"
    sf.write(p, sine(500.0, 0.2, 16000, amp=0.5), 16000, subtype="PCM_U8")
    got = read_mono(str(p), 16000).samples
    assert abs(float(got.mean())) < 0.01 and abs(np.max(np.abs(got)) - 0.5) < 0.02


def test_stereo_and_multichannel_mix_down_to_the_mean(tmp_path):
    a, b = sine(300.0, 0.5, 16000, 0.4), sine(700.0, 0.5, 16000, 0.2)
    p = tmp_path / "st.wav"
    sf.write(p, np.stack([a, b], axis=1), 16000, subtype="FLOAT")
    assert np.allclose(read_mono(str(p), 16000).samples, (a + b) / 2, atol=1e-7)
    p2 = tmp_path / "anti.wav"
    sf.write(p2, np.stack([a, -a], axis=1), 16000, subtype="FLOAT")
    assert np.max(np.abs(read_mono(str(p2), 16000).samples)) < 1e-7
    p6 = tmp_path / "six.wav"
    sf.write(p6, np.tile(a[:, None], (1, 6)), 16000, subtype="FLOAT")
    a6 = read_mono(str(p6), 16000)
    assert a6.source_channels == 6 and np.allclose(a6.samples, a, atol=1e-7)


def test_float_file_over_full_scale_is_scaled_not_clipped(tmp_path):
    x = sine(200.0, 0.5, 16000, amp=2.0)
    p = tmp_path / "hot.wav"
    sf.write(p, x, 16000, subtype="FLOAT")
    a = read_mono(str(p), 16000)
    assert a.gain == pytest.approx(0.5, rel=1e-4)
    assert np.max(np.abs(a.samples)) == pytest.approx(1.0, abs=1e-4)
    assert np.allclose(a.samples, x / 2, atol=1e-5)  # shape kept: no clipping


@pytest.mark.parametrize("fmt", ["mp3", "ogg"])
def test_lossy_formats_decode_at_the_right_pitch(tmp_path, fmt):
    p = tmp_path / f"x.{fmt}"
    sf.write(p, sine(660.0, 1.0, 44100, 0.5), 44100)
    a = read_mono(str(p), 16000)
    assert abs(peak_frequency(a.samples[2000:14000], 16000) - 660.0) < 2.0


def _bad_files(tmp_path):
    good = tmp_path / "good.wav"
    sf.write(good, sine(440.0, 0.5, 16000), 16000)
    raw = good.read_bytes()
    files = {
        "zero.wav": b"",
        "text.wav": b"this is not audio at all " * 20,
        "truncated.wav": raw[: len(raw) // 2],
        "header_only.wav": raw[:44],
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    flac = tmp_path / "ok.flac"
    sf.write(flac, sine(440.0, 1.0, 16000), 16000)
    (tmp_path / "truncated.flac").write_bytes(flac.read_bytes()[: flac.stat().st_size // 2])
    nan = np.zeros(1000, np.float32)
    nan[10] = np.nan
    sf.write(tmp_path / "nan.wav", nan, 16000, subtype="FLOAT")
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    os.symlink(tmp_path / "does-not-exist.wav", tmp_path / "dangling.wav")
    return {
        "zero.wav": "empty",
        "text.wav": "not audio",
        "truncated.wav": "truncated",
        "header_only.wav": "truncated",
        "truncated.flac": "corrupt",
        "nan.wav": "non-finite samples",
        "empty.wav": "empty",
        "dangling.wav": "unreadable",
    }


def test_bad_files_raise_decode_error_with_a_reason(tmp_path):
    for name, reason in _bad_files(tmp_path).items():
        with pytest.raises(DecodeError) as e:
            read_mono(str(tmp_path / name), 16000)
        assert e.value.reason == reason, (name, str(e.value))
