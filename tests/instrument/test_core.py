"""The real-time core (instrument/core.c, instrument/core.py): the C core against the numpy reference on the
same operations, its queues under two threads, its safety chain at awkward block sizes, bounded work under a
flood, clips handed back, and a clear line where no C compiler is found."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from instrument.ccore import CoreBuildError, make_core
from instrument.core import ASAP, CEILING, GAIN, LAYER_GAIN, MAX_OPS_PER_BLOCK, PITCH, VOICES_GAIN, XFADE

SR = 48000
REPO = Path(__file__).resolve().parents[2]
CEIL = 10 ** (-0.3 / 20)


def new(kind: str, block: int = 128, channels: int = 2):
    return make_core(kind, SR, channels, block, voices_gain=1.0, layer_gain=0.5, pitch=0.0, gain_db=0.0, ceiling_db=-0.3,
                     smoothing_s=(0.02, 0.02, 0.05), xfade=2400)


def clips(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        t = np.arange(int(rng.integers(3000, 20000))) / SR
        c = (0.6 * np.sin(2 * np.pi * rng.uniform(80, 900) * t) * np.exp(-t * rng.uniform(1, 20))).astype(np.float32)
        c += rng.normal(0, 0.05, len(c)).astype(np.float32)
        out.append(c)
    return out


def script(core, blocks: list[int], seed: int = 1) -> np.ndarray:
    """A random performance: voices (stolen, released, bent, swelled), gains, pitch glides, the layer
    wanting, moving on and stopping, operations on time, as soon as possible and late."""
    rng = np.random.default_rng(seed)
    cs = clips(12, seed)
    out, serial = [], 0
    for i, n in enumerate(blocks):
        t = core.t
        for _ in range(int(rng.integers(0, 4))):
            at = int(rng.choice([ASAP, t + int(rng.integers(0, n)), t - 5, t + n + int(rng.integers(0, 300))]))
            k = int(rng.integers(9))
            if k <= 2:
                core.start_voice(at, cs[int(rng.integers(12))], float(2 ** rng.uniform(-1, 1)), float(rng.uniform(0.1, 1)),
                                 int(rng.integers(1, 500)), int(rng.integers(1, 5000)), int(rng.integers(60, 64)),
                                 int(rng.integers(-1, 3)), int(rng.integers(1, 5)), 240)
            elif k == 3:
                core.release(at, int(rng.integers(-1, 64)), int(rng.integers(-1, 3)))
            elif k == 4:
                core.express(at, int(rng.integers(0, 3)), float(2 ** rng.uniform(-0.5, 0.5)), float(rng.uniform(0.05, 1)))
            elif k == 5:
                what = int(rng.choice([VOICES_GAIN, LAYER_GAIN, PITCH, GAIN, CEILING, XFADE]))
                value = {PITCH: rng.uniform(-12, 12), XFADE: rng.integers(1, 5000), CEILING: rng.uniform(0.2, 1)}.get(what, rng.uniform(0, 2))
                core.set(at, what, float(value))
            elif k in (6, 7):
                serial += 1
                (core.layer_want if k == 6 else core.layer_next)(at, cs[int(rng.integers(12))], serial)
            elif rng.random() < 0.3:
                core.layer_stop(at)
        out.append(core.render(n))
        core.collect()
    return np.concatenate(out)


@pytest.mark.parametrize("blocks", [[128] * 600, [64] * 900 + [65] * 300, [1] * 500 + [8192] * 4 + [37] * 200])
def test_the_c_core_plays_what_the_numpy_core_plays(blocks):
    a, b = new("python"), new("c")
    ya, yb = script(a, blocks), script(b, blocks)
    assert np.abs(ya).max() > 0.05  # not a test of silence
    # the same samples but for float rounding (the DC blocker is a recursion in C, a closed form in numpy)
    assert np.abs(ya - yb).max() < 1e-4
    sa, sb = a.state(), b.state()
    for k in ("started", "voices", "layer_active", "layer_serial", "stolen", "late_ops", "deferred_ops", "layer_loops", "layer_crossfades", "limited_blocks"):
        assert sa[k] == sb[k], k
    b.close()


@pytest.mark.parametrize("kind", ["python", "c"])
@pytest.mark.parametrize("n", [1, 64, 65, 8193])
def test_the_safety_chain_at_any_block_size(kind, n):
    core = new(kind, block=n, channels=1)
    bad = np.full(30000, 4.0, np.float32)
    bad[::7] = np.nan
    bad[3::11] = np.inf
    bad += 0.5  # a DC offset too
    core.set(ASAP, VOICES_GAIN, 1.0)
    core.start_voice(ASAP, bad, 1.0, 1.0, 1, 100, -1, -1, 4, 240)
    out = np.concatenate([core.render(n) for _ in range(max(1, 40000 // n))])
    st = core.state()
    assert np.all(np.isfinite(out)) and np.abs(out).max() <= CEIL  # nothing above the ceiling, whatever comes in
    assert st["nonfinite"] > 0 and st["limited_blocks"] > 0
    if kind == "c":
        core.close()


@pytest.mark.parametrize("kind", ["python", "c"])
def test_the_layer_crossfades_at_constant_power(kind):
    core = new(kind, channels=1)
    rng = np.random.default_rng(0)
    a, b = (rng.normal(0, 0.1, SR).astype(np.float32) for _ in range(2))
    core.set(ASAP, LAYER_GAIN, 1.0)
    core.set(ASAP, XFADE, 9600)
    core.layer_want(ASAP, a, 1)
    for _ in range(100):  # past a's own fade-in
        core.render(128)
    core.layer_want(ASAP, b, 2)
    out = np.concatenate([core.render(128) for _ in range(100)])[:, 0]
    rms = np.sqrt((out[: 9600 // 640 * 640].reshape(-1, 640) ** 2).mean(axis=1))
    assert rms.max() / rms.min() < 1.25  # equal power: no dip in the middle (a linear fade of noise dips by 3 dB)
    assert core.state()["layer_serial"] == 2
    if kind == "c":
        core.close()


def test_a_flood_renders_in_bounded_blocks_and_the_queue_drops_what_does_not_fit():
    core = new("c")
    for i in range(5000):  # more than the queue holds (4096): the rest are dropped and counted, never blocking
        core.set(core.t + 5, GAIN, 0.5 + (i % 10) / 20)
    core.render(128)
    st = core.state()
    assert st["dropped_ops"] == 5000 - 4096
    assert st["deferred_ops"] >= 256 - MAX_OPS_PER_BLOCK  # one block took 256 from the queue and applied 64
    for _ in range(200):
        core.render(128)
    st = core.state()
    assert st["late_ops"] > 0  # the ones taken from the queue after their sample had passed (applied at once)
    core.close()


def test_operations_from_one_thread_rendered_by_another_lose_nothing_and_every_clip_comes_back():
    """The two-thread contract of the queues: a producer pushes operations and takes handles back while a
    consumer renders, as the engine thread and the audio callback do."""
    core = new("c")
    clip = np.linspace(0.2, 0.0, 600, dtype=np.float32)
    stop = threading.Event()
    rendered = [0]

    def consumer() -> None:
        while not stop.is_set():
            core.render(64)
            rendered[0] += 1

    th = threading.Thread(target=consumer)
    th.start()
    sent = 0
    for i in range(20000):
        core.start_voice(ASAP, clip, 1.0, 0.5, 1, 10, i % 128, -1, 32, 10)
        sent += 1
        if i % 50 == 0:
            core.collect()
    while core.state()["voices"] and rendered[0] < 10**7:
        core.collect()
    stop.set()
    th.join()
    core.render(64)
    core.collect()
    st = core.state()
    assert st["started"] + st["dropped_ops"] == sent and st["started"] > 0 and st["returns_lost"] == 0
    assert len(core._clips) == 0  # every clip the core was given came back exactly once, none freed while it played
    core.close()


def _python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={**os.environ, **env})


def test_no_compiler_is_one_line_and_the_numpy_core_plays(tmp_path):
    code = ("from instrument.ccore import make_core\n"
            "c = make_core('auto', 48000, 2, 128, voices_gain=1, layer_gain=1, pitch=0, gain_db=0, ceiling_db=-0.3,"
            " smoothing_s=(0.02, 0.02, 0.05), xfade=100)\n"
            "print(c.kind)\n"
            "make_core('c', 48000, 2, 128, voices_gain=1, layer_gain=1, pitch=0, gain_db=0, ceiling_db=-0.3,"
            " smoothing_s=(0.02, 0.02, 0.05), xfade=100)\n")
    r = _python(code, GESTUREGAN_CACHE=str(tmp_path / "empty"), CC="no-such-compiler", PATH=str(tmp_path))
    assert r.stdout.strip() == "python"
    note = [ln for ln in r.stderr.splitlines() if ln.startswith("gesturegan:")]
    assert note == ["gesturegan: the C audio core is not available (no C compiler found (install gcc: apt-get install gcc)); "
                    "using the numpy core (more latency)"]
    assert "CoreBuildError: no C compiler found" in r.stderr  # core="c" asked for it: an error, in one line


def test_a_build_that_fails_says_so_in_one_line(tmp_path, monkeypatch):
    import instrument.ccore as cc

    broken = tmp_path / "core.c"
    broken.write_text("this is not C\n")
    monkeypatch.setattr(cc, "SOURCE", broken)
    monkeypatch.setenv("GESTUREGAN_CACHE", str(tmp_path / "cache"))
    with pytest.raises(CoreBuildError) as e:
        cc.build()
    assert "failed on core.c" in str(e.value) and "\n" not in str(e.value)
    assert not list((tmp_path / "cache").glob("*.so"))  # nothing half-built left to load


def test_whose_underrun_with_the_c_callback():
    """Every callback renders; a device underflow after callbacks that were on time is the host's, not the
    engine's (instrument/audio.py's rule), and the total counts every dropout."""
    from instrument.audio import MemorySink

    core = new("c")
    sink = MemorySink(SR, 128, wait=False)
    sink.start_native(core)
    out = np.zeros((128, 2), np.float32)
    for k in range(300):
        core.call_callback(out, k * 128 / SR, underflow=k in (100, 200))
    st = sink.stats()
    assert (st["callbacks"], st["device_underflows"], st["engine_underruns"], st["host_stalls"]) == (300, 2, 0, 0)
    assert st["underruns"] == 2 and st["max_callback_ms"] < 2.67
    assert sink.dac_time_of(128 * 10 + 5) == pytest.approx((128 * 10 + 5) / SR)  # the stamps map samples to DAC time
    core.close()


def test_the_engine_config_refuses_an_unknown_core():
    from instrument.engine import EngineConfig

    with pytest.raises(ValueError, match="core must be auto, c or python, got 'gpu'"):
        EngineConfig(core="gpu")
