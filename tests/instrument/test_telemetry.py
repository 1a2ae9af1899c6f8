"""The telemetry table is the whole truth: the engine's status, the control surfaces' counters, the
OSC status replies and the status line all follow it."""

from __future__ import annotations

from dataclasses import fields

from instrument import telemetry
from instrument.engine import Engine, EngineConfig
from instrument.midi import MidiStats
from instrument.osc import OscRouter, OscStats
from instrument.oscwire import parse_packet

from .onnx_models import GESTURES, engine_model


def test_every_reported_value_has_its_row_in_order():
    with Engine(engine_model(categories=GESTURES), EngineConfig(48000, 128), sync=True) as eng:
        eng.trigger("trigger")
        eng.process_block()
        st = eng.status()
    assert list(st) == [m.name for m in telemetry.ENGINE]
    assert [f.name for f in fields(OscStats)] == [m.name for m in telemetry.OSC]
    assert [f.name for f in fields(MidiStats)] == [m.name for m in telemetry.MIDI]
    for _, table in telemetry.SECTIONS:
        assert all(m.kind in telemetry.KINDS and m.doc for m in table)
        assert len({m.name for m in table}) == len(table)


def test_the_status_reply_is_the_table_typed_by_kind():
    with Engine(engine_model(categories=GESTURES), EngineConfig(48000, 128), sync=True) as eng:
        router = OscRouter(eng)
        sent = []
        router.send = lambda data, to: sent.append(parse_packet(data)[0])
        eng.process_block()
        router.reply_status(("127.0.0.1", 9))
    names = [m.address.rsplit("/", 1)[1] for m in sent]
    expected = [m.name for m in telemetry.ENGINE if m.kind != "text"] + [f"osc_{m.name}" for m in telemetry.OSC]
    assert names == expected  # no MIDI controller attached: no midi_ rows
    by_name = dict(zip(names, sent))
    assert by_name["categories"].args == tuple(GESTURES) and len(by_name["mix"].args) == len(GESTURES)
    assert by_name["layer"].args == (0,) and isinstance(by_name["underruns"].args[0], int)
    assert isinstance(by_name["inference_ms_p99"].args[0], float) and len(by_name["macros"].args) == 8
    for m in sent:  # only i, f and s on the wire (never d, which Max mishandles)
        assert all(isinstance(a, (int, float, str)) and not isinstance(a, bool) for a in m.args), m


def test_the_status_line_shows_the_labelled_rows():
    with Engine(engine_model(categories=GESTURES), EngineConfig(48000, 128), sync=True) as eng:
        eng.process_block()
        line = telemetry.status_line(eng.status())
    for m in telemetry.ENGINE:
        if m.short:
            assert f"{m.short} " in line
    assert " dBFS" in line and "layer off" in line and "\n" not in line
