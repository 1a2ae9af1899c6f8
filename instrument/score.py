"""Scores: compositions as data (a TOML file) or as code (a Python script with :class:`Score`), rendered
offline through the engine's own path, deterministically.

A TOML score::

    [score]
    title = "Four rooms"
    model = "default"           # the bundled model, or a path (relative to this file)
    sample_rate = 48000
    time = "beats"              # what every `at` counts: "seconds", "beats" (quarter notes) or "samples"
    tempo = 96                  # beats per minute (with time = "beats")
    duration = 128              # in the time unit; the render adds `tail` seconds
    tail = 3.0
    seed = 7                    # the same seed and events give the same bytes

    [[event]]
    at = 0
    trigger = "trigger"         # the event's kind is its one kind key; the other keys are its fields
    velocity = 0.9

    [[event]]
    at = 4
    ramp = "macro1"
    to = 1.0
    over = 8                    # in the time unit

Event kinds and their fields (``at`` always; times ascending):

- ``trigger = category | index | "mix"``: ``velocity`` 0..1, ``pitch`` semitones.
- ``note = 0..127``: ``velocity`` 0..1, ``length`` (then a note off), ``category``, ``root`` (60), ``channel``
  (0..15: an MPE voice, following that channel's expression), ``timbre`` (-1..1: its latent offset).
- ``note_off = note``: ``channel`` (an MPE note's, 0..15; default every channel's); ``all_notes_off = true``.
- ``expression = channel``: ``bend`` semitones, ``pressure`` 0..1 (MPE: the voices of that channel).
- ``set = { id = value, ... }``: parameters (ids from the parameter table; out of range is an error).
- ``ramp = "id"``: ``to``, ``over``, optional ``from`` (default: the value it has then).
- ``morph = [x, y]`` or ``[[x, y], [x, y], ...]`` (an XY pad path, walked at constant speed ``over``).
- ``layer = true | false``; ``preset = "name"``; ``mix = { category = weight, ... }``.
- ``latent = [numbers] | "seed"``.

Loading a TOML score runs no code. Errors name the file, the event (number and line) and the field.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .commands import CHANNEL_RANGE, NOTE_BEND, NOTE_PITCH, NOTE_RANGE, PRESSURE, ROOT_NOTE, TIMBRE, VELOCITY
from .files import read_toml, shipped, toml_value, write_atomic
from .params import ParamTable, build_table

TIME_UNITS = ("seconds", "beats", "samples")
KINDS = ("trigger", "note", "note_off", "all_notes_off", "expression", "set", "ramp", "morph", "layer", "preset", "mix", "latent")
FIELDS = {
    "trigger": {"velocity", "pitch"},
    "note": {"velocity", "length", "category", "root", "channel", "timbre"},
    "note_off": {"channel"}, "all_notes_off": set(), "set": set(),
    "expression": {"bend", "pressure"},
    "ramp": {"to", "over", "from", "step"},
    "morph": {"over"},
    "layer": set(), "preset": set(), "mix": set(), "latent": set(),
}
HEADER = {"title", "model", "sample_rate", "time", "tempo", "duration", "tail", "seed", "block"}


class ScoreError(ValueError):
    """A score that cannot be rendered: the file, the event (number and line) and the field."""


@dataclass
class Event:
    at: float
    kind: str
    value: Any
    fields: dict[str, Any] = field(default_factory=dict)
    line: int | None = None  # where a TOML event starts


def _num(v: Any, where: str, lo: float = -math.inf, hi: float = math.inf) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ScoreError(f"{where} must be a number, got {v!r}")
    if not lo <= v <= hi:
        raise ScoreError(f"{where} must be between {lo:g} and {hi:g}, got {v:g}")
    return float(v)


def check_value(table: ParamTable, pid: str, v: Any, where: str) -> None:
    """A score's parameter value: known id, right type, and (unlike a live control) inside the range."""
    if pid not in table:
        if pid.startswith("weight."):
            return  # a category weight: checked against the model at render time
        raise ScoreError(f"{where}: unknown parameter {pid!r}")
    p = table[pid]
    if isinstance(v, str) or isinstance(v, bool):
        try:
            table.coerce(pid, v)
        except ValueError as e:
            raise ScoreError(f"{where}: {e}") from None
        return
    _num(v, f"{where}: {pid}", p.min, p.max)


