"""The instrument's command vocabulary: everything a performer, a score or a script can ask the engine to do,
as frozen, typed values, each checked once, when it is made.

OSC, MIDI, the keyboard, scores and score scripts *produce* commands (through :class:`Vocabulary`, which
knows the playing model's categories, latent size and parameter table); the engine *consumes* them
(:meth:`instrument.engine.Engine.post`); its event listeners and recorded takes see ``(sample, command)``;
:func:`score_event` writes a command as a score event, so a performance re-renders offline from the same
commands it played live (SuperCollider's Score/NRT idea).

The commands (``kind`` names them in logs and listeners):

- :class:`Trigger` -- a one-shot gesture of a category (or of the current mix), velocity, transposition;
  a note-on is a trigger that remembers its note.
- :class:`NoteOff`, :class:`AllNotesOff` -- release voices.
- :class:`Expression` -- per-note pitch bend and pressure for the voices of one MIDI channel (MPE).
- :class:`Set` -- parameter values that change at one sample. The XY pad, the category mix and a
  preset's recall are ``Set`` commands.
- :class:`Ramp`, :class:`MorphPath` -- a parameter, or the XY pad along a path, moved over a span of
  samples. The mixer turns each into ``Set`` steps :data:`RAMP_STEP_S` apart when it begins (the gains
  and pitch glide between them); a ramp with no start value starts from the value the parameter has
  then, so a ramp played live and the same ramp in a score sound alike. Listeners see the ramp, once.
- :class:`Latent` -- replace the seed's base latent (or go back to it).
- :class:`Swap` -- a loaded model takes over (made by the engine's hot-swap loader).

Every check raises :class:`~instrument.params.ParamError` with the field, the value and the range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, Mapping, Sequence

import numpy as np

from .params import MIX_WEIGHTS, MIX_XY, Param, ParamError, ParamTable, implied_mix_mode, weight_id

# a trigger's own arguments, checked like any parameter (clamped; NaN/Inf and wrong types refused)
VELOCITY = Param("velocity", 1.0, 0.0, 1.0, doc="a trigger's velocity; its gain is velocity squared")
NOTE_PITCH = Param("pitch", 0.0, -48.0, 48.0, "semitones", doc="a trigger's transposition, on top of the pitch parameter")
NOTE_RANGE = (0, 127)  # MIDI note numbers
CHANNEL_RANGE = (0, 15)  # MIDI channels, 0-based: an MPE voice's channel
TIMBRE = Param("timbre", 0.0, -1.0, 1.0, doc="a note's latent offset along the timbre direction (MPE: CC 74 at note-on; 0 = none)")
NOTE_BEND = Param("bend", 0.0, -96.0, 96.0, "semitones", doc="a channel's per-note pitch bend (MPE)")
PRESSURE = Param("pressure", 1.0, 0.0, 1.0, doc="a channel's per-note pressure (MPE): 1 = the note's velocity level, 0 = PRESSURE_RANGE_DB below it")
PRESSURE_RANGE_DB = 30.0  # pressure 0 plays a note this much below its velocity's level (linear in dB in between)
ROOT_NOTE = 60  # the note that plays a gesture untransposed
RAMP_STEP_S = 0.05  # ramps and morph paths move the controls 20 times a second; gains and pitch glide between (50 ms smoothing)


class Command:
    """A command's common face: ``kind`` (its name in logs), frozen fields."""

    kind: ClassVar[str] = ""


@dataclass(frozen=True)
class Trigger(Command):
    """Play a one-shot gesture: of category index ``category`` (None: the current mix), gain
    ``velocity ** 2``, ``pitch`` semitones on top of the ``pitch`` parameter. ``note`` (0..127) makes it a
    note-on that a :class:`NoteOff` of the same note releases. ``channel`` (0..15) makes it an MPE voice:
    the channel's :class:`Expression` (bend, pressure) follows it; ``timbre`` (-1..1) moves its latent
    along a fixed direction (0: not at all)."""

    kind: ClassVar[str] = "trigger"
    category: int | None
    velocity: float = 1.0
    pitch: float = 0.0
    note: int | None = None
    channel: int | None = None
    timbre: float = 0.0


@dataclass(frozen=True)
class NoteOff(Command):
    """Release the voices of ``note``: of every channel (None), or of that MPE ``channel`` only."""

    kind: ClassVar[str] = "note_off"
    note: int
    channel: int | None = None


