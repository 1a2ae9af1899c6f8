"""The mixer: parameter state, the command schedule (:mod:`instrument.schedule`), voices, the layer and
the safety chain, rendered block by block. No threads: whoever owns it calls :meth:`Mixer.process_block` -- the live
engine's thread (:class:`instrument.engine.Engine`) or an offline render (:mod:`instrument.offline`).

Every command carries a sample time on the mixer's clock (``at=``; ``None`` means "as soon as
possible", i.e. the next sample rendered) and takes effect at exactly that sample: a block is cut at
command times and rendered in pieces (at most ``MAX_PER_BLOCK`` commands a block: a flood waits a
block rather than stalling the audio; :mod:`instrument.schedule`). Gains and pitch glide (:class:`~instrument.dsp.Smoother`). The
clips come from a :class:`~instrument.worker.ClipSource`: the worker thread live, generated on the spot
offline; everything else is one path for both.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .commands import RAMP_STEP_S, AllNotesOff, Command, Expression, Latent, MorphPath, NoteOff, Ramp, Set, Swap, Trigger, Vocabulary
from .contract import ModelInfo
from .dsp import SafetyChain, Smoother, db_to_gain
from .latent import LatentSpace, category_mix, clip_key, one_hot
from .params import N_MACROS, build_table
from .realtime import ENGINE_RT_PRIORITY
from .schedule import Event, Schedule
from .telemetry import Telemetry
from .voices import STEAL_S, Expressions, Layer, Voice, pitch_ratio
from .worker import ClipSource, GenerationWorker, Request

LATENT_PARAMS = {"seed", "radius"} | {f"macro{i}" for i in range(1, N_MACROS + 1)}
PREFETCH_VARIANTS = 2  # render-ahead: the next triggers' clips per category
AHEAD_INTERVAL_S = 0.1  # render-ahead follows moving controls at most 10 times a second
GIVE_UP_S = 1.0  # a trigger or layer clip not generated within this is dropped (counted), not played late


@dataclass(frozen=True)
class EngineConfig:
    """The engine's settings: rate, block, channels, how far it renders ahead, its seed, where the model
    runs, and the live thread's real-time priority (:mod:`instrument.realtime`). Checked when made."""

    sample_rate: int = 48000
    block_frames: int = 128
    channels: int = 2
    buffer_blocks: int = 3  # how far the engine renders ahead of the audio callback (latency vs safety)
    seed: int = 0  # trigger variations and layer drift are drawn from this
    provider: str = "auto"
    threads: int | None = None
    max_batch: int = 8
    rt_priority: int = ENGINE_RT_PRIORITY  # the live engine thread's SCHED_FIFO priority where allowed; 0: none (a raised nice instead)

    def __post_init__(self) -> None:
        for name, lo, hi, unit in (("sample_rate", 8000, 384000, " Hz"), ("block_frames", 1, 8192, ""), ("channels", 1, 64, ""),
                                   ("buffer_blocks", 1, 64, ""), ("rt_priority", 0, 98, "")):
            if not lo <= getattr(self, name) <= hi:
                raise ValueError(f"{name} must be between {lo}{' (off)' if name == 'rt_priority' else ''} and {hi}{unit}, "
                                 f"got {getattr(self, name)}")


