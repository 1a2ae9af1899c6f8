"""The mixer: parameter state, the command schedule (:mod:`instrument.schedule`), the latents and the
clips, and the real-time core (:mod:`instrument.core`: voices, the layer, gains, the safety chain) that
renders them. No threads of its own.

Every command carries a sample time on the mixer's clock (``at=``; ``None`` means "as soon as
possible") and takes effect at exactly that sample. :meth:`Mixer.control` turns the commands due before a
time into the core's timed operations (at most ``MAX_PER_BLOCK`` commands a block: a flood waits a block
rather than stalling the audio; :mod:`instrument.schedule`); the core renders them, cutting its blocks at
their samples. Offline and in tests, :meth:`Mixer.process_block` does both for one block; live with the
C core, the engine thread calls :meth:`control` a few blocks ahead and the core renders inside the audio
callback (:mod:`instrument.engine`). The clips come from a :class:`~instrument.worker.ClipSource`: the
worker thread live, generated on the spot offline; everything else is one path for both.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from .config import EngineConfig
from .commands import RAMP_STEP_S, AllNotesOff, Command, Expression, Latent, MorphPath, NoteOff, Ramp, Set, Swap, Trigger, Vocabulary
from .contract import ModelInfo
from .core import ASAP, CEILING, GAIN, LAYER_GAIN, PITCH, VOICES_GAIN, XFADE
from .ccore import make_core
from .dsp import db_to_gain
from .latent import LatentSpace, category_mix, clip_key, one_hot
from .params import N_MACROS, build_table
from .schedule import Event, Schedule
from .telemetry import Telemetry
from .voices import STEAL_S, Expressions, pitch_ratio
from .worker import ClipSource, GenerationWorker, Request

LATENT_PARAMS = {"seed", "radius"} | {f"macro{i}" for i in range(1, N_MACROS + 1)}
PREFETCH_VARIANTS = 2  # render-ahead: the next triggers' clips per category
AHEAD_INTERVAL_S = 0.1  # render-ahead follows moving controls at most 10 times a second
AHEAD_SETTLE_S = 0.01  # ... once they have been still this long: a trigger just after a move is generated first
GIVE_UP_S = 1.0  # a trigger or layer clip not generated within this is dropped (counted), not played late


class Mixer:
    """Turns the commands posted to it (:meth:`post`, any thread) into the core's operations
    (:meth:`control`, one thread) and renders blocks (:meth:`process_block`). ``info``: the model's
    contract; ``worker``: the generation worker whose cache holds the clips; ``clips``: what to do about
    one that is not there yet."""

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
        v, tab = self.values, self.table
        self.core = make_core(config.core, config.sample_rate, config.channels, config.block_frames,
                              voices_gain=db_to_gain(v["voices_db"]), layer_gain=db_to_gain(v["layer_db"]), pitch=v["pitch"],
                              gain_db=v["gain"], ceiling_db=v["ceiling"], xfade=self._crossfade_n(),
                              smoothing_s=(tab["voices_db"].smoothing_s, tab["layer_db"].smoothing_s, tab["pitch"].smoothing_s))
        self._rng = np.random.default_rng(config.seed)
        self.schedule = Schedule()
        self._t = 0  # the control's clock: commands before it have been handed to the core
        self._dirty = True  # latent or mix changed since the last look
        self._dirty_at = 0  # ... when it last did
        self._z = np.zeros(info.latent_dim, np.float32)
        self._mix = np.zeros(info.n_categories, np.float32)
        self._variant_count: dict[bytes, int] = {}
        self._waiting: list[tuple[bytes, int, float, Trigger]] = []  # (key, time, ratio, trigger) whose clip is not ready
        self.expressions = Expressions()  # MPE: each channel's bend and pressure
        self._serial = 0  # layer clips handed to the core, numbered
        self._layer_key: bytes | None = None  # the key of the layer clip last handed over (what plays, or soon will)
        self._layer_want: list | None = None  # [key, z, serial or 0 until handed over]: the controls' clip
        self._layer_last_request = -10**12
        self._layer_next: list | None = None  # [key, z, serial or 0]: the drifted clip to move on to
        self._last_ahead = -10**12
        self._ahead_interval = int(AHEAD_INTERVAL_S * config.sample_rate)
        self._settle = int(AHEAD_SETTLE_S * config.sample_rate)
        self._ramp_step = max(1, int(RAMP_STEP_S * config.sample_rate))
        # listen(): tuples, replaced (never changed in place) so the rendering thread iterates a stable one
        self._block_listeners: tuple[Callable[[np.ndarray, int], None], ...] = ()
        self._event_listeners: tuple[Callable[[int, Command, float], None], ...] = ()
        self._latent_override: np.ndarray | None = None
        self._controls_version = 0
        self._mix_key_for: tuple[int, int] | None = None
        self._update_controls()

    def now(self) -> int:
        """The mixer's clock: the next sample to be rendered."""
        return self.core.t

    @property
    def meter(self) -> float:
        return self.core.meter

    @property
    def voices(self) -> list:
        """The voices sounding now (a snapshot of each: channel, note, gain, bend_ratio, expression_gain,
        pos, releasing, started_at)."""
        return self.core.voice_views()

    def recent_clip(self) -> tuple[int, np.ndarray] | None:
        """The clip that began sounding last (a voice's or the layer's) and the sample it began at."""
        return self.core.recent

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
        """The engine's one way to be watched: ``block(audio, at)`` for each block rendered (``audio``
        ``[frames, channels]``, the block's first sample ``at``: a recorder, a meter) and ``event(at,
        command, posted)`` as each posted command takes effect (the sample it was applied at, the
        :mod:`~instrument.commands` command, the ``time.perf_counter()`` it was posted at: latency
        measurement, ``--record-score``).
        Both run on the engine thread (never the audio callback) and must be quick. Returns the function that stops them."""
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
        self._controls_version += 1
        self._dirty, self._dirty_at = True, self._t

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

    def _op_at(self, at: int) -> int:
        """A time for the core: ASAP for now or the past (the core's next block), else the sample."""
        return ASAP if at <= self._t else at

    def _start_voice(self, clip: np.ndarray, command: Trigger, ratio: float, at: int) -> None:
        sr, v = self.sample_rate, self.values
        self.core.start_voice(self._op_at(at), clip, ratio, command.velocity ** 2, int(v["attack"] * sr), int(v["release"] * sr),
                              -1 if command.note is None else command.note, -1 if command.channel is None else command.channel,
                              int(v["polyphony"]), int(STEAL_S * sr))

    def _apply(self, ev: Event, at: int) -> None:
        command = ev.command
        if not ev.step:
            for listener in self._event_listeners:
                listener(at, command, ev.posted)
        op_at = self._op_at(at)
        match command:
            case Ramp() | MorphPath():  # its Set steps, in the ramp's place in the posting order (its seq) at a tie
                for dt, step in command.sets(self.vocabulary, self.values, self._ramp_step):
                    self.schedule.push_step(at + dt, ev, step)
            case Set(values=values):
                for pid, v in values:
                    self._set(pid, v, op_at)
            case Trigger():
                self._trigger(command, at)
            case NoteOff(note=note, channel=ch):  # an MPE note-off releases its channel's voice of that note only
                self.core.release(op_at, note, -1 if ch is None else ch)
                self._waiting = [w for w in self._waiting if not (w[3].note == note and (ch is None or w[3].channel == ch))]
            case Expression():
                self.core.express(op_at, command.channel, *self.expressions.apply(command))
            case AllNotesOff():
                self.core.release(op_at, -1, -1)
                self._waiting.clear()
            case Latent():
                self._latent_override = command.array()
                self._update_controls()
            case Swap(model=model):
                self.worker.swap(model)
                self.telemetry.model_swaps += 1
                self._variant_count.clear()
                self._dirty, self._dirty_at = True, self._t
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
        ratio = pitch_ratio(self.values["pitch"] + command.pitch)
        clip = self.clips.want(key, z, mix)
        if clip is not None:
            self._start_voice(clip, command, ratio, at)
            self.telemetry.trigger_delays.append(0)
        else:
            self._waiting.append((key, at, ratio, command))
        self._dirty = True  # the next variant should be rendered ahead

    def _set(self, pid: str, v: float, op_at: int) -> None:
        self.values[pid] = v
        core = self.core
        if pid == "seed":
            self._latent_override = None  # a new seed is a new base latent
        if pid == "gain":
            core.set(op_at, GAIN, db_to_gain(v))
        elif pid == "ceiling":
            core.set(op_at, CEILING, db_to_gain(v))
        elif pid == "voices_db":
            core.set(op_at, VOICES_GAIN, db_to_gain(v))
        elif pid == "layer_db":
            core.set(op_at, LAYER_GAIN, db_to_gain(v))
        elif pid == "pitch":
            core.set(op_at, PITCH, v)
        elif pid == "crossfade":
            core.set(op_at, XFADE, self._crossfade_n())
        elif pid == "layer":
            if v < 0.5:
                core.layer_stop(op_at)
                self._layer_want = self._layer_next = self._layer_key = None
            else:
                self._dirty, self._dirty_at = True, self._t
                self._layer_last_request = -10**12
        elif pid in LATENT_PARAMS or pid.startswith("weight.") or pid in ("mix_mode", "morph_x", "morph_y", "morph_path", "variation"):
            self._update_controls()

    def _crossfade_n(self) -> int:
        return max(1, int(self.values["crossfade"] * self.sample_rate))

    def _housekeeping(self) -> None:
        """Clips that arrived (looked up in the worker's cache), the layer's next clip, render-ahead."""
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
        since = self._t - self._last_ahead  # render-ahead is a guess: a trigger just after a move asks first, unless moves never stop
        if self._dirty and self.clips.prefetch and since >= self._ahead_interval and (self._t - self._dirty_at >= self._settle
                                                                                       or since >= 2 * self._ahead_interval):
            self._dirty = False
            self._last_ahead = self._t
            self._render_ahead()

    def _hand_layer(self, slot: list, next_clip: bool) -> None:
        """Hand the slot's clip to the core once it is generated (the slot gets its serial)."""
        clip = self.worker.get(slot[0])
        if clip is not None:
            self._serial += 1
            slot[2] = self._serial
            (self.core.layer_next if next_clip else self.core.layer_want)(ASAP, clip, self._serial)

    def _mix_key(self) -> bytes:
        """The key of the controls' own clip (the layer's), computed once per change of latent, mix or model."""
        if self._mix_key_for != (self.worker.model_id, self._controls_version):
            self._mix_key_for = (self.worker.model_id, self._controls_version)
            self._mix_key_cached = self._key(self._z, self._mix)
        return self._mix_key_cached

    def _layer_step(self) -> None:
        sr = self.sample_rate
        key = self._mix_key()
        interval = int(sr / self.values["layer_rate"])
        want = self._layer_want
        if self._layer_key != key and (want is None or want[0] != key):
            if self._t - self._layer_last_request >= interval:  # controls moved: regenerate, at most layer_rate per second
                want = self._layer_want = [key, self._z, 0]
                self._layer_last_request = self._t
                self.clips.want(key, self._z, self._mix)
                self.telemetry.regenerations += 1
        playing = self.core.layer_serial
        if want is not None:
            if not want[2]:
                self._hand_layer(want, False)
                if want[2]:
                    self._layer_key, self._layer_next = want[0], None
                elif self._t - self._layer_last_request > GIVE_UP_S * sr:  # lost (a model error): ask again later
                    self._layer_want = None
            if want[2] and playing == want[2]:
                self._layer_want = None  # it plays
            return
        if not playing:
            return
        nxt = self._layer_next
        if nxt is None:
            if self.values["layer_drift"] > 0 and self.values["layer_loop"] < 0.5:  # ask early: a whole clip of time to make it
                z = self.space.neighbour(self._z, self.values["layer_drift"], self._rng)
                self._layer_next = [self._key(z, self._mix), z, 0]
                self.clips.want(self._layer_next[0], z, self._mix)
        elif not nxt[2]:
            self._hand_layer(nxt, True)
        elif playing == nxt[2]:
            self._layer_key, self._layer_next = nxt[0], None

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

    def control(self, now: int, until: int) -> None:
        """Hand the core what it must do before sample ``until``: commands posted as soon as possible
        (at ``now``, the core's next sample) and those due, then the housekeeping (clips that arrived, the
        layer, render-ahead). One thread at a time."""
        self._t = now
        self.schedule.drain(now)
        for ev in self.schedule.due(now, until):  # first: a trigger's clip is asked for before render-ahead's
            if ev.time < now and not ev.asap:
                self.telemetry.late_events += 1
            self._apply(ev, max(ev.time, now))
        self._housekeeping()
        self.core.collect()

    def quiet_blocks(self, start: int, block: int, most: int) -> int:
        """How many blocks from ``start`` need nothing from :meth:`control` (no command due, no clip awaited, the
        layer only waiting for the core to move on): offline renders them in one call to the core (stopping
        where the layer moves on), which gives the samples a call per block would."""
        if self._waiting or self.clips.prefetch or most <= 0:
            return 0
        nxt = self.schedule.next_time()
        if nxt is not None:
            most = min(most, max(0, (nxt - start) // block))
        if most and self.values["layer"] >= 0.5:
            layer_next, playing = self._layer_next, self.core.layer_serial
            if self._layer_want is not None or self._layer_key != self._mix_key():
                return 0
            drifting = self.values["layer_drift"] > 0 and self.values["layer_loop"] < 0.5
            if (layer_next is None and drifting and playing) or (layer_next is not None and (not layer_next[2] or playing == layer_next[2])):
                return 0
        return most

    def _emit(self, out: np.ndarray, at: int) -> None:
        for listener in self._block_listeners:
            listener(out, at)

    def process_block(self, frames: int | None = None) -> np.ndarray:
        """Render the next ``frames`` (default one block) samples: ``[frames, channels]`` float32."""
        t0 = time.perf_counter()
        n = frames or self.config.block_frames
        at = self.core.t
        self.control(at, at + n)
        out = self.core.render(n)
        self._emit(out, at)
        self.telemetry.blocks += 1
        self.telemetry.render_seconds += time.perf_counter() - t0
        return out
