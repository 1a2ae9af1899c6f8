"""OSC against an engine playing on a real PortAudio stream (JACK's dummy driver): bundles scheduled on
the audio clock, and a fuzz of 100,000 packets while the music plays."""

from __future__ import annotations

import random
import socket
import time

import numpy as np
import pytest
from pythonosc.osc_message_builder import OscMessageBuilder

from instrument.audio import SoundDeviceSink
from instrument.dsp import db_to_gain
from instrument.engine import Engine, EngineConfig
from instrument.osc import OscRouter
from instrument.oscserver import OscServer
from instrument.oscwire import encode, encode_bundle
from instrument.presets import PresetLibrary
from tests.helpers import wait_for

from .onnx_models import GESTURES, engine_model

SR, BLOCK = 48000, 128


class OutputWatch:
    """A block listener (engine thread): the loudest sample and any non-finite ones that went out."""

    def __init__(self) -> None:
        self.peak, self.nonfinite, self.blocks = 0.0, 0, 0

    def __call__(self, block: np.ndarray, at: int) -> None:
        self.nonfinite += int((~np.isfinite(block)).sum())
        self.peak = max(self.peak, float(np.abs(block).max()))
        self.blocks += 1



@pytest.fixture
def live(jack, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # whatever a fuzzed /record/start might write lands here
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    sink = SoundDeviceSink(SR, BLOCK, 2, jack)
    watch = OutputWatch()
    with Engine(engine_model(n_samples=16384, categories=GESTURES), EngineConfig(SR, BLOCK), sink=sink) as eng:
        eng.listen(block=watch)
        router = OscRouter(eng, presets=PresetLibrary([tmp_path / "presets"]))
        with OscServer(router, port=0) as srv:
            eng.start()
            client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            yield eng, router, srv, client, watch, sink
            client.close()


def test_a_bundle_50_ms_ahead_lands_on_its_sample(live):
    """Each bundle asks for a trigger 50 ms after it was sent; the engine applies it at exactly the sample
    the time tag maps to, and that sample reaches the DAC (by the callback's own stamps, read after it
    played) within one block of the time tag. A bundle in flight while the stream dropped out says
    nothing about scheduling (the samples after a dropout play late by the gap): an underrun, or a cycle
    JACK ran without our client (the next block's DAC time is more than a block after the last one's;
    on a noisy host JACK skips a late client). Nor does one during which the stream clock moved against
    the system clock (JACK's dummy driver re-estimates its clock when its thread wakes late: the
    offset between the two moved by more than 0.5 ms in the flight; in one CI run a stretch of such
    flights landed 3-7 ms early). So only the flights unbroken from the send to the callback that
    played the trigger, on a steady clock, are judged, and bundles are sent until 20 of them have, up to 360."""
    eng, router, srv, client, watch, sink = live
    applied_all = []  # (kind, sample) of every command as it took effect
    eng.listen(event=lambda at, command, posted: applied_all.append((command.kind, at)))
    time.sleep(0.3)
    flights, sent = [], 0
    block_ms = 1000 * BLOCK / SR

    def played_in(frame: int, after: int) -> int:
        """The callback (number) whose block held engine sample ``frame``, counting from callback ``after``."""
        i = after
        while i + 1 < int(sink.counters[2]) and sink.stamps[(i + 1) % sink.stamps.shape[0], 0] <= frame:
            i += 1
        return i

    def dropouts(first: int, last: int) -> int:
        n_under = int(sink.counters[0])
        under = sink.events[0, :min(n_under, sink.events.shape[1])]
        k = np.arange(max(first, 0), last + 1) % sink.stamps.shape[0]
        gaps = np.diff(sink.stamps[k, 1]) > 1.5 * BLOCK / SR  # a cycle without our callback
        return int(((under >= first) & (under <= last)).sum() + gaps.sum())

    errors_ms = []  # judged batch by batch: the stamps hold the last 4,096 callbacks (11 s)
    while sent < 360 and len(errors_ms) < 20:
        for _ in range(20):
            t = time.time() + 0.05
            flights.append((t, sink.unix_offset(), int(sink.counters[2])))  # the tag, the Unix - stream clock offset, the callback now
            client.sendto(encode_bundle([("/gesturegan/trigger", ("trigger", 0.5))], t), ("127.0.0.1", srv.port))
            sent += 1
            time.sleep(0.037)
        time.sleep(0.3)
        applied = [s for kind, s in applied_all if kind == "trigger"]
        assert len(applied) == sent and router.stats.scheduled == sent and router.stats.late == 0
        batch = flights[-20:]
        # the Unix - stream clock offset ~75 ms after each send (two sends later; the last two: the batch's end)
        later = [f[1] for f in batch[2:]] + [sink.unix_offset()] * 2
        errors_ms += [1000 * (sink.dac_time_of(s) - (t - off)) for s, (t, off, c), off_later in zip(applied[-20:], batch, later)
                      if dropouts(c - 2, played_in(s, c)) == 0 and abs(off_later - off) < 0.0005]
    print(f"bundle 50 ms ahead, {len(errors_ms)} of {sent} through unbroken stream on a steady clock: DAC time - time tag, ms:",
          [round(e, 2) for e in errors_ms])
    assert len(errors_ms) >= 20, f"the stream dropped out or its clock moved under {sent - len(errors_ms)} of {sent} bundles"
    # +- 1 block (2.7 ms) or better. On a quiet machine every bundle lands within 0.2 ms. JACK's dummy driver
    # (a sleeping thread, not a crystal) lets its clock wander from the system's by a few ms under load, so
    # allow 1 in 10 outside the block; none may be off by more than 4 blocks.
    errors = sorted(abs(e) for e in errors_ms)
    assert errors[int(0.9 * len(errors)) - 1] <= block_ms and errors[-1] <= 4 * block_ms


def packets(rng: random.Random, n: int, kind: str) -> list[bytes]:
    params = ["macro1", "macro5", "radius", "variation", "gain", "pitch", "morph_x", "morph_path", "layer", "crossfade", "seed"]
    out = []
    for _ in range(n):
        if kind == "garbage":  # never a '/' or '#': not OSC whatever follows
            out.append(bytes([rng.choice(b"abc\x00\x01\xff")]) + rng.randbytes(rng.randrange(0, 63)))
        elif kind == "unknown":
            out.append(encode(f"/gesturegan/{rng.choice(['x', 'trig', 'param/volume', 'param'])}{rng.randrange(99)}", (1.0,)))
        elif kind == "bad":
            b = OscMessageBuilder(address=f"/gesturegan/param/{rng.choice(params)}")
            v = rng.choice([float("nan"), float("inf"), "loud", b"\x01\x02", None])
            if v is None:  # wrong count
                b.add_arg(1.0)
                b.add_arg(2.0)
            else:
                b.add_arg(v, "d" if isinstance(v, float) and rng.random() < 0.5 else None)
            out.append(b.build().dgram)
        elif kind == "good":
            r = rng.random()
            if r < 0.1:
                out.append(encode("/gesturegan/trigger", (rng.choice(GESTURES + ["mix"]), rng.random(), rng.uniform(-12, 12))))
            elif r < 0.2:
                out.append(encode_bundle([("/gesturegan/morph", (rng.random(), rng.random())),
                                          ("/gesturegan/param/macro2", (rng.uniform(-1, 1),))], time.time() + rng.uniform(-0.5, 0.5)))
            else:
                p = rng.choice(params)
                v = rng.randrange(0, 1000) if p == "seed" else rng.uniform(-100, 100)  # out of range: clamped
                out.append(encode(f"/gesturegan/param/{p}", (v,)))
    return out


def mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    r = rng.random()
    if r < 0.4:
        for _ in range(rng.randrange(1, 4)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif r < 0.7:
        b = b[: rng.randrange(len(b))]
    else:
        i = rng.randrange(len(b))
        b[i:i] = rng.randbytes(rng.randrange(1, 9))
    return bytes(b)


def test_fuzz_100k_packets_while_it_plays(live):
    eng, router, srv, client, watch, sink = live
    eng.set("layer", 1)
    eng.set("layer_rate", 10)
    rng = random.Random(7)
    sent = 0

    def send(batch: list[bytes]) -> None:
        nonlocal sent
        for i in range(0, len(batch), 100):  # in bursts the server keeps up with: a UDP socket drops what overflows
            for d in batch[i:i + 100]:
                client.sendto(d, ("127.0.0.1", srv.port))
            sent += len(batch[i:i + 100])
            assert wait_for(lambda: router.stats.packets == sent, timeout=10), (router.stats, sent)

    n = 20_000
    for kind in ("garbage", "unknown", "bad"):
        send(packets(rng, n, kind))
    good_messages = 0
    for _ in range(0, n, 100):
        # made burst by burst, just before sending: their bundles' time tags are from -0.5 to +0.5 s of the
        # send (made all at once, on a slow host the later ones had all gone by before they were sent)
        good = packets(rng, 100, "good")
        good_messages += sum(2 if d.startswith(b"#bundle") else 1 for d in good)
        send(good)
    s = router.stats
    assert (s.malformed, s.unknown_address, s.bad_args, s.messages, s.handled) == (n, n, n, 2 * n + good_messages, good_messages)
    assert s.scheduled + s.late == 2 * (good_messages - n) and s.late > 0 and s.scheduled > 0  # bundles hold two
    mutated = [mutate(rng, d) for d in packets(rng, 25_000, "good") + packets(rng, 5_000, "bad")]
    send(mutated)
    s = router.stats
    assert s.packets == sent == 4 * n + 30_000
    assert s.handled + s.unknown_address + s.bad_args == s.messages  # every parsed message was accounted for
    assert s.malformed > 1000 and s.handled > good_messages  # the mutations made both kinds
    # the server still answers, and the music played on
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.settimeout(5)
    probe.sendto(encode("/gesturegan/ping"), ("127.0.0.1", srv.port))
    assert probe.recvfrom(64)[0].startswith(b"/gesturegan/pong")
    probe.close()
    time.sleep(0.3)
    st = eng.status()
    print({k: v for k, v in s.as_dict().items()}, {k: st[k] for k in ("underruns", "engine_underruns", "device_underflows",
                                                                       "late_events", "voices", "clips_generated")})
    # The music played on: the engine's own underruns stay under 1 in 1,000 blocks played. A stuck or crashed
    # engine fails this by thousands. Not 0: on the 2-core CI host the Python callback and mixer share the GIL
    # with the server parsing every packet and with this test making them, and 0-2 of ~7,000 blocks underran
    # in the runs here (the host's own xruns: 500-1,300 a run). The GIL-free core of issue 14 is what makes it 0.
    assert st["engine_underruns"] <= st["time_s"] * SR / BLOCK / 1000, st
    assert watch.nonfinite == 0 and 0.01 < watch.peak <= db_to_gain(-0.3) + 1e-6
