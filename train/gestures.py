"""The gesture recipes of the built-in corpus: procedural sounds of the four gesture categories.

Each recipe is ``recipe(rng, n_samples, sample_rate) -> (audio, params)``: one seeded sound and the
parameters it drew, so a file's content depends only on its generator. Each category has several
recipes with wide parameter ranges, so a GAN has variety to learn while every file stays true to its
category's definition (DESIGN.md):

* trigger: plucks, pitched drums, filtered noise clicks, wood/metal ticks; energy front-loaded, decays
  in tens to hundreds of milliseconds.
* trigger_continuous: bells, plates, bowed attacks that sustain, resonators fed by small later grains;
  a clear initial peak and energy that keeps going to the end.
* continuous_variation: swells, glides, moving noise bands (wind); intensity varies, no initial peak.
* continuous_repetition: tremolo, rolls, pulse trains through resonators, loops, drones with periodic
  pitch motion; periodic amplitude or pitch.

:mod:`train.corpus` writes a corpus of them to disk.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np


Recipe = Callable[[np.random.Generator, int, int], tuple[np.ndarray, dict]]


# ----------------------------------------------------------------------------- building blocks


def _loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _modes(t: np.ndarray, freqs, amps, decays, rng: np.random.Generator) -> np.ndarray:
    """Sum of exponentially damped sines: ``sum_k a_k exp(-t/tau_k) sin(2 pi f_k t + phi_k)``."""
    f = np.asarray(freqs, dtype=np.float64)[:, None]
    a = np.asarray(amps, dtype=np.float64)[:, None]
    d = np.asarray(decays, dtype=np.float64)[:, None]
    phase = rng.uniform(0, 2 * np.pi, size=(len(f), 1))
    return (a * np.exp(-t[None] / d) * np.sin(2 * np.pi * f * t[None] + phase)).sum(axis=0)


def _bandpass(x: np.ndarray, sr: int, lo_hz: float, hi_hz: float) -> np.ndarray:
    """Zero-phase band-pass by a smooth (raised-cosine edged) FFT mask."""
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1.0 / sr)
    edge = 0.25
    mask = np.clip((np.log(f + 1e-9) - math.log(lo_hz * (1 - edge))) / math.log(1 / (1 - edge)), 0, 1)
    mask *= np.clip((math.log(hi_hz * (1 + edge)) - np.log(f + 1e-9)) / math.log(1 + edge), 0, 1)
    return np.fft.irfft(spec * mask, n=len(x))


def _smooth_curve(rng: np.random.Generator, n: int, points: int, lo: float, hi: float) -> np.ndarray:
    """A smooth random curve of ``n`` samples through ``points`` random values in [lo, hi]."""
    knots = rng.uniform(lo, hi, size=points)
    pos = np.linspace(0, points - 1, n)
    i = np.minimum(pos.astype(int), points - 2)
    w = pos - i
    w = 0.5 - 0.5 * np.cos(np.pi * w)  # cosine interpolation: no corners in the envelope
    return knots[i] * (1 - w) + knots[i + 1] * w


def _phase(freq_hz: np.ndarray, sr: int) -> np.ndarray:
    return 2 * np.pi * np.cumsum(freq_hz) / sr


def _harmonic(phase: np.ndarray, n_harm: int, tilt: float, rng: np.random.Generator) -> np.ndarray:
    k = np.arange(1, n_harm + 1)[:, None]
    amps = (1.0 / k**tilt) * rng.uniform(0.5, 1.0, size=(n_harm, 1))
    return (amps * np.sin(k * phase[None] + rng.uniform(0, 2 * np.pi, size=(n_harm, 1)))).sum(axis=0)


def _convolve(x: np.ndarray, ir: np.ndarray) -> np.ndarray:
    n = len(x) + len(ir) - 1
    size = 1 << (n - 1).bit_length()
    return np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(ir, size), size)[: len(x)]


def _delay(x: np.ndarray, rng: np.random.Generator, sr: int, max_seconds: float) -> np.ndarray:
    d = int(rng.uniform(0, max_seconds) * sr)
    return np.concatenate([np.zeros(d), x[: len(x) - d]]) if d else x


# ----------------------------------------------------------------------------- trigger


def pluck(rng, n, sr):
    t = np.arange(n) / sr
    f0 = _loguniform(rng, 70, 1000)
    n_h = int(max(1, min(24, (sr / 2 - 100) // f0)))
    k = np.arange(1, n_h + 1)
    inharm = rng.uniform(0, 0.002)
    tau0 = _loguniform(rng, 0.06, 0.35)
    x = _modes(t, f0 * k * np.sqrt(1 + inharm * k**2), rng.uniform(0.3, 1, n_h) / k ** rng.uniform(0.6, 1.6),
               tau0 / (1 + 0.3 * k), rng)
    x *= np.minimum(t / 0.002, 1)
    return _delay(x, rng, sr, 0.02), {"f0_hz": f0, "decay_s": tau0}


def drum(rng, n, sr):
    t = np.arange(n) / sr
    f_hi, f_lo = _loguniform(rng, 120, 450), _loguniform(rng, 35, 110)
    sweep = _loguniform(rng, 0.01, 0.06)
    decay = _loguniform(rng, 0.05, 0.3)
    body = np.sin(_phase(f_lo + (f_hi - f_lo) * np.exp(-t / sweep), sr)) * np.exp(-t / decay)
    noise = _bandpass(rng.standard_normal(n), sr, 800, 7000) * np.exp(-t / _loguniform(rng, 0.005, 0.04))
    x = body + rng.uniform(0.05, 0.6) * noise / (np.abs(noise).max() + 1e-9)
    return _delay(x, rng, sr, 0.02), {"f_start_hz": f_hi, "f_end_hz": f_lo, "decay_s": decay}


def noise_click(rng, n, sr):
    t = np.arange(n) / sr
    centre = _loguniform(rng, 300, min(6000, sr * 0.4))
    width = rng.uniform(1.3, 3.0)
    decay = _loguniform(rng, 0.004, 0.06)
    x = _bandpass(rng.standard_normal(n) * np.exp(-t / decay), sr, centre / width, min(centre * width, sr * 0.48))
    return _delay(x, rng, sr, 0.02), {"centre_hz": centre, "decay_s": decay}


def tick(rng, n, sr):
    t = np.arange(n) / sr
    f = _loguniform(rng, 500, min(4000, sr * 0.4)) * np.array([1.0, *rng.uniform(1.3, 4.5, size=rng.integers(1, 4))])
    f = np.minimum(f, sr * 0.45)
    decay = _loguniform(rng, 0.015, 0.12)
    x = _modes(t, f, rng.uniform(0.3, 1, len(f)), decay / np.arange(1, len(f) + 1) ** 0.5, rng)
    return _delay(x * np.minimum(t / 0.0005, 1), rng, sr, 0.02), {"f_hz": f[0], "decay_s": decay}


# ----------------------------------------------------------------------------- trigger_continuous

_BELL_RATIOS = np.array([0.5, 1.0, 1.19, 1.5, 2.0, 2.51, 2.66, 3.01, 4.1, 5.43])


def bell(rng, n, sr):
    t = np.arange(n) / sr
    f0 = _loguniform(rng, 150, 900)
    ratios = _BELL_RATIOS * rng.uniform(0.97, 1.03, size=len(_BELL_RATIOS))
    freqs = f0 * ratios
    keep = freqs < sr * 0.45
    long = _loguniform(rng, 1.5, 5.0)
    x = _modes(t, freqs[keep], rng.uniform(0.2, 1, keep.sum()), long / ratios[keep] ** 0.7, rng)
    strike = _bandpass(rng.standard_normal(n), sr, 1000, sr * 0.45) * np.exp(-t / 0.004) * 0.3
    return x + strike * np.abs(x).max(), {"f0_hz": f0, "decay_s": long}


def plate(rng, n, sr):
    t = np.arange(n) / sr
    m = int(rng.integers(20, 45))
    freqs = np.sort(np.exp(rng.uniform(math.log(90), math.log(sr * 0.4), size=m)))
    long = _loguniform(rng, 1.2, 4.0)
    x = _modes(t, freqs, rng.uniform(0.1, 1, m) / (freqs / freqs[0]) ** 0.3, long * (freqs[0] / freqs) ** 0.4, rng)
    return x, {"modes": m, "decay_s": long}


def bowed(rng, n, sr):
    t = np.arange(n) / sr
    f0 = _loguniform(rng, 80, 700)
    vib = 1 + rng.uniform(0.002, 0.01) * np.sin(2 * np.pi * rng.uniform(4, 6.5) * t) * np.minimum(t / 0.3, 1)
    n_h = int(max(1, min(16, (sr / 2 - 100) // f0)))
    tone = _harmonic(_phase(f0 * vib, sr), n_h, rng.uniform(0.8, 1.4), rng)
    tone /= np.abs(tone).max() + 1e-9
    attack = _loguniform(rng, 0.02, 0.08)
    sustain = rng.uniform(0.3, 0.6)
    env = sustain + (1 - sustain) * np.exp(-t / attack)
    env *= np.minimum(t / 0.003, 1) * np.exp(-t / rng.uniform(3, 10))
    scratch = _bandpass(rng.standard_normal(n), sr, 1500, sr * 0.45) * np.exp(-t / attack) * 0.4
    return tone * env + scratch, {"f0_hz": f0, "sustain": sustain}


def fed_resonator(rng, n, sr):
    t = np.arange(n) / sr
    m = int(rng.integers(3, 9))
    freqs = _loguniform(rng, 120, 900) * np.concatenate([[1.0], rng.uniform(1.2, 6.0, size=m - 1)])
    freqs = np.minimum(freqs, sr * 0.45)
    ir = _modes(t, freqs, rng.uniform(0.3, 1, m), np.full(m, _loguniform(rng, 0.2, 0.8)), rng)
    exc = np.zeros(n)
    exc[0] = 1.0
    grains = rng.integers(int(0.15 * sr), n, size=int(rng.integers(6, 20)))
    exc[grains] += rng.uniform(0.05, 0.2, size=len(grains)) * rng.choice([-1, 1], size=len(grains))
    return _convolve(exc, ir), {"modes": m, "grains": len(grains)}


# ----------------------------------------------------------------------------- continuous_variation


def _fade_in_out(n: int, sr: int, fade_in_seconds: float = 0.01) -> np.ndarray:
    ramp_in = max(1, min(n // 3, int(fade_in_seconds * sr)))
    ramp = max(1, min(n // 4, int(0.01 * sr)))
    env = np.ones(n)
    env[:ramp_in] = np.sin(np.linspace(0, np.pi / 2, ramp_in)) ** 2
    env[-ramp:] *= np.linspace(1, 0, ramp)
    return env


def swell(rng, n, sr):
    source = rng.choice(["tone", "noise"])
    if source == "tone":
        f0 = _loguniform(rng, 80, 800)
        x = _harmonic(_phase(np.full(n, f0), sr), int(max(1, min(10, (sr / 2 - 100) // f0))), 1.2, rng)
    else:
        c = _loguniform(rng, 300, 3000)
        x = _bandpass(rng.standard_normal(n), sr, c / 2, min(2 * c, sr * 0.45))
    swells = int(rng.integers(1, 3))
    env = np.zeros(n)
    pos = np.linspace(0, 1, n)
    for _ in range(swells):
        centre, width = rng.uniform(0.3, 0.75), rng.uniform(0.2, 0.45)
        env += np.exp(-0.5 * ((pos - centre) / (width / 2.5)) ** 2) * rng.uniform(0.5, 1)
    return x / (np.abs(x).max() + 1e-9) * env, {"source": str(source), "swells": swells}


def glide(rng, n, sr):
    f1, f2 = _loguniform(rng, 80, 1500), _loguniform(rng, 80, 1500)
    curve = rng.uniform(0.5, 2.0)
    pos = np.linspace(0, 1, n) ** curve
    f = f1 * (f2 / f1) ** pos
    n_h = int(max(1, min(8, (sr / 2 - 100) // max(f1, f2))))
    x = _harmonic(_phase(f, sr), n_h, rng.uniform(1, 2), rng)
    # a stream, not an attack: it fades in over a tenth to a third of a second
    env = _smooth_curve(rng, n, int(rng.integers(3, 6)), 0.15, 1.0) * _fade_in_out(n, sr, rng.uniform(0.1, 0.35))
    return x * env, {"f_start_hz": f1, "f_end_hz": f2}


def noise_band(rng, n, sr):
    """Noise through a band whose centre and level drift (wind, breath, evolving texture)."""
    frame, hop = 512, 128
    n_frames = n // hop + 4
    centre = np.exp(_smooth_curve(rng, n_frames, int(rng.integers(3, 7)), math.log(200), math.log(min(5000, sr * 0.35))))
    q = rng.uniform(0.15, 0.6)  # bandwidth in octaves-ish
    level = _smooth_curve(rng, n_frames, int(rng.integers(3, 7)), 0.1, 1.0)
    freqs = np.fft.rfftfreq(frame, 1.0 / sr)
    window = np.hanning(frame)
    out = np.zeros(n_frames * hop + frame)
    for i in range(n_frames):
        mag = np.exp(-0.5 * (np.log2((freqs + 1) / centre[i]) / q) ** 2) * level[i]
        spec = mag * np.exp(1j * rng.uniform(0, 2 * np.pi, size=len(freqs)))
        out[i * hop : i * hop + frame] += np.fft.irfft(spec, frame) * window
    x = out[2 * hop : 2 * hop + n]
    return x * _fade_in_out(n, sr, rng.uniform(0.1, 0.35)), {"bandwidth": q}


# ----------------------------------------------------------------------------- continuous_repetition


def _tone_or_noise(rng, n, sr) -> np.ndarray:
    if rng.random() < 0.6:
        f0 = _loguniform(rng, 80, 900)
        return _harmonic(_phase(np.full(n, f0), sr), int(max(1, min(8, (sr / 2 - 100) // f0))), 1.3, rng)
    c = _loguniform(rng, 300, 3000)
    return _bandpass(rng.standard_normal(n), sr, c / 1.5, min(1.5 * c, sr * 0.45))


def tremolo(rng, n, sr):
    t = np.arange(n) / sr
    rate, depth = rng.uniform(3, 12), rng.uniform(0.6, 1.0)
    x = _tone_or_noise(rng, n, sr)
    lfo = 1 - depth * (0.5 + 0.5 * np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi)))
    return x / (np.abs(x).max() + 1e-9) * lfo * _fade_in_out(n, sr), {"rate_hz": rate, "depth": depth}


def roll(rng, n, sr):
    rate = rng.uniform(8, 24)
    hit, _ = (drum if rng.random() < 0.5 else noise_click)(rng, int(sr / rate * 2), sr)
    hit = hit - hit.mean()
    x = np.zeros(n + len(hit))
    period = sr / rate
    accent = rng.uniform(0, 0.5)
    for i, start in enumerate(np.arange(0, n, period)):
        s = int(start + rng.normal(0, 0.004 * sr)) if i else 0
        s = max(0, s)
        x[s : s + len(hit)] += hit * (1 - accent * (i % 2))
    return x[:n], {"rate_hz": rate}


def pulse_train(rng, n, sr):
    t = np.arange(n) / sr
    rate = _loguniform(rng, 2, 40)
    exc = np.zeros(n)
    exc[(np.arange(0, n, sr / rate)).astype(int)] = 1.0
    m = int(rng.integers(2, 6))
    freqs = np.minimum(_loguniform(rng, 150, 2500) * np.concatenate([[1.0], rng.uniform(1.3, 4.0, size=m - 1)]), sr * 0.45)
    ir = _modes(t[: int(sr / rate)], freqs, rng.uniform(0.3, 1, m), np.full(m, 0.3 / rate), rng)
    return _convolve(exc, ir), {"rate_hz": rate, "modes": m}


def loop(rng, n, sr):
    grain_len = int(rng.uniform(0.06, 0.25) * sr)
    recipe = [glide, noise_band, swell][int(rng.integers(0, 3))]
    grain, _ = recipe(rng, grain_len, sr)
    fade = max(1, grain_len // 8)
    win = np.ones(grain_len)
    win[:fade] = np.linspace(0, 1, fade)
    win[-fade:] = np.linspace(1, 0, fade)
    g = grain * win
    step = grain_len - fade
    x = np.zeros(n + grain_len)
    for s in range(0, n, step):
        x[s : s + grain_len] += g
    return x[:n], {"grain_s": grain_len / sr, "source": recipe.__name__}


def drone_lfo(rng, n, sr):
    t = np.arange(n) / sr
    f0 = _loguniform(rng, 60, 500)
    rate, depth = rng.uniform(1.5, 8), rng.uniform(0.02, 0.12)
    f = f0 * (1 + depth * np.sin(2 * np.pi * rate * t))
    x = _harmonic(_phase(f, sr), int(max(1, min(12, (sr / 2 - 100) // (f0 * (1 + depth))))), 1.0, rng)
    am = 1 - 0.5 * (0.5 + 0.5 * np.sin(2 * np.pi * rate * t))
    return x * am * _fade_in_out(n, sr), {"f0_hz": f0, "rate_hz": rate}


RECIPES: dict[str, tuple[Recipe, ...]] = {
    "trigger": (pluck, drum, noise_click, tick),
    "trigger_continuous": (bell, plate, bowed, fed_resonator),
    "continuous_variation": (swell, glide, noise_band),
    "continuous_repetition": (tremolo, roll, pulse_train, loop, drone_lfo),
}
