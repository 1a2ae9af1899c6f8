"""OSC without the network: the wire format, the router's address space, types, time tags, bad input,
replies; then through a real UDP socket on loopback (python-osc's client and liblo's oscsend)."""

from __future__ import annotations

import math
import shutil
import socket
import struct
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.udp_client import SimpleUDPClient

from instrument.audio import MemorySink
from instrument.commands import MorphPath, NoteOff, Ramp, Set, Trigger
from instrument.engine import Engine, EngineConfig
from instrument.osc import DEFAULT_OSC_PORT, OscConfigError, OscRouter, RateLimitedLog
from instrument.oscserver import OscServer
from instrument.oscwire import OscParseError, encode, encode_bundle, parse_packet
from instrument.presets import PresetLibrary
from tests.helpers import wait_for

from .onnx_models import engine_model
from .recording import RecordingEngine

SR, BLOCK = 48000, 128


def msg(address: str, *args, types: str | None = None) -> bytes:
    b = OscMessageBuilder(address=address)
    for i, a in enumerate(args):
        b.add_arg(a, types[i] if types else None)
    return b.build().dgram


def set1(pid: str, v: float) -> Set:
    return Set(((pid, v),))


@pytest.fixture
def eng(tmp_path):
    with RecordingEngine(engine_model(), EngineConfig(SR, BLOCK), sync=True) as e:
        yield e


@pytest.fixture
def router(eng, tmp_path):
    r = OscRouter(eng, presets=PresetLibrary([tmp_path / "user", tmp_path / "shipped"]))
    r.sent = []
    r.send = lambda data, to: r.sent.append((parse_packet(data)[0], to))
    return r


# --- wire -------------------------------------------------------------------------------------------------

def test_parser_reads_every_type_real_clients_send():
    data = msg("/x", 3, 2.5, "name", True, False, types="ifsTF")
    m = parse_packet(data)[0]
    assert m.address == "/x" and m.args == (3, 2.5, "name", True, False) and m.time is None
    d = b"/x\0\0" + b",hdN\0\0\0\0" + struct.pack(">q", 2**40) + struct.pack(">d", 0.125)
    assert parse_packet(d)[0].args == (2**40, 0.125, None)


@pytest.mark.parametrize("bad,why", [
    (b"", "must start with '/'"), (b"abc\0", "must start with '/'"), (b"/x\0", "multiple of 4"),
    (b"/x\0\0,i\0\0", "truncated int32"), (b"/x\0\0,q\0\0", "unknown type tag"), (b"/x\0\0i\0\0\0", "must start with ','"),
    (b"/x\0\0,s\0\0\xff\xfe\0\0", "not UTF-8"), (b"/x\0\0,b\0\0\0\0\0\x10", "truncated blob"),
    (b"/x\0\0,[i\0" + struct.pack(">i", 1), "without ']'"), (b"#bundle\0\0\0\0\0", "truncated bundle time tag"),
    (b"#bundle\0" + struct.pack(">Q", 1) + struct.pack(">i", 64) + b"/x\0\0", "truncated bundle element"),
    (b"#bundle\0" + struct.pack(">Q", 1) + struct.pack(">i", -4), "bad bundle element size"),
])
def test_parser_names_what_is_wrong(bad, why):
    with pytest.raises(OscParseError, match=why):
        parse_packet(bad)


def test_bundles_nest_and_carry_their_time():
    t = time.time() + 1.5
    inner = encode_bundle([("/b", (2,))], None)
    outer = b"#bundle\0" + encode_bundle([], t)[8:16] + struct.pack(">i", len(inner)) + inner + struct.pack(">i", 8) + encode("/a")
    ms = parse_packet(outer)
    assert [m.address for m in ms] == ["/b", "/a"]
    assert all(m.bundled and abs(m.time - t) < 1e-6 for m in ms)  # the inner "immediately" takes the outer time


def test_replies_use_only_i_f_s():
    data = encode("/r", (1, 2.5, "s", True, np.float32(0.5).item()))
    assert data.split(b",")[1].startswith(b"ifsif\0")


# --- the address space --------------------------------------------------------------------------------------

