from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf


def sine(freq_hz: float, seconds: float, sample_rate: int, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    return (amp * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def peak_frequency(x: np.ndarray, sample_rate: int) -> float:
    """Frequency of the strongest FFT bin, refined by parabolic interpolation."""
    w = np.hanning(len(x))
    mag = np.abs(np.fft.rfft(x * w))
    k = int(np.argmax(mag[1:-1])) + 1
    a, b, c = np.log(mag[k - 1 : k + 2] + 1e-20)
    delta = 0.5 * (a - c) / (a - 2 * b + c)
    return (k + delta) * sample_rate / len(x)


@pytest.fixture
def write_wav(tmp_path):
    """write_wav('cat/name.wav', data, sr, subtype=...) -> path under tmp_path/root."""

    def _write(rel: str, data: np.ndarray, sample_rate: int, subtype: str = "PCM_16", **kw):
        p = tmp_path / "root" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        sf.write(p, data, sample_rate, subtype=subtype, **kw)
        return p

    return _write
