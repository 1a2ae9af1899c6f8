"""Where GestureGAN's files are, and reading the TOML ones.

- :func:`shipped`: a path inside the ``presets`` package (the default model, presets, MIDI maps, scores,
  patches), or None when this install has no such file.
- :func:`user_dir`: the user's own folder, ``$XDG_CONFIG_HOME/gesturegan`` (``~/.config/gesturegan``):
  saved presets, the MIDI map MIDI learn writes.
- :func:`read_toml`: a TOML document, with a missing file or bad TOML raised as the caller's error
  class, naming the file; :func:`toml_key` and :func:`toml_value` write the little TOML that presets
  and scores need (no dependency for it).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]


def shipped(*parts: str) -> Path | None:
    try:
        import presets
    except ImportError:
        return None
    p = Path(presets.__file__).parent.joinpath(*parts)
    return p if p.exists() else None


def user_dir() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")) / "gesturegan"


def read_toml(path: str | Path, error: type[Exception], what: str) -> dict:
    """The document at ``path``; ``error(message)`` for a missing file (``no such <what>``) or bad TOML."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise error(f"{path}: not valid TOML: {e}") from None


def toml_key(k: str) -> str:
    """A key, quoted when it is not a bare key (``"weight.trigger"``)."""
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else _toml_string(k)


def _toml_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def toml_value(v: Any) -> str:
    """A value: booleans, ints, floats (shortest round-trip form), strings, lists and inline tables."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"TOML has no place for {v}")
        return repr(v)
    if isinstance(v, str):
        return _toml_string(v)
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    return "[" + ", ".join(toml_value(x) for x in v) + "]"