@dataclass(frozen=True)
class Expression(Command):
    """Per-note expression (MPE) for the voices of MIDI ``channel``, those sounding and those that start
    later: ``bend`` semitones on top of their pitch, ``pressure`` 0..1 for their level. None leaves one as it is."""

    kind: ClassVar[str] = "expression"
    channel: int
    bend: float | None = None
    pressure: float | None = None


@dataclass(frozen=True)
class AllNotesOff(Command):
    kind: ClassVar[str] = "all_notes_off"


@dataclass(frozen=True)
class Set(Command):
    """Parameter values, checked against the table, applied in order at one sample."""

    kind: ClassVar[str] = "set"
    values: tuple[tuple[str, float], ...]

    def as_dict(self) -> dict[str, float]:
        return dict(self.values)


MAX_RAMP_S = 3600.0  # the longest ramp or path a live call may ask for


def ramp_length(value: object, allowed: str, most: float = math.inf) -> float:
    """A ramp's or a path's length (samples or seconds, per the caller) as a float in ``0..most``;
    anything else (a bool, a non-number, NaN/Inf, out of range) is a :class:`ParamError` naming ``allowed``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or not 0 <= value <= most:
        raise ParamError(f"a ramp's length must be {allowed}, got {value!r}")
    return float(value)


def ramp_seconds(value: object) -> float:
    """A live ramp's or path's length in seconds, ``0..MAX_RAMP_S``."""
    return ramp_length(value, f"0..{MAX_RAMP_S:g} seconds", MAX_RAMP_S)


def _steps(span: int, step: int) -> list[tuple[int, int, int]]:
    """``(offset, k, n)`` for a move over ``span`` samples in ``n`` steps of about ``step``: step ``k``
    of 0..n is ``k / n`` of the way, the last at ``span``; a span of 0 is one step, straight to the end."""
    n = max(1, span // max(1, step))
    if span <= 0:
        return [(0, 1, 1)]
    return [((span * k) // n, k, n) for k in range(n + 1)]


@dataclass(frozen=True)
class Ramp(Command):
    """Move parameter ``pid`` from ``start`` (None: its value when the ramp begins) to ``end``, linearly,
    over ``span`` samples. ``start``/``end`` are already checked against the table (clamped)."""

    kind: ClassVar[str] = "ramp"
    pid: str
    end: float
    span: int
    start: float | None = None

    def steps(self, start: float, step: int) -> list[tuple[int, float]]:
        """``(offset in samples, value)`` from ``start``, every ``step`` samples or so."""
        return [(dt, start + (self.end - start) * k / n) for dt, k, n in _steps(self.span, step)]

    def sets(self, vocabulary: "Vocabulary", values: Mapping[str, float], step: int) -> list[tuple[int, "Set"]]:
        """The ramp as ``Set`` commands at their offsets, from ``values`` (the parameters' values when it begins)."""
        start = values[self.pid] if self.start is None else self.start
        return [(dt, vocabulary.set(self.pid, v)) for dt, v in self.steps(start, step)]


@dataclass(frozen=True)
class MorphPath(Command):
    """Move the XY pad along ``points`` (``(x, y)`` pairs, at constant speed along the path) over ``span``
    samples; the pad jumps to the first point when the path begins."""

    kind: ClassVar[str] = "morph"
    points: tuple[tuple[float, float], ...]
    span: int

    def steps(self, step: int) -> list[tuple[int, float, float]]:
        """``(offset in samples, x, y)`` along the path, every ``step`` samples or so."""
        pts = self.points
        if len(pts) == 1:
            return [(0, *pts[0])]
        seg = [math.dist(a, b) for a, b in zip(pts, pts[1:])]
        total = sum(seg) or 1.0
        out = []
        for dt, k, n in _steps(self.span, step):
            d, i = total * k / n, 0
            while i < len(seg) - 1 and d > seg[i]:
                d -= seg[i]
                i += 1
            f = min(1.0, d / seg[i]) if seg[i] > 0 else 1.0
            (x0, y0), (x1, y1) = pts[i], pts[i + 1]
            out.append((dt, x0 + (x1 - x0) * f, y0 + (y1 - y0) * f))
        return out

    def sets(self, vocabulary: "Vocabulary", values: Mapping[str, float], step: int) -> list[tuple[int, "Set"]]:
        """The path as XY-pad ``Set`` commands at their offsets (``values`` unused: a path says where it starts)."""
        return [(dt, vocabulary.morph(x, y)) for dt, x, y in self.steps(step)]


@dataclass(frozen=True)
class Latent(Command):
    """The base latent (``latent_dim`` finite values, inside the latent distribution's support), or
    None: back to the seed's."""

    kind: ClassVar[str] = "latent"
    z: tuple[float, ...] | None

    def array(self) -> np.ndarray | None:
        return None if self.z is None else np.asarray(self.z, np.float64)


@dataclass(frozen=True)
class Swap(Command):
    """A model that passed the contract (same categories and latent size) takes over."""

    kind: ClassVar[str] = "swap"
    model: Any = field(compare=False)


class Vocabulary:
    """Makes checked commands for one model: its parameter ``table``, ``categories`` and ``latent_dim``;
    ``clip_latent`` keeps a latent inside the model's support (:meth:`LatentSpace.clip_to_support`)."""

    def __init__(self, table: ParamTable, categories: Sequence[str], latent_dim: int, clip_latent=None) -> None:
        self.table, self.categories, self.latent_dim = table, tuple(categories), latent_dim
        self._clip_latent = clip_latent

    def category(self, category: str | int | None) -> int | None:
        """A category by name or index (None: the current mix) -> its index."""
        if category is None:
            return None
        if isinstance(category, str):
            if category not in self.categories:
                raise ParamError(f"unknown category {category!r}; this model has {', '.join(self.categories)}")
            return self.categories.index(category)
        if isinstance(category, bool) or not 0 <= int(category) < len(self.categories):
            raise ParamError(f"category index must be 0..{len(self.categories) - 1}, got {category}")
        return int(category)

    @staticmethod
    def note(note: object) -> int:
        whole = isinstance(note, (int, np.integer)) or isinstance(note, (float, np.floating)) and float(note).is_integer()
        if isinstance(note, bool) or not whole:
            raise ParamError(f"note must be a whole number, got {note!r}")
        if not NOTE_RANGE[0] <= int(note) <= NOTE_RANGE[1]:
            raise ParamError(f"note must be {NOTE_RANGE[0]}..{NOTE_RANGE[1]}, got {note!r}")
        return int(note)

    def trigger(self, category: str | int | None = None, velocity: float = 1.0, pitch: float = 0.0) -> Trigger:
        return Trigger(self.category(category), VELOCITY.coerce(velocity), NOTE_PITCH.coerce(pitch))

    @staticmethod
    def channel(channel: object) -> int | None:
        """A MIDI channel, 0-based (None: none)."""
        if channel is None:
            return None
        if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)) or not CHANNEL_RANGE[0] <= channel <= CHANNEL_RANGE[1]:
            raise ParamError(f"channel must be a whole number {CHANNEL_RANGE[0]}..{CHANNEL_RANGE[1]}, got {channel!r}")
        return int(channel)

    def note_on(self, note: int, velocity: float = 1.0, category: str | int | None = None, root: int = ROOT_NOTE,
                channel: int | None = None, timbre: float = 0.0) -> Trigger:
        n = self.note(note)
        return Trigger(self.category(category), VELOCITY.coerce(velocity), float(n - self.note(root)), n,
                       self.channel(channel), TIMBRE.coerce(timbre))

    def note_off(self, note: int, channel: int | None = None) -> NoteOff:
        return NoteOff(self.note(note), self.channel(channel))

    def expression(self, channel: int, bend: float | None = None, pressure: float | None = None) -> Expression:
        if channel is None:
            raise ParamError("an expression needs the channel of its voices, 0..15")
        return Expression(self.channel(channel), None if bend is None else NOTE_BEND.coerce(bend),
                          None if pressure is None else PRESSURE.coerce(pressure))

    def set(self, pid: str, value: object) -> Set:
        """One parameter; moving the XY pad, the path or a category weight also switches ``mix_mode``."""
        v = self.table.coerce(pid, value)
        mode = implied_mix_mode(pid)
        return Set(((pid, v),) if mode is None else ((pid, v), ("mix_mode", mode)))

    def set_values(self, values: Mapping[str, object] | Iterable[tuple[str, object]]) -> Set:
        """Several parameters exactly as given (a preset: no implied mode switch); one bad value refuses all."""
        items = values.items() if isinstance(values, Mapping) else values
        return Set(tuple((pid, self.table.coerce(pid, v)) for pid, v in items))

    def mix(self, weights: Mapping[str, float] | Sequence[float] | np.ndarray) -> Set:
        """Every category weight at once (unnamed categories 0), and ``mix_mode`` to weights."""
        if isinstance(weights, Mapping):
            unknown = set(weights) - set(self.categories)
            if unknown:
                raise ParamError(f"unknown categories {sorted(unknown)}; this model has {list(self.categories)}")
            w = [weights.get(c, 0.0) for c in self.categories]
        else:
            w = list(weights)
            if len(w) != len(self.categories):
                raise ParamError(f"the mix needs {len(self.categories)} weights, got {len(w)}")
        items = tuple((weight_id(c), self.table.coerce(weight_id(c), x)) for c, x in zip(self.categories, w))
        return Set(items + (("mix_mode", MIX_WEIGHTS),))

    def morph(self, x: float, y: float) -> Set:
        """The XY pad, and ``mix_mode`` to xy."""
        return Set((("morph_x", self.table.coerce("morph_x", x)), ("morph_y", self.table.coerce("morph_y", y)),
                    ("mix_mode", MIX_XY)))

    @staticmethod
    def span(samples: object) -> int:
        """A ramp's or a path's length in samples: a whole number >= 0."""
        return int(round(ramp_length(samples, "a finite time >= 0")))

    def ramp(self, pid: str, end: object, span: object, start: object = None) -> Ramp:
        """Parameter ``pid`` to ``end`` over ``span`` samples, from ``start`` or from its value then."""
        return Ramp(pid, self.table.coerce(pid, end), self.span(span),
                    None if start is None else self.table.coerce(pid, start))

    def morph_path(self, points: Sequence[Sequence[float]], span: object) -> MorphPath:
        """The XY pad along ``points`` (one point: a jump) over ``span`` samples; each point is checked as
        ``morph_x``/``morph_y`` are."""
        pts = [tuple(p) for p in points]
        if not pts or any(len(p) != 2 for p in pts):
            raise ParamError(f"a morph path is one or more (x, y) points, got {list(points)!r}")
        return MorphPath(tuple((self.table.coerce("morph_x", x), self.table.coerce("morph_y", y)) for x, y in pts),
                         self.span(span))

    def latent(self, z: Sequence[float] | np.ndarray | None) -> Latent:
        if z is None:
            return Latent(None)
        arr = np.asarray(z, dtype=np.float64).reshape(-1)
        if arr.size != self.latent_dim:
            raise ParamError(f"the latent needs {self.latent_dim} values, got {arr.size}")
        if not np.isfinite(arr).all():
            raise ParamError("the latent must be finite (no NaN or Inf)")
        if self._clip_latent is not None:
            arr = self._clip_latent(arr)
        return Latent(tuple(float(x) for x in arr))


