"""The mixer's real-time core: what must react within a block, behind one small interface of timed
operations. Two implementations with the same behaviour:

- :class:`~instrument.ccore.CCore`, C (``instrument/core.c``, compiled once per machine with the system's C
  compiler and loaded with cffi): it runs **inside PortAudio's callback without the Python interpreter**,
  so no garbage collection, GIL or busy thread can make it late; the Python side feeds it through
  lock-free single-producer/single-consumer queues. Offline rendering calls the same C code.
- :class:`PyCore`, numpy (this module): the reference, and the fallback where no C compiler is found
  (then the live engine renders ahead into a ring buffer as before, :mod:`instrument.engine`).

The core owns the voices, the layer, the voices/layer gains, the layer's pitch glide and the safety chain
(:class:`~instrument.dsp.SafetyChain`: NaN/Inf -> 0, DC blocker, smoothed gain, limiter, ceiling). Python
(:mod:`instrument.mixer`) keeps the parameters, the schedule, the latents and the clips; it tells the core
what to do with operations stamped with a sample time (``ASAP``: at the start of the next block):

==================  ==========================================================================================
``start_voice``     a one-shot voice of a clip (pitch ratio, gain, attack, release, note, MIDI channel); the core
                    steals the quietest voice beyond ``poly`` and drops the oldest tail beyond ``4 * poly``
``release``         the voices of a note (on a channel, or any: ``-1``), or all of them (note ``-1``)
``express``         a MIDI channel's bend ratio and pressure gain (MPE), for its voices now and later
``set``             a target: ``VOICES_GAIN``, ``LAYER_GAIN`` (linear; glided), ``PITCH`` (semitones, glided: the
                    layer follows it), ``GAIN`` (master, linear, glided), ``CEILING`` (linear), ``XFADE`` (samples)
``layer_want``      crossfade into this clip as soon as no crossfade is running (a newer one replaces it)
``layer_next``      crossfade into this clip when the playing one nears its end (else the clip loops into itself)
``layer_stop``      fade the layer out
==================  ==========================================================================================

Operations cross from Python to the C core through a queue of 4,096: when it is full the newest is dropped and
counted (``dropped_ops``), never waited for; the core takes at most 256 a block from it.

A block: the layer's end-of-clip check at its first sample, then the operations due in it in time order
(at most ``MAX_OPS_PER_BLOCK``; later ones wait a block, counted), each at its sample (the block is cut there),
then the safety chain on the whole block. The same operations and the same block sizes give the same
samples (float rounding aside between the two implementations).
"""

from __future__ import annotations

import numpy as np

from .dsp import SafetyChain, Smoother
from .voices import Layer, Voice, pitch_ratio

ASAP = -1
VOICES_GAIN, LAYER_GAIN, PITCH, GAIN, CEILING, XFADE = range(6)
MAX_OPS_PER_BLOCK = 64
MAX_VOICES = 160  # 4 x the largest polyphony (32) plus room
RMS_WINDOW = 1024  # a voice's loudness (for stealing): its clip's RMS over this many samples from where it plays


