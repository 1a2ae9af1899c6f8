"""``gesturegan devices`` and ``gesturegan play``: the instrument on a sound card, with a status line
and a few keys, for trying a model and for checking a rig before a show."""

from __future__ import annotations

import argparse
import os
import select
import signal
import sys
import time
from pathlib import Path
from typing import Callable

from .commands import Command
from .control import Controls
from .errors import ModelFileError
from .files import shipped
from .osc import DEFAULT_OSC_PORT, OscConfigError
from .oscquery import DEFAULT_WEB_PORT
from .telemetry import status_line


def bundled_model() -> Path | None:
    """``presets/default.onnx`` when the package ships one."""
    return shipped("default.onnx")


def register(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("devices", help="list the audio output devices", description="List the output devices PortAudio can play on.")
    d.set_defaults(func=run_devices)
    p = sub.add_parser(
        "play",
        help="play the instrument on a sound card, from the keyboard, OSC and MIDI",
        description="Start the instrument: load a model, open the output device, show a status line. "
                    "In a terminal, keys 1-9 trigger the categories, 0 triggers the current mix, l switches the "
                    "continuous layer, m/M move macro 1, k arms MIDI learn (K disarms), p saves a preset, q quits. Ctrl-C stops it too. "
                    "OSC is on (127.0.0.1:9000) unless --no-osc; MIDI with --midi or --midi-virtual.",
    )
    p.add_argument("--model", type=Path, default=None, help="an exported .onnx model (default: the bundled model)")
    p.add_argument("--device", default=None, help="output device: index or name substring (see 'gesturegan devices')")
    p.add_argument("--rate", type=int, default=48000, help="sample rate in Hz (default 48000)")
    p.add_argument("--block", type=int, default=128, help="frames per audio block (default 128)")
    p.add_argument("--buffer-blocks", type=int, default=3,
                   help="blocks the engine works ahead of the device: timed commands with the C core, rendering with the numpy core (default 3)")
    p.add_argument("--core", choices=("auto", "c", "python"), default="auto",
                   help="the real-time core: c (compiled, runs in the audio callback), python (numpy, renders ahead), auto: c where it builds")
    p.add_argument("--rt-priority", type=int, default=None,
                   help="real-time (SCHED_FIFO) priority of the engine thread where the machine allows it (default: "
                        "instrument.realtime.ENGINE_RT_PRIORITY, below JACK's own threads; 0: none)")
    p.add_argument("--provider", choices=("auto", "cpu", "cuda"), default="auto", help="inference provider (default auto)")
    p.add_argument("--record", type=Path, default=None, help="also write the output to this WAV (from a non-real-time thread)")
    p.add_argument("--record-score", type=Path, default=None, metavar="TAKE.toml",
                   help="write every control event, at its sample, to a score that 'gesturegan render' plays back")
    p.add_argument("--seconds", type=float, default=None, help="stop after this long (default: until q or Ctrl-C)")
    p.add_argument("--layer", action="store_true", help="start with the continuous layer on")
    p.add_argument("--preset", default=None, help="start from this preset (a name: yours, then presets/params/*.toml)")
    p.add_argument("--demo", action="store_true", help="play by itself: a trigger every half second, cycling the categories")
    p.add_argument("--quiet", "-q", action="store_true", help="no status line")
    o = p.add_argument_group("OSC (Max/MSP, SuperCollider, Pure Data)")
    o.add_argument("--osc-port", type=int, default=DEFAULT_OSC_PORT, help=f"UDP port to listen on (default {DEFAULT_OSC_PORT})")
    o.add_argument("--osc-host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 or an interface's address for the network)")
    o.add_argument("--osc-allow", default=None, help="comma-separated client addresses accepted (default: any that can reach --osc-host)")
    o.add_argument("--osc-reply", default=None, help="HOST:PORT to send replies to (default: back to each sender)")
    o.add_argument("--no-osc", action="store_true", help="no OSC server")
    w = p.add_argument_group("the browser control surface and OSCQuery (on --osc-host, like OSC)")
    w.add_argument("--web-port", type=int, default=DEFAULT_WEB_PORT,
                   help=f"HTTP/WebSocket port of the control page and the OSCQuery namespace (default {DEFAULT_WEB_PORT})")
    w.add_argument("--no-web", action="store_true", help="no control page, no OSCQuery")
    w.add_argument("--zeroconf", action="store_true",
                   help="advertise the OSCQuery server (_oscjson._tcp) and OSC (_osc._udp) by mDNS on the network "
                        "(needs --osc-host on a network address)")
    m = p.add_argument_group("MIDI")
    m.add_argument("--midi", action="append", default=[], metavar="PORT",
                   help="MIDI input to play from: a name or part of one (see 'gesturegan midi-ports'), or 'all'; repeatable. "
                        "A port that is not there yet, or is unplugged, is connected when it appears")
    m.add_argument("--midi-virtual", nargs="?", const="GestureGAN in", default=None, metavar="NAME",
                   help="also make a virtual MIDI input (default name 'GestureGAN in') for a DAW or another program to connect to")
    m.add_argument("--midi-map", type=Path, default=None,
                   help="the MIDI map (TOML; default: yours from MIDI learn, else presets/midi/default.toml)")
    m.add_argument("--midi-api", choices=("auto", "alsa", "jack", "coremidi", "winmm"), default="auto",
                   help="MIDI system (default auto: ALSA where the sequencer exists, else JACK)")
    p.set_defaults(func=run_play)
    r = sub.add_parser(
        "render", help="render a score (.toml), a score script (.py) or a MIDI file (.mid) to WAV, offline",
        description="Render a composition offline through the engine, faster than real time and deterministic for a "
                    "given seed: a TOML score, a Python script that builds a Score (in the variable `score`), or a "
                    "Standard MIDI File played through a MIDI map. The WAV is written to a temporary file and renamed "
                    "at the end.")
    r.add_argument("piece", type=Path, help="piece.toml, piece.py or song.mid")
    r.add_argument("-o", "--out", type=Path, default=None, help="the WAV to write (default: the piece's name with .wav, here)")
    r.add_argument("--png", action="store_true", help="also write a spectrogram picture beside the WAV (same name, .png)")
    r.add_argument("--model", default=None, help="render with this model instead of the one the score names (default: the bundled one for MIDI files)")
    r.add_argument("--map", type=Path, default=None, help="MIDI files: the MIDI map (default presets/midi/default.toml)")
    r.add_argument("--seed", type=int, default=0, help="MIDI files: the engine seed (scores carry their own)")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    r.set_defaults(func=run_render)
    mp = sub.add_parser("midi-ports", help="list the MIDI inputs", description="List the MIDI inputs that --midi can open.")
    mp.add_argument("--midi-api", choices=("auto", "alsa", "jack", "coremidi", "winmm"), default="auto")
    mp.set_defaults(func=run_midi_ports)


def run_devices(args: argparse.Namespace) -> int:
    from .audio import list_devices  # loaded for this command only

    print("output devices:")
    print(list_devices())
    return 0


def run_render(args: argparse.Namespace) -> int:
    from .render import render_midi_file, render_score, run_script  # loaded for this command only
    from .score import load_score

    piece: Path = args.piece
    out = args.out or Path(piece.stem + ".wav")
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = piece.suffix.lower()
    if suffix in (".mid", ".midi", ".smf"):
        summary = render_midi_file(piece, out, args.map, args.model or "default", seed=args.seed, progress=not args.quiet, png=args.png)
    else:
        score = run_script(piece) if suffix == ".py" else load_score(piece)
        summary = render_score(score, out, progress=not args.quiet, png=args.png, model=args.model)
    print(f"rendered {piece} -> {summary['wav']} ({summary['seconds']:.1f} s, {summary['clips_generated']} clips generated)"
          + (f"; spectrogram {summary['png']}" if "png" in summary else ""))
    return 0


def run_midi_ports(args: argparse.Namespace) -> int:
    from .midiports import input_names  # loaded for this command only

    names = input_names(args.midi_api)
    print("MIDI inputs:" if names else "no MIDI inputs (is a controller plugged in, and the ALSA sequencer or JACK running?)")
    for n in names:
        print(f"  {n}")
    return 0


def _controls_line(osc, midi) -> str:
    parts = []
    if osc is not None:
        o = osc.router.stats
        parts.append(f"osc :{osc.port} {o.handled} ok {o.malformed + o.unknown_address + o.bad_args} bad {o.late} late")
    if midi is not None:
        parts.append(f"midi {len(midi.ports)} port{'s' if len(midi.ports) != 1 else ''} {midi.stats.messages} msgs"
                     + (f"  LEARN {midi.learning}: move a control" if midi.learning else ""))
    return ("  " + "  ".join(parts)) if parts else ""


def _start_controls(eng: Controls, args: argparse.Namespace):
    """The OSC server, the MIDI inputs and the web server (OSCQuery, the control page) the arguments ask
    for (each may be None); the last item stops the zeroconf advertisement (or does nothing)."""
    from .midimap import default_map, load_map, user_map  # loaded for this command only
    from .osc import OscRouter
    from .oscserver import OscServer
    from .presets import PresetLibrary

    presets = PresetLibrary()
    midi = None
    if args.midi or args.midi_virtual:
        from .midi import MidiController  # loaded for this command only

        map_path = args.midi_map or default_map()
        if map_path is None:
            raise FileNotFoundError("no MIDI map: pass --midi-map (presets/midi/default.toml is missing from this install)")
        midi_map = load_map(map_path, eng.table, eng.info.categories)
        midi = MidiController(eng, midi_map, presets, learn_path=args.midi_map or user_map())
        midi.open(args.midi, api=args.midi_api, virtual=args.midi_virtual)
        print(f"MIDI: map {map_path}; inputs {', '.join(midi.ports) or '(waiting for ' + ', '.join(args.midi) + ')'}")
    osc = web = None
    unadvertise: Callable[[], None] = lambda: None
    if args.no_osc and args.no_web:
        return osc, midi, web, unadvertise
    reply = None
    if args.osc_reply:
        host, _, port = args.osc_reply.rpartition(":")
        if not port.isdigit():
            raise OscConfigError(f"--osc-reply wants HOST:PORT, got {args.osc_reply!r}")
        reply = (host or "127.0.0.1", int(port))
    router = OscRouter(eng, presets=presets, midi=midi, reply_to=reply)
    if not args.no_osc:
        allow = [h.strip() for h in args.osc_allow.split(",") if h.strip()] if args.osc_allow else None
        osc = OscServer(router, args.osc_host, args.osc_port, allow).start()
        print(f"OSC: listening on {osc.host}:{osc.port} (send /gesturegan/addresses for the address space)")
    if not args.no_web:
        from .webserver import WebServer  # loaded for this command only

        web = WebServer(router, args.osc_host, args.web_port, osc_port=osc.port if osc else None, sample_rate=args.rate).start()
        print(f"control page: {web.url}/ui/   OSCQuery: {web.url}/gesturegan")
        if args.zeroconf:
            from .oscquery import advertise  # loaded for --zeroconf only

            unadvertise = advertise(web.service_infos(), args.osc_host)
            print(f"zeroconf: advertising {web.name} (_oscjson._tcp port {web.port}" + (f", _osc._udp port {osc.port})" if osc else ")"))
    elif args.zeroconf:
        raise OscConfigError("--zeroconf advertises the OSCQuery server: it cannot go with --no-web")
    return osc, midi, web, unadvertise


def _stop_on_signal(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_play(args: argparse.Namespace) -> int:
    from .audio import SoundDeviceSink  # loaded for this command only
    from .recorder import Recorder  # loaded for this command only
    from .engine import Engine, EngineConfig
    from .params import ParamError

    model = args.model or bundled_model()
    if model is None:
        raise ModelFileError("no --model given and no bundled model in this install; export one with "
                             "'gesturegan export RUN -o model.onnx' and pass --model model.onnx")
    device = int(args.device) if args.device is not None and str(args.device).isdigit() else args.device
    try:
        config = EngineConfig(sample_rate=args.rate, block_frames=args.block, buffer_blocks=args.buffer_blocks, provider=args.provider, core=args.core,
                              **({} if args.rt_priority is None else {"rt_priority": args.rt_priority}))
    except ValueError as e:  # a --rate, --block, --buffer-blocks or --rt-priority out of range: one line, no traceback
        raise ParamError(str(e)) from None
    sink = SoundDeviceSink(args.rate, args.block, config.channels, device)
    eng = Engine(model, config, sink=sink)
    recorder = osc = midi = web = gone = None
    unadvertise: Callable[[], None] = lambda: None
    event_log: list[tuple[int, Command]] = []
    # `kill` (SIGTERM) ends a performance as Ctrl-C does: cleanly, the recording and the take kept. A script
    # that starts play in the background cannot use Ctrl-C: the shell has its SIGINT ignored.
    previous_term = signal.signal(signal.SIGTERM, _stop_on_signal)
    try:
        osc, midi, web, unadvertise = _start_controls(eng, args)
        if args.record is not None:
            recorder = Recorder(args.record, args.rate, config.channels)
            eng.listen(block=recorder)
        if args.record_score is not None:  # every control event but model swaps, at the sample it took effect
            # a swap holds the model it swapped in: not kept (a score names its model once)
            eng.listen(event=lambda at, command, posted: command.kind == "swap" or event_log.append((at, command)))
        if args.preset:
            from .presets import PresetLibrary, recall  # loaded for this command only

            skipped = recall(eng, PresetLibrary().find(args.preset))
            if skipped:
                print(f"preset {args.preset}: skipped {', '.join(skipped)} (not parameters of this model)")
        if args.layer:
            eng.set("layer", 1)
        eng.start()
        m = eng.worker.model
        print(f"playing {model} ({m.info.architecture}, {', '.join(m.info.categories)}) on "
              f"{sink.stream.device if sink.stream is not None else device}, {args.rate} Hz, {args.block} frames, "
              f"output latency {1000 * (sink.output_latency_s or 0):.1f} ms, "
              f"{'C core in the audio callback' if eng.core.kind == 'c' else 'numpy core, ' + str(args.buffer_blocks) + ' blocks ahead'}, "
              f"inference on {m.provider}"
              + (f" ({m.provider_note})" if m.provider_note else ""))
        gone = _run(eng, args, osc, midi, sink.lost)
        if gone:
            print(f"\nthe audio device was lost after {eng.now() / args.rate:.1f} s: {gone}; the performance ends here",
                  file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        unadvertise()
        if web is not None:
            web.close()
        if osc is not None:
            osc.close()
        if midi is not None:
            midi.close()
        eng.close()
        if recorder is not None:
            recorder.close()
            print(f"\nrecorded {recorder.frames / args.rate:.1f} s to {args.record}")
        if args.record_score is not None:
            from .render import score_from_log  # loaded for this command only

            take = score_from_log(event_log, eng, str(Path(model).resolve()), eng.now() / args.rate)
            take.save(args.record_score)
            print(f"recorded {len(take.events)} control events to {args.record_score} (gesturegan render {args.record_score})")
    st = eng.status()
    if sink.abandoned:  # PortAudio never returned from closing the stream: its exit handler would not either
        print(f"\nstopped after {st['time_s']:.1f} s; the audio stream could not be closed (its server is gone)", flush=True)
        sys.stderr.flush()
        os._exit(1)
    print(f"\nstopped after {st['time_s']:.1f} s: underruns {st['underruns']} ({st['underruns'] - st['engine_underruns']} during device xruns), "
          f"device xruns {st['device_underflows']}, late events {st['late_events']}, "
          f"late triggers {st['late_triggers']}, bad clips {st['bad_clips']}")
    return 1 if gone else 0


def _ask(prompt: str, tty_state) -> str:
    """Read a line in the middle of the key loop (the terminal back in line mode for it)."""
    import termios  # Unix only
    import tty

    termios.tcsetattr(sys.stdin, termios.TCSADRAIN, tty_state)
    try:
        return input("\n" + prompt).strip()
    finally:
        tty.setcbreak(sys.stdin.fileno())


def _run(eng: Controls, args: argparse.Namespace, osc=None, midi=None, lost=lambda: None) -> str | None:
    """The keyboard: one more control surface, driving :class:`~instrument.control.Controls` as OSC and MIDI do.
    Returns why the device was lost (``lost()``, asked each turn), or None when the performance ended."""
    interactive = sys.stdin.isatty() and not args.demo
    t0 = time.monotonic()
    last_status = last_demo = 0.0
    tty_state = None
    if interactive:
        import termios  # Unix only
        import tty

        tty_state = termios.tcgetattr(sys.stdin)
        tty.setcbreak(sys.stdin.fileno())
    n_cat = eng.info.n_categories
    k = 0
    try:
        while args.seconds is None or time.monotonic() - t0 < args.seconds:
            now = time.monotonic()
            gone = lost()
            if gone:
                return gone
            if args.demo and now - last_demo >= 0.5:
                eng.trigger(k % n_cat, 0.8)
                k, last_demo = k + 1, now
            if not args.quiet and now - last_status >= (0.2 if sys.stdout.isatty() else 2.0):
                line = status_line(eng.status()) + _controls_line(osc, midi)
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
                elif key == "k" and midi is not None:
                    pid = _ask("MIDI learn: parameter id (e.g. macro3, gain; empty cancels): ", tty_state)
                    try:
                        if pid:
                            midi.learn(pid, lambda p, what: print(f"\nlearned: {what} -> {p}"))
                    except ValueError as e:
                        print(f"\n{e}")
                elif key == "K" and midi is not None:
                    midi.cancel_learn()
                elif key == "p":
                    name = _ask("save preset as (empty cancels): ", tty_state)
                    if name:
                        from .presets import PresetError, PresetLibrary  # loaded for this command only

                        try:
                            saved = PresetLibrary().save(name, eng.table, dict(eng.values), Path(eng.model_source).name)
                            print(f"\nsaved preset {name!r} to {saved}")
                        except (PresetError, OSError) as e:
                            print(f"\n{e}")
            else:
                time.sleep(0.02)
    finally:
        if tty_state is not None:
            import termios  # Unix only

            termios.tcsetattr(sys.stdin, termios.TCSADRAIN, tty_state)
    return None
