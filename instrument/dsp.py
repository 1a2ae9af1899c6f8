"""Block DSP for the mixer: parameter smoothing, equal-power crossfades, resampled playback, and the
output safety chain. Everything works on whole blocks with numpy (no per-sample Python loops). A
stateful piece gives the same samples for the same sequence of block sizes, not for any cutting of a
span into blocks: the live and offline paths use the same block size (see :mod:`instrument.engine`),
which is what keeps them sample-exact.
"""

from __future__ import annotations

import math

import numpy as np


def db_to_gain(db: float) -> float:
    return 0.0 if db <= -120 else 10.0 ** (db / 20.0)


class Smoother:
    """A value that glides linearly to each new target over ``seconds`` (no zipper noise).

    :meth:`block` returns the next ``n`` values (a float when steady, an array while moving)."""

    def __init__(self, value: float, seconds: float, sample_rate: int) -> None:
        self.value = float(value)
        self.target = float(value)
        self.samples = max(1, int(round(seconds * sample_rate)))
        self._step = 0.0

    def set(self, target: float) -> None:
        self.target = float(target)
        self._step = (self.target - self.value) / self.samples

    def block(self, n: int) -> float | np.ndarray:
        if self.value == self.target:
            return self.value
        ramp = self.value + self._step * np.arange(1, n + 1, dtype=np.float64)
        ramp = np.minimum(ramp, self.target) if self._step > 0 else np.maximum(ramp, self.target)
        self.value = float(ramp[-1])
        return ramp.astype(np.float32)


def equal_power(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fade-out and fade-in gains for crossfade positions ``t`` in [0, 1]: cos and sin of t*pi/2, so
    ``out**2 + in**2 == 1`` (constant power for uncorrelated signals)."""
    a = np.clip(t, 0.0, 1.0) * (math.pi / 2)
    return np.cos(a), np.sin(a)


def read_resampled(clip: np.ndarray, pos: float, ratio: float, n: int) -> tuple[np.ndarray, float]:
    """``n`` samples of ``clip`` from position ``pos`` stepping ``ratio`` (pitch = ratio), linearly
    interpolated; samples past the end are 0. Returns ``(samples, next position)``."""
    if ratio == 1.0 and float(pos).is_integer():
        i = int(pos)
        out = np.zeros(n, np.float32)
        seg = clip[i : i + n]
        out[: len(seg)] = seg
        return out, pos + n
    x = pos + ratio * np.arange(n, dtype=np.float64)
    i = np.floor(x).astype(np.int64)
    frac = (x - i).astype(np.float32)
    last = len(clip) - 1
    valid = i < last
    i0 = np.minimum(i, last)
    i1 = np.minimum(i + 1, last)
    out = clip[i0] * (1 - frac) + clip[i1] * frac
    out[~valid] = 0.0
    return out.astype(np.float32), pos + ratio * n


class SafetyChain:
    """Always last before the device: NaN/Inf -> 0, DC blocker, smoothed master gain, peak limiter,
    then a hard clip at the ceiling. **No sample leaves above the ceiling**, whatever comes in.

    The limiter computes, per block, the gain that keeps the block's peak under the ceiling; it falls
    to that gain within ``attack_s`` and recovers with ``release_s``. The hard clip catches what the
    attack ramp lets through.
    """

    def __init__(self, sample_rate: int, ceiling_db: float = -0.3, gain_db: float = 0.0, dc_hz: float = 10.0,
                 gain_smoothing_s: float = 0.05, attack_s: float = 0.001, release_s: float = 0.25) -> None:
        self.sample_rate = sample_rate
        self.ceiling = db_to_gain(ceiling_db)
        self.gain = Smoother(db_to_gain(gain_db), gain_smoothing_s, sample_rate)
        self.r = math.exp(-2 * math.pi * dc_hz / sample_rate)  # one-pole DC blocker y = x - x1 + r*y1
        self._x1 = 0.0
        self._y1 = 0.0
        self._rk: dict[int, np.ndarray] = {}
        self.attack = max(1, int(attack_s * sample_rate))
        self.release_per_sample = math.exp(-1.0 / (release_s * sample_rate))
        self.limiter_gain = 1.0
        self.nonfinite_samples = 0  # read by telemetry
        self.limited_blocks = 0

    def set_ceiling_db(self, db: float) -> None:
        self.ceiling = db_to_gain(db)

    def set_gain_db(self, db: float) -> None:
        self.gain.set(db_to_gain(db))

    def _dc_block(self, x: np.ndarray) -> np.ndarray:
        """``y[n] = x[n] - x[n-1] + r y[n-1]`` for a whole block, solved in closed form in float64:
        ``y[n] = r^(n+1) y[-1] + sum_k r^(n-k) d[k]`` with ``d = diff(x)``, in chunks short enough that
        ``r^-k`` stays well inside float64."""
        out = np.empty(len(x), np.float64)
        for s in range(0, len(x), 1024):
            seg = x[s : s + 1024].astype(np.float64)
            m = len(seg)
            rk = self._powers(m)
            d = np.empty(m)
            d[0] = seg[0] - self._x1
            np.subtract(seg[1:], seg[:-1], out=d[1:])
            y = rk * (self.r * self._y1 + np.cumsum(d / rk))
            out[s : s + m] = y
            self._x1, self._y1 = float(seg[-1]), float(y[-1])
        return out

    def _powers(self, m: int) -> np.ndarray:
        """``r ** arange(m)``, cached per block length."""
        rk = self._rk.get(m)
        if rk is None:
            rk = self._rk[m] = self.r ** np.arange(m, dtype=np.float64)
        return rk

    def process(self, block: np.ndarray) -> np.ndarray:
        """``block : [n]`` float32 mono -> the safe block (a new array)."""
        bad = ~np.isfinite(block)
        if bad.any():
            self.nonfinite_samples += int(bad.sum())
            block = np.where(bad, 0.0, block).astype(np.float32)
        if not (math.isfinite(self._x1) and math.isfinite(self._y1)):
            self._x1 = self._y1 = 0.0
        y = self._dc_block(block)
        y *= self.gain.block(len(y))
        peak = float(np.max(np.abs(y))) if len(y) else 0.0
        g0 = self.limiter_gain
        need = min(1.0, self.ceiling / peak) if peak > 0 else 1.0
        n = len(y)
        if need < g0:  # attack: ramp down to the needed gain within `attack` samples
            self.limited_blocks += 1
            ramp = np.full(n, need)
            m = min(n, self.attack)
            ramp[:m] = g0 + (need - g0) * np.arange(1, m + 1) / m
            self.limiter_gain = need
        else:  # release: recover exponentially toward 1, never above what this block allows
            ramp = 1.0 - (1.0 - g0) * self.release_per_sample ** np.arange(1, n + 1)
            ramp = np.minimum(ramp, need)
            self.limiter_gain = float(ramp[-1]) if n else g0
        y *= ramp
        out = y.astype(np.float32)
        c = np.float32(self.ceiling)
        if c > self.ceiling:  # float32 rounding must not lift the ceiling
            c = np.nextafter(c, np.float32(0))
        np.clip(out, -c, c, out=out)
        return out
