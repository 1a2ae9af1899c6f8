"""The generation worker: the one thread that runs the model.

The engine asks for clips (:meth:`GenerationWorker.request`, never blocking); the worker takes every
pending request at once, runs them as one batch (up to ``max_batch``), resamples the whole batch once
to the device rate with soxr, sanitises it (NaN/Inf -> 0, huge peaks scaled down, both counted) and
puts the clips in a small LRU cache, keyed by model, latent and mix, then calls ``on_ready`` (the live
engine looks at once). Requests a trigger waits for come first, alone, at a raised priority
(:func:`instrument.realtime.set_worker_urgency`); render-ahead's guesses (:meth:`prefetch`) follow in
batches of ``PREFETCH_BATCH`` at the background priority.

``generate_now`` does the same work in the caller's thread: the offline renderer (and any test that
must be sample-exact) uses it so results never depend on thread timing.

A model is hot-swapped with :meth:`swap`: the next batch runs on the new model; clips of the old one
stay in the cache under the old model id until they age out.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass

import numpy as np
import soxr

from .model import GeneratorModel
from .realtime import WORKER_NICE, set_thread_nice, set_worker_urgency
from .voices import END_FADE_S

PREFETCH_BATCH = 2  # render-ahead runs in small batches, so an urgent request never waits long behind one
HUGE = 2.0  # a clip peaking above this is a model misbehaving: scaled to full scale and counted


@dataclass(frozen=True)
class Request:
    key: bytes
    z: np.ndarray  # [latent_dim]
    mix: np.ndarray  # [n_categories]
    model_id: int


class ClipCache:
    """A small thread-safe LRU of device-rate clips."""

    def __init__(self, max_clips: int = 512) -> None:
        self.max_clips = max_clips
        self._d: collections.OrderedDict[bytes, np.ndarray] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes) -> np.ndarray | None:
        with self._lock:
            clip = self._d.get(key)
            if clip is not None:
                self._d.move_to_end(key)
            return clip

    def put(self, key: bytes, clip: np.ndarray) -> None:
        with self._lock:
            self._d[key] = clip
            self._d.move_to_end(key)
            while len(self._d) > self.max_clips:
                self._d.popitem(last=False)

    def __len__(self) -> int:
        return len(self._d)


class GenerationWorker:
    def __init__(self, model: GeneratorModel, device_rate: int, max_batch: int = 8, cache_clips: int = 512) -> None:
        self.on_ready = lambda: None  # called (on the worker thread) after each batch is in the cache: the live engine looks at once
        self.model = model
        self.model_id = 1
        self.device_rate = device_rate
        self.max_batch = max_batch
        self.cache = ClipCache(cache_clips)
        self._end_fade = int(END_FADE_S * device_rate)
        self._pending: collections.deque[Request] = collections.deque()
        self._prefetch: collections.deque[Request] = collections.deque()
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._swap_to: GeneratorModel | None = None
        # telemetry (written here, read by anyone)
        self.infer_ms: collections.deque[float] = collections.deque(maxlen=2000)
        self.batches = 0
        self.clips = 0
        self.bad_clips = 0
        self.errors = 0
        self.last_error = ""

    # --- engine side --------------------------------------------------------------------------------------

    def request(self, req: Request) -> None:
        """Generate ``req`` soon (before any prefetch)."""
        self._pending.append(req)
        self._wake.set()

    def prefetch(self, reqs: list[Request]) -> None:
        """Replace the render-ahead list: clips likely to be needed next, generated when nothing is urgent."""
        self._prefetch = collections.deque(reqs)
        self._wake.set()

    @property
    def queue_depth(self) -> int:
        return len(self._pending)

    def get(self, key: bytes) -> np.ndarray | None:
        return self.cache.get(key)

    def swap(self, model: GeneratorModel) -> int:
        """Run later batches on ``model``; returns its model id (part of every cache key). Never waits:
        keys use the new id at once, the worker installs the model before its next batch (a batch in
        flight finishes on the old one, under the old id), and closes the old model itself."""
        self._swap_to = model
        self.model_id += 1
        self._wake.set()
        if self._thread is None:
            self._install_pending()
        return self.model_id

    def _install_pending(self) -> None:
        model, self._swap_to = self._swap_to, None
        if model is not None and model is not self.model:
            old, self.model = self.model, model
            old.close()

    def generate_now(self, reqs: list[Request]) -> None:
        """Generate ``reqs`` in this thread, in one batch per ``max_batch``, into the cache."""
        for i in range(0, len(reqs), self.max_batch):
            self._run(reqs[i : i + self.max_batch])

    # --- worker thread ------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="gesturegan-generation", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._install_pending()
        self.model.close()

    def _loop(self) -> None:
        set_thread_nice(WORKER_NICE)  # generation is background work: the engine thread and the callback come first
        urgent = False
        while not self._stop:
            self._wake.wait(0.1)
            self._wake.clear()
            while (self._pending or self._prefetch) and not self._stop:
                if bool(self._pending) != urgent:  # a trigger waits: made at once, at a raised priority, on its own
                    urgent = not urgent
                    set_worker_urgency(urgent)
                batch, seen = [], set()
                for queue, limit in ((self._pending, self.max_batch),) if urgent else ((self._prefetch, PREFETCH_BATCH),):
                    while queue and len(batch) < limit:
                        try:
                            r = queue.popleft()
                        except IndexError:  # the prefetch list was replaced under us
                            break
                        if r.key in seen or self.cache.get(r.key) is not None:
                            continue
                        seen.add(r.key)
                        batch.append(r)
                if batch:
                    self._run(batch)

    def _run(self, batch: list[Request]) -> None:
        self._install_pending()
        model = self.model
        live = [r for r in batch if r.model_id == self.model_id]  # requests for a swapped-out model are dropped
        if not live:
            return
        z = np.stack([r.z for r in live]).astype(np.float32)
        mix = np.stack([r.mix for r in live]).astype(np.float32)
        t0 = time.perf_counter()
        try:
            audio = model.generate(z, mix)  # [B, n_samples]
        except Exception as e:  # noqa: BLE001 - a failing model must not kill the worker; the engine covers with the last clip
            self.errors += 1
            self.last_error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            return
        rate = model.info.sample_rate
        if rate != self.device_rate:
            audio = soxr.resample(np.ascontiguousarray(audio.T), rate, self.device_rate, quality="HQ").T
        self.infer_ms.append((time.perf_counter() - t0) * 1e3)
        self.batches += 1
        for r, clip in zip(live, audio):
            clip = np.ascontiguousarray(clip, dtype=np.float32)
            if not np.all(np.isfinite(clip)):
                self.bad_clips += 1
                clip = np.nan_to_num(clip, nan=0.0, posinf=0.0, neginf=0.0)
            peak = float(np.max(np.abs(clip))) if len(clip) else 0.0
            if peak > HUGE:  # the contract says [-1, 1]; resampling overshoot is allowed for, a broken model is not
                self.bad_clips += 1
                clip = clip / peak
            fade = min(len(clip), self._end_fade)
            if fade:
                clip[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)  # no click where a clip ends
            self.cache.put(r.key, clip)
            self.clips += 1
        self.on_ready()

    def inference_percentiles(self) -> tuple[float, float]:
        t = list(self.infer_ms)
        if not t:
            return 0.0, 0.0
        return float(np.percentile(t, 50)), float(np.percentile(t, 99))


# --- where the mixer's clips come from -------------------------------------------------------------------
# Both sources look in the worker's cache first; they differ in what happens when a clip is not there yet.
# Live (WorkerClips) the worker thread is asked to make it and the mixer plays it when it arrives, with
# render-ahead asking for the next triggers' clips before they are wanted. Offline (ClipsOnTheSpot) it is
# made at once in the caller's thread, so the output does not depend on timing: an offline render and the
# same commands played live give the same samples.


class ClipSource:
    """The worker's cache, and what to do about a clip that is not in it (:meth:`_missing`)."""

    prefetch = False  # whether the mixer should ask for the next triggers' clips ahead of time

    def __init__(self, worker: GenerationWorker) -> None:
        self.worker = worker

    def want(self, key: bytes, z: np.ndarray, mix: np.ndarray) -> np.ndarray | None:
        """The clip for ``key`` (latent ``z``, category ``mix``) if it can be had now, else None."""
        clip = self.worker.get(key)
        return clip if clip is not None else self._missing(Request(key, z, mix, self.worker.model_id))

    def _missing(self, req: Request) -> np.ndarray | None:
        raise NotImplementedError


class WorkerClips(ClipSource):
    """Live: a missing clip is requested from the worker thread (None until it arrives)."""

    def __init__(self, worker: GenerationWorker, prefetch: bool = True) -> None:
        super().__init__(worker)
        self.prefetch = prefetch

    def _missing(self, req: Request) -> None:
        self.worker.request(req)
        return None


class ClipsOnTheSpot(ClipSource):
    """Offline: a missing clip is generated now, in the calling thread (None only if the model failed)."""

    def _missing(self, req: Request) -> np.ndarray | None:
        self.worker.generate_now([req])
        return self.worker.get(req.key)
