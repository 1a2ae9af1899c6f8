"""Presets: named sets of parameter values, stored as TOML (a view of the parameter table).

A preset file::

    [preset]
    name = "glass rain"
    model = "default.onnx"        # what it was made with (informative)
    version = 1

    [params]
    seed = 7
    macro1 = 0.25
    mix_mode = "xy"
    "weight.trigger" = 1.0        # ids with a dot are quoted, as TOML requires

Recall sets every value at the same sample (:meth:`Engine.set_values`). Values for categories the
playing model does not have are skipped and reported, so a preset made with another model still
recalls what it can. A :class:`PresetLibrary` looks presets up by name in the user's folder first, then
in the shipped ``presets/params``; saving always goes to the user's folder.

``init`` (program change 0 in the default MIDI map) is no file: it is every parameter of the playing
model's table at its default, derived from the table when recalled, so it cannot drift from the table
(a hand-written init.toml once left eight values behind).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .control import Controls
from .files import read_toml, shipped, toml_key, toml_value, user_dir, write_atomic
from .params import ParamError, ParamTable

PRESET_VERSION = 1
INIT = "init"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}$")


class PresetError(ValueError):
    """A preset that cannot be read, found or used: the file and what is wrong."""


@dataclass(frozen=True)
class Preset:
    name: str
    values: dict[str, Any]
    model: str | None = None
    path: Path | None = field(default=None, compare=False)
    defaults: bool = False  # INIT: every parameter at its table default (``values`` is empty)


INIT_PRESET = Preset(INIT, {}, defaults=True)


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise PresetError(f"a preset name is 1-64 letters, digits, spaces, '_', '.' or '-', starting with a letter "
                          f"or digit; got {name!r}")
    return name


def load_preset(path: str | Path) -> Preset:
    path = Path(path)
    doc = read_toml(path, PresetError, "preset file")
    head = doc.get("preset", {})
    if not isinstance(head, dict) or not isinstance(doc.get("params"), dict):
        raise PresetError(f"{path}: a preset needs a [preset] table and a [params] table")
    version = head.get("version", PRESET_VERSION)
    if not isinstance(version, int) or version > PRESET_VERSION:
        raise PresetError(f"{path}: preset version {version!r} is newer than this GestureGAN reads ({PRESET_VERSION})")
    values = doc["params"]
    for k, v in values.items():
        if not isinstance(v, (int, float, str, bool)):
            raise PresetError(f"{path}: [params] {k} must be a number, a boolean or a name, got {type(v).__name__}")
    return Preset(str(head.get("name", path.stem)), dict(values), head.get("model"), path)


def preset_values(table: ParamTable, values: dict[str, float]) -> dict[str, Any]:
    """The engine's values as a preset stores them: choices by name, bools as booleans, ints as ints."""
    out: dict[str, Any] = {}
    for p in table:
        v = values[p.id]
        out[p.id] = p.choices[int(v)] if p.kind == "choice" else bool(v) if p.kind == "bool" else int(v) if p.kind == "int" else float(v)
    return out


def write_preset(path: str | Path, name: str, values: dict[str, Any], model: str | None = None) -> Path:
    """Write a preset file (to a temporary name, then renamed: never half-written)."""
    path = Path(path)
    lines = ["# GestureGAN preset: the parameter values of one sound. Edit freely; ids are those of the",
             "# parameter table (README), values outside a range are clamped or refused as the table says.",
             "[preset]", f"name = {toml_value(check_name(name))}"]
    if model:
        lines.append(f"model = {toml_value(model)}")
    lines += [f"version = {PRESET_VERSION}", "", "[params]"]
    lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in values.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, "\n".join(lines) + "\n")


def usable_values(table: ParamTable, preset: Preset) -> tuple[dict[str, Any], list[str]]:
    """The values of ``preset`` this table has (checked), and the ids it skipped (other models' categories).
    A value the table refuses raises :class:`PresetError` naming the preset and the parameter."""
    if preset.defaults:
        return preset_values(table, table.defaults()), []
    use, skipped = {}, []
    for k, v in preset.values.items():
        if k not in table:
            skipped.append(k)
            continue
        try:
            table.coerce(k, v)
        except ParamError as e:
            raise PresetError(f"preset {preset.name!r} ({preset.path}): {e}") from None
        use[k] = v
    return use, skipped


def user_preset_dir() -> Path:
    return user_dir() / "presets"


def shipped_preset_dir() -> Path | None:
    return shipped("params")


def default_preset_dirs() -> list[Path]:
    """Where presets are looked up by default: the user's folder (where saves go), then the shipped one."""
    shipped = shipped_preset_dir()
    return [user_preset_dir()] + ([shipped] if shipped else [])


class PresetLibrary:
    """Presets by name: ``dirs[0]`` is where saves go; lookups try each folder in order."""

    def __init__(self, dirs: list[Path] | None = None) -> None:
        self.dirs = [Path(d) for d in (default_preset_dirs() if dirs is None else dirs)]

    def names(self) -> list[str]:
        seen: dict[str, None] = {INIT: None}
        for d in self.dirs:
            if d.is_dir():
                for f in sorted(d.glob("*.toml")):
                    seen.setdefault(f.stem, None)
        return sorted(seen)

    def find(self, name: str) -> Preset:
        if check_name(name) == INIT:
            return INIT_PRESET
        for d in self.dirs:
            f = d / f"{name}.toml"
            if f.is_file():
                return load_preset(f)
        raise PresetError(f"no preset named {name!r} in {', '.join(str(d) for d in self.dirs)}; "
                          f"there are: {', '.join(self.names()) or '(none)'}")

    def by_index(self, index: int) -> Preset:
        """The ``index``-th preset by name (MIDI program change without a program table)."""
        names = self.names()
        if not 0 <= index < len(names):
            raise PresetError(f"no preset number {index}: there are {len(names)}")
        return self.find(names[index])

    def save(self, name: str, table: ParamTable, values: dict[str, float], model: str | None = None) -> Path:
        if check_name(name) == INIT:
            raise PresetError(f"{INIT!r} is every parameter at its default, made from the parameter table; save under another name")
        return write_preset(self.dirs[0] / f"{check_name(name)}.toml", name, preset_values(table, values), model)


def recall(engine: Controls, preset: Preset, at: int | None = None) -> list[str]:
    """Set ``preset``'s values on ``engine`` at one sample; returns the ids skipped (see :func:`usable_values`)."""
    use, skipped = usable_values(engine.table, preset)
    engine.set_values(use, at)
    return skipped
