"""MIDI maps: what each note, controller, bend and program change does, read from a TOML file.

The shipped ``presets/midi/default.toml`` documents every key; copy it and pass ``--midi-map``. A map
is a view of the parameter table: a ``[[cc]]`` entry names a parameter id, and the controller's 0..127
(or 0..16383 for a 14-bit pair, MSB on controller 0-31 and LSB on that number + 32) spans the parameter's
range, or ``min``..``max`` when given. Later ``[[cc]]`` entries for the same controller win, so MIDI learn
appends to the file and keeps the user's comments.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .files import read_toml, shipped, user_dir, write_atomic
from .params import ParamError, ParamTable


class MidiMapError(ValueError):
    """A map file that cannot be used: the file, the entry and what is wrong."""


@dataclass(frozen=True)
class CCBinding:
    cc: int
    param: str
    lo: float
    hi: float
    fine: bool = False  # a 14-bit pair: this controller is the MSB, cc + 32 the LSB

    def value(self, raw: int) -> float:
        """The parameter value for a controller value (0..127, or 0..16383 when fine)."""
        top = 16383 if self.fine else 127
        return self.lo + (self.hi - self.lo) * (raw / top)


@dataclass(frozen=True)
class NoteZone:
    low: int
    high: int
    category: str | int | None  # None: the current mix; "by_note": low -> category 0, low+1 -> 1, ...
    pitched: bool = True
    root: int = 60


@dataclass
class MidiMap:
    channel: int = 0  # 0 = omni, 1..16
    zones: list[NoteZone] = field(default_factory=list)
    default_zone: NoteZone = field(default_factory=lambda: NoteZone(0, 127, None))
    bend_range: float = 2.0  # semitones at full bend
    bend_param: str = "pitch"
    sustain_cc: int | None = 64
    ccs: dict[int, CCBinding] = field(default_factory=dict)
    programs: dict[int, str] = field(default_factory=dict)
    path: Path | None = None
    # MPE ([mpe]): member channels of the lower and upper zones (0 = none until the controller's MPE
    # Configuration Message says otherwise), their pitch-bend ranges and the timbre controller
    mpe_lower: int = 0
    mpe_upper: int = 0
    mpe_bend_range: float = 48.0
    mpe_manager_bend_range: float = 2.0
    mpe_timbre_cc: int = 74

    def zone(self, note: int) -> NoteZone:
        for z in self.zones:
            if z.low <= note <= z.high:
                return z
        return self.default_zone

    def lsb_of(self) -> dict[int, CCBinding]:
        """LSB controller number -> its 14-bit binding."""
        return {b.cc + 32: b for b in self.ccs.values() if b.fine}


def _int(v: Any, lo: int, hi: int, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise MidiMapError(f"{where} must be a whole number {lo}..{hi}, got {v!r}")
    return v


def _category(v: Any, categories: tuple[str, ...], where: str) -> str | int | None:
    if v in (None, "mix"):
        return None
    if v == "by_note":
        return "by_note"
    if isinstance(v, str):
        if v not in categories:
            raise MidiMapError(f"{where}: unknown category {v!r}; this model has {', '.join(categories)}")
        return v
    return _int(v, 0, len(categories) - 1, where)


def binding(table: ParamTable, cc: int, param: str, lo: Any = None, hi: Any = None, fine: bool = False, where: str = "") -> CCBinding:
    try:
        p = table[param]
    except ParamError as e:
        raise MidiMapError(f"{where}: {e}") from None
    if fine and cc > 31:
        raise MidiMapError(f"{where}: a 14-bit controller (fine = true) is an MSB 0..31, got cc {cc}")
    try:
        lo_v = p.min if lo is None else table.coerce(param, lo)
        hi_v = p.max if hi is None else table.coerce(param, hi)
    except ParamError as e:
        raise MidiMapError(f"{where}: {e}") from None
    return CCBinding(cc, param, float(lo_v), float(hi_v), bool(fine))


def parse_map(doc: dict, table: ParamTable, categories: tuple[str, ...], path: Path | None = None) -> MidiMap:
    src = str(path) if path else "MIDI map"
    m = MidiMap(path=path)
    head = doc.get("midi", {})
    m.channel = _int(head.get("channel", 0), 0, 16, f"{src}: [midi] channel")
    notes = doc.get("notes", {})
    m.default_zone = NoteZone(0, 127, _category(notes.get("category"), categories, f"{src}: [notes] category"),
                              bool(notes.get("pitched", True)), _int(notes.get("root", 60), 0, 127, f"{src}: [notes] root"))
    for i, z in enumerate(notes.get("zones", [])):
        where = f"{src}: [[notes.zones]] #{i + 1}"
        low, high = _int(z.get("low"), 0, 127, f"{where} low"), _int(z.get("high"), 0, 127, f"{where} high")
        if high < low:
            raise MidiMapError(f"{where}: high {high} is below low {low}")
        m.zones.append(NoteZone(low, high, _category(z.get("category"), categories, where), bool(z.get("pitched", True)),
                                _int(z.get("root", m.default_zone.root), 0, 127, f"{where} root")))
    bend = doc.get("pitch_bend", {})
    rng = bend.get("range", 2.0)
    if isinstance(rng, bool) or not isinstance(rng, (int, float)) or not 0 <= rng <= 48:
        raise MidiMapError(f"{src}: [pitch_bend] range must be 0..48 semitones, got {rng!r}")
    m.bend_range = float(rng)
    mpe = doc.get("mpe", {})
    m.mpe_lower = _int(mpe.get("lower", 0), 0, 15, f"{src}: [mpe] lower")
    m.mpe_upper = _int(mpe.get("upper", 0), 0, 15, f"{src}: [mpe] upper")
    if m.mpe_lower and m.mpe_upper and m.mpe_lower + m.mpe_upper > 14:
        raise MidiMapError(f"{src}: [mpe] lower {m.mpe_lower} + upper {m.mpe_upper} member channels is more than the 14 "
                           "that two zones with their manager channels leave")
    for key, default in (("bend_range", 48.0), ("manager_bend_range", 2.0)):
        v = mpe.get(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 96:
            raise MidiMapError(f"{src}: [mpe] {key} must be 0..96 semitones, got {v!r}")
        setattr(m, f"mpe_{key}", float(v))
    m.mpe_timbre_cc = _int(mpe.get("timbre_cc", 74), 0, 127, f"{src}: [mpe] timbre_cc")
    sustain = doc.get("sustain", {}).get("cc", 64)
    m.sustain_cc = None if sustain == -1 else _int(sustain, 0, 127, f"{src}: [sustain] cc")
    for i, e in enumerate(doc.get("cc", [])):
        where = f"{src}: [[cc]] #{i + 1}"
        cc = _int(e.get("cc"), 0, 127, f"{where} cc")
        if "param" not in e:
            raise MidiMapError(f"{where}: needs param = \"<parameter id>\"")
        m.ccs[cc] = binding(table, cc, str(e["param"]), e.get("min"), e.get("max"), bool(e.get("fine", False)), where)
    for k, name in doc.get("programs", {}).items():
        try:
            n = int(k)
        except ValueError:
            raise MidiMapError(f"{src}: [programs] keys are program numbers 0..127, got {k!r}") from None
        m.programs[_int(n, 0, 127, f"{src}: [programs] {k}")] = str(name)
    return m


def load_map(path: str | Path, table: ParamTable, categories: tuple[str, ...]) -> MidiMap:
    return parse_map(read_toml(path, MidiMapError, "MIDI map"), table, categories, Path(path))


def append_binding(path: Path, b: CCBinding, base: Path | None = None) -> None:
    """Add a learned binding at the end of the map file (later entries win; the user's text is kept).
    A map file that does not exist yet starts as a copy of ``base`` (the map playing now)."""
    if path.exists():
        text = path.read_text(encoding="utf-8")
    else:
        text = base.read_text(encoding="utf-8") if base is not None and base.exists() else ""
        path.parent.mkdir(parents=True, exist_ok=True)
    entry = (f"\n# learned {time.strftime('%Y-%m-%d %H:%M')}\n[[cc]]\ncc = {b.cc}\nparam = \"{b.param}\"\n"
             + ("fine = true\n" if b.fine else ""))
    write_atomic(path, text.rstrip("\n") + "\n" + entry)


def user_map() -> Path:
    """Where MIDI learn saves when playing the shipped map (which lives inside the install)."""
    return user_dir() / "midi.toml"


def default_map() -> Path | None:
    """The user's map once MIDI learn has made one, else the shipped default."""
    u = user_map()
    return u if u.is_file() else shipped_map()


def shipped_map() -> Path | None:
    return shipped("midi", "default.toml")
