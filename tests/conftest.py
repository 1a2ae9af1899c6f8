from __future__ import annotations

import shutil
import subprocess

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


# --- real parts: a JACK server on the dummy driver (PortAudio output, rtmidi's JACK MIDI ports) -----------
JACK_SR, JACK_BLOCK = 48000, 128


@pytest.fixture(scope="session")
def jack():
    """The JACK output device's index; starts a dummy-driver server when none is running (and stops it
    at the end of the session)."""
    if shutil.which("jackd") is None:
        pytest.skip("jackd is not installed (apt-get install jackd2; tests/install_and_test.sh does it as root)")
    import sounddevice as sd

    proc = None
    if subprocess.run(["jack_wait", "-c"], capture_output=True, text=True).stdout.strip() != "running":  # it exits 0 either way
        for mode in ("-R", "--no-realtime"):  # real-time scheduling where allowed, as tests/install_and_test.sh does
            proc = subprocess.Popen(["jackd", mode, "-d", "dummy", "-r", str(JACK_SR), "-p", str(JACK_BLOCK)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if subprocess.run(["jack_wait", "-w", "-t", "10"], capture_output=True).returncode == 0 and proc.poll() is None:
                break
            proc.kill()
            proc.wait()
        sd._terminate()  # PortAudio lists host APIs once: look again now that JACK is up
        sd._initialize()
    apis = [i for i, h in enumerate(sd.query_hostapis()) if "JACK" in h["name"]]
    assert apis, "jackd is installed but PortAudio sees no JACK host API"
    device = sd.query_hostapis(apis[0])["default_output_device"]
    assert device >= 0, "JACK is up but has no output device"
    yield device
    if proc is not None:
        sd._terminate()  # PortAudio's JACK host API aborts if its server goes away under it
        proc.terminate()
        proc.wait(10)
        sd._initialize()
