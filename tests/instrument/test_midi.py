"""MIDI: the map file, what each message does, MIDI learn (in memory, fast); then real virtual ports
over JACK: playing, garbage, unplug and replug."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from instrument.commands import Command, NoteOff, Set, Trigger
from instrument.engine import Engine, EngineConfig
from instrument.midi import MidiController
from instrument.midimap import MidiMapError, load_map, parse_map, shipped_map
from instrument.presets import PresetLibrary, write_preset
from tests.helpers import wait_for

from .onnx_models import GESTURES, engine_model
from .recording import RecordingEngine

SR, BLOCK = 48000, 128
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def eng():
    with RecordingEngine(engine_model(categories=GESTURES), EngineConfig(SR, BLOCK), sync=True) as e:
        yield e


def drain(eng: RecordingEngine) -> list[Command]:
    """What the surface posted since the last look (a MIDI message plays now: no sample is asked for)."""
    got = eng.drain()
    assert all(at is None for _, at in got)
    return [c for c, _ in got]


def set1(pid: str, v: float) -> Set:
    return Set(((pid, v),))


@pytest.fixture
def ctl(eng, tmp_path):
    m = load_map(REPO / "presets" / "midi" / "default.toml", eng.table, eng.info.categories)
    lib = PresetLibrary([tmp_path / "presets", REPO / "presets" / "params"])
    c = MidiController(eng, m, lib, learn_path=tmp_path / "learned.toml")
    yield c
    c.close()


def test_the_shipped_map_is_the_one_the_package_finds_and_it_loads(eng):
    assert shipped_map() == REPO / "presets" / "midi" / "default.toml"
    m = load_map(shipped_map(), eng.table, eng.info.categories)
    assert m.ccs[1].param == "morph_path" and m.ccs[7].param == "gain" and (m.ccs[7].lo, m.ccs[7].hi) == (-60.0, 0.0)
    assert [m.ccs[21 + i].param for i in range(8)] == [f"macro{i}" for i in range(1, 9)]
    assert m.ccs[16].fine and m.programs[0] == "init"


def test_notes_velocity_square_law_zero_velocity_and_zones(ctl, eng):
    ctl.handle([0x90, 67, 127])
    ctl.handle([0x90, 67, 0])  # velocity 0: a note off
    ctl.handle([0x90, 60, 64])
    ctl.handle([0x80, 60, 10])
    ctl.handle([0x91, 38, 100])  # a pad in the 36-39 zone: the third category, unpitched
    got = drain(eng)
    assert got[0] == Trigger(None, 1.0, 7.0, 67)
    assert got[1] == NoteOff(67)
    assert got[2].kind == "trigger" and got[2].velocity == pytest.approx(64 / 127) and got[2].pitch == 0.0
    assert got[3] == NoteOff(60)
    assert got[4] == Trigger(2, pytest.approx(100 / 127), 0.0, 38)
    eng.trigger(None, 0.5, at=0)
    eng.process_block()
    assert ctl.stats.notes == 5


def test_controllers_bend_sustain_and_the_mod_wheel(ctl, eng):
    ctl.handle([0xB0, 21, 127])  # macro1 knob full
    ctl.handle([0xB0, 7, 0])  # volume at 0 -> -60 dB
    ctl.handle([0xB0, 1, 64])  # mod wheel: the category path, and mix_mode -> path
    ctl.handle([0xE0, 0x7F, 0x7F])  # full bend up: +2 semitones
    ctl.handle([0xB0, 64, 127])  # sustain down
    ctl.handle([0x90, 60, 90])
    ctl.handle([0x80, 60, 0])  # held by the pedal
    ctl.handle([0xB0, 64, 0])  # pedal up: now released
    got = drain(eng)
    assert got[0] == set1("macro1", 1.0) and got[1] == set1("gain", -60.0)
    assert got[2].kind == "set" and got[2].as_dict() == {"morph_path": pytest.approx(64 / 127), "mix_mode": 2.0}
    assert got[3] == set1("pitch", 2.0)
    assert got[4].kind == "trigger" and got[5] == NoteOff(60) and len(got) == 6


def test_a_knob_over_a_whole_number_parameter_steps_through_whole_numbers(eng):
    """A CC mapped to the seed (which refuses fractions) or to polyphony gives whole numbers."""
    doc = {"cc": [{"cc": 30, "param": "seed", "min": 0, "max": 1000}, {"cc": 31, "param": "polyphony"}]}
    c = MidiController(eng, parse_map(doc, eng.table, eng.info.categories), PresetLibrary([]))
    c.handle([0xB0, 30, 64])
    c.handle([0xB0, 31, 64])
    assert drain(eng) == [set1("seed", float(round(1000 * 64 / 127))), set1("polyphony", float(round(1 + 31 * 64 / 127)))]
    assert c.stats.refused == 0
    c.close()


def test_14_bit_pairs(ctl, eng):
    ctl.handle([0xB0, 16, 64])  # MSB of morph_x
    ctl.handle([0xB0, 48, 127])  # its LSB
    got = drain(eng)
    assert got[0].as_dict()["morph_x"] == pytest.approx((64 << 7) / 16383)
    assert got[1].as_dict()["morph_x"] == pytest.approx(((64 << 7) | 127) / 16383)


def test_program_change_recalls_a_preset(ctl, eng, tmp_path):
    write_preset(tmp_path / "presets" / "z-bright.toml", "z-bright", {"macro2": 0.5, "weight.no_such_category": 1.0})
    ctl.handle([0xC0, 0])  # mapped: init
    ctl.handle([0xC0, 0x00])
    ctl.handle([0xC0, 4])  # unmapped: the fifth preset by name (glass-rain, init, pulse-drone, slow-bells, z-bright)
    ctl.handle([0xC0, 4])
    ctl.handle([0xC0, 99])  # no such preset: refused, counted, nothing else happens
    got = drain(eng)
    assert got[0].as_dict() == eng.table.defaults()  # init: every parameter at the table's default
    assert got[2] == set1("macro2", 0.5)
    assert ctl.stats.refused == 1


def test_channel_filter_garbage_and_unmapped_are_counted_cheaply(ctl, eng):
    ctl.map.channel = 2
    ctl.handle([0x90, 60, 100])  # channel 1: ignored
    ctl.handle([0x91, 60, 100])  # channel 2
    ctl.map.channel = 0
    for bad in ([], [0x90], [0x90, 200, 3], [0x20, 1, 2], [0xB0, 5, 255], [0x90, 0x90, 0x40]):
        ctl.handle(bad)
    ctl.handle([0xB0, 99, 1])  # unmapped controller
    ctl.handle([0xF8])  # clock, had RtMidi let it through
    ctl.handle([0xA0, 60, 10])  # poly aftertouch: no action
    assert len(drain(eng)) == 1
    s = ctl.stats
    assert (s.messages, s.malformed, s.ignored, s.notes) == (11, 6, 4, 1)


def test_midi_learn_binds_saves_and_survives_a_reload(ctl, eng, tmp_path):
    ctl.learn("radius")
    done = []
    ctl.learn("radius", lambda p, w: done.append((p, w)))
    ctl.handle([0xB0, 70, 10])
    for _ in range(100):
        if done:
            break
        time.sleep(0.01)
    assert done == [("radius", "cc 70")]
    ctl.handle([0xB0, 70, 127])
    assert drain(eng)[-1] == set1("radius", 2.0)
    # 14-bit: an MSB 0..31 followed by its LSB within the window
    ctl.learn("morph_y", lambda p, w: done.append((p, w)))
    ctl.handle([0xB0, 3, 10])
    ctl.handle([0xB0, 35, 10])
    for _ in range(100):
        if len(done) == 2:
            break
        time.sleep(0.01)
    assert done[1] == ("morph_y", "cc 3+35 (14-bit)")
    text = (tmp_path / "learned.toml").read_text()
    assert "# GestureGAN's default MIDI map" in text  # started from the map being played, comments kept
    again = load_map(tmp_path / "learned.toml", eng.table, eng.info.categories)
    assert again.ccs[70].param == "radius" and again.ccs[3].param == "morph_y" and again.ccs[3].fine
    assert again.ccs[17].param == "morph_y"  # the old binding stays in the file; the live map moved it
    assert 17 not in ctl.map.ccs
    with pytest.raises(ValueError, match="unknown parameter 'nope'"):
        ctl.learn("nope")


@pytest.mark.parametrize("doc,why", [
    ({"cc": [{"cc": 200, "param": "gain"}]}, r"cc must be a whole number 0..127, got 200"),
    ({"cc": [{"cc": 3, "param": "volume"}]}, r"\[\[cc\]\] #1: unknown parameter 'volume'"),
    ({"cc": [{"cc": 40, "param": "gain", "fine": True}]}, "14-bit controller"),
    ({"cc": [{"cc": 3}]}, "needs param"),
    ({"notes": {"category": "bells"}}, "unknown category 'bells'"),
    ({"notes": {"zones": [{"low": 50, "high": 40}]}}, "high 40 is below low 50"),
    ({"midi": {"channel": 17}}, "channel must be a whole number 0..16"),
    ({"pitch_bend": {"range": -1}}, "range must be 0..48"),
    ({"programs": {"x": "a"}}, "program numbers"),
    ({"sustain": {"cc": 200}}, r"\[sustain\] cc must be a whole number 0..127"),
])
def test_bad_maps_name_the_entry(eng, doc, why):
    with pytest.raises(MidiMapError, match=why):
        parse_map(doc, eng.table, eng.info.categories)


def test_sustain_minus_one_means_no_pedal(eng):
    assert parse_map({"sustain": {"cc": -1}}, eng.table, eng.info.categories).sustain_cc is None
    assert parse_map({}, eng.table, eng.info.categories).sustain_cc == 64


def test_a_map_that_is_not_toml_names_the_file(eng, tmp_path):
    (tmp_path / "m.toml").write_text("[[cc]\ncc = 1")
    with pytest.raises(MidiMapError, match=r"m.toml: not valid TOML"):
        load_map(tmp_path / "m.toml", eng.table, eng.info.categories)


# --- real ports over JACK ------------------------------------------------------------------------------------

@pytest.fixture
def jack_midi(jack):
    import mido

    return mido.Backend("mido.backends.rtmidi/UNIX_JACK")



def test_a_virtual_controller_plays_is_unplugged_and_replugged(jack_midi, jack, tmp_path):
    import mido

    from instrument.audio import SoundDeviceSink

    out = jack_midi.open_output("gg-test-keys", virtual=True)
    sink = SoundDeviceSink(SR, BLOCK, 2, jack)
    peak = [0.0, 0]

    def listen(block, at):
        peak[0] = max(peak[0], float(np.abs(block).max()))
        peak[1] += int((~np.isfinite(block)).sum())

    with Engine(engine_model(n_samples=16384, categories=GESTURES), EngineConfig(SR, BLOCK), sink=sink) as eng:
        eng.listen(block=listen)
        m = load_map(shipped_map(), eng.table, eng.info.categories)
        with MidiController(eng, m, PresetLibrary([tmp_path, REPO / "presets" / "params"])) as ctl:
            ctl.open(["gg-test-keys"], api="jack", poll_s=0.1)
            assert wait_for(lambda: any("gg-test-keys" in p for p in ctl.ports)), ctl.events
            eng.start()
            # JACK applies a new connection at a cycle boundary: on a loaded host a message sent at once
            # can go out before the connection does (and is lost, as on a real wire). A controller keeps
            # sending; so does this one, a CC (idempotent) until it arrives, then the note
            for _ in range(50):
                out.send(mido.Message("control_change", control=21, value=127))
                if wait_for(lambda: eng.values["macro1"] == 1.0, timeout=0.1):
                    break
            out.send(mido.Message("note_on", note=64, velocity=120))
            assert wait_for(lambda: eng.values["macro1"] == 1.0 and ctl.stats.notes == 1)
            assert wait_for(lambda: peak[0] > 0.01)
            # garbage: a sysex flood and MIDI clock (both dropped inside RtMidi), then out-of-range data bytes
            for i in range(2000):
                out.send(mido.Message("sysex", data=[i % 128] * 64))
                out.send(mido.Message("clock"))
            # JACK carries a port's events a cycle at a time: what does not fit in a cycle's MIDI buffer is
            # dropped, as on a congested wire. Before the messages that must arrive, an unmapped controller
            # (counted as ignored) is sent until one is heard: then the flood has drained through the graph
            before = ctl.stats.messages
            for _ in range(50):
                out.send(mido.Message("control_change", control=90, value=0))
                if wait_for(lambda: ctl.stats.messages > before, timeout=0.1):
                    break
            assert wait_for(lambda: ctl.stats.messages > before), (ctl.stats, ctl.events, eng.status())
            heard = ctl.stats.messages - ctl.stats.ignored  # a late second sentinel adds to both
            out._rt.send_message([0x90, 0x90, 0x40])
            out._rt.send_message([0xB0, 21])
            out.send(mido.Message("control_change", control=22, value=127))
            assert wait_for(lambda: eng.values["macro2"] == 1.0), (ctl.stats, ctl.events, eng.status())
            assert ctl.stats.malformed == 2 and ctl.stats.messages - ctl.stats.ignored == heard + 3, ctl.stats
            out.send(mido.Message("program_change", program=0))  # the map's program 0: the 'init' preset
            assert wait_for(lambda: eng.values == eng.table.defaults())  # init: every parameter at its default
            # unplug: reported, the sound goes on; replug: reconnected
            out.close()
            assert wait_for(lambda: ctl.stats.disconnects == 1), ctl.events
            out = jack_midi.open_output("gg-test-keys", virtual=True)
            assert wait_for(lambda: ctl.stats.reconnects == 1), ctl.events
            out.send(mido.Message("control_change", control=23, value=127))
            assert wait_for(lambda: eng.values["macro3"] == 1.0)
            st = eng.status()
        out.close()
    assert [e.split()[0] for e in ctl.events] == ["connected", "disconnected", "reconnected"]
    assert st["engine_underruns"] == 0 and peak[1] == 0 and peak[0] <= 10 ** (-0.3 / 20) + 1e-6


def test_a_virtual_input_for_a_daw(jack_midi, tmp_path, eng):
    import mido

    with MidiController(eng, parse_map({}, eng.table, eng.info.categories), PresetLibrary([tmp_path])) as ctl:
        ctl.open([], api="jack", virtual="gg-virtual-in")
        names = jack_midi.get_output_names()  # our input shows up as somewhere to send to
        target = [n for n in names if "gg-virtual-in" in n]
        assert target, names
        with jack_midi.open_output(target[0]) as out:
            out.send(mido.Message("note_on", note=60, velocity=100))
            assert wait_for(lambda: ctl.stats.notes == 1)


@pytest.mark.skipif(shutil.which("jackd") is None, reason="jackd is not installed")
def test_midi_ports_command_lists_a_port(jack_midi):
    import subprocess
    import sys

    with jack_midi.open_output("gg-listed", virtual=True):
        r = subprocess.run([sys.executable, "-m", "instrument", "midi-ports", "--midi-api", "jack"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "gg-listed" in r.stdout, r.stdout + r.stderr
