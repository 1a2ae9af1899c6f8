"""MIDI input: ports (by name, all, or a virtual port), hot-plug, the map's actions, and MIDI learn.

Input goes through python-rtmidi directly, with ``ignore_types(sysex, timing, active_sense)`` on, so a
sysex flood, MIDI clock and active sensing are dropped inside RtMidi before Python sees them; the bytes
that do arrive are decoded here (three bytes, no objects) and checked, and unmapped messages cost a dict
lookup. mido provides the port listing (``gesturegan midi-ports``) and is what tests and the MIDI file
renderer use to send. Handlers only validate and post commands to the engine (its queue).

Program changes (a preset file to read) are handed to the monitor thread rather than handled on
RtMidi's callback thread, which with the JACK API is JACK's own process thread.

**Hot-plug**: a monitor thread looks at the port list once a second; a port that vanished is closed and
reported, and reopened when a port of that name (or matching that substring) comes back. The sound does
not stop: only this module notices.

**APIs**: ``auto`` is ALSA where ``/dev/snd/seq`` exists, else JACK (the test machines, and JACK rigs);
``jack``/``alsa``/``coremidi``/``winmm`` insist.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from .midimap import MidiMap, append_binding, binding
from .presets import PresetError, PresetLibrary, recall

log = logging.getLogger("gesturegan.midi")

CLIENT_NAME = "gesturegan"
POLL_S = 1.0
LEARN_PAIR_S = 0.15  # after a learned MSB 0..31, how long to wait for its LSB (a 14-bit controller)


class MidiError(RuntimeError):
    """No MIDI API, or a port that cannot be opened: the message lists the ports."""


@dataclass
class MidiStats:
    messages: int = 0
    notes: int = 0
    controls: int = 0  # mapped controller changes applied
    ignored: int = 0  # other channels, unmapped controllers, message kinds with no action
    malformed: int = 0  # bytes that are not a MIDI message, values out of range
    refused: int = 0  # the engine refused a value (e.g. a preset that is not there)
    learned: int = 0
    disconnects: int = 0
    reconnects: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _rtmidi():
    try:
        import rtmidi  # the system's MIDI libraries: only when MIDI is used
    except ImportError as e:  # pragma: no cover - a dependency
        raise MidiError(f"python-rtmidi is not installed: {e}") from None
    return rtmidi


def api_id(name: str = "auto") -> int:
    rt = _rtmidi()
    apis = {"jack": rt.API_UNIX_JACK, "alsa": rt.API_LINUX_ALSA, "coremidi": rt.API_MACOSX_CORE, "winmm": rt.API_WINDOWS_MM}
    if name == "auto":
        if os.path.exists("/dev/snd/seq"):
            return rt.API_LINUX_ALSA
        return rt.API_UNIX_JACK if rt.API_UNIX_JACK in rt.get_compiled_api() else rt.API_UNSPECIFIED
    if name not in apis:
        raise MidiError(f"unknown MIDI API {name!r}: use auto, {', '.join(apis)}")
    if apis[name] not in rt.get_compiled_api():
        raise MidiError(f"this python-rtmidi has no {name} support (it has: "
                        f"{', '.join(rt.get_api_name(a) for a in rt.get_compiled_api())})")
    return apis[name]


def input_names(api: str = "auto") -> list[str]:
    """The MIDI inputs there are now (mido's listing, on the chosen API)."""
    import mido  # with rtmidi's backend: only when MIDI is used

    rt = _rtmidi()
    wanted = api_id(api)
    mido_name = next((a[4:] for a in dir(rt) if a.startswith("API_") and getattr(rt, a) == wanted), None)  # UNIX_JACK
    backend = mido.Backend("mido.backends.rtmidi", api=mido_name if wanted != rt.API_UNSPECIFIED else None)
    try:
        return list(backend.get_input_names())
    except Exception as e:  # noqa: BLE001 - no server, no sequencer: say so
        raise MidiError(f"cannot list MIDI inputs ({api}): {e}") from None


class MidiController:
    """Turns MIDI into engine calls through ``midi_map``. ``handle(data)`` takes one message's bytes (any
    thread); :meth:`open` connects ports and starts the hot-plug monitor; a context manager."""

    def __init__(self, engine: Any, midi_map: MidiMap, presets: PresetLibrary | None = None,
                 learn_path: Path | None = None) -> None:
        self.engine, self.map, self.presets = engine, midi_map, presets or PresetLibrary()
        self.learn_path = learn_path or midi_map.path
        self.stats = MidiStats()
        self._lsb_of = midi_map.lsb_of()
        self._msb: dict[tuple[int, int], int] = {}  # (channel, cc) -> last MSB of a 14-bit pair
        self._sustain = [False] * 16
        self._held: list[set[int]] = [set() for _ in range(16)]  # notes released while the pedal was down
        self._learn: tuple[str, Callable[[str, str], None] | None] | None = None
        self._learn_pending: list[Any] | None = None  # [channel, cc, fine, timer]
        self._lock = threading.Lock()  # learn state, touched by the MIDI and OSC threads
        self.ports: dict[str, Any] = {}  # open port name -> rtmidi.MidiIn
        self.wanted: list[str] = []
        self.virtual: str | None = None
        self.api = "auto"
        self.events: list[str] = []  # connect/disconnect history, for the status view and tests
        self._running = False
        self._monitor: threading.Thread | None = None
        self._scanner = None
        self._wake = threading.Event()
        self._pending_programs: collections.deque[int] = collections.deque(maxlen=16)

    # --- decoding --------------------------------------------------------------------------------------------

    def handle(self, data: list[int] | bytes, at: int | None = None) -> None:
        """One MIDI message's bytes, now or (``at``) at an engine sample (MIDI files). Never raises for
        what a device sends."""
        self.stats.messages += 1
        n = len(data)
        if n == 0 or not 0x80 <= data[0] < 0xF0 or any(not 0 <= b < 0x80 for b in data[1:3]):
            if n and data[0] >= 0xF0:  # system messages RtMidi let through (song position, tune request, ...)
                self.stats.ignored += 1
            else:
                self.stats.malformed += 1
            return
        kind, ch = data[0] & 0xF0, data[0] & 0x0F
        need = 2 if kind in (0xC0, 0xD0) else 3
        if n < need:
            self.stats.malformed += 1
            return
        if self.map.channel and ch != self.map.channel - 1:
            self.stats.ignored += 1
            return
        try:
            if kind == 0x90 and data[2] > 0:
                self._note_on(ch, data[1], data[2], at)
            elif kind == 0x80 or kind == 0x90:
                self._note_off(ch, data[1], at)
            elif kind == 0xB0:
                self._control(ch, data[1], data[2], at)
            elif kind == 0xE0:
                bend = ((data[2] << 7) | data[1]) - 8192
                self.engine.set(self.map.bend_param, self.map.bend_range * bend / (8191 if bend > 0 else 8192), at)
                self.stats.controls += 1
            elif kind == 0xC0:
                if self._running and at is None:  # a preset is a file to read: not on RtMidi's thread (JACK's, with the JACK API)
                    self._pending_programs.append(data[1])
                    self._wake.set()
                else:
                    self._program(data[1], at)
            else:
                self.stats.ignored += 1  # aftertouch
        except (ValueError, PresetError) as e:
            self.stats.refused += 1
            log.warning("MIDI %s: %s", bytes(data).hex(" "), e)

    def _note_on(self, ch: int, note: int, velocity: int, at: int | None = None) -> None:
        zone = self.map.zone(note)
        cat = zone.category
        if cat == "by_note":
            cat = (note - zone.low) % self.engine.info.n_categories
        self._held[ch].discard(note)
        self.engine.note_on(note, velocity / 127.0, cat, zone.root if zone.pitched else note, at=at)
        self.stats.notes += 1

    def _note_off(self, ch: int, note: int, at: int | None = None) -> None:
        if self._sustain[ch]:
            self._held[ch].add(note)
        else:
            self.engine.note_off(note, at)
        self.stats.notes += 1

    def _set(self, b, raw: int, at: int | None) -> None:
        v = b.value(raw)
        if self.engine.table[b.param].kind == "int":
            v = round(v)  # a knob over a whole-number parameter (a seed refuses fractions) steps through its values
        self.engine.set(b.param, v, at)

    def _control(self, ch: int, cc: int, value: int, at: int | None = None) -> None:
        if self._learn is not None and self._take_learn(ch, cc):
            return
        b = self.map.ccs.get(cc)
        if b is not None:
            if b.fine:
                self._msb[(ch, cc)] = value
                raw = value << 7  # an MSB resets the LSB (MIDI 1.0: the fine part follows, if it comes)
            else:
                raw = value
            self._set(b, raw, at)
            self.stats.controls += 1
            return
        b = self._lsb_of.get(cc)
        if b is not None:
            msb = self._msb.get((ch, b.cc), 0)
            self._set(b, (msb << 7) | value, at)
            self.stats.controls += 1
        elif cc == self.map.sustain_cc:
            down = value >= 64
            self._sustain[ch] = down
            if not down:
                for note in sorted(self._held[ch]):
                    self.engine.note_off(note, at)
                self._held[ch].clear()
            self.stats.controls += 1
        elif cc in (120, 123):  # all sound off, all notes off
            self.engine.all_notes_off(at)
            self._held[ch].clear()
            self.stats.controls += 1
        else:
            self.stats.ignored += 1

    def _program(self, program: int, at: int | None = None) -> None:
        name = self.map.programs.get(program)
        preset = self.presets.find(name) if name is not None else self.presets.by_index(program)
        skipped = recall(self.engine, preset, at)
        if skipped:
            log.info("preset %r: skipped %s (not parameters of this model)", preset.name, ", ".join(skipped))
        self.stats.controls += 1

    # --- MIDI learn ------------------------------------------------------------------------------------------

    def learn(self, param: str, on_done: Callable[[str, str], None] | None = None) -> None:
        """Arm learn: the next controller moved is bound to ``param`` (checked now) and saved to the map file."""
        binding(self.engine.table, 0, param, where="learn")
        with self._lock:
            self._learn = (param, on_done)
            self._learn_pending = None

    def cancel_learn(self) -> None:
        with self._lock:
            self._learn = None
            if self._learn_pending is not None:
                self._learn_pending[3].cancel()
            self._learn_pending = None

    @property
    def learning(self) -> str | None:
        return self._learn[0] if self._learn is not None else None

    def _take_learn(self, ch: int, cc: int) -> bool:
        with self._lock:
            if self._learn is None:
                return False
            pend = self._learn_pending
            if pend is None:
                fine_possible = cc < 32
                timer = threading.Timer(LEARN_PAIR_S if fine_possible else 0.0, self._finish_learn)
                self._learn_pending = [ch, cc, False, timer]
                timer.daemon = True
                timer.start()
                return True
            if ch == pend[0] and cc == pend[1] + 32:
                pend[2] = True  # its LSB: a 14-bit controller
                return True
            return cc == pend[1] and ch == pend[0]  # more of the same controller while we wait

    def _finish_learn(self) -> None:
        with self._lock:
            if self._learn is None or self._learn_pending is None:
                return
            (param, on_done), (_, cc, fine, _) = self._learn, self._learn_pending
            self._learn, self._learn_pending = None, None
        b = binding(self.engine.table, cc, param, fine=fine, where="learn")
        self.map.ccs = {**{k: v for k, v in self.map.ccs.items() if v.param != param or k == cc}, cc: b}
        self._lsb_of = self.map.lsb_of()
        what = f"cc {cc}" + (f"+{cc + 32} (14-bit)" if fine else "")
        saved = ""
        if self.learn_path is not None:
            try:
                append_binding(self.learn_path, b, base=self.map.path)
                saved = f", saved to {self.learn_path}"
            except OSError as e:
                saved = f", NOT saved ({e})"
        self.stats.learned += 1
        log.warning("MIDI learn: %s -> %s%s", what, param, saved)
        if on_done is not None:
            on_done(param, what)

    # --- ports -------------------------------------------------------------------------------------------

    def open(self, ports: list[str], api: str = "auto", virtual: str | None = None, poll_s: float = POLL_S) -> "MidiController":
        """Connect ``ports`` (exact names or substrings; "all" for every input) and, with ``virtual``, make a
        virtual input of that name for DAWs and other programs to connect to. Ports not there yet are
        connected when they appear."""
        self.api, self.wanted, self.virtual, self.poll_s = api, list(ports), virtual, poll_s
        rt = _rtmidi()
        apiid = api_id(api)
        try:
            self._scanner = rt.MidiIn(apiid, name=f"{CLIENT_NAME}-scan")
        except Exception as e:  # noqa: BLE001 - rtmidi raises SystemError/RuntimeError with the reason
            raise MidiError(f"cannot use MIDI ({api}): {e} (is the JACK server or ALSA sequencer running?)") from None
        if virtual:
            port = self._input_port()
            port.open_virtual_port(virtual)
            self.ports[f"virtual:{virtual}"] = port
        missing = [w for w in self.wanted if w != "all" and not any(self._matches(w, n) for n in self._scanner.get_ports())]
        self._scan()
        if missing and not virtual and not self.ports:
            log.warning("MIDI: no input matches %s yet (waiting for it); inputs now: %s", ", ".join(missing),
                        ", ".join(self._scanner.get_ports()) or "(none)")
        self._running = True
        self._monitor = threading.Thread(target=self._watch, name="gesturegan-midi-hotplug", daemon=True)
        self._monitor.start()
        return self

    def _input_port(self):
        """A new rtmidi input of our client that hands every message to :meth:`handle` (sysex, clock and
        active sensing are dropped inside RtMidi); the caller opens it."""
        port = _rtmidi().MidiIn(api_id(self.api), name=CLIENT_NAME)
        port.ignore_types(True, True, True)
        port.set_callback(self._callback)
        return port

    @staticmethod
    def _matches(want: str, name: str) -> bool:
        return want == "all" or want == name or want.lower() in name.lower()

    def _callback(self, event: tuple, data: Any = None) -> None:
        self.handle(event[0])

    def _scan(self) -> None:
        names = self._scanner.get_ports() if self._scanner is not None else []
        for name in [n for n in self.ports if not n.startswith("virtual:") and n not in names]:
            port = self.ports.pop(name)
            try:
                port.close_port()
                port.delete()
            except Exception:  # noqa: BLE001 - it is gone already
                pass
            self.stats.disconnects += 1
            self.events.append(f"disconnected {name}")
            log.warning("MIDI: %s disconnected (will reconnect when it returns)", name)
        for i, name in enumerate(names):
            if name in self.ports or name.startswith(CLIENT_NAME) or not any(self._matches(w, name) for w in self.wanted):
                continue
            try:
                port = self._input_port()
                port.open_port(i)
            except Exception as e:  # noqa: BLE001 - it went away between the listing and the open
                log.warning("MIDI: cannot open %s: %s", name, e)
                continue
            again = any(e == f"disconnected {name}" for e in self.events)
            self.ports[name] = port
            if again:
                self.stats.reconnects += 1
            self.events.append(f"{'reconnected' if again else 'connected'} {name}")
            log.warning("MIDI: %s %s", "reconnected" if again else "connected", name)

    def _watch(self) -> None:
        """The monitor thread: program changes (preset files) as they come, the port list once per ``poll_s``."""
        next_scan = time.monotonic() + self.poll_s
        while self._running:
            self._wake.wait(max(0.0, next_scan - time.monotonic()))
            self._wake.clear()
            if not self._running:
                break
            while self._pending_programs:
                program = self._pending_programs.popleft()
                try:
                    self._program(program)
                except (ValueError, PresetError) as e:
                    self.stats.refused += 1
                    log.warning("MIDI program change %d: %s", program, e)
            if time.monotonic() >= next_scan:
                next_scan = time.monotonic() + self.poll_s
                try:
                    self._scan()
                except Exception as e:  # noqa: BLE001 - the monitor must outlive a driver hiccup
                    log.warning("MIDI: port scan failed: %s", e)

    def close(self) -> None:
        self._running = False
        self._wake.set()
        if self._monitor is not None:
            self._monitor.join(timeout=5)
            self._monitor = None
        self.cancel_learn()
        for port in self.ports.values():
            try:
                port.cancel_callback()
                port.close_port()
                port.delete()
            except Exception:  # noqa: BLE001
                pass
        self.ports.clear()
        if self._scanner is not None:
            self._scanner.delete()
            self._scanner = None

    def __enter__(self) -> "MidiController":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
