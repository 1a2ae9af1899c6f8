"""The engine without a sound card: scheduling, voices, the layer, bad models, hot-swap, and the
live path (ring buffer + callback, block by block) against the offline render, sample for sample."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import soundfile as sf

from instrument.audio import MemorySink
from instrument.dsp import db_to_gain
from instrument.engine import Engine, EngineConfig
from instrument.params import ParamError
from instrument.schedule import MAX_PER_BLOCK

from .onnx_models import engine_model, engine_model_file

SR, BLOCK = 48000, 128
CEILING = db_to_gain(-0.3)


def score(eng: Engine) -> None:
    """A little piece: triggers of each kind, a note with pitch, parameter moves, an XY morph, the layer."""
    eng.trigger("hit", 1.0, at=100)
    eng.trigger("ring", 0.6, pitch=7, at=9000)
    eng.note_on(64, 0.9, category="swell", at=20000)
    eng.note_off(64, at=30000)
    eng.set("gain", -3, at=31000)
    eng.set("layer", 1, at=36000)
    eng.set("macro2", 0.7, at=50000)
    eng.morph(0.8, 0.3, at=70000)
    eng.set("pitch", -5, at=80000)
    eng.set("variation", 0.5, at=90000)
    for k in range(8):
        eng.trigger(None, 0.5 + 0.05 * k, at=95000 + 1500 * k)
    eng.set("layer", 0, at=130000)


def test_live_path_equals_offline_render_sample_for_sample():
    with Engine(engine_model(), EngineConfig(SR, BLOCK), sync=True) as off:
        score(off)
        offline = off.render(3.0)
    sink = MemorySink(SR, BLOCK)
    with Engine(engine_model(), EngineConfig(SR, BLOCK), sink=sink, sync=True) as live:
        score(live)
        live.start()
        played = sink.pull(int(np.ceil(3.0 * SR / BLOCK)))[: len(offline)]
        assert sink.stats()["underruns"] == 0
    assert np.abs(offline).max() > 0.05  # not a test of silence
    assert np.array_equal(played, offline)


def test_events_take_effect_at_their_sample():
    with Engine(engine_model(), EngineConfig(SR, 64), sync=True) as eng:
        eng.trigger("hit", at=1000)
        eng.trigger("ring", at=5003)
        out = eng.render(0.2)[:, 0]
    nz = np.flatnonzero(out)
    assert nz[0] == 1000  # silence is exactly 0 before, sound starts on the sample (mid-block: 1000 = 15*64 + 40)
    assert len(eng.telemetry.trigger_delays) == 2 and max(eng.telemetry.trigger_delays) == 0


def test_a_flood_of_commands_in_one_block_is_spread_over_the_next_blocks_in_order():
    """However many commands land in one block, a block applies at most MAX_PER_BLOCK (each one cuts the
    block into another span to render); the rest follow a block later, in order, counted; nothing is lost."""
    with Engine(engine_model(), EngineConfig(SR, BLOCK), sync=True) as eng:
        per_block: dict[int, int] = {}
        order = []
        eng.listen(event=lambda at, command, posted: (per_block.__setitem__(at // BLOCK, per_block.get(at // BLOCK, 0) + 1),
                                                      order.append(command)))
        for i in range(1000):
            eng.set("macro1", -1 + i / 500, at=BLOCK * 2 + i % 7)  # 1000 sets inside one block
        for i in range(40):
            eng.trigger("hit", 0.5, at=BLOCK * 2 + 3)
        posted = 1040
        while eng.now() < BLOCK * 40:
            eng.process_block()
        st = eng.status()
    assert max(per_block.values()) <= MAX_PER_BLOCK and sum(per_block.values()) == posted
    assert st["deferred_commands"] >= posted - MAX_PER_BLOCK
    values = [c.values[0][1] for c in order if c.kind == "set"]
    assert len(values) == 1000 and eng.values["macro1"] == pytest.approx(values[-1])
    assert sum(c.kind == "trigger" for c in order) == 40


def test_offline_render_is_deterministic_and_written_whole(tmp_path):
    paths = []
    for i in range(2):
        with Engine(engine_model(), EngineConfig(SR, BLOCK, seed=3), sync=True) as eng:
            score(eng)
            paths.append(tmp_path / f"r{i}.wav")
            eng.render(3.0, paths[-1], progress=True)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    data, sr = sf.read(paths[0], dtype="float32")
    assert sr == SR and data.shape == (3 * SR, 2) and np.abs(data).max() <= CEILING
    assert not list(tmp_path.glob(".*partial"))
    with Engine(engine_model(), EngineConfig(SR, BLOCK), sync=True) as eng:
        with pytest.raises((OSError, RuntimeError)):
            eng.render(0.5, tmp_path / "missing" / "x.wav")
    assert not (tmp_path / "missing").exists()


def test_voice_stealing_keeps_the_polyphony_limit():
    with Engine(engine_model(), EngineConfig(SR, BLOCK), sync=True) as eng:
        eng.set("polyphony", 3)
        for k in range(7):
            eng.trigger("ring", 0.2 + 0.1 * k, at=100 + k * 200)
        out = eng.render(0.05)
        sounding = [v for v in eng.voices if not v.releasing]
        assert len(sounding) == 3 and eng.status()["stolen_voices"] == 4
        assert sorted(v.gain for v in sounding) == pytest.approx([0.6**2, 0.7**2, 0.8**2])  # the quiet ones went
    assert np.all(np.isfinite(out))


@pytest.mark.parametrize("kind", ["nan", "huge"])
def test_a_misbehaving_model_is_sanitised_and_counted(kind):
    model = engine_model(scale=float("nan")) if kind == "nan" else engine_model(scale=1e6, squash=False)
    with Engine(model, EngineConfig(SR, BLOCK), sync=True) as eng:
        eng.set("gain", 6)
        eng.trigger("hit", at=0)
        eng.set("layer", 1, at=10)
        out = eng.render(1.0)
        st = eng.status()
    assert np.all(np.isfinite(out)) and np.abs(out).max() <= CEILING
    assert st["bad_clips"] >= 1


def test_bad_parameter_values_never_reach_the_dsp():
    with Engine(engine_model(), EngineConfig(SR, BLOCK), sync=True) as eng:
        with pytest.raises(ParamError):
            eng.set("gain", float("nan"))
        with pytest.raises(ParamError):
            eng.set("nope", 1)
        with pytest.raises(ParamError, match="unknown category 'bell'"):
            eng.trigger("bell")
        with pytest.raises(ParamError, match="velocity must be a finite number"):
            eng.trigger("hit", velocity=float("inf"))
        with pytest.raises(ParamError, match="note must be 0..127"):
            eng.note_on(200)
        with pytest.raises(ValueError, match="at must be a sample time"):
            eng.trigger("hit", at=-5)
        assert eng.set("gain", 99) == 6.0  # clamped, and said so
        with pytest.raises(ParamError, match="the mix needs 3 weights"):
            eng.set_mix([1, 0])


def test_xy_morph_and_weights_make_the_mix():
    with Engine(engine_model(), EngineConfig(SR, BLOCK), sync=True) as eng:
        eng.morph(1.0, 0.0)
        eng.render(0.01)
        assert eng.status()["mix"] == {"hit": 0.0, "ring": 1.0, "swell": 0.0}
        eng.morph(0.5, 1.0)  # between corner 3 (swell) and corner 4 (the 4th corner wraps to hit)
        eng.render(0.01)
        assert eng.status()["mix"] == pytest.approx({"hit": 0.5, "ring": 0.0, "swell": 0.5})
        eng.set_mix({"hit": 0.2, "swell": 0.6})
        eng.render(0.01)
        assert eng.status()["mix"] == pytest.approx({"hit": 0.25, "ring": 0.0, "swell": 0.75})


def test_layer_never_falls_silent_when_no_new_clip_comes():
    with Engine(engine_model(n_samples=4096), EngineConfig(SR, BLOCK), sync=True) as eng:  # 0.256 s clips, at 16 kHz
        eng.set("layer", 1)
        eng.set("layer_db", 0)
        out = eng.render(2.0)[:, 0]
        assert eng.core.state()["layer_loops"] >= 5  # it ran past its clip many times, covered by itself
    body = np.abs(out[SR // 10 :])
    window = body[: len(body) // 256 * 256].reshape(-1, 256).max(axis=1)
    assert window.min() > 1e-3  # no silent gap anywhere


def test_hot_swap_while_playing_and_a_bad_file_keeps_the_old_model(tmp_path):
    sink = MemorySink(SR, BLOCK)
    new = engine_model_file(tmp_path / "new.onnx", scale=0.5)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(new.read_bytes()[:500])
    with Engine(engine_model(), EngineConfig(SR, BLOCK), sink=sink) as eng:  # async, as live
        eng.set("layer", 1)
        eng.start()
        sink.pull(100)
        done = threading.Event()
        errors: list = []
        eng.load_model(bad, on_done=lambda e: (errors.append(e), done.set()))
        assert done.wait(30) and "truncated" in errors[0]
        sink.pull(100)
        done.clear()
        eng.load_model(new, on_done=lambda e: (errors.append(e), done.set()))
        assert done.wait(30) and errors[1] is None
        after = sink.pull(400)
        st = eng.status()
    assert st["model_swaps"] == 1 and st["model_errors"] == 1 and st["underruns"] == 0
    assert np.abs(after[-100 * BLOCK :]).max() > 0.01  # still playing, on the new model


def test_a_trigger_that_is_not_cached_starts_late_but_starts():
    sink = MemorySink(SR, BLOCK)
    with Engine(engine_model(), EngineConfig(SR, BLOCK), sink=sink, prefetch=False) as eng:
        eng.start()
        sink.pull(10)
        eng.set("variation", 1.0)
        eng.trigger("swell")
        deadline = time.monotonic() + 10
        while not eng.voices and time.monotonic() < deadline:
            sink.pull(1)
        assert eng.voices and eng.telemetry.late_triggers == 1


@pytest.mark.parametrize("core", ["c", "python"])
def test_offline_quiet_blocks_give_the_samples_of_a_block_at_a_time(core):
    """Offline, the blocks that need nothing from Python are rendered by the core in one call; the layer
    drifting from clip to clip, triggers and parameter moves sound exactly as with a call per block."""
    def piece(eng: Engine) -> None:
        score(eng)
        eng.set("layer", 1, at=140000)
        eng.set("layer_drift", 0.4, at=140000)
        eng.ramp("macro3", 0.8, 0.5, at=150000)

    with Engine(engine_model(n_samples=4096), EngineConfig(SR, BLOCK, core=core), sync=True) as a:
        piece(a)
        fast = a.render(5.0)
        assert a.core.state()["layer_crossfades"] >= 5
    with Engine(engine_model(n_samples=4096), EngineConfig(SR, BLOCK, core=core), sync=True) as b:
        piece(b)
        slow = np.concatenate([b.process_block() for _ in range(int(np.ceil(5.0 * SR / BLOCK)))])[: len(fast)]
    assert np.abs(fast).max() > 0.05 and np.array_equal(fast, slow)