def score_event(command: Command, categories: Sequence[str]) -> tuple[str, Any, dict[str, Any]] | None:
    """A command as a score event's ``(kind, value, fields)`` (:mod:`instrument.score`); None for one a
    score does not hold (a model swap: a score names its model once)."""
    if isinstance(command, Set):
        return "set", command.as_dict(), {}
    if isinstance(command, Trigger):
        cat = None if command.category is None else categories[command.category]
        if command.note is None:
            return "trigger", "mix" if cat is None else cat, {"velocity": command.velocity, "pitch": command.pitch}
        fields: dict[str, Any] = {"velocity": command.velocity, "root": int(round(command.note - command.pitch))}
        if cat is not None:
            fields["category"] = cat
        if command.channel is not None:
            fields["channel"] = command.channel
        if command.timbre:
            fields["timbre"] = command.timbre
        return "note", command.note, fields
    if isinstance(command, NoteOff):
        return "note_off", command.note, {} if command.channel is None else {"channel": command.channel}
    if isinstance(command, Expression):
        return "expression", command.channel, {k: v for k, v in (("bend", command.bend), ("pressure", command.pressure)) if v is not None}
    if isinstance(command, AllNotesOff):
        return "all_notes_off", True, {}
    if isinstance(command, Latent):
        return "latent", "seed" if command.z is None else list(command.z), {}
    if isinstance(command, Ramp):  # a span in samples: the log's scores count time in samples
        fields = {"to": command.end, "over": command.span}
        if command.start is not None:
            fields["from"] = command.start
        return "ramp", command.pid, fields
    if isinstance(command, MorphPath):
        return "morph", [list(p) for p in command.points], {"over": command.span}
    return None
