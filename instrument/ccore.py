"""The C core (``instrument/core.c``): built once per machine, loaded with cffi, wrapped in :class:`CCore`.

**Building.** The first engine that wants it compiles ``core.c`` with the system's C compiler (``$CC``, else
``cc`` or ``gcc``) into ``$GESTUREGAN_CACHE`` (default ``~/.cache/gesturegan``), named by a hash of the
source, and loads it in cffi's ABI mode: no Python headers, no build at install time, about a second
once. ``python -c 'import instrument.ccore as c; c.main()'`` builds it ahead (the install script does). Where no compiler is
found or the build fails, :func:`make_core` says so in one line on stderr and uses the numpy core
(:class:`~instrument.core.PyCore`; the live engine then renders ahead in Python, with more latency).

**Clips.** The core plays numpy arrays it does not own: each operation that carries a clip holds the
array here under a fresh handle, and the core hands the handle back (:meth:`CCore.collect`) when it has
let go of it, so no clip is freed while the audio thread reads it.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .core import PyCore
from .dsp import db_to_gain
from .files import write_atomic

SOURCE = Path(__file__).with_name("core.c")
CFLAGS = ["-O3", "-fPIC", "-shared", "-std=c11", "-D_POSIX_C_SOURCE=200809L"]
CDEF = """
typedef struct gg_core gg_core;
typedef struct { double inputBufferAdcTime, currentTime, outputBufferDacTime; } gg_timeinfo;
gg_core *gg_new(double, int32_t, int32_t, int64_t, double, double, double, double, double, int64_t, int64_t, int64_t, int64_t);
void gg_free(gg_core *);
int gg_start_voice(gg_core *, int64_t, int64_t, const float *, int64_t, double, double, int32_t, int32_t, int32_t, int32_t, int32_t, int32_t);
int gg_release(gg_core *, int64_t, int32_t, int32_t);
int gg_express(gg_core *, int64_t, int32_t, double, double);
int gg_set(gg_core *, int64_t, int32_t, double);
int gg_layer(gg_core *, int32_t, int64_t, int64_t, const float *, int64_t, int64_t);
int gg_layer_stop(gg_core *, int64_t);
void gg_render(gg_core *, float *, int64_t);
int64_t gg_render_blocks(gg_core *, float *, int64_t, int64_t);
int64_t gg_collect(gg_core *, int64_t *, int64_t);
void gg_monitor(gg_core *, int32_t);
int64_t gg_monitor_read(gg_core *, float *, int64_t);
int64_t gg_now(gg_core *);
int64_t gg_layer_serial(gg_core *);
void gg_state(gg_core *, double *);
int32_t gg_state_len(void);
int32_t gg_voices(gg_core *, double *, int32_t);
int gg_stamp(gg_core *, int64_t, double *);
int gg_callback(const void *, void *, unsigned long, const gg_timeinfo *, unsigned long, void *);
"""
STATE = ("t", "voices", "layer_active", "layer_fading", "layer_loops", "layer_crossfades", "layer_serial", "stolen", "nonfinite",
         "limited_blocks", "late_ops", "deferred_ops", "meter", "dropped_ops", "returns_lost", "monitor_lost", "callbacks",
         "frames", "device_underflows", "slow_callbacks", "max_callback_ms", "max_callback_gap_ms", "recent_handle", "recent_t", "started",
         "stalled_callbacks", "callback_busy_ms")
MONITOR_S = 8.0  # seconds of output the recorder's copy can fall behind before frames are lost (counted)

_lock = threading.Lock()
_loaded: tuple | None = None  # (ffi, lib) or (None, reason)


class CoreBuildError(RuntimeError):
    """The C core could not be built or loaded; the message says why in one line."""


def cache_dir() -> Path:
    env = os.environ.get("GESTUREGAN_CACHE")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gesturegan"
    return base


def _compiler() -> str | None:
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    return None


def build() -> Path:
    """The compiled core for this source, built now if it is not in the cache yet. Raises CoreBuildError."""
    src = SOURCE.read_bytes()
    tag = hashlib.sha256(src + " ".join(CFLAGS).encode() + sys.platform.encode()).hexdigest()[:16]
    out = cache_dir() / f"core-{tag}.so"
    if out.exists():
        return out
    cc = _compiler()
    if cc is None:
        raise CoreBuildError("no C compiler found (install gcc: apt-get install gcc)")
    with tempfile.TemporaryDirectory() as tmp:
        so = Path(tmp) / out.name
        r = subprocess.run([cc, *CFLAGS, "-o", str(so), str(SOURCE), "-lm"], capture_output=True, text=True)
        if r.returncode != 0:
            first = next((ln for ln in r.stderr.splitlines() if "error" in ln), r.stderr.strip()[:200])
            raise CoreBuildError(f"{cc} failed on {SOURCE.name}: {first}")
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(out, so.read_bytes(), unique=True)  # whole or not at all, even with two processes building at once
        except OSError as e:
            raise CoreBuildError(f"cannot write to {out.parent}: {e.strerror}") from None
    return out


def load():
    """(ffi, lib) of the C core, building it if needed. Raises CoreBuildError."""
    global _loaded
    with _lock:
        if _loaded is None:
            try:
                import cffi  # sounddevice's dependency; only when a core is made

                ffi = cffi.FFI()
                ffi.cdef(CDEF)
                lib = ffi.dlopen(str(build()))
                if lib.gg_state_len() != len(STATE):  # the two lists of counters must agree, or gg_state writes past the buffer
                    raise CoreBuildError(f"core.c reports {lib.gg_state_len()} counters, ccore.py names {len(STATE)}")
                _loaded = (ffi, lib)
            except CoreBuildError as e:
                _loaded = (None, str(e))
            except (OSError, ImportError) as e:
                _loaded = (None, f"cannot load the compiled core: {e}")
        if _loaded[0] is None:
            raise CoreBuildError(_loaded[1])
        return _loaded


_warned = False


def make_core(kind: str, sample_rate: int, channels: int, block_frames: int, **kw):
    """The core ``kind`` asks for: ``"c"`` (an error if it cannot be built), ``"python"``, or ``"auto"``
    (the C core, else the numpy one with a one-line note on stderr)."""
    global _warned
    if kind == "python":
        return PyCore(sample_rate, channels, block_frames, **kw)
    try:
        ffi, lib = load()
    except CoreBuildError as e:
        if kind == "c":
            raise
        if not _warned:
            print(f"gesturegan: the C audio core is not available ({e}); using the numpy core (more latency)", file=sys.stderr)
            _warned = True
        return PyCore(sample_rate, channels, block_frames, **kw)
    return CCore(ffi, lib, sample_rate, channels, block_frames, **kw)


@dataclass(frozen=True)
class VoiceView:
    """A voice as the C core had it when asked."""

    id: int
    channel: int | None
    note: int | None
    gain: float
    bend_ratio: float
    expression_gain: float
    pos: float
    releasing: bool
    started_at: int
    level: float


class CCore:
    """The C core behind :class:`~instrument.core.PyCore`'s interface (see :mod:`instrument.core`)."""

    kind = "c"

    def __init__(self, ffi, lib, sample_rate: int, channels: int, block_frames: int, *, voices_gain: float, layer_gain: float,
                 pitch: float, gain_db: float, ceiling_db: float, smoothing_s: tuple[float, float, float], xfade: int) -> None:
        self.ffi, self.lib = ffi, lib
        self.sample_rate, self.channels, self.block_frames = sample_rate, channels, block_frames
        n = [max(1, int(round(s * sample_rate))) for s in smoothing_s]
        self.ptr = lib.gg_new(sample_rate, channels, block_frames, int(MONITOR_S * sample_rate), voices_gain, layer_gain, pitch,
                              db_to_gain(gain_db), db_to_gain(ceiling_db), n[0], n[1], n[2], xfade)
        if self.ptr == ffi.NULL:
            raise MemoryError("the C core could not allocate its buffers")
        self._clips: dict[int, object] = {}  # handle -> (array, its cffi pointer), while the core may read it
        self._handles = itertools.count(1)
        self._state = ffi.new("double[]", len(STATE))
        self._returned = ffi.new("int64_t[]", 4096)
        self._stamp = ffi.new("double[2]")
        self._recent: tuple[int, np.ndarray] | None = None  # (handle, clip) of the last clip begun, kept past its return
        self._guard = threading.Lock()  # readers from any thread vs close(): nothing reads freed memory
        self._final: dict | None = None  # the state when closed

    # --- operations (one producer thread) ---------------------------------------------------------------
    def _hold(self, clip: np.ndarray) -> tuple[int, object, int]:
        arr = np.ascontiguousarray(clip, np.float32)
        h = next(self._handles)
        ptr = self.ffi.from_buffer("float[]", arr)
        self._clips[h] = (arr, ptr)
        return h, ptr, len(arr)

    def _sent(self, ok: int, h: int) -> None:
        if not ok:  # the queue was full: counted by the core (dropped_ops); the clip is ours again
            self._clips.pop(h, None)

    def start_voice(self, at, clip, ratio, gain, attack_n, release_n, note, channel, poly, steal_n) -> None:
        h, p, n = self._hold(clip)
        self._sent(self.lib.gg_start_voice(self.ptr, at, h, p, n, ratio, gain, attack_n, release_n, note, channel, poly, steal_n), h)

    def release(self, at: int, note: int = -1, channel: int = -1) -> None:
        self.lib.gg_release(self.ptr, at, note, channel)

    def express(self, at: int, channel: int, ratio: float, gain: float) -> None:
        self.lib.gg_express(self.ptr, at, channel, ratio, gain)

    def set(self, at: int, what: int, value: float) -> None:
        self.lib.gg_set(self.ptr, at, what, value)

    def layer_want(self, at: int, clip: np.ndarray, serial: int) -> None:
        h, p, n = self._hold(clip)
        self._sent(self.lib.gg_layer(self.ptr, 0, at, h, p, n, serial), h)

    def layer_next(self, at: int, clip: np.ndarray, serial: int) -> None:
        h, p, n = self._hold(clip)
        self._sent(self.lib.gg_layer(self.ptr, 1, at, h, p, n, serial), h)

    def layer_stop(self, at: int) -> None:
        self.lib.gg_layer_stop(self.ptr, at)

    def collect(self) -> None:
        """Let go of the clips the core handed back."""
        recent = None
        while True:
            k = self.lib.gg_collect(self.ptr, self._returned, 4096)
            if k and recent is None:
                self.lib.gg_state(self.ptr, self._state)
                recent = int(self._state[STATE.index("recent_handle")])
            for i in range(k):
                h = int(self._returned[i])
                held = self._clips.pop(h, None)
                if h == recent and held is not None:
                    self._recent = (h, held[0])
            if k < 4096:
                return

    # --- rendering (the consumer: offline, tests; live, the audio callback does it) ---------------------------
    def render(self, n: int) -> np.ndarray:
        out = np.empty((n, self.channels), np.float32)
        self.lib.gg_render(self.ptr, self.ffi.from_buffer("float[]", out), n)
        return out

    def render_blocks(self, out: np.ndarray, block: int) -> int:
        """Render consecutive blocks of ``block`` frames into ``out`` (``[k * block, channels]``, C-contiguous
        float32), stopping after a block in which the layer moved to another clip; returns how many blocks."""
        return int(self.lib.gg_render_blocks(self.ptr, self.ffi.from_buffer("float[]", out), len(out) // block, block))

    def monitor(self, on: bool) -> None:
        self.lib.gg_monitor(self.ptr, int(on))

    def monitor_read(self, max_frames: int = 8192) -> np.ndarray:
        """What the callback rendered since the last call, ``[frames, channels]`` (the recorder's copy)."""
        buf = np.empty((max_frames, self.channels), np.float32)
        n = self.lib.gg_monitor_read(self.ptr, self.ffi.from_buffer("float[]", buf), max_frames)
        return buf[:n]

    @property
    def callback(self) -> int:
        """The address of the PortAudio callback, and :attr:`userdata` for it."""
        return int(self.ffi.cast("uintptr_t", self.lib.gg_callback))

    @property
    def userdata(self) -> int:
        return int(self.ffi.cast("uintptr_t", self.ptr))

    def call_callback(self, out: np.ndarray, dac_time: float, underflow: bool = False) -> None:
        """Run the PortAudio callback as PortAudio would (tests, the in-memory sink)."""
        ti = self.ffi.new("gg_timeinfo *", {"outputBufferDacTime": dac_time, "currentTime": dac_time})
        self.lib.gg_callback(self.ffi.NULL, self.ffi.from_buffer("float[]", out), len(out), ti, 0x4 if underflow else 0, self.ptr)

    def stamp(self, k: int) -> tuple[float, float] | None:
        """(first engine sample, DAC time) of callback ``k``, while it is among the last 4096."""
        with self._guard:
            if self._final is not None or not self.lib.gg_stamp(self.ptr, k, self._stamp):
                return None
            return float(self._stamp[0]), float(self._stamp[1])

    # --- state (any thread) ---------------------------------------------------------------------------------
    @property
    def t(self) -> int:
        return int(self.lib.gg_now(self.ptr)) if self._final is None else self._final["t"]

    @property
    def layer_serial(self) -> int:
        return int(self.lib.gg_layer_serial(self.ptr)) if self._final is None else 0

    @property
    def meter(self) -> float:
        return self.state()["meter"]

    @property
    def recent(self) -> tuple[int, np.ndarray] | None:
        st = self.state()
        h = int(st["recent_handle"])
        held = self._clips.get(h)
        clip = held[0] if held is not None else (self._recent[1] if self._recent and self._recent[0] == h else None)
        return None if clip is None else (int(st["recent_t"]), clip)

    def state(self) -> dict:
        with self._guard:
            if self._final is not None:
                return dict(self._final)
            self.lib.gg_state(self.ptr, self._state)
        return {k: (float(self._state[i]) if k in ("meter", "max_callback_ms", "max_callback_gap_ms", "callback_busy_ms")
                    else int(self._state[i]))
                for i, k in enumerate(STATE)}

    def voice_views(self) -> list[VoiceView]:
        buf = self.ffi.new("double[]", 10 * 160)
        with self._guard:
            n = self.lib.gg_voices(self.ptr, buf, 160) if self._final is None else 0
        rows = np.frombuffer(self.ffi.buffer(buf), np.float64).reshape(160, 10)[:n]
        return [VoiceView(int(r[0]), None if r[1] < 0 else int(r[1]), None if r[2] < 0 else int(r[2]), float(r[3]), float(r[4]),
                          float(r[5]), float(r[6]), bool(r[7]), int(r[8]), float(r[9])) for r in rows]

    def close(self) -> None:
        """Free the core (after its stream is closed: the callback must not run any more)."""
        final = self.state()
        with self._guard:
            if self._final is None:
                self._final = final
                self.lib.gg_free(self.ptr)
                self.ptr = self.ffi.NULL
                self._clips.clear()


def main() -> int:
    """Build the C core ahead (the install script runs this) and say where it is, or why not (exit 0 either way)."""
    try:
        print(f"the C audio core: {build()}")
    except CoreBuildError as e:
        print(f"the C audio core is not available: {e}; the engine will use its numpy core", file=sys.stderr)
    return 0
