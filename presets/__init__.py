"""Data shipped with GestureGAN: the default model, presets, MIDI maps, scores, example patches.

``presets.path("name")`` finds a shipped file whether GestureGAN runs from a checkout or an install.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent


def path(name: str) -> Path:
    p = ROOT / name
    if not p.exists():
        shipped = sorted(x.name for x in ROOT.iterdir() if not x.name.startswith(("_", ".")))
        raise FileNotFoundError(f"no shipped preset file {name!r}; shipped: {', '.join(shipped)}")
    return p
