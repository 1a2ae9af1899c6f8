"""``gesturegan devices`` and ``gesturegan play``: the instrument on a sound card, with a status line
and a few keys, for trying a model and for checking a rig before a show."""

from __future__ import annotations

import argparse
import os
import select
import sys
import time
from pathlib import Path

from .errors import ModelFileError


def bundled_model() -> Path | None:
    """``presets/default.onnx`` when the package ships one."""
    try:
        import presets
    except ImportError:
        return None
    p = Path(presets.__file__).parent / "default.onnx"
    return p if p.is_file() else None


def register(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("devices", help="list the audio output devices", description="List the output devices PortAudio can play on.")
    d.set_defaults(func=run_devices)
    p = sub.add_parser(
        "play",
        help="play the instrument on a sound card (keys: 1-9 trigger a category, l layer on/off, q quit)",
        description="Start the instrument: load a model, open the output device, show a status line. "
                    "In a terminal, keys 1-9 trigger the categories, 0 triggers the current mix, l switches the "
                    "continuous layer, m/M move macro 1, q quits. Ctrl-C stops it too.",
    )
    p.add_argument("--model", type=Path, default=None, help="an exported .onnx model (default: the bundled model)")
    p.add_argument("--device", default=None, help="output device: index or name substring (see 'gesturegan devices')")
    p.add_argument("--rate", type=int, default=48000, help="sample rate in Hz (default 48000)")
    p.add_argument("--block", type=int, default=128, help="frames per audio block (default 128)")
    p.add_argument("--buffer-blocks", type=int, default=3, help="blocks rendered ahead of the device: latency vs safety (default 3)")
    p.add_argument("--provider", choices=("auto", "cpu", "cuda"), default="auto", help="inference provider (default auto)")
    p.add_argument("--record", type=Path, default=None, help="also write the output to this WAV (from a non-real-time thread)")
    p.add_argument("--seconds", type=float, default=None, help="stop after this long (default: until q or Ctrl-C)")
    p.add_argument("--layer", action="store_true", help="start with the continuous layer on")
    p.add_argument("--demo", action="store_true", help="play by itself: a trigger every half second, cycling the categories")
    p.add_argument("--quiet", "-q", action="store_true", help="no status line")
    p.set_defaults(func=run_play)


def run_devices(args: argparse.Namespace) -> int:
    from .audio import list_devices

    print("output devices:")
    print(list_devices())
    return 0


def _status_line(st: dict) -> str:
    mix = " ".join(f"{c[:6]} {w:.2f}" for c, w in st["mix"].items())
    macros = " ".join(f"{m:+.1f}" for m in st["macros"][:4])
    return (f"{st['time_s']:7.1f}s  level {st['level_dbfs']:6.1f} dBFS  mix {mix}  macros {macros}  voices {st['voices']:2d}"
            f"  layer {'on ' if st['layer'] else 'off'}  underruns {st['underruns']}  late {st['late_events'] + st['late_triggers']}"
            f"  infer p50/p99 {st['inference_ms_p50']:.1f}/{st['inference_ms_p99']:.1f} ms  queue {st['queue_depth']}"
            f"  render {100 * st['render_load']:.0f}%  cpu {100 * st['cpu_cores']:.0f}%")


def run_play(args: argparse.Namespace) -> int:
    from .audio import Recorder, SoundDeviceSink
    from .engine import Engine, EngineConfig

    model = args.model or bundled_model()
    if model is None:
        raise ModelFileError("no --model given and no bundled model in this install; export one with "
                             "'gesturegan export RUN -o model.onnx' and pass --model model.onnx")
    device = int(args.device) if args.device is not None and str(args.device).isdigit() else args.device
    config = EngineConfig(sample_rate=args.rate, block_frames=args.block, buffer_blocks=args.buffer_blocks, provider=args.provider)
    sink = SoundDeviceSink(args.rate, args.block, config.channels, device)
    eng = Engine(model, config, sink=sink)
    recorder = None
    try:
        if args.record is not None:
            recorder = Recorder(args.record, args.rate, config.channels)
            eng.block_listeners.append(recorder)
        if args.layer:
            eng.set("layer", 1)
        eng.start()
        m = eng.worker.model
        print(f"playing {model} ({m.info.architecture}, {', '.join(m.info.categories)}) on "
              f"{sink.stream.device if sink.stream is not None else device}, {args.rate} Hz, {args.block} frames, "
              f"output latency {1000 * (sink.output_latency_s or 0):.1f} ms, inference on {m.provider}"
              + (f" ({m.provider_note})" if m.provider_note else ""))
        _run(eng, args)
    except KeyboardInterrupt:
        pass
    finally:
        eng.close()
        if recorder is not None:
            recorder.close()
            print(f"\nrecorded {recorder.frames / args.rate:.1f} s to {args.record}")
    st = eng.status()
    print(f"\nstopped after {st['time_s']:.1f} s: underruns {st['underruns']}, late events {st['late_events']}, "
          f"late triggers {st['late_triggers']}, bad clips {st['bad_clips']}")
    return 0


def _run(eng, args: argparse.Namespace) -> None:
    interactive = sys.stdin.isatty() and not args.demo
    t0 = time.monotonic()
    last_status = last_demo = 0.0
    tty_state = None
    if interactive:
        import termios
        import tty

        tty_state = termios.tcgetattr(sys.stdin)
        tty.setcbreak(sys.stdin.fileno())
    n_cat = eng.info.n_categories
    k = 0
    try:
        while args.seconds is None or time.monotonic() - t0 < args.seconds:
            now = time.monotonic()
            if args.demo and now - last_demo >= 0.5:
                eng.trigger(k % n_cat, 0.8)
                k, last_demo = k + 1, now
            if not args.quiet and now - last_status >= (0.2 if sys.stdout.isatty() else 2.0):
                line = _status_line(eng.status())
                print("\r" + line if sys.stdout.isatty() else line, end="" if sys.stdout.isatty() else "\n", flush=True)
                last_status = now
            if interactive and select.select([sys.stdin], [], [], 0.02)[0]:
                key = os.read(sys.stdin.fileno(), 1).decode(errors="ignore")
                if key == "q":
                    break
                if key.isdigit():
                    i = int(key)
                    eng.trigger(None if i == 0 else (i - 1) % n_cat, 0.9)
                elif key == "l":
                    eng.set("layer", 0 if eng.values["layer"] else 1)
                elif key in "mM":
                    eng.set("macro1", eng.values["macro1"] + (0.1 if key == "M" else -0.1))
            else:
                time.sleep(0.02)
    finally:
        if tty_state is not None:
            import termios

            termios.tcsetattr(sys.stdin, termios.TCSADRAIN, tty_state)
