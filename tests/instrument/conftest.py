"""Fixtures for the tests that need real parts: a JACK server on the dummy driver (for PortAudio output
and for rtmidi's JACK MIDI ports)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

SR, BLOCK = 48000, 128


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
            proc = subprocess.Popen(["jackd", mode, "-d", "dummy", "-r", str(SR), "-p", str(BLOCK)],
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