def test_every_parameter_has_an_address_and_the_docs_table_lists_them(router, eng):
    for p in eng.table:
        assert f"/gesturegan/param/{p.id}" in router.routes
    md = router.markdown()
    assert md.count("\n") == len(router.routes) + 1 and "/gesturegan/trigger" in md


def test_numbers_come_as_int_float_double_int64_or_bool(router, eng):
    ev = eng
    router.handle_packet(msg("/gesturegan/param/macro1", 1, types="i"))
    router.handle_packet(msg("/gesturegan/param/macro2", 0.5, types="d"))
    router.handle_packet(msg("/gesturegan/param/seed", 7.0, types="f"))  # Pd: every number is a float
    router.handle_packet(b"/gesturegan/param/layer\0,T\0\0")
    router.handle_packet(b"/gesturegan/param/polyphony\0,h\0\0" + struct.pack(">q", 4))
    router.handle_packet(msg("/gesturegan/param/mix_mode", "xy"))
    assert ev.drain() == [(set1("macro1", 1.0), None), (set1("macro2", 0.5), None), (set1("seed", 7.0), None),
                          (set1("layer", 1.0), None), (set1("polyphony", 4.0), None), (set1("mix_mode", 1.0), None)]
    assert router.stats.handled == 6 and router.stats.bad_args == 0


def test_seed_and_param_seed_are_one_check(router, eng):
    """/gesturegan/seed and /gesturegan/param/seed are the same thing (the README says so): both take a
    whole number however it is typed, both refuse 7.5 with the table's own message."""
    ev = eng
    for address in ("/gesturegan/seed", "/gesturegan/param/seed"):
        router.handle_packet(msg(address, 7.0, types="f"), ("127.0.0.1", 9))
        router.handle_packet(msg(address, 7.5, types="f"), ("127.0.0.1", 9))
        assert router.sent[-1][0].args[1].endswith("seed must be a whole number, got 7.5"), router.sent[-1][0].args
    assert ev.drain() == [(set1("seed", 7.0), None)] * 2
    assert router.stats.bad_args == 2
    router.handle_packet(msg("/gesturegan/param/polyphony", 3.6, types="f"))  # a knob's int: rounded, as before
    assert ev.drain() == [(set1("polyphony", 4.0), None)]


def test_commands(router, eng):
    ev = eng
    router.handle_packet(msg("/gesturegan/trigger"))
    router.handle_packet(msg("/gesturegan/trigger", "ring", 0.5, 7))
    router.handle_packet(msg("/gesturegan/trigger", 2.0, 1))  # a category index as Pd sends it
    router.handle_packet(msg("/gesturegan/note", 64, 127))
    router.handle_packet(msg("/gesturegan/note", 64, 0))  # velocity 0 = note off
    router.handle_packet(msg("/gesturegan/morph", 0.25, 1))
    router.handle_packet(msg("/gesturegan/category", 0, 1, 1))
    router.handle_packet(msg("/gesturegan/category", "swell"))
    router.handle_packet(msg("/gesturegan/param/morph_path", 0.5))
    got = ev.drain()
    assert got[0] == (Trigger(None, 1.0, 0.0, None), None)
    assert got[1] == (Trigger(1, 0.5, 7.0, None), None)
    assert got[2] == (Trigger(2, 1.0, 0.0, None), None)
    assert got[3] == (Trigger(None, 1.0, 4.0, 64), None)
    assert got[4] == (NoteOff(64), None)
    assert got[5][0].kind == "set" and got[5][0].as_dict() == {"morph_x": 0.25, "morph_y": 1.0, "mix_mode": 1.0}
    assert got[6][0].as_dict() == {"weight.hit": 0.0, "weight.ring": 1.0, "weight.swell": 1.0, "mix_mode": 0.0}
    assert got[7][0].as_dict()["weight.swell"] == 1.0 and got[7][0].as_dict()["weight.hit"] == 0.0
    assert got[8][0].as_dict() == {"morph_path": 0.5, "mix_mode": 2.0}
    assert router.stats.bad_args == 0