@dataclass
class Score:
    """A composition: a header and timed events. Build one in Python with :meth:`at`, or :func:`load_score`."""

    title: str = ""
    model: str = "default"
    sample_rate: int = 48000
    time: str = "seconds"
    tempo: float = 120.0
    duration: float | None = None  # in the time unit; None: the last event (and its length or ramp)
    tail: float = 2.0  # seconds after the end
    seed: int = 0
    block: int = 1024
    events: list[Event] = field(default_factory=list)
    source: Path | None = None

    def __post_init__(self) -> None:
        if self.time not in TIME_UNITS:
            raise ScoreError(f"time must be one of {', '.join(TIME_UNITS)}, got {self.time!r}")
        _num(self.tempo, "tempo", 1, 1000)
        _num(self.tail, "tail", 0, 600)
        _num(self.sample_rate, "sample_rate", 8000, 384000)
        _num(self.block, "block", 16, 16384)
        if self.duration is not None:
            _num(self.duration, "duration", 0)
        for name in ("seed", "sample_rate", "block"):
            if isinstance(getattr(self, name), bool) or not isinstance(getattr(self, name), int):
                raise ScoreError(f"{name} must be a whole number, got {getattr(self, name)!r}")
        self.rng = random.Random(self.seed)  # for scripts: randomness that the seed repeats
        self._table = build_table([])

    # --- time -------------------------------------------------------------------------------------------

    def seconds(self, t: float) -> float:
        if self.time == "beats":
            return t * 60.0 / self.tempo
        if self.time == "samples":
            return t / self.sample_rate
        return t

    def sample(self, t: float) -> int:
        return int(t) if self.time == "samples" else int(round(self.seconds(t) * self.sample_rate))

    def length_seconds(self) -> float:
        if self.duration is not None:
            return self.seconds(self.duration)
        end = 0.0
        for e in self.events:
            extra = e.fields.get("length") or e.fields.get("over") or 0.0
            end = max(end, e.at + extra)
        return self.seconds(end)

    # --- building ---------------------------------------------------------------------------------------

    def at(self, t: float) -> "At":
        """``score.at(12.5).trigger("trigger", velocity=0.8)``: events at time ``t`` (in the score's unit)."""
        return At(self, _num(t, "at", 0))

    def add(self, e: Event, where: str | None = None) -> Event:
        check_event(self._table, e, where or f"event {len(self.events) + 1}")
        self.events.append(e)
        return e

    def sorted_events(self) -> list[Event]:
        return sorted(self.events, key=lambda e: e.at)  # stable: same-time events keep their order

    # --- files --------------------------------------------------------------------------------------------

    def totoml_value(self) -> str:
        lines = ["# GestureGAN score", "[score]"]
        for k in ("title", "model", "sample_rate", "time", "tempo", "duration", "tail", "seed", "block"):
            v = getattr(self, k)
            if v is not None:
                lines.append(f"{k} = {toml_value(v)}")
        for e in self.sorted_events():
            lines += ["", "[[event]]", f"at = {toml_value(e.at)}", f"{e.kind} = {toml_value(e.value)}"]
            lines += [f"{k} = {toml_value(v)}" for k, v in e.fields.items()]
        return "\n".join(lines) + "\n"

    def save(self, path: str | Path) -> Path:
        return write_atomic(path, self.totoml_value())


class At:
    """Events at one time; every method returns this object, so calls chain."""

    def __init__(self, score: Score, t: float) -> None:
        self.score, self.t = score, t

    def _add(self, kind: str, value: Any, **fields: Any) -> "At":
        self.score.add(Event(self.t, kind, value, {k: v for k, v in fields.items() if v is not None}))
        return self

    def trigger(self, category: str | int | None = None, velocity: float = 1.0, pitch: float = 0.0) -> "At":
        return self._add("trigger", "mix" if category is None else category, velocity=velocity, pitch=pitch)

    def note(self, note: int, velocity: float = 0.8, length: float | None = None, category: str | int | None = None,
             root: int | None = None, channel: int | None = None, timbre: float | None = None) -> "At":
        return self._add("note", note, velocity=velocity, length=length, category=category, root=root, channel=channel, timbre=timbre)

    def note_off(self, note: int, channel: int | None = None) -> "At":
        return self._add("note_off", note, channel=channel)

    def expression(self, channel: int, bend: float | None = None, pressure: float | None = None) -> "At":
        return self._add("expression", channel, bend=bend, pressure=pressure)

    def all_notes_off(self) -> "At":
        return self._add("all_notes_off", True)

    def set(self, values: dict[str, Any] | None = None, **kw: Any) -> "At":
        return self._add("set", {**(values or {}), **kw})

    def ramp(self, param: str, to: float, over: float, start: float | None = None) -> "At":
        return self._add("ramp", param, to=to, over=over, **{"from": start})

    def morph(self, path: list | tuple, over: float | None = None) -> "At":
        pts = [list(p) for p in path] if path and isinstance(path[0], (list, tuple)) else list(path)
        return self._add("morph", pts, over=over)

    def layer(self, on: bool = True) -> "At":
        return self._add("layer", bool(on))

    def preset(self, name: str) -> "At":
        return self._add("preset", name)

    def mix(self, weights: dict[str, float]) -> "At":
        return self._add("mix", dict(weights))

    def latent(self, values: list[float] | str = "seed") -> "At":
        return self._add("latent", values if isinstance(values, str) else [float(x) for x in values])


