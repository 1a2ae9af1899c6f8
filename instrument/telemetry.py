"""The telemetry table: every value the instrument reports about itself, with its kind, unit and
meaning, in one place (as :mod:`instrument.params` is for the controls).

``ENGINE`` is what :meth:`Engine.status` returns, in that order; ``OSC`` and ``MIDI`` are the control
surfaces' counters (:class:`~instrument.osc.OscStats`, :class:`~instrument.midi.MidiStats`), reported
with an ``osc_``/``midi_`` prefix. The tables drive the ``/gesturegan/status`` replies (one
``/gesturegan/status/<name>`` message a row, typed by its kind), ``gesturegan play``'s status line
(the rows with a ``short`` label) and the README's telemetry table; tests hold the engine and the
counters to them, so a value cannot be added without its row. :class:`Telemetry` is the mixer's and
the engine thread's own counters, from which ``Engine.status`` reads its rows. :class:`RateLimitedLog`
is how a surface reports a flood of bad input: the first at once, then a count at a bounded rate.
"""

from __future__ import annotations

import collections
import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Callable

KINDS = ("int", "float", "bool", "text", "floats", "names")
OSC_TYPES = {"int": "i", "float": "f", "bool": "i (0/1)", "text": "(not sent)", "floats": "f ...", "names": "s ..."}


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str  # one of KINDS
    unit: str
    doc: str
    short: str = ""  # the status line's label ("" = not on the line)
    fmt: str = ""  # the status line's format of the value

    def osc_args(self, value: Any) -> tuple | None:
        """The value as OSC arguments (ints, floats, strings only: never ``d``), or None: not sent."""
        if self.kind == "bool":
            return (int(bool(value)),)
        if self.kind == "int":
            return (int(value),)
        if self.kind == "float":
            return (float(value),)
        if self.kind == "floats":
            return tuple(float(v) for v in (value.values() if isinstance(value, dict) else value))
        if self.kind == "names":
            return tuple(str(v) for v in value)
        return None  # text: read it in the terminal or with Engine.status()

    def display(self, value: Any) -> str:
        if self.kind == "bool":
            return "on " if value else "off"
        if self.kind == "floats" and isinstance(value, dict):
            return " ".join(f"{k[:6]} {v:.2f}" for k, v in value.items())
        if self.kind == "floats":
            return " ".join(format(v, self.fmt or "+.1f") for v in value)
        text = format(value, self.fmt) if self.fmt else str(value)
        return f"{text} {self.unit}" if self.unit in ("s", "ms", "dBFS") else text


def _m(name: str, kind: str, unit: str, doc: str, short: str = "", fmt: str = "") -> Metric:
    assert kind in KINDS, kind
    return Metric(name, kind, unit, doc, short, fmt)


ENGINE: tuple[Metric, ...] = (
    _m("time_s", "float", "s", "the engine's clock: seconds of audio rendered since start", "t", "7.1f"),
    _m("level_dbfs", "float", "dBFS", "output peak level (a peak meter falling 20 dB in 1.5 s)", "level", "6.1f"),
    _m("underruns", "int", "", "dropouts the listener may have heard, whoever's fault: late callbacks and device "
       "underflows (C core), or blocks the callback found the ring short (numpy core)", "underruns"),
    _m("engine_underruns", "int", "", "of those, the engine's own: a callback that worked longer than its period (C core); "
       "a short ring not near a device underflow the host caused (numpy core)"),
    _m("device_underflows", "int", "", "output underflows PortAudio reported (JACK xruns) after callbacks that were on time"),
    _m("host_stalls", "int", "", "callbacks that were late without working long: their thread was preempted (C core)"),
    _m("late_events", "int", "", "timed events that arrived after their sample: applied at once", "late"),
    _m("deferred_commands", "int", "", "commands moved to the next block because one block already had its "
       "maximum (a flood of messages: each command cuts the block, so a block takes bounded time)"),
    _m("late_triggers", "int", "", "triggers whose clip was not ready in time (started later)", "late-clips"),
    _m("dropped_triggers", "int", "", "triggers dropped: their clip never came (a model error), or more than 64 were waiting"),
    _m("stolen_voices", "int", "", "voices the polyphony limit took back for a new one"),
    _m("voices", "int", "", "one-shot voices sounding now", "voices", "2d"),
    _m("layer", "bool", "", "the continuous layer on", "layer"),
    _m("regenerations", "int", "", "clips the layer asked for as its controls moved"),
    _m("inference_ms_p50", "float", "ms", "generation time of one clip, median of the recent ones", "infer-p50", ".1f"),
    _m("inference_ms_p99", "float", "ms", "the same, 99th percentile", "p99", ".1f"),
    _m("trigger_delay_ms_p50", "float", "ms", "how long after its sample a trigger sounded, median (0: its clip was ready)"),
    _m("trigger_delay_ms_p99", "float", "ms", "the same, 99th percentile"),
    _m("queue_depth", "int", "", "generation requests waiting for the worker", "queue"),
    _m("clips_generated", "int", "", "clips the worker has generated"),
    _m("bad_clips", "int", "", "generated clips with NaN/Inf or peaks far beyond full scale (cleaned or scaled down)"),
    _m("nonfinite_samples", "int", "", "NaN/Inf samples the safety chain replaced with 0"),
    _m("limited_blocks", "int", "", "blocks the limiter turned down"),
    _m("model_swaps", "int", "", "models hot-swapped in"),
    _m("model_errors", "int", "", "model loads or generations that failed"),
    _m("last_error", "text", "", "the last of those errors, as text (None if none)"),
    _m("max_block_ms", "float", "ms", "the longest a block took to render (numpy core) or to hand to the core (C core)"),
    _m("max_callback_ms", "float", "ms", "the longest the C core's audio callback took (its period: 2.67 ms at 128 / 48 kHz)"),
    _m("max_wake_gap_ms", "float", "ms", "the longest gap between two wake-ups of the engine thread"),
    _m("render_load", "float", "fraction", "time spent rendering / audio time rendered (C core: in the audio callback)", "render", ".0%"),
    _m("cpu_cores", "float", "cores", "the process's CPU time / wall time since start (1.0 = one core busy)", "cpu", ".0%"),
    _m("mix", "floats", "", "the current category weights, one per category (as /status/categories orders them)", "mix"),
    _m("categories", "names", "", "the model's categories, in the order of mix"),
    _m("macros", "floats", "", "the eight latent macros", "macros"),
)

