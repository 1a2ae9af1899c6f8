"""Voices: one-shot voices for triggers and notes, and the continuous layer.

A :class:`Voice` plays one clip once: pitch by resampling (``ratio`` = 2^(semitones/12)), a gain from
velocity, a linear attack, and a linear release on note-off or when stolen (quickly, ``STEAL_S``). An MPE
voice also follows its channel's expression: a pitch bend and a pressure level (:meth:`Voice.express`).

The :class:`Layer` always has something to play once started: new clips come in with an equal-power
crossfade from whatever is playing; when the playing clip nears its end and nothing new has come,
it crossfades into its own beginning (a loop), so a late clip is covered by the last good one, never
by silence.
"""

from __future__ import annotations

import itertools

import numpy as np

from .commands import PRESSURE_RANGE_DB, Expression
from .dsp import db_to_gain, equal_power, read_resampled

STEAL_S = 0.005  # a stolen voice fades out this fast: quick, but not a click
END_FADE_S = 0.002  # every clip's last samples fade to 0 (applied once, when the clip arrives)

_ids = itertools.count(1)


def pitch_ratio(semitones: float) -> float:
    return float(2.0 ** (semitones / 12.0))


class Voice:
    def __init__(self, clip: np.ndarray, ratio: float, gain: float, attack_n: int, release_n: int,
                 note: int | None = None, started_at: int = 0, channel: int | None = None) -> None:
        self.id = next(_ids)
        self.clip, self.ratio, self.gain = clip, ratio, gain
        self.attack_n, self.release_n = max(1, attack_n), max(1, release_n)
        self.note, self.channel = note, channel
        self.started_at = started_at
        # per-note expression (MPE): a pitch ratio on top of ``ratio`` (a block at a time) and a level that
        # glides to its target over each block, so pressure never clicks
        self.bend_ratio = 1.0
        self.expression_gain = 1.0
        self._expression_now = 1.0
        self.pos = 0.0
        self.level = 0.0  # envelope level now
        self.releasing = False
        self._release_step = 0.0
        self.done = False

    def release(self, samples: int | None = None) -> None:
        if not self.releasing:
            self.releasing = True
            self._release_step = max(self.level, 1e-6) / max(1, samples if samples is not None else self.release_n)

    @property
    def loudness(self) -> float:
        """How loud the voice is now: gain x envelope x pressure x the clip's RMS around the play position (only
        computed when a voice must be stolen)."""
        i = int(self.pos)
        seg = self.clip[i : i + 1024]
        rms = float(np.sqrt(np.mean(seg * seg))) if len(seg) else 0.0
        return self.gain * self.level * self.expression_gain * (rms + 1e-9)

    def express(self, bend_ratio: float, gain: float, at_once: bool = False) -> None:
        """The channel's expression: pitch ratio ``bend_ratio`` from the next block, level ``gain`` glided to
        over the next block (``at_once``: from the first sample, for a voice that has not sounded yet)."""
        self.bend_ratio, self.expression_gain = bend_ratio, gain
        if at_once:
            self._expression_now = gain

    def render(self, n: int) -> np.ndarray:
        audio, self.pos = read_resampled(self.clip, self.pos, self.ratio * self.bend_ratio, n)
        if self._expression_now != self.expression_gain or self.expression_gain != 1.0:
            g0, g1 = self._expression_now, self.expression_gain
            audio *= (g0 + (g1 - g0) * np.arange(1, n + 1, dtype=np.float32) / max(1, n)) if g0 != g1 else np.float32(g1)
            self._expression_now = g1
        if self.releasing:
            env = self.level - self._release_step * np.arange(1, n + 1, dtype=np.float32)
            np.maximum(env, 0.0, out=env)
            self.level = float(env[-1]) if n else self.level
            audio *= env
        elif self.level < 1.0:
            env = np.minimum(self.level + np.arange(1, n + 1, dtype=np.float32) / self.attack_n, 1.0)
            self.level = float(env[-1]) if n else self.level
            audio *= env
        audio *= np.float32(self.gain)
        if (self.releasing and self.level <= 0.0) or self.pos >= len(self.clip) - 1:
            self.done = True
        return audio


class Expressions:
    """Each MIDI channel's per-note expression (MPE): its last bend and pressure, as the ratio and level the
    core (:mod:`instrument.core`) applies to the voices of that channel as it changes and to a voice of it as
    it starts (a bend before the note-on counts)."""

    def __init__(self) -> None:
        self._by_channel: dict[int, tuple[float, float]] = {}  # channel -> (bend semitones, pressure 0..1)

    @staticmethod
    def _targets(bend: float, pressure: float) -> tuple[float, float]:
        return pitch_ratio(bend), db_to_gain(-PRESSURE_RANGE_DB * (1.0 - pressure))

    def apply(self, command: Expression) -> tuple[float, float]:
        """Take the channel's new bend and/or pressure; returns the channel's (bend ratio, level) targets."""
        bend, pressure = self._by_channel.get(command.channel, (0.0, 1.0))
        bend = bend if command.bend is None else command.bend
        pressure = pressure if command.pressure is None else command.pressure
        self._by_channel[command.channel] = (bend, pressure)
        return self._targets(bend, pressure)


class Layer:
    """The continuous layer: one clip at a time, equal-power crossfades between clips."""

    def __init__(self) -> None:
        self.clip: np.ndarray | None = None
        self.key: bytes | None = None
        self.pos = 0.0
        self._old: np.ndarray | None = None  # the clip fading out (None: fading in from silence)
        self._old_pos = 0.0
        self._fade_t = 0  # samples into the crossfade
        self._fade_n = 0  # crossfade length; 0 = not fading
        self.crossfades = 0
        self.loops = 0

    @property
    def active(self) -> bool:
        return self.clip is not None

    @property
    def fading(self) -> bool:
        return self._fade_n > 0

    def offer(self, clip: np.ndarray, key: bytes | None, crossfade_n: int) -> None:
        """Crossfade (equal power, ``crossfade_n`` samples) from what plays now into ``clip`` from its start."""
        if self.clip is not None and clip is self.clip and key == self.key:
            self.loops += 1
        else:
            self.crossfades += 1
        self._fade_to(clip, key, crossfade_n)

    def stop(self, crossfade_n: int) -> None:
        """Fade out to silence."""
        if self.clip is not None:
            self._fade_to(None, None, crossfade_n)

    def _fade_to(self, clip: np.ndarray | None, key: bytes | None, crossfade_n: int) -> None:
        self._old, self._old_pos = self.clip, self.pos
        self.clip, self.key, self.pos = clip, key, 0.0
        self._fade_t, self._fade_n = 0, max(1, crossfade_n)

    def remaining(self, ratio: float) -> float:
        """Output samples left in the playing clip at pitch ``ratio``."""
        if self.clip is None:
            return float("inf")
        return (len(self.clip) - 1 - self.pos) / ratio

    def render(self, n: int, ratio: float) -> np.ndarray:
        if self.clip is not None:
            new, self.pos = read_resampled(self.clip, self.pos, ratio, n)
        else:
            new = np.zeros(n, np.float32)
        if self._fade_n:
            if self._old is not None:
                old, self._old_pos = read_resampled(self._old, self._old_pos, ratio, n)
            else:
                old = np.zeros(n, np.float32)
            t = (self._fade_t + np.arange(1, n + 1, dtype=np.float64)) / self._fade_n
            g_out, g_in = equal_power(t)
            new = (old * g_out + new * g_in).astype(np.float32)
            self._fade_t += n
            if self._fade_t >= self._fade_n:
                self._fade_n, self._old = 0, None
        return new