def _category(v: Any, where: str) -> None:
    if isinstance(v, bool) or not (isinstance(v, str) or isinstance(v, int) and 0 <= v < 64):
        raise ScoreError(f"{where} must be a category name, its index or \"mix\", got {v!r}")


def _channel(v: Any, where: str) -> None:
    lo, hi = CHANNEL_RANGE
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ScoreError(f"{where} must be a MIDI channel {lo}..{hi} (0-based), got {v!r}")


def check_event(table: ParamTable, e: Event, where: str) -> None:
    """Every field of one event, before anything renders."""
    if e.kind not in KINDS:
        raise ScoreError(f"{where}: unknown event kind {e.kind!r} (one of {', '.join(KINDS)})")
    _num(e.at, f"{where}: at", 0)
    extra = set(e.fields) - FIELDS[e.kind]
    if extra:
        raise ScoreError(f"{where}: {e.kind} has no field {sorted(extra)[0]!r}" +
                         (f" (it takes {', '.join(sorted(FIELDS[e.kind]))})" if FIELDS[e.kind] else ""))
    f, v = e.fields, e.value
    if e.kind == "trigger":
        _category(v, f"{where}: trigger")
        _num(f.get("velocity", 1.0), f"{where}: velocity", VELOCITY.min, VELOCITY.max)
        _num(f.get("pitch", 0.0), f"{where}: pitch", NOTE_PITCH.min, NOTE_PITCH.max)
    elif e.kind in ("note", "note_off"):
        lo, hi = NOTE_RANGE
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise ScoreError(f"{where}: {e.kind} must be a MIDI note {lo}..{hi}, got {v!r}")
        if e.kind == "note":
            _num(f.get("velocity", 0.8), f"{where}: velocity", VELOCITY.min, VELOCITY.max)
            if "length" in f:
                _num(f["length"], f"{where}: length", 0)
            if "category" in f:
                _category(f["category"], f"{where}: category")
            _num(f.get("root", ROOT_NOTE), f"{where}: root", lo, hi)
            if "timbre" in f:
                _num(f["timbre"], f"{where}: timbre", TIMBRE.min, TIMBRE.max)
        if "channel" in f:
            _channel(f["channel"], f"{where}: channel")
    elif e.kind == "expression":
        _channel(v, f"{where}: expression")
        if not f:
            raise ScoreError(f"{where}: expression needs bend = <semitones> or pressure = <0..1>")
        if "bend" in f:
            _num(f["bend"], f"{where}: bend", NOTE_BEND.min, NOTE_BEND.max)
        if "pressure" in f:
            _num(f["pressure"], f"{where}: pressure", PRESSURE.min, PRESSURE.max)
    elif e.kind == "set":
        if not isinstance(v, dict) or not v:
            raise ScoreError(f"{where}: set must be a table of parameter = value, got {v!r}")
        for pid, x in v.items():
            check_value(table, pid, x, f"{where}: set")
    elif e.kind == "ramp":
        if "to" not in f or "over" not in f:
            raise ScoreError(f"{where}: ramp needs to = <value> and over = <time>")
        check_value(table, str(v), f["to"], f"{where}: ramp to")
        if "from" in f:
            check_value(table, str(v), f["from"], f"{where}: ramp from")
        _num(f["over"], f"{where}: over", 0)
    elif e.kind == "morph":
        pts = v if v and isinstance(v[0], list) else [v]
        for p in pts:
            if not isinstance(p, list) or len(p) != 2:
                raise ScoreError(f"{where}: morph points are [x, y] pairs, got {p!r}")
            _num(p[0], f"{where}: morph x", 0, 1)
            _num(p[1], f"{where}: morph y", 0, 1)
        if len(pts) > 1 and "over" not in f:
            raise ScoreError(f"{where}: a morph path needs over = <time>")
        if "over" in f:
            _num(f["over"], f"{where}: over", 0)
    elif e.kind == "layer" and not isinstance(v, bool):
        raise ScoreError(f"{where}: layer must be true or false, got {v!r}")
    elif e.kind == "preset" and not isinstance(v, str):
        raise ScoreError(f"{where}: preset must be a preset name, got {v!r}")
    elif e.kind == "mix":
        if not isinstance(v, dict) or not v:
            raise ScoreError(f"{where}: mix must be a table of category = weight, got {v!r}")
        for c, w in v.items():
            _num(w, f"{where}: mix {c}", 0, 1)
    elif e.kind == "latent" and v != "seed":
        if not isinstance(v, list) or not v:
            raise ScoreError(f"{where}: latent must be a list of numbers or \"seed\", got {v!r}")
        for x in v:
            _num(x, f"{where}: latent value")
    elif e.kind == "all_notes_off" and v is not True:
        raise ScoreError(f"{where}: all_notes_off must be true")


