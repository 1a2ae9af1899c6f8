"""Control-to-sound latency from OSC and MIDI, under a control load, on JACK's dummy driver.

    python tests/bench/bench_controls.py                    # 200 of each measurement, then a 10-minute soak under load
    python tests/bench/bench_controls.py --soak-seconds 60 --json out.json

One JACK server (dummy driver, 48 kHz / 128 frames), one engine process playing the WaveGAN d=32 model
(the default model's size) with the default 3 blocks ahead, its OSC server, and its MIDI input. A second
process is the load: 200 OSC messages a second (the XY pad circling and small gain moves, so the
continuous layer regenerates at its 10/s limit) and a MIDI controller stream (CC 7 and CC 11, 100 a
second) through a JACK MIDI port.

Measured, in the engine process, for triggers 40-60 ms apart:

- **OSC**: the JACK stream time just before ``sendto`` of ``/gesturegan/trigger <category>`` on a UDP
  socket, to the DAC time of the first output sample the trigger changes (the audio callback's
  ``outputBufferDacTime`` for the block holding it, plus its offset in the block).
- **MIDI**: the same from a note-on sent on a JACK MIDI port (mido, rtmidi's JACK API).
- **OSC, fresh latent**: a bundle that changes ``seed`` and triggers: the clip must be generated first.

Then the soak goes on under the same load for ``--soak-seconds``: underruns (the engine's, and those
during device xruns), late events, and the OSC and MIDI counters. Peer: the direct ``Engine.trigger``
call measured in the same run, so the figures show what the OSC and MIDI paths add.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import export_model, late_clients, start_jack  # noqa: E402

SR, BLOCK = 48000, 128
CATEGORIES = ("trigger", "trigger_continuous", "continuous_variation", "continuous_repetition")


def first_sound_ms(eng, sink, applied: list, before: int, t_call: float) -> float | None:
    """Milliseconds from ``t_call`` (stream clock) to the DAC time of the first sample of the trigger
    that follows ``before`` applied triggers (``applied``: (kind, sample, posted) as the engine's event
    listener saw them), or None if it did not sound within a second."""
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        trig = [a for a in applied if a[0] == "trigger"]
        if len(trig) > before and len(eng.telemetry.trigger_delays) > 0:
            break
        time.sleep(0.0005)
    else:
        return None
    at = trig[before][1]
    # the voice starts at its sample when the clip was ready, else when the clip came (the delay)
    while time.monotonic() < deadline and not any(v.started_at >= at for v in list(eng.voices)):
        time.sleep(0.0005)
    started = [v.started_at for v in list(eng.voices) if v.started_at >= at]
    if not started:
        return None
    first = min(started)
    while time.monotonic() < deadline + 0.5:
        n = sink._callbacks()
        last = sink._stamp(n - 1) if n else None
        if last is not None and last[0] > first:
            dac = sink.dac_time_of(first)
            return None if dac is None else (dac - t_call) * 1000
        time.sleep(0.002)
    return None


def child_load(port: int, seconds: float, triggers: bool = False) -> dict:
    """The control load: 200 OSC messages/s and a 100/s CC stream on a JACK MIDI port, for ``seconds``; with
    ``triggers``, 20 OSC triggers a second too (the soak)."""
    import mido

    from instrument.oscwire import encode

    import signal

    out = mido.Backend("mido.backends.rtmidi/UNIX_JACK").open_output("bench-cc", virtual=True)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))  # the engine process ends the load when its measurement is done
    t0 = time.monotonic()
    k = sent = cc = 0
    while time.monotonic() - t0 < seconds and not stop:
        ph = k / 200
        if k % 2 == 0:
            sock.sendto(encode("/gesturegan/morph", (0.5 + 0.4 * math.cos(ph), 0.5 + 0.4 * math.sin(ph))), ("127.0.0.1", port))
        else:
            sock.sendto(encode("/gesturegan/param/gain", (-1.0 + 0.5 * math.sin(3 * ph),)), ("127.0.0.1", port))
        sent += 1
        if k % 2 == 0:
            out.send(mido.Message("control_change", control=7 if k % 4 == 0 else 11, value=100 + (k // 4) % 27))
            cc += 1
        if triggers and k % 10 == 5:  # the soak's triggers, 20 a second
            sock.sendto(encode("/gesturegan/trigger", (CATEGORIES[(k // 10) % 4], 0.3 + 0.1 * ((k // 10) % 5))), ("127.0.0.1", port))
            sent += 1
        k += 1
        next_t = t0 + k / 200
        time.sleep(max(0.0, next_t - time.monotonic()))
    out.close()
    return {"osc_sent": sent, "cc_sent": cc, "seconds": time.monotonic() - t0}


def hog(n: int) -> list[subprocess.Popen]:
    """``n`` CPU-bound processes (a performer's laptop also runs a DAW and a browser). They end by themselves
    after an hour even if nobody kills them."""
    return [subprocess.Popen([sys.executable, "-c", "import time\nt = time.time() + 3600\nwhile time.time() < t: pass"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(n)]


def child_controls(model: Path, n: int, soak_seconds: float, hogs: int) -> dict:
    import mido

    from instrument.audio import SoundDeviceSink
    from instrument.engine import Engine, EngineConfig
    from instrument.midi import MidiController
    from instrument.midimap import load_map, shipped_map
    from instrument.osc import OscRouter
    from instrument.oscserver import OscServer
    from instrument.oscwire import encode, encode_bundle
    from instrument.presets import PresetLibrary

    sink = SoundDeviceSink(SR, BLOCK, 2, None)
    keys = mido.Backend("mido.backends.rtmidi/UNIX_JACK").open_output("bench-keys", virtual=True)
    res: dict = {}
    with Engine(model, EngineConfig(SR, BLOCK, core=os.environ.get("GESTUREGAN_CORE", "auto")), sink=sink) as eng:
        eng.set("variation", 0)
        eng.set("layer", 1)
        eng.set("layer_rate", 10)
        eng.set("polyphony", 32)
        router = OscRouter(eng, presets=PresetLibrary([Path(tempfile.mkdtemp())]))
        midi = MidiController(eng, load_map(shipped_map(), eng.table, eng.info.categories), router.presets)
        with OscServer(router, port=0) as srv:
            midi.open(["bench-keys", "bench-cc"], api="jack", poll_s=0.5)
            eng.start()
            total = 4 * n * 0.5 + 60  # stopped (SIGTERM) when the measurements are done
            load = subprocess.Popen([sys.executable, __file__, "--child", "load", str(srv.port), str(total)],
                                    stdout=subprocess.PIPE, text=True, env=os.environ)
            time.sleep(2.0)  # the load's MIDI port is connected by hot-plug
            client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            applied: list[tuple[str, int, float]] = []
            stop_listening = eng.listen(event=lambda at, command, posted: applied.append((command.kind, at, posted)))
            rng = np.random.default_rng(0)
            lat: dict[str, list[float]] = {"direct": [], "osc": [], "midi": [], "osc_fresh": []}
            for i in range(n):
                for mode in lat:
                    cat = i % 4
                    before = sum(1 for a in applied if a[0] == "trigger")
                    t_call = sink.stream_time()
                    if mode == "direct":
                        eng.trigger(cat, 0.5)
                    elif mode == "osc":
                        client.sendto(encode("/gesturegan/trigger", (CATEGORIES[cat], 0.5)), ("127.0.0.1", srv.port))
                    elif mode == "midi":
                        keys.send(mido.Message("note_on", note=36 + cat, velocity=90))  # the pads: one category each
                    else:
                        client.sendto(encode_bundle([("/gesturegan/param/seed", (5000 + i,)), ("/gesturegan/trigger", (CATEGORIES[cat], 0.5))]),
                                      ("127.0.0.1", srv.port))
                    ms = first_sound_ms(eng, sink, applied, before, t_call)
                    if ms is not None:
                        lat[mode].append(ms)
                    if mode == "midi":
                        keys.send(mido.Message("note_off", note=36 + cat))
                    if len(applied) > 5000:
                        applied.clear()
                    time.sleep(0.04 + 0.02 * rng.random())
                    if mode == "osc_fresh":  # let render-ahead catch up with the new seed before the cached kinds
                        time.sleep(0.25)
            stop_listening()
            eng.set("seed", 0)
            for mode, v in lat.items():
                a = np.array(v)
                res[mode] = {"n": len(a), "p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)),
                             "max_ms": float(a.max())}
            load.terminate()
            load_out = load.communicate(timeout=60)[0]
            st0 = eng.status()
            # the soak: the load with 20 triggers a second, and `hogs` CPU-bound processes beside the engine
            soak = subprocess.Popen([sys.executable, __file__, "--child", "load", str(srv.port), str(soak_seconds), "triggers"],
                                    stdout=subprocess.PIPE, text=True, env=os.environ)
            hogs_ = hog(hogs)
            late0 = late_clients(os.environ["JACK_DEFAULT_SERVER"])
            # the peer: JACK's own example client, C, doing almost nothing, in the same graph for the same time
            peer = subprocess.Popen(["jack_metro", "-b", "120", "-n", "gg-peer-metro"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                soak_out = soak.communicate(timeout=soak_seconds + 120)[0]
            finally:
                for h in (*hogs_, peer):
                    h.kill()
                    h.wait()
            st = eng.status()
            late1 = late_clients(os.environ["JACK_DEFAULT_SERVER"])
            res["jack_named_late"] = {k: late1.get(k, 0) - late0.get(k, 0) for k in late1}
        midi.close()
    keys.close()
    res["load"] = json.loads(load_out.strip().splitlines()[-1])
    res["soak_load"] = json.loads(soak_out.strip().splitlines()[-1])
    res["hogs"] = hogs
    res["core"] = eng.core.kind
    res["soak"] = {k: v for k, v in st.items() if not isinstance(v, (dict, list))}
    keys_ = ("underruns", "engine_underruns", "device_underflows", "host_stalls")
    res["soak_before"] = {k: st0.get(k, 0) for k in keys_}
    res["soak_only"] = {k: st.get(k, 0) - st0.get(k, 0) for k in keys_}
    res["osc"] = {**res["osc"], "counters": router.stats.as_dict()}
    res["midi"] = {**res["midi"], "counters": midi.stats.as_dict()}
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--triggers", type=int, default=200, help="measurements of each kind")
    ap.add_argument("--soak-seconds", type=float, default=600)
    ap.add_argument("--hogs", type=int, default=2, help="CPU-bound processes running beside the engine during the soak")
    ap.add_argument("--core", default="auto", help="the engine's core: auto (C where it builds), c, python (the peer)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "load":
            res = child_load(int(rest[0]), float(rest[1]), len(rest) > 2 and rest[2] == "triggers")
        else:
            res = child_controls(Path(rest[0]), int(rest[1]), float(rest[2]), int(rest[3]))
        print(json.dumps(res))
        return
    import onnxruntime as ort

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, onnxruntime {ort.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        model = export_model(Path(tmp))
        name = f"gesturegan-bench-controls-{os.getpid()}"
        jack, mode = start_jack(BLOCK, name)
        try:
            env = dict(os.environ, JACK_DEFAULT_SERVER=name)
            env["GESTUREGAN_CORE"] = args.core
            r = subprocess.run([sys.executable, __file__, "--child", "controls", str(model), str(args.triggers), str(args.soak_seconds),
                                str(args.hogs)],
                               capture_output=True, text=True, env=env, timeout=7200)
            if r.returncode != 0:
                raise RuntimeError(r.stderr[-3000:])
            res = json.loads(r.stdout.strip().splitlines()[-1])
        finally:
            jack.terminate()
            jack.wait(10)
    res["jack"] = mode
    load = res["load"]
    print(f"48 kHz / {BLOCK}, JACK {mode}, core {res['core']}; load {load['osc_sent'] / load['seconds']:.0f} OSC msgs/s + "
          f"{load['cc_sent'] / load['seconds']:.0f} CC/s, layer regenerating")
    for k in ("direct", "osc", "midi", "osc_fresh"):
        v = res[k]
        print(f"  {k:10s} p50 {v['p50_ms']:5.1f} ms  p99 {v['p99_ms']:5.1f} ms  max {v['max_ms']:5.1f} ms  (n={v['n']})")
    s, only = res["soak"], res["soak_only"]
    sl = res["soak_load"]
    print(f"soak {args.soak_seconds:.0f} s, {sl['osc_sent'] / sl['seconds']:.0f} OSC msgs/s (20 triggers/s among them) + "
          f"{sl['cc_sent'] / sl['seconds']:.0f} CC/s, the layer regenerating, {res['hogs']} CPU-bound processes beside: "
          f"engine underruns {only['engine_underruns']}, host stalls {only['host_stalls']}, device xruns {only['device_underflows']}, "
          f"total underruns {only['underruns']}; late events {s['late_events']}, regenerations {s['regenerations']}, "
          f"dropped triggers {s['dropped_triggers']}, max callback {s.get('max_callback_ms', 0):.2f} ms, "
          f"OSC handled {res['osc']['counters']['handled']} (bad {res['osc']['counters']['bad_args']}), "
          f"MIDI messages {res['midi']['counters']['messages']}")
    print(f"  clients JACK named late during the soak ('was not finished'): {res['jack_named_late']} (PortAudio: the engine; "
          f"gg-peer-metro: JACK's own C example client, the peer)")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