class PyCore:
    """The numpy core. ``smoothing``: samples over which VOICES_GAIN, LAYER_GAIN, PITCH, GAIN glide."""

    kind = "python"

    def __init__(self, sample_rate: int, channels: int, block_frames: int, *, voices_gain: float, layer_gain: float,
                 pitch: float, gain_db: float, ceiling_db: float, smoothing_s: tuple[float, float, float], xfade: int) -> None:
        self.sample_rate, self.channels, self.block_frames = sample_rate, channels, block_frames
        self.t = 0
        self.voices: list[Voice] = []
        self.layer = Layer()
        self.safety = SafetyChain(sample_rate, ceiling_db, gain_db)
        self._voices_gain = Smoother(voices_gain, smoothing_s[0], sample_rate)
        self._layer_gain = Smoother(layer_gain, smoothing_s[1], sample_rate)
        self._pitch = Smoother(pitch, smoothing_s[2], sample_rate)
        self.xfade = max(1, xfade)
        self._new: list[tuple[int, int, str, tuple]] = []  # operations pushed since the last block
        self._pending: list[tuple[int, int, str, tuple]] = []  # (sample, order, what, arguments) waiting for their block
        self._seq = 0
        self._want: tuple[np.ndarray, int] | None = None  # (clip, serial) waiting for the running crossfade
        self._next: tuple[np.ndarray, int] | None = None  # (clip, serial) for the end of the playing clip
        self._expr: dict[int, tuple[float, float]] = {}
        self.meter = 0.0
        self._meter_decay = 0.1 ** (1.0 / (1.5 * sample_rate))
        self.recent: tuple[int, np.ndarray] | None = None
        self.stolen = self.late_ops = self.deferred_ops = self.started = 0
        self.layer_serial = 0  # the serial of the layer clip playing (0: none), as given with layer_want / layer_next

    # --- operations (the owner's thread) ------------------------------------------------------------------
    def _op(self, at: int, name: str, *args) -> None:
        self._new.append((at, self._seq, name, args))
        self._seq += 1

    def start_voice(self, at: int, clip: np.ndarray, ratio: float, gain: float, attack_n: int, release_n: int,
                    note: int, channel: int, poly: int, steal_n: int) -> None:
        self._op(at, "_start", clip, ratio, gain, attack_n, release_n, note, channel, poly, steal_n)

    def release(self, at: int, note: int = -1, channel: int = -1) -> None:
        self._op(at, "_release", note, channel)

    def express(self, at: int, channel: int, ratio: float, gain: float) -> None:
        self._op(at, "_express", channel, ratio, gain)

    def set(self, at: int, what: int, value: float) -> None:
        self._op(at, "_set", what, value)

    def layer_want(self, at: int, clip: np.ndarray, serial: int) -> None:
        self._op(at, "_layer_want", clip, serial)

    def layer_next(self, at: int, clip: np.ndarray, serial: int) -> None:
        self._op(at, "_layer_next", clip, serial)

    def layer_stop(self, at: int) -> None:
        self._op(at, "_layer_stop")

    # --- what the operations do ---------------------------------------------------------------------------
    def _start(self, at, clip, ratio, gain, attack_n, release_n, note, channel, poly, steal_n) -> None:
        sounding = [vc for vc in self.voices if not vc.releasing]
        while len(sounding) >= poly:  # steal the quietest, quickly but without a click
            victim = min(sounding, key=lambda vc: vc.loudness)
            victim.release(steal_n)
            sounding.remove(victim)
            self.stolen += 1
        if len(self.voices) >= min(4 * poly, MAX_VOICES):  # release tails pile up under fast triggering: drop the oldest tail
            self.voices.remove(min((vc for vc in self.voices if vc.releasing), key=lambda vc: vc.started_at, default=self.voices[0]))
        vc = Voice(clip, ratio, gain, attack_n, release_n, None if note < 0 else note, at, None if channel < 0 else channel)
        if channel in self._expr:
            vc.express(*self._expr[channel], at_once=True)
        self.voices.append(vc)
        self.recent = (at, clip)
        self.started += 1

    def _release(self, at, note, channel) -> None:
        for vc in self.voices:
            if note < 0 or (vc.note == note and (channel < 0 or vc.channel == channel)):
                vc.release()

    def _express(self, at, channel, ratio, gain) -> None:
        self._expr[channel] = (ratio, gain)
        for vc in self.voices:
            if vc.channel == channel:
                vc.express(ratio, gain)

    def _set(self, at, what, value) -> None:
        if what == VOICES_GAIN:
            self._voices_gain.set(value)
        elif what == LAYER_GAIN:
            self._layer_gain.set(value)
        elif what == PITCH:
            self._pitch.set(value)
        elif what == GAIN:
            self.safety.gain.set(value)
        elif what == CEILING:
            self.safety.ceiling = value
        elif what == XFADE:
            self.xfade = max(1, int(value))

    def _layer_want(self, at, clip, serial) -> None:
        self._want = (clip, serial)
        self._next = None  # a neighbour of what played before: stale
        self._layer_check(at)

    def _layer_next(self, at, clip, serial) -> None:
        self._next = (clip, serial)

    def _layer_stop(self, at) -> None:
        self._want = self._next = None
        self.layer_serial = 0
        self.layer.stop(self.xfade)

    def _layer_check(self, at: int) -> None:
        if self._want is not None and not self.layer.fading:
            (clip, self.layer_serial), self._want = self._want, None
            self.layer.offer(clip, None, self.xfade)
            self.recent = (at, clip)

    def _layer_auto(self, at: int) -> None:
        """At a block's first sample: a wanted clip whose turn has come, or the end of the playing clip near."""
        self._layer_check(at)
        lay = self.layer
        if lay.fading or not lay.active or lay.remaining(pitch_ratio(self._pitch.value)) > self.xfade + self.block_frames:
            return
        if self._next is not None:
            (clip, self.layer_serial), self._next = self._next, None
            lay.offer(clip, None, self.xfade)
            self.recent = (at, clip)
        else:  # loop mode, no drift, or the next clip is late: cover with the one playing
            lay.offer(lay.clip, lay.key, self.xfade)

    # --- rendering ----------------------------------------------------------------------------------------
    def _span(self, out: np.ndarray, start: int, stop: int) -> None:
        n = stop - start
        if n <= 0:
            return
        ratio_now = pitch_ratio(self._pitch.value)
        self._pitch.block(n)
        acc = np.zeros(n, np.float32)
        for vc in self.voices:  # a voice keeps the pitch it started with; the layer follows the pitch glide
            acc += vc.render(n)
        self.voices = [vc for vc in self.voices if not vc.done]
        acc *= self._voices_gain.block(n)
        if self.layer.active or self.layer.fading:
            acc += self.layer.render(n, ratio_now) * self._layer_gain.block(n)
        out[start:stop] = acc

    def render(self, n: int) -> np.ndarray:
        """The next ``n`` samples, ``[n, channels]`` float32."""
        t0, end = self.t, self.t + n
        for at, seq, name, args in self._new:  # as soon as possible, or late: the block's first sample
            self.late_ops += at != ASAP and at < t0
            self._pending.append((max(at, t0), seq, name, args))
        self._new = []
        self._layer_auto(t0)
        self._pending.sort(key=lambda p: p[:2])
        due = sum(p[0] < end for p in self._pending)
        take, self._pending = self._pending[:min(due, MAX_OPS_PER_BLOCK)], self._pending[min(due, MAX_OPS_PER_BLOCK):]
        self.deferred_ops += due - len(take)  # they keep their place: first in the next block
        mono = np.zeros(n, np.float32)
        pos = 0
        for at, _seq, name, args in take:
            at = max(at, t0 + pos)
            self._span(mono, pos, at - t0)
            pos = at - t0
            getattr(self, name)(at, *args)
        self._span(mono, pos, n)
        safe = self.safety.process(mono)
        peak = float(np.max(np.abs(safe))) if n else 0.0
        self.meter = max(peak, self.meter * self._meter_decay ** n)  # a peak meter falling 20 dB in 1.5 s
        self.t = end
        return np.repeat(safe[:, None], self.channels, axis=1) if self.channels > 1 else safe[:, None]

    def render_blocks(self, out: np.ndarray, block: int) -> int:
        """Consecutive blocks into ``out``, stopping after one in which the layer moved on (as the C core)."""
        serial, k = self.layer_serial, 0
        while k < len(out) // block:
            out[k * block:(k + 1) * block] = self.render(block)
            k += 1
            if self.layer_serial != serial:
                break
        return k

    # --- state (any thread may read; a snapshot) ----------------------------------------------------------
    def state(self) -> dict:
        return {"voices": len(self.voices), "layer_active": self.layer.active, "layer_fading": self.layer.fading,
                "layer_loops": self.layer.loops, "layer_crossfades": self.layer.crossfades, "layer_serial": self.layer_serial,
                "stolen": self.stolen, "nonfinite": self.safety.nonfinite_samples, "limited_blocks": self.safety.limited_blocks,
                "late_ops": self.late_ops, "deferred_ops": self.deferred_ops, "meter": self.meter, "started": self.started}

    def voice_views(self) -> list[Voice]:
        return list(self.voices)

    def collect(self) -> None:
        """Let go of clips the core no longer plays (numpy: nothing to do)."""

    def close(self) -> None:
        self._pending.clear()
        self._new.clear()