def load_score(path: str | Path) -> Score:
    """Parse a TOML score (no code runs). Errors name the file, the event (number and line) and the field."""
    path = Path(path)
    doc = read_toml(path, ScoreError, "score")
    lines = [i + 1 for i, ln in enumerate(path.read_text(encoding="utf-8").splitlines()) if ln.strip().startswith("[[event]]")]
    head = doc.get("score")
    if not isinstance(head, dict):
        raise ScoreError(f"{path}: a score needs a [score] table (title, model, sample_rate, time, ...)")
    unknown = set(head) - HEADER
    if unknown:
        raise ScoreError(f"{path}: [score] has no field {sorted(unknown)[0]!r} (it takes {', '.join(sorted(HEADER))})")
    if "time" not in head:
        raise ScoreError(f'{path}: [score] must say what times count: time = "seconds", "beats" or "samples"')
    extra = set(doc) - {"score", "event"}
    if extra:
        raise ScoreError(f"{path}: unknown table [{sorted(extra)[0]}] (a score has [score] and [[event]] tables)")
    try:
        score = Score(**{k: head[k] for k in head}, source=path)
    except (ScoreError, TypeError) as e:
        raise ScoreError(f"{path}: [score] {e}") from None
    events = doc.get("event", [])
    if not isinstance(events, list):
        raise ScoreError(f"{path}: events are [[event]] tables")
    last = -math.inf
    for i, raw in enumerate(events):
        line = lines[i] if i < len(lines) else None
        where = f"{path}: event {i + 1}" + (f" (line {line})" if line else "")
        if "at" not in raw:
            raise ScoreError(f"{where}: needs at = <time>")
        kinds = [k for k in raw if k in KINDS]
        if len(kinds) != 1:
            other = sorted(set(raw) - {"at"} - set().union(*FIELDS.values()))
            hint = f"unknown event kind {other[0]!r} (one of {', '.join(KINDS)})" if other else "needs exactly one kind"
            raise ScoreError(f"{where}: {hint if not kinds else 'has two kinds: ' + ', '.join(kinds)}")
        kind = kinds[0]
        e = Event(raw["at"], kind, raw[kind], {k: v for k, v in raw.items() if k not in ("at", kind)}, line)
        score.add(e, where)
        if e.at < last:
            raise ScoreError(f"{where}: at = {e.at:g} goes back in time (the event before is at {last:g})")
        last = e.at
    return score


def resolve_model(score: Score, override: str | Path | None = None) -> Path:
    """The model file a score asks for: ``default`` (the bundled one) or a path relative to the score."""
    name = str(override) if override is not None else score.model
    where = f"{score.source or 'score'}: [score] model"
    if name == "default":
        p = shipped("default.onnx")
        if p is None:
            raise ScoreError(f"{where} = \"default\", but this install has no bundled model (presets/default.onnx)")
        return p
    p = Path(name).expanduser()
    if not p.is_absolute() and score.source is not None and override is None:
        p = score.source.parent / p
    if not p.is_file():
        raise ScoreError(f"{where}: no such model file {p}")
    return p
