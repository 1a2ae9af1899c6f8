"""The parameter table: every value a performer, a patch, a preset or a score can set.

Each :class:`Param` has an id, a range, a default, a unit, a smoothing time and a policy for values
outside its range (clamped, or refused). OSC addresses, MIDI mappings, presets, scores and the status
view are all views of this one table, so nothing is wired twice. :func:`build_table` makes the table
for a model: the fixed parameters plus one ``weight.<category>`` per category of the model.

:meth:`Param.coerce` is the only way a value gets in: NaN/Inf and wrong types are refused with a
:class:`ParamError` naming the parameter, the value and the range, so nothing bad reaches the DSP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

N_MACROS = 8


class ParamError(ValueError):
    """A parameter value that cannot be used: unknown id, wrong type, NaN/Inf, or out of range where
    the parameter refuses rather than clamps."""


@dataclass(frozen=True)
class Param:
    id: str
    default: float
    min: float
    max: float
    unit: str = ""
    smoothing_s: float = 0.0
    kind: str = "float"  # float | int | bool | choice
    choices: tuple[str, ...] = ()
    clamp: bool = True  # out of range, or a fraction for an int: clamp and round (True: a knob) or refuse (False: a number that names something)
    group: str = ""
    doc: str = ""

    def coerce(self, value: object) -> float:
        """The stored value (a float, an int-valued float, 0/1, or a choice's index) for ``value``."""
        if self.kind == "choice" and isinstance(value, str):
            if value not in self.choices:
                raise ParamError(f"{self.id} must be one of {', '.join(self.choices)}, got {value!r}")
            return float(self.choices.index(value))
        if self.kind == "bool" and isinstance(value, str):
            low = value.strip().lower()
            if low in ("true", "on", "yes", "1"):
                return 1.0
            if low in ("false", "off", "no", "0"):
                return 0.0
            raise ParamError(f"{self.id} is on/off, got {value!r}")
        if isinstance(value, bool):
            v = float(value)
        elif isinstance(value, (int, float)) or hasattr(value, "__float__") and not isinstance(value, (str, bytes)):
            try:
                v = float(value)  # numpy scalars too
            except (TypeError, ValueError):
                raise ParamError(f"{self.id} needs a number, got {type(value).__name__}") from None
        else:
            raise ParamError(f"{self.id} needs a number, got {type(value).__name__} {value!r}")
        if not math.isfinite(v):
            raise ParamError(f"{self.id} must be a finite number, got {v}")
        if v < self.min or v > self.max:
            if not self.clamp:
                raise ParamError(f"{self.id} must be between {_fmt(self.min)} and {_fmt(self.max)}{self.unit_suffix}, got {_fmt(v)}")
            v = min(max(v, self.min), self.max)
        if self.kind == "int" and not self.clamp and v != round(v):
            raise ParamError(f"{self.id} must be a whole number, got {_fmt(v)}")
        if self.kind in ("int", "choice"):
            v = float(round(v))
        elif self.kind == "bool":
            v = 1.0 if v >= 0.5 else 0.0
        return v

    @property
    def unit_suffix(self) -> str:
        return f" {self.unit}" if self.unit else ""

    def display(self, value: float) -> str:
        if self.kind == "choice":
            return self.choices[int(value)]
        if self.kind == "bool":
            return "on" if value else "off"
        if self.kind == "int":
            return str(int(value))
        return f"{value:.3g}{self.unit_suffix}"

    def describe(self) -> str:
        if self.kind == "choice":
            rng = " | ".join(self.choices)
        elif self.kind == "bool":
            rng = "0 | 1"
        else:
            rng = f"{_fmt(self.min)} .. {_fmt(self.max)}"
        return rng


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else f"{v:g}"


MIX_MODES = ("weights", "xy", "path")  # mix_mode's choices; stored as their index
MIX_WEIGHTS, MIX_XY, MIX_PATH = (float(i) for i in range(len(MIX_MODES)))


def _fixed() -> list[Param]:
    ps = [
        Param("seed", 0, 0, 2**31 - 1, kind="int", clamp=False, group="latent",
              doc="base latent: the seed of the point in latent space every other latent control starts from"),
    ]
    ps += [Param(f"macro{i}", 0.0, -1.0, 1.0, group="latent",
                 doc=f"latent macro {i}: moves the latent along fixed direction {i} (seeded, the same in every session)")
           for i in range(1, N_MACROS + 1)]
    ps += [
        Param("radius", 1.0, 0.0, 2.0, group="latent", doc="latent truncation/radius: 0 = the centre of the latent space, 1 = as drawn"),
        Param("variation", 0.1, 0.0, 1.0, group="latent",
              doc="how far each trigger strays from the current latent (0 = every trigger plays the same clip)"),
        Param("mix_mode", 0, 0, 2, kind="choice", choices=MIX_MODES, group="category",
              doc="where the category mix comes from: the weight.* parameters, the XY pad, or the path through the categories"),
        Param("morph_x", 0.0, 0.0, 1.0, group="category", doc="XY pad, x: corners are categories 1 (0,0), 2 (1,0), 3 (0,1), 4 (1,1); setting it switches mix_mode to xy"),
        Param("morph_y", 0.0, 0.0, 1.0, group="category", doc="XY pad, y; setting it switches mix_mode to xy"),
        Param("morph_path", 0.0, 0.0, 1.0, group="category",
              doc="a walk through the categories in order (0 = the first, 1 = the last, crossfading between neighbours: "
                  "one knob or the mod wheel sweeps every gesture); setting it switches mix_mode to path"),
        Param("pitch", 0.0, -24.0, 24.0, "semitones", 0.05, group="voice", doc="transposition, by resampling, of triggers and the layer"),
        Param("attack", 0.002, 0.0005, 2.0, "s", group="voice", doc="one-shot voice attack time"),
        Param("release", 0.08, 0.005, 5.0, "s", group="voice", doc="one-shot voice release time after note off"),
        Param("polyphony", 8, 1, 32, kind="int", group="voice", doc="most one-shot voices at once; a new one quietly steals the quietest"),
        Param("voices_db", 0.0, -60.0, 6.0, "dB", 0.05, group="voice", doc="level of the one-shot voices"),
        Param("layer", 0, 0, 1, kind="bool", group="layer", doc="the continuous layer on/off"),
        Param("layer_db", -6.0, -60.0, 6.0, "dB", 0.05, group="layer", doc="level of the continuous layer"),
        Param("layer_rate", 4.0, 0.1, 20.0, "Hz", group="layer", doc="most regenerations per second while controls move"),
        Param("layer_drift", 0.0, 0.0, 1.0, group="layer", doc="how far each new layer clip wanders from the last (0 = repeat)"),
        Param("layer_loop", 0, 0, 1, kind="bool", group="layer", doc="loop the current clip (repetition gestures) instead of moving on"),
        Param("crossfade", 0.1, 0.005, 2.0, "s", group="layer", doc="equal-power crossfade time between layer clips"),
        Param("gain", 0.0, -80.0, 6.0, "dB", 0.05, group="output", doc="master gain, before the limiter"),
        Param("ceiling", -0.3, -24.0, 0.0, "dBFS", group="output", doc="limiter ceiling: no output sample is ever above it"),
    ]
    return ps


@dataclass(frozen=True)
class ParamTable:
    params: tuple[Param, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {p.id: p for p in self.params})

    def __getitem__(self, pid: str) -> Param:
        try:
            return self._by_id[pid]  # type: ignore[attr-defined]
        except KeyError:
            raise ParamError(f"unknown parameter {pid!r}") from None

    def __contains__(self, pid: str) -> bool:
        return pid in self._by_id  # type: ignore[attr-defined]

    def __iter__(self):
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def defaults(self) -> dict[str, float]:
        return {p.id: float(p.default) for p in self.params}

    def coerce(self, pid: str, value: object) -> float:
        return self[pid].coerce(value)

    def markdown(self) -> str:
        """The table as Markdown (the docs are generated from it, so they cannot drift)."""
        rows = ["| id | range | default | unit | smoothing | out of range | what it does |", "|---|---|---|---|---|---|---|"]
        for p in self.params:
            rows.append(f"| `{p.id}` | {p.describe()} | {p.display(p.default) if p.kind in ('choice', 'bool') else _fmt(p.default)} | "
                        f"{p.unit} | {f'{p.smoothing_s * 1000:g} ms' if p.smoothing_s else '-'} | {'clamped' if p.clamp else 'refused'} | {p.doc} |")
        return "\n".join(rows)


def implied_mix_mode(pid: str) -> float | None:
    """The ``mix_mode`` a change of ``pid`` implies: moving the XY pad means xy, the path means path, a
    category weight means weights (so a MIDI knob or an OSC message on either takes effect at once); None for other ids."""
    if pid in ("morph_x", "morph_y"):
        return MIX_XY
    if pid == "morph_path":
        return MIX_PATH
    if pid.startswith("weight."):
        return MIX_WEIGHTS
    return None


def weight_id(category: str) -> str:
    return f"weight.{category}"


def build_table(categories: Iterable[str]) -> ParamTable:
    cats = list(categories)
    weights = [Param(weight_id(c), 1.0 if i == 0 else 0.0, 0.0, 1.0, group="category",
                     doc=f"weight of category '{c}' in the mix (the weights are normalised to sum to 1); setting it switches mix_mode to weights")
               for i, c in enumerate(cats)]
    fixed = _fixed()
    at = next(i for i, p in enumerate(fixed) if p.id == "mix_mode")
    return ParamTable(tuple(fixed[:at] + weights + fixed[at:]))
