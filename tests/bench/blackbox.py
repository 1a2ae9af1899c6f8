"""Control-to-sound latency measured from outside, as a performer's tools would see it.

``gesturegan play`` runs in a process of its own on a JACK server (as a performer starts it, with OSC on
a port and a virtual JACK MIDI input); a JACK client of ours (JACK-Client) listens to the engine's output
port. For each trigger: the JACK frame time just before the OSC packet (UDP to 127.0.0.1) or the MIDI
note-on (a JACK MIDI port of ours into the engine's) is sent, and the frame of the first sample above
-60 dBFS at our input (a trigger of the first category, a hit), plus the playback latency JACK reports for ``system:playback_1`` (the dummy
driver's periods: what a listener would wait for on top). Between triggers everything is released and
we wait for silence.

    python tests/bench/blackbox.py MODEL [--triggers 200] [--core auto|python] [--server NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

THRESHOLD = 10 ** (-60 / 20)
WARM_UP = 3  # triggers not measured (the first makes the clip)
CATEGORY = 0  # the bundled model's "trigger": a hit whose first sample is loud (its continuous_variation clips rise from
#              below -60 dBFS over ~130 samples: that is the sound's onset, not the engine's latency)  # triggers not measured: two of each category


class ReferenceSynth:
    """The peer: a JACK client that plays an impulse in the first cycle after :meth:`fire` is called; what
    it measures is the floor of this set-up (waiting for the next cycle, JACK's playback latency, how well
    ``frame_time`` is estimated), with no engine in the way."""

    def __init__(self, server: str | None) -> None:
        import jack

        self.client = jack.Client("gg-latency-reference", servername=server, no_start_server=True)
        self.port = self.client.outports.register("out")
        self.pending = False
        self.client.set_process_callback(self._process)
        self.client.activate()

    def _process(self, frames: int) -> None:
        a = self.port.get_array()
        a[:] = 0.0
        if self.pending:
            a[0] = 0.5
            self.pending = False

    def fire(self) -> None:
        self.pending = True

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()


class Listener:
    """A JACK client with one input port: the frame of the first loud sample after :meth:`arm`."""

    def __init__(self, server: str | None) -> None:
        import jack

        self.jack = jack
        self.client = jack.Client("gg-latency-listener", servername=server, no_start_server=True)
        self.port = self.client.inports.register("in")
        self.hit: int | None = None
        self.armed = False
        self.quiet_cycles = 0
        self.skipped = 0
        self.previous: int | None = None
        self.client.set_process_callback(self._process)
        self.client.activate()

    def _process(self, frames: int) -> None:
        now = self.client.last_frame_time
        self.skipped += self.previous is not None and now - self.previous != frames  # a cycle we did not see
        self.previous = now
        a = np.abs(self.port.get_array())
        loud = a > THRESHOLD
        if self.armed and loud.any():
            self.hit = self.client.last_frame_time + int(np.argmax(loud))
            self.armed = False
        self.quiet_cycles = 0 if loud.any() else self.quiet_cycles + 1

    def playback_latency(self, env: dict) -> int:
        """The playback latency JACK reports for the first physical output (``jack_lsp -l``: JACK-Client has no call for it)."""
        ports = self.client.get_ports(is_audio=True, is_input=True, is_physical=True)
        if not ports:
            return 0
        out = subprocess.run(["jack_lsp", "-l", ports[0].name], capture_output=True, text=True, env=env).stdout
        m = re.search(r"playback latency = \[ *\d+ +(\d+) *\]", out)
        return int(m.group(1)) if m else 0

    def arm(self) -> None:
        self.hit, self.armed = None, True

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()


def run(model: Path, triggers: int, core: str, server: str | None, rate: int = 48000) -> dict:
    import mido

    from instrument.oscwire import encode

    env = dict(os.environ, **({"JACK_DEFAULT_SERVER": server} if server else {}))
    if server:
        os.environ["JACK_DEFAULT_SERVER"] = server  # this process's RtMidi output (which takes no server name) too
    listener = Listener(server)
    reference = ReferenceSynth(server)
    before = {p.name for p in listener.client.get_ports(is_audio=True, is_output=True)}
    proc = subprocess.Popen([sys.executable, "-u", "-m", "instrument", "play", "--model", str(model), "--osc-port", "0", "--no-web",
                             "--midi-virtual", "gg-latency-in", "--midi-api", "jack", "--core", core, "--quiet", "--seconds", "3600"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    keys = None
    try:
        port = None
        while port is None:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(proc.stderr.read())
            m = re.search(r"OSC: listening on 127\.0\.0\.1:(\d+)", line)
            port = int(m.group(1)) if m else None
        deadline = time.monotonic() + 10
        ours = []
        while not ours and time.monotonic() < deadline:
            ours = [p for p in listener.client.get_ports(is_audio=True, is_output=True) if p.name not in before]
            time.sleep(0.05)
        backend = mido.Backend("mido.backends.rtmidi/UNIX_JACK")
        target = [n for n in backend.get_output_names() if "gg-latency-in" in n]
        keys = backend.open_output(target[0])
        osc = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        addr = ("127.0.0.1", port)
        osc.sendto(encode("/gesturegan/param/variation", (0.0,)), addr)
        osc.sendto(encode("/gesturegan/param/release", (0.01,)), addr)
        time.sleep(1.5)
        playback = listener.playback_latency(env)
        rng = np.random.default_rng(0)
        out = {}
        for mode in ("reference", "osc_cached", "midi_cached", "osc_fresh"):
            listener.port.disconnect()  # listen to the reference synth, then to the engine
            listener.client.connect(reference.port if mode == "reference" else ours[0], listener.port)
            lat = []
            for i in range(triggers + WARM_UP):
                t_end = time.monotonic() + 2
                while listener.quiet_cycles < 8 and time.monotonic() < t_end:
                    time.sleep(0.002)
                if mode == "osc_fresh":
                    osc.sendto(encode("/gesturegan/param/seed", (10_000 + i,)), addr)  # a new latent: its clip must be generated
                packet = encode("/gesturegan/trigger", (CATEGORY, 0.9))
                listener.arm()
                sent = listener.client.frame_time
                if mode == "reference":
                    reference.fire()
                elif mode.startswith("midi"):
                    keys.send(mido.Message("note_on", note=36, velocity=100))  # the first pad: the first category
                else:
                    osc.sendto(packet, addr)
                t_end = time.monotonic() + 1
                while listener.hit is None and time.monotonic() < t_end:
                    time.sleep(0.0005)
                if listener.hit is not None and i >= WARM_UP:
                    lat.append((listener.hit - sent + playback) * 1000 / rate)
                if mode.startswith("midi"):
                    keys.send(mido.Message("note_off", note=36))
                osc.sendto(encode("/gesturegan/all_notes_off", ()), addr)
                time.sleep(0.05 + 0.05 * rng.random())
            a = np.array(lat)
            out[mode] = {"n": len(a), "missed": triggers - len(a), "p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)),
                         "max_ms": float(a.max()), "min_ms": float(a.min())}
        out["playback_latency_ms"] = playback * 1000 / rate
        out["listener_skipped_cycles"] = listener.skipped
        osc.close()
        return out
    finally:
        if keys is not None:
            keys.close()
        proc.terminate()
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        listener.close()
        reference.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--triggers", type=int, default=200)
    ap.add_argument("--core", default="auto")
    ap.add_argument("--server", default=None)
    args = ap.parse_args()
    print(json.dumps(run(args.model, args.triggers, args.core, args.server)))


if __name__ == "__main__":
    main()
