"""The engine in real time on JACK's dummy driver, and offline.

    python tests/bench/bench_engine.py --model presets/default.onnx   # as recorded in tests/bench/README.md
    python tests/bench/bench_engine.py --soak-seconds 60              # a shorter soak
    python tests/bench/bench_engine.py --json out.json

Model: ``--model``, else a freshly initialised WaveGAN d=32 (16384 samples at 16 kHz) exported with
``gesturegan export``. (Speed does not depend on weights.)

1. **Control-to-sound latency from outside** (:mod:`blackbox`), 48 kHz / 128: ``gesturegan play`` in a process
   of its own, OSC and JACK MIDI triggers, a JACK client of ours listening to its output port; beside a
   reference JACK synth measured the same way (the set-up's floor). With the C core and with the numpy
   core (the peer).
2. **Control-to-sound latency from the stream's timestamps**, 48 kHz, 128 and 256 frames, each in its own
   JACK server (dummy driver, ``-p`` = the block) and its own process. For each of 200 triggers, 40-60 ms
   apart: the stream time when ``Engine.trigger`` is called, and the DAC time of the first sample the
   trigger changes (the callback's ``outputBufferDacTime`` for the block holding it, plus its offset in
   the block). "Cached": the trigger's clip is already generated (the render-ahead case). "Fresh latent":
   the seed changes just before each trigger, so the clip must be generated first.
3. **Soak** at 48 kHz / 128: triggers at 20/s, 10 layer regenerations per second (a macro moving,
   ``layer_rate`` 10), for ``--soak-seconds`` (600). (The soak under the OSC/MIDI control load with two
   CPU-bound processes beside it is ``bench_controls.py``'s.) Next to it, an idle stream (a callback that
   only writes zeros) for 60 s: what JACK's dummy driver does by itself on this machine.
4. **Offline render** of a 3-minute event list (4 triggers/s over the 4 categories, the layer on with
   0.5 s regenerations), real-time factor, at 128- and 1024-frame blocks, C core and numpy core: "varied"
   (every trigger a new variation, a macro sweeping 10 times a second: about 1,000 clips to generate) and
   "cached" (variation 0, no sweep: a handful of clips, so the figure is the mixer's own speed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

SR = 48000


def export_model(folder: Path) -> Path:
    from export.onnx_export import export_model as export
    from tests.export.conftest import write_checkpoint

    ckpt = folder / "wavegan-d32.pt"
    write_checkpoint(ckpt, model_dim=32, categories=("trigger", "trigger_continuous", "continuous_variation", "continuous_repetition"))
    out = folder / "wavegan-d32.onnx"
    export(ckpt, out, seed=0)
    return out


def start_jack(period: int, name: str) -> tuple[subprocess.Popen, str]:
    """A JACK server on the dummy driver: real-time scheduling where allowed (as on a musician's machine
    set up for JACK), else --no-realtime. Returns the process and which mode it got. Its log (where JACK
    names the clients that were late: :func:`late_clients`) goes to ``jack_log(name)``."""
    env = dict(os.environ, JACK_DEFAULT_SERVER=name)
    for mode in ("-R", "--no-realtime"):
        log = open(jack_log(name), "w")
        proc = subprocess.Popen(["jackd", "-n", name, mode, "-d", "dummy", "-r", str(SR), "-p", str(period)],
                                stdout=log, stderr=subprocess.STDOUT, text=True, env=env)
        log.close()
        if subprocess.run(["jack_wait", "-w", "-t", "10"], env=env, capture_output=True).returncode == 0 and proc.poll() is None:
            return proc, "realtime" if mode == "-R" else "no-realtime"
        proc.kill()
        proc.wait()
    raise RuntimeError("jackd would not start")


def jack_log(name: str) -> Path:
    return Path(tempfile.gettempdir()) / f"{name}.log"


def late_clients(name: str) -> dict[str, int]:
    """How many times the JACK server named each client late so far ("client = X was not finished")."""
    counts: dict[str, int] = {}
    for m in re.finditer(r"client = (.+?) was not finished", jack_log(name).read_text(errors="replace")):
        counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    return counts


def child_latency(model: Path, period: int, n: int, buffer_blocks: int, engine_block: int, core: str) -> dict:
    from instrument.audio import SoundDeviceSink
    from instrument.engine import Engine, EngineConfig

    sink = SoundDeviceSink(SR, period, 2, None)
    out = {}
    with Engine(model, EngineConfig(SR, engine_block, buffer_blocks=buffer_blocks, core=core), sink=sink) as eng:
        eng.set("variation", 0)
        applied: list[tuple[str, int, float]] = []  # (kind, sample applied, posted) while a trigger is measured
        watching = [False]
        eng.listen(event=lambda at, command, posted: watching[0] and applied.append((command.kind, at, posted)))
        eng.start()
        time.sleep(1.0)
        rng = np.random.default_rng(period)
        for mode in ("cached", "fresh"):
            lat = []
            eng.trigger(0, 0.8)
            time.sleep(0.3)
            for i in range(n):
                if mode == "fresh":
                    eng.set("seed", 1000 + i)
                    time.sleep(0.0)  # the trigger follows the seed change at once, as a performer's would
                watching[0] = True
                applied.clear()
                before = len(eng.telemetry.trigger_delays)
                t_call = sink.stream_time()
                eng.trigger(i % 4, 0.8)
                deadline = time.monotonic() + 1.0
                while len(eng.telemetry.trigger_delays) == before and time.monotonic() < deadline:
                    time.sleep(0.0005)
                watching[0] = False
                triggers = [a for a in applied if a[0] == "trigger"]
                if not triggers or len(eng.telemetry.trigger_delays) == before:
                    continue
                delay = eng.telemetry.trigger_delays[-1]
                first_sample = triggers[-1][1] + delay  # a late clip's voice starts `delay` samples after the trigger's sample
                if first_sample is None:
                    continue
                t_end = time.monotonic() + 0.5
                dac = None
                while dac is None and time.monotonic() < t_end:
                    time.sleep(0.002)
                    last = sink._stamp(sink._callbacks() - 1)
                    if last is not None and last[0] > first_sample:
                        dac = sink.dac_time_of(first_sample)
                if dac is not None:
                    lat.append((dac - t_call) * 1000)
                time.sleep(0.04 + 0.02 * rng.random())
            a = np.array(lat)
            out[mode] = {"n": len(a), "p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)),
                         "max_ms": float(a.max()), "min_ms": float(a.min())}
        st = eng.status()
        out["underruns"] = st["underruns"]
        out["device_underflows"] = st["device_underflows"]
        out["output_latency_ms"] = 1000 * (sink.output_latency_s or 0)
        out["inference_ms_p50"] = st["inference_ms_p50"]
    return out


def child_soak(model: Path, seconds: float, buffer_blocks: int = 2) -> dict:
    from instrument.audio import SoundDeviceSink
    from instrument.engine import Engine, EngineConfig

    sink = SoundDeviceSink(SR, 128, 2, None)
    with Engine(model, EngineConfig(SR, 128, buffer_blocks=buffer_blocks), sink=sink) as eng:
        eng.set("layer", 1)
        eng.set("layer_rate", 10)
        eng.set("variation", 0.3)
        eng.start()
        t0 = time.monotonic()
        k = 0
        rng = np.random.default_rng(0)
        while time.monotonic() - t0 < seconds:
            eng.set("macro1", float(np.sin(k / 40)))  # moving: the layer regenerates at its 10/s limit
            if k % 2 == 0:
                eng.trigger(int(rng.integers(4)), float(rng.uniform(0.3, 1)))
            k += 1
            time.sleep(0.025)
        st = eng.status()
    return {k: v for k, v in st.items() if not isinstance(v, (dict, list))}


def child_idle(seconds: float) -> dict:
    import sounddevice as sd

    flags = [0, 0]

    def cb(outdata, frames, t, status):
        outdata[:] = 0
        flags[0] += 1
        flags[1] += bool(status.output_underflow)

    with sd.OutputStream(samplerate=SR, blocksize=128, channels=2, dtype="float32", callback=cb, latency="low"):
        time.sleep(seconds)
    return {"callbacks": flags[0], "device_underflows": flags[1]}


def offline(model: Path, core: str) -> dict:
    from instrument.engine import Engine, EngineConfig

    res = {}
    for case in ("varied", "cached"):
        for block in (128, 1024):
            with Engine(model, EngineConfig(SR, block, core=core), sync=True) as eng:
                rng = np.random.default_rng(1)
                eng.set("layer", 1, at=0)
                eng.set("layer_rate", 2, at=0)
                if case == "cached":  # every trigger of a category plays the same clip; the macro does not move
                    eng.set("variation", 0, at=0)
                for k in range(180 * 4):
                    eng.trigger(int(rng.integers(4)), float(rng.uniform(0.4, 1)), at=int(k * SR / 4))
                if case == "varied":
                    for k in range(180 * 10):
                        eng.set("macro1", float(np.sin(k / 100)), at=int(k * SR / 10))
                t = time.perf_counter()
                eng.render(180.0)
                dt = time.perf_counter() - t
                st = eng.status()
                res[f"{case}_{block}"] = {"seconds": dt, "rtf": 180.0 / dt, "clips_generated": st["clips_generated"],
                                          "inference_ms_p50": st["inference_ms_p50"]}
    return res


def run_child(args: list[str], jack_name: str) -> dict:
    env = dict(os.environ, JACK_DEFAULT_SERVER=jack_name)
    r = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, env=env, timeout=3600)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-3000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--soak-seconds", type=float, default=600)
    ap.add_argument("--triggers", type=int, default=200)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--model", type=Path, default=None, help="the model to play (default: a fresh WaveGAN d=32 export)")
    ap.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "latency":
            res = child_latency(Path(rest[0]), int(rest[1]), int(rest[2]), int(rest[3]), int(rest[4]), rest[5])
        elif kind == "soak":
            res = child_soak(Path(rest[0]), float(rest[1]), int(rest[2]) if len(rest) > 2 else 2)
        else:
            res = child_idle(float(rest[0]))
        print(json.dumps(res))
        return
    import onnxruntime as ort

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, onnxruntime {ort.__version__}")
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or export_model(Path(tmp))
        for period in (128, 256):
            name = f"gesturegan-bench-{os.getpid()}-{period}"
            jack, mode = start_jack(period, name)
            results[f"jack_{period}"] = mode
            try:
                if period == 128:  # from outside: gesturegan play, a JACK client listening, beside a reference JACK synth
                    from blackbox import run as blackbox

                    for core in ("c", "python"):
                        results[f"blackbox_{core}"] = r = blackbox(model, args.triggers, core, name)
                        print(f"black box, 48 kHz / 128, {core} core: " + "; ".join(
                            f"{k} p50 {v['p50_ms']:.1f} p99 {v['p99_ms']:.1f} ms" for k, v in r.items() if isinstance(v, dict)), flush=True)
                for core, bb in (("c", 3), ("python", 3)) if period == 128 else (("c", 3),):
                    results[f"latency_{period}_{core}"] = r = run_child(
                        ["latency", str(model), str(period), str(args.triggers), str(bb), str(period), core], name)
                    print(f"48 kHz / {period}, JACK {mode}, {core} core, {bb} blocks ahead: device latency {r['output_latency_ms']:.1f} ms; "
                          f"cached trigger p50 {r['cached']['p50_ms']:.1f} p99 {r['cached']['p99_ms']:.1f} ms; fresh latent p50 "
                          f"{r['fresh']['p50_ms']:.1f} p99 {r['fresh']['p99_ms']:.1f} ms; underruns {r['underruns']}, "
                          f"device underflows {r['device_underflows']}", flush=True)
                if period == 128:
                    results["idle"] = r = run_child(["idle", "60"], name)
                    print(f"idle stream, 60 s: {r['device_underflows']} device underflows in {r['callbacks']} callbacks", flush=True)
                    results["soak"] = r = run_child(["soak", str(model), str(args.soak_seconds)], name)
                    print(f"soak {args.soak_seconds:.0f} s: underruns {r['underruns']}, device underflows {r['device_underflows']}, "
                          f"regenerations {r['regenerations']}, clips {r['clips_generated']}, late events {r['late_events']}, "
                          f"trigger delay p50/p99 {r['trigger_delay_ms_p50']:.1f}/{r['trigger_delay_ms_p99']:.1f} ms, "
                          f"render load {100 * r['render_load']:.0f}%", flush=True)
            finally:
                jack.terminate()
                jack.wait(10)
        for core in ("c", "python"):
            results[f"offline_{core}"] = off = offline(model, core)
            for block, r in off.items():
                print(f"offline 3-minute event list, {core} core, {block.replace('_', ', ')}-frame blocks: {r['seconds']:.2f} s, "
                      f"{r['rtf']:.0f}x real time ({r['clips_generated']} clips generated)", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
