"""The live engine: the instrument's thread-safe API, the threads that feed the real-time core,
start/stop, hot-swapping the model, recording and the status.

Threads and who owns what, with the C core (:mod:`instrument.ccore`, the default where it builds)::

    any thread ── Engine.set / trigger / note_on / ... ──> the schedule (instrument.schedule)
    the posting thread (OSC, MIDI reader, a script), or else the engine thread every half block:
                   Mixer.control -> the core's timed operations -> SPSC queue ─┐
    generation worker: runs the model (instrument.worker), fills the clip cache  │
    audio callback: C (instrument/core.c), renders each block itself <──────────┘ (no Python)
    engine thread: also passes the core's copy of the output to the recorder and listeners

With the numpy core (no C compiler, or ``EngineConfig(core="python")``) the engine thread renders
``buffer_blocks`` ahead into a ring buffer and a Python callback copies from it (:mod:`instrument.audio`).

**One path for live and offline.** The mixer's :meth:`~instrument.mixer.Mixer.control` and the core are all
there is. Offline, :meth:`Engine.render` (:mod:`instrument.offline`) runs them on a manual clock and writes
a WAV, with clips generated on the spot (:class:`~instrument.worker.ClipsOnTheSpot`) so the output does
not depend on timing: an offline render and the same commands played through the live path (an
in-memory sink, ``sync=True``: control before each block, then the same callback) give the same samples.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .recorder import Recorder
from .commands import AllNotesOff, Swap, ramp_seconds
from .errors import ModelFileError
from .mixer import EngineConfig, Mixer
from .model import GeneratorModel, load_model
from .offline import render_to
from .params import N_MACROS
from .realtime import raise_engine_thread, tune_process_for_live
from .ringbuffer import RingBuffer
from .worker import ClipsOnTheSpot, GenerationWorker, WorkerClips

__all__ = ["Engine", "EngineConfig"]  # EngineConfig lives in instrument.mixer; users import both from here


class Engine(Mixer):
    """The instrument. ``with Engine("model.onnx") as eng: eng.trigger("trigger")`` (see ``sink``).

    ``model``: a path or a loaded :class:`~instrument.model.GeneratorModel`. ``sink``: where the sound
    goes when :meth:`start` is called (:class:`~instrument.audio.SoundDeviceSink`, or
    :class:`~instrument.audio.MemorySink` in tests); ``None`` for offline use with :meth:`render`.
    ``sync=True``: clips are generated on the spot even live (deterministic; tests); ``prefetch=False``:
    no render-ahead (every trigger waits for its clip; a benchmark's worst case).
    """

    def __init__(self, model: str | Path | GeneratorModel, config: EngineConfig = EngineConfig(), sink: Any = None,
                 *, sync: bool = False, prefetch: bool = True) -> None:
        if not isinstance(model, GeneratorModel):
            model = load_model(model, provider=config.provider, threads=config.threads)
        worker = GenerationWorker(model, config.sample_rate, config.max_batch)
        super().__init__(model.info, config, worker, ClipsOnTheSpot(worker) if sync else WorkerClips(worker, prefetch))
        self.sink = sink
        self._swap_thread: threading.Thread | None = None
        self._thread: threading.Thread | None = None
        self._running = False
        self.realtime = False  # whether the engine thread got real-time or raised priority
        self._wake = threading.Event()
        self.ring: RingBuffer | None = None
        self._sync = sync
        self._native = False  # playing through the C core's own callback
        self._feeding = False  # ... fed by the engine thread (not a sync in-memory sink's hooks)
        self._control_lock = threading.Lock()  # one thread at a time hands commands to the core
        self._monitored = 0  # the engine sample the next block of the C core's output copy starts at
        self._recorder = None
        self._cpu0 = (time.process_time(), time.perf_counter())

    def _posted(self) -> None:
        """A command was posted. Live on the C core, the posting thread (OSC, MIDI, a script) hands it to the
        core itself when no other thread is doing so: no wait for the engine thread to be scheduled; the
        engine thread is woken either way (it may have just drained the schedule)."""
        if self._native and self._feeding and self._control_lock.acquire(blocking=False):
            try:
                self._control_tick()
            finally:
                self._control_lock.release()
        self._wake.set()  # the engine thread looks at once rather than at its next tick

    def _control_tick(self) -> None:
        now = self.core.t
        self.control(now, now + self.config.buffer_blocks * self.config.block_frames)

    # --- public API (any thread) -------------------------------------------------------------------------

    def set(self, pid: str, value: object, at: int | None = None) -> float:
        """Set parameter ``pid``; returns the value it will take (clamped per the table). Raises
        :class:`~instrument.params.ParamError` for an unknown id, NaN/Inf, a wrong type or a refused value.
        Moving the XY pad (``morph_x``/``morph_y``) switches ``mix_mode`` to xy; a ``weight.*`` to weights."""
        command = self.vocabulary.set(pid, value)
        self.post(command, at)
        return command.values[0][1]

    def set_values(self, values: dict[str, object], at: int | None = None) -> dict[str, float]:
        """Set several parameters at the same sample, exactly as given (a preset: no implied mode switch).
        Every value is checked first; one bad value refuses them all."""
        command = self.vocabulary.set_values(values)
        self.post(command, at)
        return command.as_dict()

    def set_latent(self, z: list[float] | np.ndarray | None, at: int | None = None) -> None:
        """Replace the seed's base latent with ``z`` (``[latent_dim]``, finite; kept inside the latent
        distribution's support), or go back to the seed's with None. Macros and radius still apply."""
        self.post(self.vocabulary.latent(z), at)

    def sample_at(self, unix_time: float) -> int:
        """The engine sample that reaches the speakers at ``unix_time`` (``time.time()`` clock: OSC time
        tags), from the audio callback's own DAC timestamps; without a device, the engine clock as if
        it were now playing. May be in the past (before :meth:`now`)."""
        sink, sr = self.sink, self.sample_rate
        mapped = sink.frame_at_unix(unix_time) if sink is not None and hasattr(sink, "frame_at_unix") else None
        if mapped is not None:
            return int(round(mapped))
        return self.now() + int(round((unix_time - time.time()) * sr))

    def start_recording(self, path: str | Path) -> None:
        """Record the output to a WAV (32-bit float) from a thread of its own; replaces a recording in progress."""
        rec = Recorder(path, self.sample_rate, self.config.channels)
        self.stop_recording()
        self._recorder = (rec, self.listen(block=rec))

    def stop_recording(self) -> tuple[str, float] | None:
        """Stop the recording; returns (path, seconds) or None when none was running."""
        if self._recorder is None:
            return None
        (rec, stop), self._recorder = self._recorder, None
        stop()
        rec.close()
        return str(rec.path), rec.frames / self.sample_rate

    def set_mix(self, weights: dict[str, float] | list[float] | np.ndarray, at: int | None = None) -> None:
        """Set every ``weight.<category>`` at once (and switch ``mix_mode`` to weights)."""
        self.post(self.vocabulary.mix(weights), at)

    def morph(self, x: float, y: float, at: int | None = None) -> None:
        """Move the XY pad (and switch ``mix_mode`` to xy)."""
        self.post(self.vocabulary.morph(x, y), at)

    def ramp(self, pid: str, to: float, seconds: float, start: float | None = None, at: int | None = None) -> None:
        """Move parameter ``pid`` to ``to`` over ``seconds``, from ``start`` or from its value when the ramp
        begins (steps of :data:`~instrument.commands.RAMP_STEP_S`; gains and pitch glide between)."""
        self.post(self.vocabulary.ramp(pid, to, ramp_seconds(seconds) * self.sample_rate, start), at)

    def morph_path(self, points: list[tuple[float, float]], seconds: float, at: int | None = None) -> None:
        """Move the XY pad along ``points`` over ``seconds`` (and switch ``mix_mode`` to xy)."""
        self.post(self.vocabulary.morph_path(points, ramp_seconds(seconds) * self.sample_rate), at)

    def trigger(self, category: str | int | None = None, velocity: float = 1.0, pitch: float = 0.0, at: int | None = None) -> None:
        """Play a one-shot gesture: of ``category`` (name or index), or of the current mix when None;
        ``velocity`` 0..1 (gain = velocity^2), ``pitch`` in semitones on top of the ``pitch`` parameter."""
        self.post(self.vocabulary.trigger(category, velocity, pitch), at)

    def note_on(self, note: int, velocity: float = 1.0, category: str | int | None = None, root: int = 60, at: int | None = None,
                channel: int | None = None, timbre: float = 0.0) -> None:
        self.post(self.vocabulary.note_on(note, velocity, category, root, channel, timbre), at)

    def note_off(self, note: int, at: int | None = None, channel: int | None = None) -> None:
        self.post(self.vocabulary.note_off(note, channel), at)

    def expression(self, channel: int, bend: float | None = None, pressure: float | None = None, at: int | None = None) -> None:
        self.post(self.vocabulary.expression(channel, bend, pressure), at)

    def all_notes_off(self, at: int | None = None) -> None:
        self.post(AllNotesOff(), at)

    def load_model(self, path: str | Path, on_done: Callable[[str | None], None] | None = None) -> None:
        """Hot-swap: load ``path`` in a background thread; when it is ready, later clips come from it and
        the layer crossfades to it. A file that fails the contract (or has other categories) is refused
        and the old model keeps playing; ``on_done(error or None)`` is called either way."""

        def work() -> None:
            err = None
            try:
                model = load_model(path, provider=self.config.provider, threads=self.config.threads)
                if model.info.categories != self.info.categories or model.info.latent_dim != self.info.latent_dim:
                    model.close()
                    raise ModelFileError(f"{path}: categories {list(model.info.categories)} / latent {model.info.latent_dim} differ "
                                         f"from the playing model's {list(self.info.categories)} / {self.info.latent_dim}; "
                                         "hot-swap needs the same ones (restart with the new model instead)")
                self.post(Swap(model))
            except Exception as e:  # noqa: BLE001 - reported, never raised into the music
                err = str(e)
                self.telemetry.model_errors += 1
                self.telemetry.last_error = err
            if on_done is not None:
                on_done(err)

        self._swap_thread = threading.Thread(target=work, name="gesturegan-model-load", daemon=True)
        self._swap_thread.start()

    # --- offline --------------------------------------------------------------------------------------------

    def render(self, seconds: float, path: str | Path | None = None, progress: bool = False, subtype: str = "PCM_24") -> np.ndarray | None:
        """Render ``seconds`` from the current clock with the events already posted (``at=`` sample times).
        With ``path``: write a WAV (temporary file, renamed at the end) and return None; else return the audio."""
        return render_to(self, seconds, path, progress, subtype)

    # --- live ---------------------------------------------------------------------------------------------

    def start(self) -> "Engine":
        """Start the worker, the engine thread and the sink. With the C core the sink plays the core's own
        callback and the engine thread only feeds it (:meth:`_feed`); with the numpy core the engine thread
        renders ahead into a ring buffer the sink's Python callback copies from (pre-filled first)."""
        if self._running:
            return self
        tune_process_for_live(freeze_gc=self.sink is not None)  # instrument.realtime: the switch interval, the garbage collector
        self.worker.start()
        if self.sink is None:
            self._running = True
            return self
        if self.core.kind == "c" and hasattr(self.sink, "start_native"):
            self.core.monitor(True)
            self._running = self._native = True
            if self._sync and hasattr(self.sink, "native"):  # an in-memory sink of a sync engine: control in its thread, block by block
                self.sink.start_native(self.core, before=lambda n: self.control(self.core.t, self.core.t + n), after=self._drain_monitor)
                return self
            self._feeding = True
            self.worker.on_ready = self._posted  # a late trigger's clip starts as soon as it is made, not at the next tick
            self._thread = threading.Thread(target=self._feed, name="gesturegan-engine", daemon=True)
            self._thread.start()
            self.sink.start_native(self.core)
            return self
        b = self.config.block_frames
        cap = 1
        while cap < max(4 * b * self.config.buffer_blocks, 2 * self.sink.block_frames):
            cap *= 2
        self.ring = RingBuffer(cap, self.config.channels)
        target = self.config.buffer_blocks * b
        while self.ring.read_available < target:
            self.ring.write(self.process_block())
        self._running = True
        self._thread = threading.Thread(target=self._loop, name="gesturegan-engine", daemon=True)
        self._thread.start()
        self.sink.start(self.ring)
        return self

    def _loop(self) -> None:
        # real-time scheduling where allowed (instrument.realtime); the thread sleeps between blocks, so it cannot hog a core
        self.realtime = raise_engine_thread(self.config.rt_priority)
        ring, b = self.ring, self.config.block_frames
        assert ring is not None
        target = max(self.config.buffer_blocks * b, self.sink.block_frames)
        period = b / self.sample_rate
        tel = self.telemetry
        clock = time.perf_counter
        classify = getattr(self.sink, "classify", lambda: None)  # judge underruns while their xruns are in the log
        last = clock()
        while self._running:
            now = clock()
            if now - last > tel.max_wake_gap_ms / 1000:
                tel.max_wake_gap_ms = (now - last) * 1000
            while ring.read_available < target and ring.write_available >= b and self._running:
                t0 = clock()
                ring.write(self.process_block())
                dt = clock() - t0
                if dt > tel.max_block_ms / 1000:
                    tel.max_block_ms = dt * 1000
            classify()
            last = clock()
            self._wake.wait(period / 2)
            self._wake.clear()

    def _feed(self) -> None:
        """The engine thread with the C core: every half block, or at once when a command is posted, hand the
        core the commands due within ``buffer_blocks`` blocks (as-soon-as-possible ones for its next block),
        and pass what it rendered to the listeners (the recorder)."""
        self.realtime = raise_engine_thread(self.config.rt_priority)
        period = self.config.block_frames / self.sample_rate
        tel, clock = self.telemetry, time.perf_counter
        last = clock()
        while self._running:
            t0 = clock()
            tel.max_wake_gap_ms = max(tel.max_wake_gap_ms, (t0 - last) * 1000)
            with self._control_lock:
                self._control_tick()
            self._drain_monitor()
            last = clock()
            tel.max_block_ms = max(tel.max_block_ms, (last - t0) * 1000)
            self._wake.wait(period / 2)
            self._wake.clear()
        self._drain_monitor()

    def _drain_monitor(self) -> None:
        """The C core's copy of its output, to the block listeners (the recorder, meters), off the audio thread."""
        while True:
            at = self._monitored
            out = self.core.monitor_read()
            if not len(out):
                return
            self._monitored += len(out)
            self._emit(out, at)

    def stop(self) -> None:
        self._running = self._feeding = False
        self._wake.set()
        if self.sink is not None:
            self.sink.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._native:
            self._drain_monitor()  # everything played reaches the recorder

    def close(self) -> None:
        self.stop()
        self.stop_recording()
        if self._swap_thread is not None:
            self._swap_thread.join(timeout=30)
        self.worker.close()
        if self.sink is not None:
            self.sink.close()
        if not getattr(self.sink, "abandoned", False):  # a stream PortAudio never let go of may still call the core: keep it
            self.core.close()

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _delay_ms(self, q: float) -> float:
        d = list(self.telemetry.trigger_delays)
        return float(np.percentile(d, q)) * 1000 / self.sample_rate if d else 0.0

    @property
    def model_source(self) -> str:
        """Where the playing model was loaded from (it changes with :meth:`load_model`)."""
        return str(self.worker.model.source)

    def status(self) -> dict:
        """A snapshot of the counters and the state, for the terminal view, OSC replies and tests: one
        value per row of :data:`instrument.telemetry.ENGINE`, in its order (what each one means is there)."""
        p50, p99 = self.worker.inference_percentiles()
        sink_stats = self.sink.stats() if self.sink is not None else {}
        tel = self.telemetry
        core = self.core.state()
        return {
            "time_s": self.now() / self.sample_rate,
            "level_dbfs": 20 * math.log10(max(core["meter"], 1e-6)),
            "underruns": sink_stats.get("underruns", 0),
            "engine_underruns": sink_stats.get("engine_underruns", 0),
            "device_underflows": sink_stats.get("device_underflows", 0),
            "host_stalls": sink_stats.get("host_stalls", 0),
            "late_events": tel.late_events,
            "deferred_commands": self.schedule.deferred,
            "late_triggers": tel.late_triggers,
            "dropped_triggers": tel.dropped_triggers,
            "stolen_voices": core["stolen"],
            "voices": core["voices"],
            "layer": bool(core["layer_active"]),
            "regenerations": tel.regenerations,
            "inference_ms_p50": p50,
            "inference_ms_p99": p99,
            "trigger_delay_ms_p50": self._delay_ms(50),
            "trigger_delay_ms_p99": self._delay_ms(99),
            "queue_depth": self.worker.queue_depth,
            "clips_generated": self.worker.clips,
            "bad_clips": self.worker.bad_clips,
            "nonfinite_samples": core["nonfinite"],
            "limited_blocks": core["limited_blocks"],
            "model_swaps": tel.model_swaps,
            "model_errors": tel.model_errors + self.worker.errors,
            "last_error": tel.last_error or self.worker.last_error,
            "max_block_ms": tel.max_block_ms,
            "max_callback_ms": sink_stats.get("max_callback_ms", 0.0),
            "max_wake_gap_ms": tel.max_wake_gap_ms,
            "render_load": (core.get("callback_busy_ms", 0.0) / max(1e-9, 1000 * core.get("frames", 0) / self.sample_rate) if self._native
                            else tel.render_seconds / max(1e-9, tel.blocks * self.config.block_frames / self.sample_rate)),
            "cpu_cores": (time.process_time() - self._cpu0[0]) / max(1e-9, time.perf_counter() - self._cpu0[1]),
            "mix": {c: float(w) for c, w in zip(self.info.categories, self._mix)},
            "categories": list(self.info.categories),
            "macros": [self.values[f"macro{i}"] for i in range(1, N_MACROS + 1)],
        }
