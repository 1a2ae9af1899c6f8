"""The control interface: everything a control surface may ask of the instrument, and nothing else.

OSC (:mod:`instrument.osc`), MIDI (:mod:`instrument.midi`), the keyboard (:mod:`instrument.cli`) and
preset recall (:func:`instrument.presets.recall`) are written against :class:`Controls`, not against
:class:`~instrument.engine.Engine`: a surface turns what its performer sends into calls here, and the
calls turn into :mod:`~instrument.commands` commands posted to the mixer. So a surface cannot reach
into the engine's threads, its clip cache or its heap, and a test can put anything that records the
calls in the engine's place (``tests/instrument/recording.py``).

The interface, by what it is for:

- **what is playing** (read-only): :attr:`info` (the model's categories, latent size, sample rate),
  :attr:`table` (the parameter table), :attr:`values` (every parameter's current value),
  :attr:`model_source` (the file the playing model came from), :meth:`status` (the telemetry
  table's values, :mod:`instrument.telemetry`), :meth:`recent_clip` (what began sounding last: the
  browser surface's spectrogram);
- **time**: :meth:`now` (the mixer's clock, in samples) and :meth:`sample_at` (the engine sample that
  reaches the speakers at a wall-clock time: OSC time tags);
- **commands**, each checked once by :attr:`vocabulary` and taking effect at sample ``at`` or at once
  (None): :meth:`set`, :meth:`set_values`, :meth:`set_mix`, :meth:`morph`, :meth:`ramp`,
  :meth:`morph_path`, :meth:`set_latent`,
  :meth:`trigger`, :meth:`note_on`, :meth:`note_off`, :meth:`all_notes_off`, or any command made by
  :attr:`vocabulary` with :meth:`post`;
- **the session**: :meth:`load_model` (hot swap, off the audio path), :meth:`start_recording` /
  :meth:`stop_recording`, and :meth:`listen` (the one way to watch blocks and applied commands).

:class:`Engine` implements it; ``isinstance(x, Controls)`` checks that an object has every member
(``typing.runtime_checkable``: names only, not signatures).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping, Protocol, runtime_checkable

import numpy as np

from .commands import Command, Vocabulary
from .contract import ModelInfo
from .params import ParamTable


@runtime_checkable
class Controls(Protocol):
    """What OSC, MIDI, the keyboard and presets drive (see the module's docstring)."""

    info: ModelInfo
    table: ParamTable
    vocabulary: Vocabulary

    @property
    def values(self) -> Mapping[str, float]:
        """Every parameter's current value, by id."""

    @property
    def model_source(self) -> str:
        """Where the playing model was loaded from (a path, or a description of an in-memory model)."""

    def status(self) -> dict:
        """The telemetry table's values (:mod:`instrument.telemetry`)."""

    def recent_clip(self) -> tuple[int, np.ndarray] | None:
        """The clip that began sounding last (a voice's or the layer's) and the sample it began at."""

    def now(self) -> int:
        """The mixer's clock: the next sample to be rendered."""

    def sample_at(self, unix_time: float) -> int:
        """The engine sample that reaches the speakers at ``unix_time`` (``time.time()`` clock)."""

    def post(self, command: Command, at: int | None = None) -> None:
        """Queue a command made by :attr:`vocabulary` for sample ``at`` (None: as soon as possible)."""

    def set(self, pid: str, value: object, at: int | None = None) -> float:
        """Set one parameter; returns the value it will take. Raises ``ParamError`` when refused."""

    def set_values(self, values: dict[str, object], at: int | None = None) -> dict[str, float]:
        """Set several parameters at one sample, exactly as given (a preset); all or none."""

    def set_mix(self, weights: dict[str, float] | list[float] | np.ndarray, at: int | None = None) -> None:
        """Set every category's weight at once (and switch ``mix_mode`` to weights)."""

    def morph(self, x: float, y: float, at: int | None = None) -> None:
        """Move the XY pad (and switch ``mix_mode`` to xy)."""

    def ramp(self, pid: str, to: float, seconds: float, start: float | None = None, at: int | None = None) -> None:
        """Move one parameter to ``to`` over ``seconds`` (from ``start``, or from its value then)."""

    def morph_path(self, points: list[tuple[float, float]], seconds: float, at: int | None = None) -> None:
        """Move the XY pad along ``points`` over ``seconds``."""

    def set_latent(self, z: list[float] | np.ndarray | None, at: int | None = None) -> None:
        """Replace the seed's base latent (None: back to the seed's)."""

    def trigger(self, category: str | int | None = None, velocity: float = 1.0, pitch: float = 0.0,
                at: int | None = None) -> None:
        """A one-shot gesture of ``category`` (or of the current mix when None)."""

    def note_on(self, note: int, velocity: float = 1.0, category: str | int | None = None, root: int = 60,
                at: int | None = None, channel: int | None = None, timbre: float = 0.0) -> None:
        """A gesture held by a key (sustained until :meth:`note_off`), pitched from ``root``; with ``channel``
        an MPE voice that follows that channel's :meth:`expression`, ``timbre`` (-1..1) moving its latent."""

    def note_off(self, note: int, at: int | None = None, channel: int | None = None) -> None:
        """Release ``note`` (of every channel, or of MPE ``channel`` only)."""

    def expression(self, channel: int, bend: float | None = None, pressure: float | None = None, at: int | None = None) -> None:
        """Per-note expression (MPE) for the voices of ``channel``: ``bend`` semitones, ``pressure`` 0..1."""

    def all_notes_off(self, at: int | None = None) -> None:
        """Release every held note."""

    def load_model(self, path: str | Path, on_done: Callable[[str | None], None] | None = None) -> None:
        """Swap in another model without a gap; ``on_done(None)`` or ``on_done(error message)`` after."""

    def start_recording(self, path: str | Path) -> None:
        """Record the output to a WAV."""

    def stop_recording(self) -> tuple[str, float] | None:
        """Stop recording: ``(path, seconds)``, or None when none was running."""

    def listen(self, *, block: Callable[[np.ndarray, int], None] | None = None,
               event: Callable[[int, Command, float], None] | None = None) -> Callable[[], None]:
        """Watch rendered blocks and applied commands; returns the function that stops watching."""
