"""MPE: zones and the MPE Configuration Message, per-note bend, pressure and timbre (in memory, fast), what
the mixer does with them, scores that carry them, and an MPE controller on a real JACK MIDI port."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from instrument.commands import PRESSURE_RANGE_DB, Expression, NoteOff, Set, Trigger
from instrument.engine import EngineConfig
from instrument.midi import MidiController
from instrument.midimap import MidiMapError, load_map, parse_map
from instrument.mpe import MpeState
from instrument.presets import PresetLibrary
from instrument.render import render_score
from instrument.score import Score, load_score
from tests.helpers import wait_for

from .onnx_models import GESTURES, engine_model, engine_model_file
from .recording import RecordingEngine

SR, BLOCK = 48000, 128
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def eng():
    with RecordingEngine(engine_model(n_samples=16384, categories=GESTURES), EngineConfig(SR, BLOCK), sync=True) as e:
        yield e


@pytest.fixture
def ctl(eng, tmp_path):
    m = load_map(REPO / "presets" / "midi" / "default.toml", eng.table, eng.info.categories)
    c = MidiController(eng, m, PresetLibrary([tmp_path]))
    yield c
    c.close()


def mcm(ch: int, members: int) -> list[list[int]]:
    """The MPE Configuration Message: RPN 6 on a manager channel (0-based 0 or 15)."""
    return [[0xB0 | ch, 101, 0], [0xB0 | ch, 100, 6], [0xB0 | ch, 6, members]]


def bend(ch: int, value: float) -> list[int]:
    raw = 8192 + int(round(value * (8191 if value > 0 else 8192)))
    return [0xE0 | ch, raw & 0x7F, raw >> 7]


def drain(eng):
    return [c for c, _ in eng.drain()]


def test_the_configuration_message_makes_zones_that_share_the_channels():
    s = MpeState()
    assert not s.active and s.role(1) is None
    assert [s.registered(0, cc, v) for cc, v in ((101, 0), (100, 6), (6, 10))] == ["select", "select", "mcm"]
    assert s.zones[0].members == tuple(range(1, 11)) and s.role(0)[1] and not s.role(5)[1]
    s.configure(15, 6)  # the upper zone takes 14..9: the lower zone, older, shrinks to 1..8
    assert s.zones[15].members == (14, 13, 12, 11, 10, 9) and s.zones[0].members == tuple(range(1, 9))
    s.configure(15, 15)  # every channel but 16 is the upper zone's, the lower manager's too: no lower zone
    assert list(s.zones) == [15] and s.role(0) == (s.zones[15], False)
    s.configure(15, 0)
    assert not s.active
    assert s.registered(3, 6, 5) is None  # data entry with no parameter selected: the map's to use


def test_notes_on_member_channels_carry_their_channel_bend_pressure_and_timbre(ctl, eng):
    for m in mcm(0, 15):
        ctl.handle(m)
    ctl.handle([0xB1, 74, 127])  # timbre, then bend, before the note (as MPE controllers send them)
    ctl.handle(bend(1, 0.25))
    ctl.handle([0x91, 62, 100])
    ctl.handle([0xD1, 64])  # channel pressure: the note's level
    ctl.handle(bend(1, -1.0))
    ctl.handle([0xB1, 74, 0])  # after the note-on: kept for the channel's next note, this one is made
    ctl.handle([0xB1, 21, 127])  # a member channel's other controllers are the note's, not the map's: ignored
    ctl.handle([0x81, 62, 0])
    got = drain(eng)
    assert got[0] == Expression(1, bend=pytest.approx(12.0, abs=0.01))  # 14-bit bend: 2048/8191 of 48
    assert got[1] == Trigger(None, pytest.approx(100 / 127), 2.0, 62, channel=1, timbre=1.0)
    assert got[2] == Expression(1, pressure=pytest.approx(64 / 127))
    assert got[3] == Expression(1, bend=-48.0)
    assert got[4] == NoteOff(62, 1) and len(got) == 5
    assert eng.values["macro1"] == 0.0 and ctl.stats.ignored == 1


def test_the_manager_channel_is_the_whole_zone_and_rpn_0_sets_bend_ranges(ctl, eng):
    for m in mcm(0, 7):
        ctl.handle(m)
    ctl.handle([0x90, 60, 90])  # a note on the manager channel: an ordinary note
    ctl.handle(bend(0, 1.0))  # the manager's bend: the zone's pitch, over its 2 semitones
    for m in ([0xB0, 101, 0], [0xB0, 100, 0], [0xB0, 6, 12], [0xB0, 38, 50]):  # the manager's range: 12.5
        ctl.handle(m)
    ctl.handle(bend(0, -1.0))
    for m in ([0xB3, 101, 0], [0xB3, 100, 0], [0xB3, 6, 24]):  # a member's range: the whole zone's members
        ctl.handle(m)
    ctl.handle(bend(5, 0.5))
    ctl.handle(bend(9, 0.5))  # channel 10 is outside the 7-member zone: an ordinary channel's bend
    got = drain(eng)
    assert got[0] == Trigger(None, pytest.approx(90 / 127), 0.0, 60)
    assert got[1] == Set((("pitch", pytest.approx(2.0)),))
    assert got[2] == Set((("pitch", pytest.approx(-12.5)),))
    assert got[3] == Expression(5, bend=pytest.approx(12.0, abs=0.01))
    assert got[4] == Set((("pitch", pytest.approx(1.0, abs=1e-3)),))


def test_overlapping_notes_on_one_channel_both_follow_it_and_release_one_by_one(ctl, eng):
    for m in mcm(0, 15):
        ctl.handle(m)
    ctl.handle([0x93, 60, 100])
    ctl.handle([0x93, 67, 100])  # a second note on the same member channel before the first ends
    ctl.handle(bend(3, 0.25))  # 12 semitones: both voices an octave up
    for _ in range(3):
        eng.process_block()
    ours = [vc for vc in eng.voices if vc.channel == 3]
    assert len(ours) == 2 and all(vc.bend_ratio == pytest.approx(2.0, rel=1e-3) for vc in ours)
    ctl.handle([0x83, 60, 0])
    eng.process_block()
    assert [(vc.note, vc.releasing) for vc in eng.voices if vc.channel == 3] == [(60, True), (67, False)]


def test_the_managers_sustain_pedal_holds_the_zones_notes(ctl, eng):
    for m in mcm(0, 15):
        ctl.handle(m)
    ctl.handle([0xB0, 64, 127])  # pedal down on the manager channel
    ctl.handle([0x92, 60, 100])
    ctl.handle([0x82, 60, 0])  # held
    ctl.handle([0x90, 72, 100])
    ctl.handle([0x80, 72, 0])  # held too (an ordinary note on the manager channel)
    assert [type(c) for c in drain(eng)] == [Trigger, Trigger]
    ctl.handle([0xB0, 64, 0])
    assert sorted(drain(eng), key=lambda c: c.note) == [NoteOff(60, 2), NoteOff(72)]


def test_a_map_can_set_the_zones_and_refuses_what_cannot_be(eng):
    m = parse_map({"mpe": {"lower": 15, "bend_range": 24}}, eng.table, eng.info.categories)
    c = MidiController(eng, m)
    c.handle(bend(8, 1.0))
    assert drain(eng) == [Expression(8, bend=24.0)]
    for doc, why in (({"mpe": {"lower": 8, "upper": 7}}, "more than the 14"), ({"mpe": {"bend_range": 200}}, "0..96"),
                     ({"mpe": {"lower": -1}}, "lower must be"), ({"mpe": {"timbre_cc": 128}}, "timbre_cc")):
        with pytest.raises(MidiMapError, match=why):
            parse_map(doc, eng.table, eng.info.categories)


def test_the_mixer_bends_and_swells_a_voice_by_its_channel(eng):
    eng.expression(4, bend=12.0)  # before the note: it starts an octave up
    eng.note_on(60, 1.0, "continuous_variation", channel=4)
    eng.note_on(62, 1.0, "continuous_variation", channel=5)
    eng.process_block()
    a, b = eng.voices
    assert (a.channel, a.bend_ratio, b.bend_ratio) == (4, pytest.approx(2.0), 1.0)
    eng.process_block()
    a2, b2 = eng.voices
    assert a2.pos - a.pos == pytest.approx(2 * (b2.pos - b.pos) * 2 ** (-2 / 12), rel=1e-6)  # b sounds 2 semitones up
    # pressure: none is PRESSURE_RANGE_DB below the velocity's level, glided over one block (no click)
    eng.expression(5, pressure=0.0)
    eng.process_block()
    assert eng.voices[1].expression_gain == pytest.approx(10 ** (-PRESSURE_RANGE_DB / 20))
    with pytest.raises(ValueError, match="channel must be a whole number 0..15"):
        eng.expression(16, bend=1.0)
    with pytest.raises(ValueError, match="needs the channel"):
        eng.expression(None, bend=1.0)


def test_pressure_changes_the_level_without_a_click():
    with RecordingEngine(engine_model(n_samples=16384, categories=GESTURES), EngineConfig(SR, 64), sync=True) as e:
        e.note_on(60, 1.0, "continuous_repetition", channel=2)
        e.expression(2, pressure=1.0, at=4800)
        e.expression(2, pressure=0.0, at=9600)
        out = e.render(0.4)[:, 0]
    loud, quiet = np.abs(out[4800:9600]).max(), np.abs(out[12000:19000]).max()
    assert loud > 0.01 and 20 * np.log10(loud / quiet) > 15
    # glided over a block, not stepped: no sample-to-sample jump there beyond the sound's own
    assert np.abs(np.diff(out[9600 - 64 : 9600 + 128])).max() <= np.abs(np.diff(out[4800:9600])).max()


def test_timbre_gives_a_note_its_own_latent(eng):
    clips = []
    for timbre in (0.0, 1.0, -1.0, 0.0):
        with RecordingEngine(engine_model(n_samples=16384, categories=GESTURES), EngineConfig(SR, BLOCK), sync=True) as e:
            e.set("variation", 0.0)
            e.note_on(60, 1.0, "trigger", channel=1, timbre=timbre)
            clips.append(e.render(0.2)[:, 0])
    assert np.array_equal(clips[0], clips[3])  # the same timbre, the same sound
    assert not np.allclose(clips[0], clips[1]) and not np.allclose(clips[1], clips[2])


def test_a_score_carries_mpe_notes_and_plays_them_as_live(tmp_path):
    model = engine_model_file(tmp_path / "m.onnx", n_samples=16384, categories=GESTURES)
    with RecordingEngine(model, EngineConfig(SR, BLOCK), sync=True) as e:
        e.note_on(60, 0.9, "continuous_variation", channel=1, timbre=0.5, at=0)
        e.expression(1, bend=3.0, pressure=0.5, at=4800)
        e.note_off(60, channel=1, at=9600)
        expected = e.render(0.5)
    assert np.abs(expected).max() > 0.01
    score = Score(sample_rate=SR, duration=0.5, tail=0.0, block=BLOCK)
    score.at(0).note(60, velocity=0.9, category="continuous_variation", channel=1, timbre=0.5)
    score.at(0.1).expression(1, bend=3.0, pressure=0.5)
    score.at(0.2).note_off(60, channel=1)
    path = score.save(tmp_path / "mpe.toml")
    text = path.read_text()
    assert "expression = 1" in text and "channel = 1" in text and "timbre = 0.5" in text
    out = render_score(load_score(path), model=model)
    assert np.array_equal(out[: len(expected)], expected)


# --- an MPE controller on a real JACK MIDI port -----------------------------------------------------------

def test_an_mpe_controller_on_a_jack_port_plays_per_note_bends_and_pressure(jack, eng, tmp_path):
    import mido

    backend = mido.Backend("mido.backends.rtmidi/UNIX_JACK")
    out = backend.open_output("gg-test-mpe", virtual=True)
    try:
        with MidiController(eng, load_map(REPO / "presets" / "midi" / "default.toml", eng.table, eng.info.categories),
                            PresetLibrary([tmp_path])) as ctl:
            ctl.open(["gg-test-mpe"], api="jack", poll_s=0.1)
            assert wait_for(lambda: any("gg-test-mpe" in p for p in ctl.ports)), ctl.events
            for _ in range(50):  # until the connection carries (JACK connects at a cycle boundary): the MCM, idempotent
                for ch, cc, v in ((0, 101, 0), (0, 100, 6), (0, 6, 15)):
                    out.send(mido.Message("control_change", channel=ch, control=cc, value=v))
                if wait_for(lambda: ctl.mpe.active, timeout=0.1):
                    break
            assert ctl.mpe.zones[0].members == tuple(range(1, 16))
            # two fingers: a note on channel 2 bent up 7 semitones and pressed hard, one on channel 3 bent down and light
            out.send(mido.Message("control_change", channel=1, control=74, value=100))
            out.send(mido.Message("note_on", channel=1, note=60, velocity=100))
            out.send(mido.Message("note_on", channel=2, note=64, velocity=80))
            out.send(mido.Message("pitchwheel", channel=1, pitch=round(8191 * 7 / 48)))
            out.send(mido.Message("pitchwheel", channel=2, pitch=-round(8192 * 5 / 48)))
            out.send(mido.Message("aftertouch", channel=1, value=127))
            out.send(mido.Message("aftertouch", channel=2, value=20))
            assert wait_for(lambda: ctl.stats.controls >= 3 + 1 + 4 and ctl.stats.notes == 2), ctl.stats
        got = [c for c, _ in eng.drain()]
        notes = [c for c in got if isinstance(c, Trigger)]
        assert [(n.note, n.channel) for n in notes] == [(60, 1), (64, 2)] and notes[0].timbre == pytest.approx(36 / 63)
        for _ in range(4):
            eng.process_block()
        a, b = sorted((vc for vc in eng.voices if vc.channel is not None), key=lambda vc: vc.channel)
        assert a.bend_ratio == pytest.approx(2 ** (7 / 12), rel=1e-3) and b.bend_ratio == pytest.approx(2 ** (-5 / 12), rel=1e-3)
        assert a.expression_gain == pytest.approx(1.0) and b.expression_gain == pytest.approx(10 ** (-PRESSURE_RANGE_DB * (1 - 20 / 127) / 20))
    finally:
        out.close()


@pytest.mark.parametrize("event, why", [
    ('expression = 16\nbend = 1.0', "expression must be a MIDI channel 0..15"),
    ('expression = 2', "expression needs bend"),
    ('expression = 2\nbend = 200.0', "bend must be"),
    ('expression = 2\npressure = 1.5', "pressure must be"),
    ('expression = 2\nvelocity = 0.5', "expression has no field 'velocity'"),
    ('note = 60\nchannel = -1', "channel must be a MIDI channel 0..15"),
    ('note = 60\ntimbre = 2.0', "timbre must be"),
    ('note_off = 60\nchannel = true', "channel must be a MIDI channel"),
])
def test_a_score_with_bad_mpe_events_names_the_event_and_field(tmp_path, event, why):
    from instrument.score import ScoreError

    path = tmp_path / "bad.toml"
    path.write_text(f'[score]\nsample_rate = 48000\ntime = "seconds"\n\n[[event]]\nat = 0\n{event}\n')
    with pytest.raises(ScoreError, match=why) as e:
        load_score(path)
    assert "event 1" in str(e.value)