def test_ramps_and_morph_paths_are_commands_the_mixer_steps(router, eng):
    router.handle_packet(msg("/gesturegan/ramp", "macro1", 0.8, 0.5))
    router.handle_packet(msg("/gesturegan/ramp", "gain", -6, 2, -12))
    router.handle_packet(msg("/gesturegan/morph/path", 1.0, 0, 0, 1, 0, 1, 1))
    got = eng.drain()
    assert got[0] == (Ramp("macro1", pytest.approx(0.8), SR // 2, None), None)  # OSC's f is float32
    assert got[1] == (Ramp("gain", -6.0, 2 * SR, -12.0), None)
    assert got[2] == (MorphPath(((0.0, 0.0), (1.0, 0.0), (1.0, 1.0)), SR), None)
    for bad in (msg("/gesturegan/ramp", "macro1", 0.8, -1), msg("/gesturegan/ramp", "macro1", 0.8),
                msg("/gesturegan/ramp", "nope", 0.8, 1), msg("/gesturegan/morph/path", 1.0, 0.5),
                msg("/gesturegan/ramp", "macro1", float("nan"), 1)):
        router.handle_packet(bad)
    assert router.stats.bad_args == 5 and eng.drain() == []
    eng.set("macro1", 0.2)
    router.handle_packet(msg("/gesturegan/ramp", "macro1", 0.8, 0.5))
    seen = []
    eng.listen(block=lambda out, at: seen.append((at, eng.values["macro1"])))
    while eng.now() < SR:
        eng.process_block()
    assert seen[0][1] == pytest.approx(0.2, abs=0.02)  # from its value then
    half = [v for at, v in seen if abs(at - SR // 4) < BLOCK]
    assert half and half[0] == pytest.approx(0.5, abs=0.04)  # moving: 20 steps a second between
    assert eng.values["macro1"] == pytest.approx(0.8)  # and landed


def test_the_whole_latent_and_back_to_the_seed(router, eng):
    z = np.linspace(-0.5, 0.5, eng.info.latent_dim)
    router.handle_packet(msg("/gesturegan/latent", *[float(x) for x in z]))
    eng.process_block()
    assert np.allclose(eng.latent, z, atol=1e-6)
    router.handle_packet(msg("/gesturegan/latent"))
    eng.process_block()
    assert np.allclose(eng.latent, eng.space.base(0))
    router.handle_packet(msg("/gesturegan/latent", 1.0, 2.0))
    assert router.stats.bad_args == 1 and "latent needs" in router.sent[-1][0].args[1] if router.sent else True


def test_bad_input_is_counted_logged_at_a_bounded_rate_and_ignored(router, eng, caplog):
    ev = eng
    caplog.set_level("WARNING", logger="gesturegan.osc")
    for _ in range(50):
        router.handle_packet(b"\x00garbage!", ("127.0.0.1", 5))
        router.handle_packet(msg("/gesturegan/nope", 1), ("127.0.0.1", 5))
        router.handle_packet(msg("/gesturegan/param/gain", "loud"), ("127.0.0.1", 5))
        router.handle_packet(msg("/gesturegan/param/gain", math.nan), ("127.0.0.1", 5))
        router.handle_packet(msg("/gesturegan/param/gain", math.inf, types="d"), ("127.0.0.1", 5))
        router.handle_packet(msg("/gesturegan/morph", 0.5), ("127.0.0.1", 5))
        router.handle_packet(msg("/gesturegan/trigger", "nosuch"), ("127.0.0.1", 5))
        router.handle_packet(msg("/gesturegan/param/seed", -3), ("127.0.0.1", 5))  # refused, not clamped
    s = router.stats
    assert (s.packets, s.malformed, s.unknown_address, s.bad_args, s.handled) == (400, 50, 50, 300, 0)
    assert ev.drain() == []
    assert len(caplog.records) == 1  # the first problem; the rest are summed into the next line, 5 s later
    errors = [m for m, _ in router.sent if m.address == "/gesturegan/error"]
    assert 1 <= len(errors) <= 30 and errors[0].args[0] == "/gesturegan/nope"


def test_rate_limited_log_sums_what_it_held_back(caplog):
    t = [0.0]
    rl = RateLimitedLog(__import__("logging").getLogger("t"), 5.0, clock=lambda: t[0])
    caplog.set_level("WARNING")
    assert rl("a") and not rl("b") and not rl("c")
    t[0] = 6.0
    assert rl("d")
    assert [r.getMessage() for r in caplog.records] == ["a", "d (and 2 more in the last 6 s)"]


def test_bundle_time_tags_schedule_on_the_engine_clock_and_late_ones_apply_at_once(router, eng):
    ev = eng
    now = time.time()
    router.handle_packet(encode_bundle([("/gesturegan/trigger", ("hit",)), ("/gesturegan/param/gain", (-6.0,))], now + 0.05))
    router.handle_packet(encode_bundle([("/gesturegan/trigger", ("ring",))], now - 1.0))
    router.handle_packet(encode_bundle([("/gesturegan/trigger", ("swell",))], None))
    router.handle_packet(encode_bundle([("/gesturegan/trigger", ("swell",))], now + 86400))
    got = ev.drain()
    assert got[0][0].kind == "trigger" and got[1] == (set1("gain", -6.0), got[0][1])
    assert abs(got[0][1] - 0.05 * SR) < 0.01 * SR  # engine clock at 0: 50 ms ahead is sample ~2400
    assert got[2][1] is None and got[3][1] is None
    assert len(got) == 4 and router.stats.late == 1 and router.stats.scheduled == 2 and router.stats.bad_args == 1


def test_status_and_address_space_replies(router, eng):
    router.handle_packet(msg("/gesturegan/status"), ("127.0.0.1", 9))
    got = {m.address: m.args for m, to in router.sent}
    assert got["/gesturegan/status/underruns"] == (0,) and "/gesturegan/status/inference_ms_p99" in got
    assert got["/gesturegan/status/categories"] == ("hit", "ring", "swell") and len(got["/gesturegan/status/mix"]) == 3
    assert all(to == ("127.0.0.1", 9) for _, to in router.sent)
    router.sent.clear()
    router.handle_packet(msg("/gesturegan/addresses"), ("127.0.0.1", 9))
    addrs = [m.args[0] for m, _ in router.sent if m.address == "/gesturegan/address"]
    assert addrs == list(router.routes) and router.sent[-1][0].args == (len(router.routes),)
    router.sent.clear()
    router.handle_packet(msg("/gesturegan/reply", 9999), ("127.0.0.1", 9))
    router.handle_packet(msg("/gesturegan/ping"), ("127.0.0.1", 9))
    assert router.sent[-1][1] == ("127.0.0.1", 9999) and router.sent[-1][0].address == "/gesturegan/pong"


def test_status_push(router, eng):
    router.handle_packet(msg("/gesturegan/status/push", 10), ("127.0.0.1", 9))
    t0 = time.monotonic()
    router.tick(t0)
    n1 = len(router.sent)
    router.tick(t0 + 0.05)
    assert len(router.sent) == n1  # not due yet
    router.tick(t0 + 0.11)
    assert len(router.sent) == 2 * n1 > 0
    router.handle_packet(msg("/gesturegan/status/push", 0), ("127.0.0.1", 9))
    router.tick(t0 + 1)
    assert len(router.sent) == 2 * n1


def test_presets_save_list_and_recall(router, eng, tmp_path):
    eng.set("macro3", 0.75)
    eng.set("morph_path", 0.4)
    eng.process_block()
    router.handle_packet(msg("/gesturegan/preset/save", "glass"), ("127.0.0.1", 9))
    assert (tmp_path / "user" / "glass.toml").is_file()
    eng.set("macro3", -1)
    eng.set("mix_mode", "weights")
    eng.process_block()
    router.handle_packet(msg("/gesturegan/preset", "glass"))
    eng.process_block()
    assert eng.values["macro3"] == 0.75 and eng.values["mix_mode"] == 2.0 and eng.values["morph_path"] == 0.4
    router.handle_packet(msg("/gesturegan/preset/list"), ("127.0.0.1", 9))
    assert router.sent[-1][0].args == ("glass", "init")  # init is always there: the table's defaults
    router.handle_packet(msg("/gesturegan/preset", "missing"), ("127.0.0.1", 9))
    assert router.stats.bad_args == 1 and "no preset named 'missing'" in router.sent[-1][0].args[1]


def test_init_is_every_parameter_at_its_default_after_any_preset(router, eng, tmp_path):
    """Program change 0 / ``/gesturegan/preset init`` after the shipped glass-rain: nothing is left over."""
    router.presets = PresetLibrary([tmp_path / "user", Path(__file__).resolve().parents[2] / "presets" / "params"])
    defaults = dict(eng.values)
    router.handle_packet(msg("/gesturegan/preset", "glass-rain"))
    eng.process_block()
    assert sum(eng.values[k] != v for k, v in defaults.items()) >= 8
    router.handle_packet(msg("/gesturegan/preset", "init"))
    eng.process_block()
    assert {k: v for k, v in eng.values.items() if defaults[k] != v} == {}
    router.handle_packet(msg("/gesturegan/preset/save", "init"), ("127.0.0.1", 9))
    assert router.stats.bad_args == 1 and "save under another name" in router.sent[-1][0].args[1]


def test_record_start_and_stop(router, eng, tmp_path):
    router.handle_packet(msg("/gesturegan/record/start", str(tmp_path / "take.wav")), ("127.0.0.1", 9))
    eng.trigger("hit")
    for _ in range(100):
        eng.process_block()
    router.handle_packet(msg("/gesturegan/record/stop"), ("127.0.0.1", 9))
    m = router.sent[-1][0]
    assert m.args[0] == "stopped" and abs(m.args[2] - 100 * BLOCK / SR) < 1e-3
    import soundfile as sf

    assert sf.info(str(tmp_path / "take.wav")).frames == 100 * BLOCK
    router.handle_packet(msg("/gesturegan/record/start", str(tmp_path / "take.mp3")))
    router.handle_packet(msg("/gesturegan/record/start", str(tmp_path / "no" / "such" / "dir.wav")), ("127.0.0.1", 9))
    assert router.stats.bad_args == 2 and "cannot record to" in router.sent[-1][0].args[1]


# --- real sockets -------------------------------------------------------------------------------------------


def test_server_over_udp_with_python_osc_replies_to_the_senders_port(eng, tmp_path):
    router = OscRouter(eng, presets=PresetLibrary([tmp_path]))
    with OscServer(router, port=0) as srv:
        assert srv.host == "127.0.0.1"  # loopback unless asked
        client_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client_sock.bind(("127.0.0.1", 0))
        client_sock.settimeout(5)
        client_sock.sendto(msg("/gesturegan/param/macro4", 0.5), ("127.0.0.1", srv.port))
        client_sock.sendto(msg("/gesturegan/ping"), ("127.0.0.1", srv.port))
        data, _ = client_sock.recvfrom(1024)
        assert parse_packet(data)[0].address == "/gesturegan/pong"
        SimpleUDPClient("127.0.0.1", srv.port).send_message("/gesturegan/trigger", ["ring", 0.5])
        assert wait_for(lambda: router.stats.handled == 3)
        client_sock.close()


def test_port_taken_and_supercollider_ports_are_clear_errors(eng):
    router = OscRouter(eng)
    with OscServer(router, port=0) as srv:
        with pytest.raises(OscConfigError, match=f"cannot listen for OSC on 127.0.0.1:{srv.port}.*--osc-port"):
            OscServer(router, port=srv.port)
    with pytest.raises(OscConfigError, match="57120 belongs to SuperCollider"):
        OscServer(router, port=57120)
    assert DEFAULT_OSC_PORT not in (57110, 57120)


def test_allow_list_refuses_other_clients(eng):
    router = OscRouter(eng)
    with OscServer(router, host="127.0.0.1", port=0, allow=["127.0.0.2"]) as srv:
        SimpleUDPClient("127.0.0.1", srv.port).send_message("/gesturegan/trigger", [])
        assert wait_for(lambda: router.stats.denied == 1)
        assert router.stats.handled == 0


@pytest.mark.skipif(shutil.which("oscsend") is None, reason="liblo-tools (oscsend) is not installed")
def test_oscsend_from_liblo_plays_the_instrument(tmp_path):
    sink = MemorySink(SR, BLOCK)
    with Engine(engine_model(), EngineConfig(SR, BLOCK), sink=sink) as eng:
        router = OscRouter(eng, presets=PresetLibrary([tmp_path]))
        with OscServer(router, port=0) as srv:
            eng.start()
            port = str(srv.port)
            for args in (["/gesturegan/trigger", "sf", "ring", "0.8"], ["/gesturegan/param/macro1", "f", "0.5"],
                         ["/gesturegan/morph", "ff", "0.2", "0.9"], ["/gesturegan/param/layer", "T"],
                         ["/gesturegan/note", "ii", "67", "100"], ["/gesturegan/param/gain", "d", "-3"]):
                subprocess.run(["oscsend", "localhost", port, *args], check=True, timeout=10)
            assert wait_for(lambda: router.stats.handled == 6), router.stats
            blocks = []
            for _ in range(400):  # about real time, so the worker's clips arrive as they would while playing
                blocks.append(sink.pull(1))
                time.sleep(0.002)
            out = np.concatenate(blocks)
        assert router.stats.bad_args == 0 and router.stats.malformed == 0
        assert eng.values["macro1"] == 0.5 and eng.values["layer"] == 1.0 and eng.values["gain"] == -3.0
        assert eng.values["mix_mode"] == 1.0 and eng.values["morph_y"] == pytest.approx(0.9)
        assert np.abs(out).max() > 0.01


def test_readme_python_osc_snippet_plays_as_written(tmp_path):
    from .test_readme_instrument import snippets

    (code,) = [s for s in snippets() if "SimpleUDPClient" in s]
    with Engine(engine_model(categories=["trigger", "trigger_continuous", "continuous_variation", "continuous_repetition"]),
                EngineConfig(SR, BLOCK), sync=True) as eng:
        router = OscRouter(eng, presets=PresetLibrary([tmp_path]))
        with OscServer(router, port=0) as srv:
            assert '"127.0.0.1", 9000' in code
            exec(compile(code.replace('"127.0.0.1", 9000', f'"127.0.0.1", {srv.port}'), "README.md", "exec"), {})
            assert wait_for(lambda: router.stats.messages == 11)
    s = router.stats
    assert s.handled == 11 and s.bundles == 8 and s.scheduled == 8 and s.bad_args == 0


def test_model_hot_swap_over_osc_replies_when_done(router, eng, tmp_path):
    from .onnx_models import engine_model_file

    good = engine_model_file(tmp_path / "new.onnx")
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    router.handle_packet(msg("/gesturegan/model", str(good)), ("127.0.0.1", 9))
    router.handle_packet(msg("/gesturegan/model", str(tmp_path / "broken.onnx")), ("127.0.0.1", 9))
    router.handle_packet(msg("/gesturegan/model", str(tmp_path / "missing.onnx")), ("127.0.0.1", 9))
    assert wait_for(lambda: sum(1 for m, _ in router.sent if m.address == "/gesturegan/model") == 2)
    replies = sorted(m.args[0] for m, _ in router.sent if m.address == "/gesturegan/model")
    assert replies == ["error", "ok"]
    err = next(m for m, _ in router.sent if m.address == "/gesturegan/model" and m.args[0] == "error")
    assert "broken.onnx" in err.args[1] and err.args[2]
    assert router.stats.bad_args == 1  # the missing file, refused at once


def test_midi_learn_armed_over_osc(router, eng, tmp_path):
    from instrument.midi import MidiController
    from instrument.midimap import parse_map

    ctl = MidiController(eng, parse_map({}, eng.table, eng.info.categories), learn_path=tmp_path / "map.toml")
    router.midi = ctl
    router.handle_packet(msg("/gesturegan/learn", "macro3"), ("127.0.0.1", 9))
    ctl.handle([0xB0, 70, 5])
    assert wait_for(lambda: any(m.address == "/gesturegan/learn" for m, _ in router.sent))
    assert [m.args for m, _ in router.sent if m.address == "/gesturegan/learn"] == [("macro3", "cc 70")]
    assert 'param = "macro3"' in (tmp_path / "map.toml").read_text()
    router.handle_packet(msg("/gesturegan/learn", "nope"), ("127.0.0.1", 9))
    router.midi = None
    router.handle_packet(msg("/gesturegan/learn", "macro1"), ("127.0.0.1", 9))
    assert router.stats.bad_args == 2 and "needs a MIDI input" in router.sent[-1][0].args[1]
    ctl.close()