class Mixer:
    """Renders the commands posted to it (:meth:`post`, any thread) into blocks (:meth:`process_block`,
    one thread). ``info``: the model's contract; ``worker``: the generation worker whose cache holds the
    clips; ``clips``: what to do about one that is not there yet."""

    def __init__(self, info: ModelInfo, config: EngineConfig, worker: GenerationWorker, clips: ClipSource) -> None:
        self.config = config
        self.sample_rate = config.sample_rate
        self.info = info
        self.table = build_table(info.categories)
        self.values = self.table.defaults()
        self.space = LatentSpace(info)
        self.vocabulary = Vocabulary(self.table, info.categories, info.latent_dim, self.space.clip_to_support)
        self.worker = worker
        self.clips = clips
        self.telemetry = Telemetry()
        self.safety = SafetyChain(config.sample_rate, self.values["ceiling"], self.values["gain"])
        sr = config.sample_rate
        self._voices_gain = Smoother(db_to_gain(self.values["voices_db"]), self.table["voices_db"].smoothing_s, sr)
        self._layer_gain = Smoother(db_to_gain(self.values["layer_db"]), self.table["layer_db"].smoothing_s, sr)
        self._pitch = Smoother(self.values["pitch"], self.table["pitch"].smoothing_s, sr)
        self.voices: list[Voice] = []
        self.layer = Layer()
        self._rng = np.random.default_rng(config.seed)
        self.schedule = Schedule()
        self._t = 0  # the next sample the mixer renders
        self._dirty = True  # latent or mix changed since the last look
        self._z = np.zeros(info.latent_dim, np.float32)
        self._mix = np.zeros(info.n_categories, np.float32)
        self._variant_count: dict[bytes, int] = {}
        self._waiting: list[tuple[bytes, int, float, Trigger]] = []  # (key, time, ratio, trigger) whose clip is not ready
        self.expressions = Expressions()  # MPE: each channel's bend and pressure
        self._layer_want: tuple[bytes, np.ndarray] | None = None
        self._layer_last_request = -10**12
        self._layer_next: tuple[bytes, np.ndarray] | None = None  # the drifted clip to move on to
        self._last_ahead = -10**12
        self._ahead_interval = int(AHEAD_INTERVAL_S * config.sample_rate)
        self._ramp_step = max(1, int(RAMP_STEP_S * config.sample_rate))
        # listen(): tuples, replaced (never changed in place) so the rendering thread iterates a stable one
        self._block_listeners: tuple[Callable[[np.ndarray, int], None], ...] = ()
        self._event_listeners: tuple[Callable[[int, Command, float], None], ...] = ()
        self._latent_override: np.ndarray | None = None
        self.meter = 0.0
        self._recent: tuple[int, np.ndarray] | None = None  # the clip that began sounding last, and when
        self._meter_decay = 0.1 ** (1.0 / (1.5 * config.sample_rate))
        self._update_controls()

    def now(self) -> int:
        """The mixer's clock: the next sample to be rendered."""
        return self._t

    def recent_clip(self) -> tuple[int, np.ndarray] | None:
        """The clip that began sounding last (a voice's or the layer's) and the sample it began at."""
        return self._recent

    @property
    def latent(self) -> np.ndarray:
        """The latent the controls make now (seed, macros and radius, or a latent set whole); a copy."""
        return self._z.copy()

    def post(self, command: Command, at: int | None = None) -> None:
        """Queue a command (made by :attr:`vocabulary`, so already checked) to take effect at sample ``at``
        of the mixer's clock, or as soon as possible (None). Any thread."""
        if at is not None and (not isinstance(at, (int, np.integer)) or at < 0):
            raise ValueError(f"at must be a sample time >= 0 on the engine clock, got {at!r}")
        self.schedule.post(command, at)
        self._posted()

    def _posted(self) -> None:
        """Called after each post (the live engine wakes its thread)."""

    def listen(self, *, block: Callable[[np.ndarray, int], None] | None = None,
               event: Callable[[int, Command, float], None] | None = None) -> Callable[[], None]:
        """The engine's one way to be watched: ``block(audio, at)`` after each block is rendered (``audio``
        ``[frames, channels]``, the block's first sample ``at``: a recorder, a meter) and ``event(at,
        command, posted)`` as each posted command takes effect (the sample it was applied at, the
        :mod:`~instrument.commands` command, the ``time.perf_counter()`` it was posted at: latency
        measurement, ``--record-score``).
        Both run on the engine thread and must be quick. Returns the function that stops them."""
        if block is not None:
            self._block_listeners = (*self._block_listeners, block)
        if event is not None:
            self._event_listeners = (*self._event_listeners, event)

        def stop() -> None:
            self._block_listeners = tuple(f for f in self._block_listeners if f is not block)
            self._event_listeners = tuple(f for f in self._event_listeners if f is not event)

        return stop

    def _update_controls(self) -> None:
        v = self.values
        macros = np.array([v[f"macro{i}"] for i in range(1, N_MACROS + 1)], np.float32)
        self._z = self.space.latent(int(v["seed"]), macros, v["radius"], self._latent_override)
        self._mix = category_mix(v, self.info.categories)
        self._dirty = True

    def _key(self, z: np.ndarray, mix: np.ndarray) -> bytes:
        return clip_key(self.worker.model_id, z, mix)

    def _variant(self, mix: np.ndarray, n: int) -> tuple[bytes, np.ndarray]:
        """The ``n``-th trigger variant around the current latent for ``mix``: a deterministic
        neighbour (seeded by the base key and n), so render-ahead can make it before it is asked for."""
        base = self._key(self._z, mix)
        variation = self.values["variation"]
        if variation <= 0:
            return base, self._z
        mask = 2**64 - 1  # the engine seed picks which variations a session plays (0: the same as ever)
        seed = int.from_bytes(base[:8], "little") ^ (n * 0x9E3779B97F4A7C15 & mask) ^ (self.config.seed * 0xBF58476D1CE4E5B9 & mask)
        z = self.space.neighbour(self._z, variation, np.random.default_rng(seed))
        return self._key(z, mix), z

    def _start_voice(self, clip: np.ndarray, command: Trigger, ratio: float, at: int) -> None:
        poly = int(self.values["polyphony"])
        sounding = [vc for vc in self.voices if not vc.releasing]
        while len(sounding) >= poly:  # steal the quietest, quickly but without a click
            victim = min(sounding, key=lambda vc: vc.loudness)
            victim.release(int(STEAL_S * self.sample_rate))
            sounding.remove(victim)
            self.telemetry.stolen_voices += 1
        if len(self.voices) >= 4 * poly:  # release tails pile up under very fast triggering: drop the oldest tail
            self.voices.remove(min((vc for vc in self.voices if vc.releasing), key=lambda vc: vc.started_at, default=self.voices[0]))
        sr = self.sample_rate
        self._recent = (at, clip)
        vc = Voice(clip, ratio, command.velocity ** 2, int(self.values["attack"] * sr), int(self.values["release"] * sr),
                   command.note, at, command.channel)
        self.expressions.start(vc)
        self.voices.append(vc)

    def _apply(self, ev: Event, at: int) -> None:
        command = ev.command
        if not ev.step:
            for listener in self._event_listeners:
                listener(at, command, ev.posted)
        match command:
            case Ramp() | MorphPath():  # its Set steps, in the ramp's place in the posting order (its seq) at a tie
                for dt, step in command.sets(self.vocabulary, self.values, self._ramp_step):
                    self.schedule.push_step(at + dt, ev, step)
            case Set(values=values):
                for pid, v in values:
                    self._set(pid, v)
            case Trigger():
                self._trigger(command, at)
            case NoteOff(note=note, channel=ch):  # an MPE note-off releases its channel's voice of that note only
                for vc in self.voices:
                    if vc.note == note and (ch is None or vc.channel == ch):
                        vc.release()
                self._waiting = [w for w in self._waiting if not (w[3].note == note and (ch is None or w[3].channel == ch))]
            case Expression():
                self.expressions.apply(command, self.voices)
            case AllNotesOff():
                for vc in self.voices:
                    vc.release()
                self._waiting.clear()
            case Latent():
                self._latent_override = command.array()
                self._update_controls()
            case Swap(model=model):
                self.worker.swap(model)
                self.telemetry.model_swaps += 1
                self._variant_count.clear()
                self._dirty = True
                self._layer_last_request = -10**12  # the layer moves to the new model now

    def _trigger(self, command: Trigger, at: int) -> None:
        mix = self._mix if command.category is None else one_hot(command.category, self.info.n_categories)
        base = self._key(self._z, mix)
        n = self._variant_count.get(base, 0)
        if len(self._variant_count) > 4096:  # latents change all show long: keep the counts of recent ones only
            self._variant_count.clear()
        self._variant_count[base] = n + 1
        key, z = self._variant(mix, n)
        if command.timbre:  # an MPE note's CC 74: its own latent, along the timbre direction
            z = self.space.timbre(z, command.timbre)
            key = self._key(z, mix)
        ratio = pitch_ratio(self._pitch.target + command.pitch)
        clip = self.clips.want(key, z, mix)
        if clip is not None:
            self._start_voice(clip, command, ratio, at)
            self.telemetry.trigger_delays.append(0)
        else:
            self._waiting.append((key, at, ratio, command))
        self._dirty = True  # the next variant should be rendered ahead

    def _set(self, pid: str, v: float) -> None:
        self.values[pid] = v
        if pid == "seed":
            self._latent_override = None  # a new seed is a new base latent
        if pid == "gain":
            self.safety.set_gain_db(v)
        elif pid == "ceiling":
            self.safety.set_ceiling_db(v)
        elif pid == "voices_db":
            self._voices_gain.set(db_to_gain(v))
        elif pid == "layer_db":
            self._layer_gain.set(db_to_gain(v))
        elif pid == "pitch":
            self._pitch.set(v)
        elif pid == "layer":
            if v < 0.5:
                self.layer.stop(self._crossfade_n())
                self._layer_want = None
            else:
                self._dirty = True
                self._layer_last_request = -10**12
        elif pid in LATENT_PARAMS or pid.startswith("weight.") or pid in ("mix_mode", "morph_x", "morph_y", "morph_path", "variation"):
            self._update_controls()

    def _crossfade_n(self) -> int:
        return max(1, int(self.values["crossfade"] * self.sample_rate))

    def _housekeeping(self) -> None:
        """Once per block: clips that arrived (looked up in the worker's cache), the layer's next clip, render-ahead."""
        if self._waiting:
            still = []
            for key, t, ratio, command in self._waiting:
                clip = self.worker.get(key)
                if clip is None and self._t - t > GIVE_UP_S * self.sample_rate:
                    self.telemetry.dropped_triggers += 1  # its clip never came (a model error): a late gesture is a wrong one
                elif clip is None:
                    still.append((key, t, ratio, command))
                else:
                    self._start_voice(clip, command, ratio, self._t)
                    self.telemetry.late_triggers += 1
                    self.telemetry.trigger_delays.append(self._t - t)
            self._waiting = still[-64:]
            self.telemetry.dropped_triggers += max(0, len(still) - 64)
        if self.values["layer"] >= 0.5:
            self._layer_step()
        if self._dirty and self.clips.prefetch and self._t - self._last_ahead >= self._ahead_interval:
            self._dirty = False
            self._last_ahead = self._t
            self._render_ahead()

    def _layer_step(self) -> None:
        sr, xf = self.sample_rate, self._crossfade_n()
        key = self._key(self._z, self._mix)
        interval = int(sr / self.values["layer_rate"])
        if self.layer.key != key and (self._layer_want is None or self._layer_want[0] != key):
            if self._t - self._layer_last_request >= interval:  # controls moved: regenerate, at most layer_rate per second
                self._layer_want = (key, self._z)
                self._layer_last_request = self._t
                self.clips.want(key, self._z, self._mix)
                self.telemetry.regenerations += 1
        if self._layer_want is not None:
            clip = self.worker.get(self._layer_want[0])
            if clip is not None and not self.layer.fading:
                self.layer.offer(clip, self._layer_want[0], xf)
                self._recent = (self._t, clip)
                self._layer_want = None
                self._layer_next = None
                return
            if clip is None and self._t - self._layer_last_request > GIVE_UP_S * sr:  # lost (a model error): ask again later
                self._layer_want = None
        if self.layer.fading or not self.layer.active:
            return
        ratio = pitch_ratio(self._pitch.value)
        drift = self.values["layer_drift"]
        if drift > 0 and self.values["layer_loop"] < 0.5 and self._layer_next is None and self._layer_want is None:
            z = self.space.neighbour(self._z, drift, self._rng)  # ask early: a whole clip of time to make it
            nk = self._key(z, self._mix)
            self._layer_next = (nk, z)
            self.clips.want(nk, z, self._mix)
        if self.layer.remaining(ratio) <= xf + self.config.block_frames:
            nxt = self._layer_next
            clip = self.worker.get(nxt[0]) if nxt is not None else None
            if clip is not None:
                self.layer.offer(clip, nxt[0], xf)
                self._recent = (self._t, clip)
                self._layer_next = None
            else:  # loop mode, no drift, or the next clip is late: cover with the last good one
                self.layer.offer(self.layer.clip, self.layer.key, xf)

    def _render_ahead(self) -> None:
        """The clips the next triggers will want: the current mix's next variants, then each pure
        category's next one. Replaces the worker's previous list (controls moved on)."""
        reqs = []
        mixes = [self._mix] + [one_hot(i, self.info.n_categories) for i in range(self.info.n_categories)]
        for j, mix in enumerate(mixes):
            base = self._key(self._z, mix)
            n0 = self._variant_count.get(base, 0)
            for n in range(n0, n0 + (PREFETCH_VARIANTS if j == 0 else 1)):
                key, z = self._variant(mix, n)
                if self.worker.get(key) is None:
                    reqs.append(Request(key, z, mix, self.worker.model_id))
                if self.values["variation"] <= 0:
                    break
        self.worker.prefetch(reqs)

    def _render_span(self, out: np.ndarray, start: int, stop: int) -> None:
        n = stop - start
        if n <= 0:
            return
        ratio_now = pitch_ratio(self._pitch.value)
        self._pitch.block(n)
        acc = np.zeros(n, np.float32)
        for vc in self.voices:  # a voice keeps the pitch it started with; the layer follows the pitch knob
            acc += vc.render(n)
        self.voices = [vc for vc in self.voices if not vc.done]
        acc *= self._voices_gain.block(n)
        if self.layer.active or self.layer.fading:
            acc += self.layer.render(n, ratio_now) * self._layer_gain.block(n)
        out[start:stop] = acc

    def process_block(self, frames: int | None = None) -> np.ndarray:
        """Render the next ``frames`` (default one block) samples: ``[frames, channels]`` float32."""
        t0 = time.perf_counter()
        n = frames or self.config.block_frames
        self.schedule.drain(self._t)
        self._housekeeping()
        mono = np.zeros(n, np.float32)
        pos = 0
        end = self._t + n
        for ev in self.schedule.due(self._t, end):
            if ev.time < self._t and not ev.asap:
                self.telemetry.late_events += 1
            at = max(ev.time, self._t + pos)
            self._render_span(mono, pos, at - self._t)
            pos = at - self._t
            self._apply(ev, at)
        self._render_span(mono, pos, n)
        safe = self.safety.process(mono)
        peak = float(np.max(np.abs(safe))) if n else 0.0
        self.meter = max(peak, self.meter * self._meter_decay ** n)  # a peak meter falling 20 dB in 1.5 s
        out = np.repeat(safe[:, None], self.config.channels, axis=1) if self.config.channels > 1 else safe[:, None]
        for listener in self._block_listeners:
            listener(out, self._t)
        self._t = end
        self.telemetry.blocks += 1
        self.telemetry.render_seconds += time.perf_counter() - t0
        return out
