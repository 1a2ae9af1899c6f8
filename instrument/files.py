"""Where GestureGAN's files are, and reading the TOML ones.

- :func:`shipped`: a path inside the ``presets`` package (the default model, presets, MIDI maps, scores,
  patches), or None when this install has no such file.
- :func:`user_dir`: the user's own folder, ``$XDG_CONFIG_HOME/gesturegan`` (``~/.config/gesturegan``):
  saved presets, the MIDI map MIDI learn writes.
- :func:`read_toml`: a TOML document, with a missing file or bad TOML raised as the caller's error
  class, naming the file; :func:`toml_key` and :func:`toml_value` write the little TOML that presets
  and scores need (no dependency for it).
- :func:`atomic_file` / :func:`write_atomic`: the one way the project writes a file (every package):
  a hidden temporary beside it, fsynced, renamed over it, the folder fsynced, so a crash or kill leaves
  the old file or the new one, never half of one.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]


def shipped(*parts: str) -> Path | None:
    try:
        import presets  # the shipped data: an install may lack it
    except ImportError:
        return None
    p = Path(presets.__file__).parent.joinpath(*parts)
    return p if p.exists() else None


def temporary_name(path: Path, unique: bool = False) -> Path:
    """Where :func:`atomic_file` writes ``path`` first: ``.<name>.tmp`` beside it, or with ``unique``
    ``.<name>.<pid>.tmp`` (a file that several processes may write at once)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp" if unique else f".{path.name}.tmp")


@contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "wb", *, encoding: str | None = None, newline: str | None = None,
                unique: bool = False, before_rename: Callable[[Path], None] | None = None) -> Iterator[IO]:
    """Open ``path`` for writing so that it is replaced whole or not at all. What is written goes to
    :func:`temporary_name`; when the block ends it is fsynced, renamed over ``path`` and the folder
    fsynced. An exception in the block removes the temporary and leaves ``path`` as it was (a kill
    leaves the hidden temporary, which readers never look at). ``before_rename(tmp)`` is a test hook."""
    path = Path(path)
    tmp = temporary_name(path, unique)
    if encoding is None and "b" not in mode:
        encoding = "utf-8"
    try:
        with open(tmp, mode, encoding=encoding, newline=newline) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if before_rename is not None:
            before_rename(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_atomic(path: str | os.PathLike, data: bytes | str, *, unique: bool = False) -> Path:
    """Write ``data`` (bytes, or text as UTF-8) to ``path`` through :func:`atomic_file`."""
    with atomic_file(path, "wb" if isinstance(data, bytes) else "w", unique=unique) as f:
        f.write(data)
    return Path(path)


def fsync_dir(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (best effort: some filesystems refuse directory fsync)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