OSC: tuple[Metric, ...] = (
    _m("packets", "int", "", "UDP packets received"),
    _m("bundles", "int", "", "of those, bundles"),
    _m("messages", "int", "", "messages in them"),
    _m("handled", "int", "", "messages carried out"),
    _m("scheduled", "int", "", "messages posted for a later sample by their bundle's time tag"),
    _m("late", "int", "", "messages whose time tag had gone by: applied at once"),
    _m("malformed", "int", "", "packets that are not OSC"),
    _m("unknown_address", "int", "", "messages to an address the instrument does not have"),
    _m("bad_args", "int", "", "messages with the wrong count or kind of arguments, NaN/Inf, or a refused value"),
    _m("denied", "int", "", "packets from outside the allow-list"),
    _m("replies", "int", "", "replies sent"),
    _m("errors_logged", "int", "", "problems logged (at most one line each 5 s says how many more came)"),
)

MIDI: tuple[Metric, ...] = (
    _m("messages", "int", "", "MIDI messages received"),
    _m("notes", "int", "", "note-ons played"),
    _m("controls", "int", "", "mapped controller changes applied"),
    _m("ignored", "int", "", "other channels, unmapped controllers, kinds with no action"),
    _m("malformed", "int", "", "bytes that are not a MIDI message, values out of range"),
    _m("refused", "int", "", "values the engine refused (e.g. a preset that is not there)"),
    _m("learned", "int", "", "controllers bound by MIDI learn"),
    _m("disconnects", "int", "", "inputs that went away"),
    _m("reconnects", "int", "", "inputs that came back"),
)

SECTIONS = (("", ENGINE), ("osc_", OSC), ("midi_", MIDI))


def status_args(rows: Iterable[Metric], values: dict, prefix: str = "") -> list[tuple[str, tuple]]:
    """``(name, OSC args)`` for each row of ``rows`` with a value in ``values`` that is sent."""
    out = []
    for m in rows:
        if m.name in values:
            args = m.osc_args(values[m.name])
            if args is not None:
                out.append((prefix + m.name, args))
    return out


def status_line(st: dict) -> str:
    """``gesturegan play``'s one-line view: the engine rows that have a short label."""
    return "  ".join(f"{m.short} {m.display(st[m.name])}" for m in ENGINE if m.short and m.name in st)


def markdown() -> str:
    """The README's telemetry table."""
    rows = ["| `/gesturegan/status/...` | OSC type | unit | meaning |", "|---|---|---|---|"]
    for prefix, table in SECTIONS:
        for m in table:
            rows.append(f"| `{prefix}{m.name}` | {OSC_TYPES[m.kind]} | {m.unit} | {m.doc} |")
    return "\n".join(rows)


@dataclass
class Telemetry:
    """The engine thread's counters (the audio callback's own, underruns and device underflows, are the
    sink's: :meth:`instrument.audio.SoundDeviceSink.stats`)."""

    blocks: int = 0
    late_events: int = 0
    late_triggers: int = 0  # triggers whose clip was not ready in time (started later)
    dropped_triggers: int = 0
    regenerations: int = 0
    model_swaps: int = 0
    model_errors: int = 0
    last_error: str = ""
    render_seconds: float = 0.0  # time spent in process_block
    max_block_ms: float = 0.0  # the slowest process_block while playing live
    max_wake_gap_ms: float = 0.0  # the longest the live engine thread went between two looks at the ring
    trigger_delays: collections.deque = field(default_factory=lambda: collections.deque(maxlen=10000))  # samples, time -> first sound


class RateLimitedLog:
    """Logs the first problem at once, then at most one line per ``interval_s`` saying how many more came."""

    def __init__(self, logger: logging.Logger, interval_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.logger, self.interval_s, self.clock = logger, interval_s, clock
        self._last = -math.inf
        self._suppressed = 0

    def __call__(self, message: str) -> bool:
        now = self.clock()
        if now - self._last < self.interval_s:
            self._suppressed += 1
            return False
        more = f" (and {self._suppressed} more in the last {now - self._last:.0f} s)" if self._suppressed and self._last > -math.inf else ""
        self.logger.warning("%s%s", message, more)
        self._last, self._suppressed = now, 0
        return True
