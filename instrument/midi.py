"""MIDI input's meaning: the map's actions (notes, zones, controllers, 14-bit pairs, the sustain pedal,
pitch bend, program changes), MPE's per-note expression (:mod:`instrument.mpe` says what each message
means) and MIDI learn. The ports and hot-plug are :mod:`instrument.midiports`'s;
bytes arrive here already stripped of sysex, clock and active sensing (dropped inside RtMidi), are
decoded here (three bytes, no objects) and checked, and unmapped messages cost a dict lookup. mido
provides the port listing (``gesturegan midi-ports``) and is what tests and the MIDI file renderer use
to send. Handlers only validate and post commands to the engine.

Program changes (a preset file to read) are handed to the ports' monitor thread rather than handled on
RtMidi's callback thread, which with the JACK API is JACK's own process thread.
"""

from __future__ import annotations

import collections
import logging
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from .control import Controls
from .midimap import MidiMap, append_binding, binding
from .midiports import POLL_S, MidiInputs
from .mpe import MpeState
from .presets import PresetError, PresetLibrary, recall

log = logging.getLogger("gesturegan.midi")

LEARN_PAIR_S = 0.15  # after a learned MSB 0..31, how long to wait for its LSB (a 14-bit controller)


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


class MidiController:
    """Turns MIDI into engine calls through ``midi_map``. ``handle(data)`` takes one message's bytes (any
    thread); :meth:`open` connects ports and starts the hot-plug monitor; a context manager."""

    def __init__(self, engine: Controls, midi_map: MidiMap, presets: PresetLibrary | None = None,
                 learn_path: Path | None = None) -> None:
        self.engine, self.map, self.presets = engine, midi_map, presets or PresetLibrary()
        self.learn_path = learn_path or midi_map.path
        self.stats = MidiStats()
        self._lsb_of = midi_map.lsb_of()
        self._msb: dict[tuple[int, int], int] = {}  # (channel, cc) -> last MSB of a 14-bit pair
        self._sustain = [False] * 16
        # notes released while the pedal was down, by the pedal's channel: (note, the MPE voice's channel or None)
        self._held: list[set[tuple[int, int | None]]] = [set() for _ in range(16)]
        m = midi_map
        self.mpe = MpeState(m.mpe_lower, m.mpe_upper, m.mpe_bend_range, m.mpe_manager_bend_range, m.mpe_timbre_cc)
        self._learn: tuple[str, Callable[[str, str], None] | None] | None = None
        self._learn_pending: list[Any] | None = None  # [channel, cc, fine, timer]
        self._lock = threading.Lock()  # learn state, touched by the MIDI and OSC threads
        self.inputs = MidiInputs(self.handle, self.stats, self._run_pending)  # ports and hot-plug
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
        role = self.mpe.role(ch)  # (zone, is_manager) on an MPE zone's channel: those pass any channel filter
        if self.map.channel and ch != self.map.channel - 1 and role is None:
            self.stats.ignored += 1
            return
        member = role is not None and not role[1]
        try:
            if kind == 0x90 and data[2] > 0:
                self._note_on(ch, data[1], data[2], at, member)
            elif kind == 0x80 or kind == 0x90:
                self._note_off(ch, data[1], at, member)
            elif kind == 0xB0:
                self._control(ch, data[1], data[2], at, member)
            elif kind == 0xE0:
                bend = ((data[2] << 7) | data[1]) - 8192
                b = bend / (8191 if bend > 0 else 8192)
                if member:  # the note's own glide
                    self.engine.expression(ch, bend=role[0].bend_range * b, at=at)
                else:  # the whole instrument, or the whole zone from its manager channel
                    self.engine.set(self.map.bend_param, (role[0].manager_bend_range if role else self.map.bend_range) * b, at)
                self.stats.controls += 1
            elif kind == 0xD0 and member:  # channel pressure on a member channel: the note's level
                self.engine.expression(ch, pressure=data[1] / 127.0, at=at)
                self.stats.controls += 1
            elif kind == 0xC0:
                if self.inputs.running and at is None:  # a preset is a file to read: not on RtMidi's thread (JACK's, with the JACK API)
                    self._pending_programs.append(data[1])
                    self.inputs.wake()
                else:
                    self._program(data[1], at)
            else:
                self.stats.ignored += 1  # aftertouch
        except (ValueError, PresetError) as e:
            self.stats.refused += 1
            log.warning("MIDI %s: %s", bytes(data).hex(" "), e)

    def _pedal(self, ch: int, member: bool) -> int:
        """The channel whose sustain pedal holds this channel's notes: an MPE member's is its zone manager's."""
        return self.mpe.role(ch)[0].manager if member else ch

    def _note_on(self, ch: int, note: int, velocity: int, at: int | None = None, member: bool = False) -> None:
        zone = self.map.zone(note)
        cat = zone.category
        if cat == "by_note":
            cat = (note - zone.low) % self.engine.info.n_categories
        voice_ch = ch if member else None  # an MPE voice: its channel's expression follows it
        self._held[self._pedal(ch, member)].discard((note, voice_ch))
        self.engine.note_on(note, velocity / 127.0, cat, zone.root if zone.pitched else note, at=at, channel=voice_ch,
                            timbre=self.mpe.timbre(ch) if member else 0.0)
        self.stats.notes += 1

    def _note_off(self, ch: int, note: int, at: int | None = None, member: bool = False) -> None:
        pedal, voice_ch = self._pedal(ch, member), (ch if member else None)
        if self._sustain[pedal]:
            self._held[pedal].add((note, voice_ch))
        else:
            self.engine.note_off(note, at, channel=voice_ch)
        self.stats.notes += 1

    def _set(self, b, raw: int, at: int | None) -> None:
        v = b.value(raw)
        if self.engine.table[b.param].kind == "int":
            v = round(v)  # a knob over a whole-number parameter (a seed refuses fractions) steps through its values
        self.engine.set(b.param, v, at)

    def _control(self, ch: int, cc: int, value: int, at: int | None = None, member: bool = False) -> None:
        rpn = self.mpe.registered(ch, cc, value)  # registered parameters: MPE configuration, bend ranges
        if rpn is not None:
            if rpn == "plain_bend_range":
                self.map.bend_range = self.mpe.plain_bend_range
            if rpn == "other":  # a registered parameter we have no use for
                self.stats.ignored += 1
            else:
                self.stats.controls += 1
            return
        if member:  # a member channel's controllers are its note's: CC 74 its timbre, the rest not ours
            if cc == self.mpe.timbre_cc:
                self.mpe.set_timbre(ch, value)
                self.stats.controls += 1
            else:
                self.stats.ignored += 1
            return
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
                for note, voice_ch in sorted(self._held[ch], key=lambda h: (h[0], -1 if h[1] is None else h[1])):
                    self.engine.note_off(note, at, channel=voice_ch)
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

    # --- ports (instrument.midiports) ------------------------------------------------------------------------

    def open(self, ports: list[str], api: str = "auto", virtual: str | None = None, poll_s: float = POLL_S) -> "MidiController":
        """Connect ``ports`` (exact names or substrings; "all" for every input) and, with ``virtual``, make a
        virtual input of that name for DAWs and other programs to connect to. Ports not there yet are
        connected when they appear (:class:`~instrument.midiports.MidiInputs`)."""
        self.inputs.open(ports, api, virtual, poll_s)
        return self

    @property
    def ports(self) -> dict[str, Any]:
        return self.inputs.ports

    @property
    def events(self) -> list[str]:
        return self.inputs.events

    def _run_pending(self) -> None:
        """On the monitor thread: program changes (preset files) as they came."""
        while self._pending_programs:
            program = self._pending_programs.popleft()
            try:
                self._program(program)
            except (ValueError, PresetError) as e:
                self.stats.refused += 1
                log.warning("MIDI program change %d: %s", program, e)

    def close(self) -> None:
        self.inputs.close()
        self.cancel_learn()

    def __enter__(self) -> "MidiController":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
