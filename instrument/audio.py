"""Audio output: the callbacks, and the sinks the engine plays into.

**With the C core** (:mod:`instrument.ccore`, the default where it builds) PortAudio calls the core's own C
callback (:meth:`SoundDeviceSink.start_native`): it renders the block there, without Python. **Whose
underrun**, then: every callback renders, so a dropout is a late callback or the device's own. A callback
that took longer than its period is the engine's (*engine_underruns*) when its thread worked that long
(CPU time), the host's (*host_stalls*) when it was preempted; a device underflow after callbacks that were
on time (PortAudio's ``output_underflow``, a JACK xrun) is the host's (*device_underflows*). *underruns* is
all three: every dropout the listener may have heard.

**With the numpy core** the engine thread renders ahead into a ring buffer and the callback
(:func:`make_callback`) only copies from it: it fills any shortfall with silence and counts an underrun,
and notes the block's output (DAC) time in a preallocated array. No locks, no logging, no allocation
beyond numpy's slice views, no I/O. An underrun is the engine's unless the host stalled: when the machine
stops every thread for longer than the buffer, the device itself underflows and, after the stall, JACK's
timed drivers run the missed cycles back to back, draining any buffer. :meth:`_Sink.classify` (off the
audio thread, after each block) calls an underrun *engine_underruns* only when no device underflow came
within ``XRUN_WINDOW`` callbacks of it.

**Sinks** share one small interface: ``block_frames``, ``start(ring)``, ``stop()``, ``close()``,
``stats()``.

- :class:`SoundDeviceSink` plays on a sound card through sounddevice/PortAudio. :meth:`~SoundDeviceSink.lost`
  says when the device has gone (unplugged, or its JACK server killed: the callbacks stop); closing
  such a stream is given ``CLOSE_TIMEOUT_S`` and then abandoned, so a lost device never hangs the exit.
- :class:`MemorySink` drives the same callbacks from a test, collecting the output in memory.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from .ringbuffer import RingBuffer

TIMESTAMPS = 4096  # (first frame, DAC time) of the last blocks, for latency measurement

UNDERRUNS, DEVICE_UNDERFLOWS, CALLBACKS, FRAMES = range(4)
EVENT_LOG = 1024  # callback numbers of the last underruns and device underflows
XRUN_WINDOW = 32  # callbacks (85 ms at 128 frames / 48 kHz) either side of a device underflow
LOST_AFTER_S = 1.0  # no callback for this long while playing: the device, or its audio server, is gone
CLOSE_TIMEOUT_S = 2.0  # PortAudio may never return from closing a stream whose server died: we stop waiting


class AudioDeviceError(RuntimeError):
    """No usable audio device, a rate it cannot do, or a device that is busy; the message lists devices."""


def make_callback(ring: RingBuffer, counters: np.ndarray, stamps: np.ndarray, events: np.ndarray):
    """A sounddevice output callback that only copies. ``counters`` (int64 [4]), ``stamps``
    (float64 [TIMESTAMPS, 2]) and ``events`` (int64 [2, EVENT_LOG]: the callback numbers of underruns, of
    device underflows) are preallocated by the caller and read by other threads."""

    def callback(outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        n = counters[CALLBACKS]
        k = n % TIMESTAMPS
        stamps[k, 0] = ring.frames_read  # the engine sample this block starts with (silence from an underrun shifts nothing)
        stamps[k, 1] = time_info.outputBufferDacTime
        got = ring.readinto(outdata)
        if got < frames:
            outdata[got:] = 0.0
            events[0, counters[UNDERRUNS] % EVENT_LOG] = n
            counters[UNDERRUNS] += 1
        if status.output_underflow:
            events[1, counters[DEVICE_UNDERFLOWS] % EVENT_LOG] = n
            counters[DEVICE_UNDERFLOWS] += 1
        counters[CALLBACKS] += 1
        counters[FRAMES] += frames

    return callback


def _near(callback: int, xruns: np.ndarray) -> bool:
    """Whether a device underflow came within ``XRUN_WINDOW`` callbacks of ``callback``."""
    return bool(xruns.size) and bool((np.abs(xruns - callback) <= XRUN_WINDOW).any())


class _Sink:
    block_frames: int

    def __init__(self) -> None:
        self.native = None  # the C core, when its callback renders straight into the device (start_native)
        self.counters = np.zeros(4, np.int64)
        self.stamps = np.zeros((TIMESTAMPS, 2), np.float64)
        self.events = np.full((2, EVENT_LOG), -10**9, np.int64)
        self._classify_lock = threading.Lock()
        self._judged = 0  # underruns judged so far (in callback order)
        self._engine_judged = 0  # of those, the engine's

    def classify(self) -> None:
        """Decide, for each underrun old enough (more than ``XRUN_WINDOW`` callbacks since it), whether a
        device underflow came near it. Called off the audio thread (the engine thread after each block, and
        :meth:`stats`), so each underrun is judged while the xruns around it are still in the log: judged
        only at query time, after more than ``EVENT_LOG`` xruns the older underruns were compared with
        the recent xruns alone and all counted as the engine's. Underruns that fell out of the log before
        being judged count as the engine's."""
        with self._classify_lock:
            self._classify(int(self.counters[CALLBACKS]) - XRUN_WINDOW - 1)

    def _classify(self, upto: int) -> None:
        n_under = int(self.counters[UNDERRUNS])
        i = self._judged
        if n_under - i > EVENT_LOG:  # overwritten before they were judged
            self._engine_judged += n_under - EVENT_LOG - i
            i = n_under - EVENT_LOG
        if i >= n_under:
            return
        xruns = self._xruns()
        while i < n_under:
            c = int(self.events[0, i % EVENT_LOG])
            if c > upto:
                break
            self._engine_judged += not _near(c, xruns)
            i += 1
        self._judged = i

    def _xruns(self) -> np.ndarray:
        """The callback numbers of the logged device underflows."""
        return self.events[1, :min(int(self.counters[DEVICE_UNDERFLOWS]), EVENT_LOG)]

    def engine_underruns(self) -> int:
        """Underruns with no device underflow within ``XRUN_WINDOW`` callbacks: the engine's own (see the
        module docstring). Those from the last ``XRUN_WINDOW`` callbacks are judged on the xruns seen so far."""
        with self._classify_lock:
            self._classify(int(self.counters[CALLBACKS]) - XRUN_WINDOW - 1)
            judged, engine = self._judged, self._engine_judged
            n_under, xruns = int(self.counters[UNDERRUNS]), self._xruns()
            for i in range(max(judged, n_under - EVENT_LOG), n_under):  # the recent ones, provisionally
                engine += not _near(int(self.events[0, i % EVENT_LOG]), xruns)
            return engine

    def stats(self) -> dict:
        if self.native is not None:  # the C callback: its own accounting (see the module docstring)
            st = self.native.state()
            slow, stalled, under = st["slow_callbacks"], st["stalled_callbacks"], st["device_underflows"]
            return {"underruns": slow + stalled + under, "engine_underruns": slow, "device_underflows": under, "host_stalls": stalled,
                    "callbacks": st["callbacks"], "frames": st["frames"], "max_callback_ms": st["max_callback_ms"],
                    "max_callback_gap_ms": st["max_callback_gap_ms"]}
        c = self.counters
        return {"underruns": int(c[UNDERRUNS]), "engine_underruns": self.engine_underruns(),
                "device_underflows": int(c[DEVICE_UNDERFLOWS]), "callbacks": int(c[CALLBACKS]), "frames": int(c[FRAMES])}

    def _callbacks(self) -> int:
        return self.native.state()["callbacks"] if self.native is not None else int(self.counters[CALLBACKS])

    def _stamp(self, i: int) -> tuple[float, float] | None:
        """(first engine sample, DAC time) of callback ``i``."""
        if self.native is not None:
            return self.native.stamp(i)
        k = i % TIMESTAMPS
        return float(self.stamps[k, 0]), float(self.stamps[k, 1])

    def dac_time_of(self, frame: int) -> float | None:
        """The output time of engine sample ``frame``, from the callback's stamps, or None if that block
        is not (or no longer) among them."""
        n = self._callbacks()
        for i in range(n - 1, max(0, n - TIMESTAMPS) - 1, -1):
            st = self._stamp(i)
            if st is not None and st[0] <= frame:
                return float(st[1] + (frame - st[0]) / self.sample_rate)
        return None

    def frame_at_dac(self, dac_time: float) -> float | None:
        """The engine sample that plays at ``dac_time`` (stream clock), from the latest callback's stamp."""
        n = self._callbacks()
        st = self._stamp(n - 1) if n else None
        return None if st is None else float(st[0] + (dac_time - st[1]) * self.sample_rate)


class _Status:
    output_underflow = False


class _Time:
    def __init__(self, t: float) -> None:
        self.outputBufferDacTime = t
        self.currentTime = t


class MemorySink(_Sink):
    """A sink for tests: :meth:`pull` runs the real callback block by block, waiting (not real time) until
    the engine has rendered each block, and keeps what came out."""

    def __init__(self, sample_rate: int, block_frames: int, channels: int = 2, wait: bool = True) -> None:
        super().__init__()
        self.sample_rate, self.block_frames, self.channels, self.wait = sample_rate, block_frames, channels, wait
        self.ring: RingBuffer | None = None
        self._callback = None
        self.blocks: list[np.ndarray] = []

    def start(self, ring: RingBuffer) -> None:
        self.ring = ring
        self._callback = make_callback(ring, self.counters, self.stamps, self.events)

    def start_native(self, core, before=None, after=None) -> None:
        """Play the C core's own callback. ``before(frames)`` / ``after()`` run around each block (a sync
        engine's control, in this thread); without them the engine's thread feeds the core and :meth:`pull`
        keeps to real time, as a device would."""
        self.native, self._hooks = core, (before, after)
        self._next_due = time.monotonic()

    def _pull_native(self, n_blocks: int) -> np.ndarray:
        before, after = self._hooks
        out = np.empty((n_blocks * self.block_frames, self.channels), np.float32)
        period = self.block_frames / self.sample_rate
        for i in range(n_blocks):
            if before is not None:
                before(self.block_frames)
            elif self.wait:
                self._next_due = max(self._next_due + period, time.monotonic() - 0.05)
                time.sleep(max(0.0, self._next_due - time.monotonic()))
            buf = out[i * self.block_frames:(i + 1) * self.block_frames]
            self.native.call_callback(buf, self._callbacks() * period)
            if after is not None:
                after()
        self.blocks.append(out)
        return out

    def pull(self, n_blocks: int, timeout: float = 10.0) -> np.ndarray:
        if self.native is not None:
            return self._pull_native(n_blocks)
        assert self.ring is not None and self._callback is not None, "start the engine first"
        out = []
        for _ in range(n_blocks):
            deadline = time.monotonic() + timeout
            while self.wait and self.ring.read_available < self.block_frames and time.monotonic() < deadline:
                time.sleep(0.0002)
            buf = np.empty((self.block_frames, self.channels), np.float32)
            self._callback(buf, self.block_frames, _Time(self.counters[FRAMES] / self.sample_rate), _Status())
            out.append(buf)
        self.blocks += out
        return np.concatenate(out)

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass


def list_devices() -> str:
    """The output devices PortAudio sees, one per line (or why there are none)."""
    try:
        import sounddevice as sd  # PortAudio: loaded only for a live stream (offline rendering needs none)

        devices = sd.query_devices()
        apis = sd.query_hostapis()
    except Exception as e:  # noqa: BLE001 - PortAudio missing or broken: say so
        return f"  (PortAudio is not usable: {e})"
    lines = []
    for i, d in enumerate(devices):
        if d["max_output_channels"] > 0:
            lines.append(f"  {i:>3}  {d['name']}  [{apis[d['hostapi']]['name']}], {d['max_output_channels']} out, "
                         f"default {d['default_samplerate']:.0f} Hz")
    return "\n".join(lines) if lines else "  (no output devices: is a sound card or a JACK server there?)"


class SoundDeviceSink(_Sink):
    """Plays on an output device through sounddevice. ``device``: index, name substring, or None (the
    default output)."""

    def __init__(self, sample_rate: int, block_frames: int, channels: int = 2, device: int | str | None = None,
                 latency: str | float = "low") -> None:
        super().__init__()
        try:
            import sounddevice as sd  # PortAudio: loaded only for a live stream (offline rendering needs none)
        except OSError as e:  # sounddevice raises OSError when the PortAudio library itself is missing
            raise AudioDeviceError(f"PortAudio is not available ({e}); install it (Debian/Ubuntu: apt-get install "
                                   "libportaudio2) and try again") from None

        self.sample_rate, self.block_frames, self.channels, self.device = sample_rate, block_frames, channels, device
        try:
            sd.check_output_settings(device=device, samplerate=sample_rate, channels=channels, dtype="float32")
        except Exception as e:  # noqa: BLE001 - PortAudioError or ValueError, with PortAudio's own words
            raise AudioDeviceError(f"cannot play on device {device if device is not None else '(default)'} at {sample_rate} Hz, "
                                   f"{channels} channels: {e}\noutput devices:\n{list_devices()}") from None
        self._sd = sd
        self._latency = latency
        self.stream = None
        self.output_latency_s: float | None = None
        self._progress = (0, 0.0)  # (callbacks seen, when): callbacks that stop coming mean the device is gone
        self.lost_reason: str | None = None
        self.abandoned = False  # PortAudio did not return from closing the stream (its server died under it)

    def start(self, ring: RingBuffer) -> None:
        """Play the ring buffer through the Python callback (the numpy core)."""
        self._open(lambda sd, kw: sd.OutputStream(**kw, callback=make_callback(ring, self.counters, self.stamps, self.events)))

    def start_native(self, core) -> None:
        """Play with the C core's callback (no Python on the audio thread): PortAudio calls it with the core as userdata."""
        self.native = core
        self._open(lambda sd, kw: sd._StreamBase(kind="output", **kw, callback=sd._ffi.cast("PaStreamCallback *", core.callback),
                                                 userdata=sd._ffi.cast("void *", core.userdata), wrap_callback=None))

    def _open(self, make) -> None:
        """Open and start the stream ``make(sounddevice, settings)`` returns; a failure is one AudioDeviceError."""
        settings = dict(samplerate=self.sample_rate, blocksize=self.block_frames, channels=self.channels, dtype="float32",
                        device=self.device, latency=self._latency)
        try:
            self.stream = make(self._sd, settings)
            self.stream.start()
        except Exception as e:  # noqa: BLE001
            raise AudioDeviceError(f"cannot open the output stream (busy or gone?): {e}\noutput devices:\n{list_devices()}") from None
        self.output_latency_s = float(self.stream.latency)
        self._progress = (self._callbacks(), time.monotonic())

    def lost(self) -> str | None:
        """Why the device stopped playing, or None while it plays (any thread, cheap): the stream went
        inactive without being stopped, or no callback came for ``LOST_AFTER_S``. Once lost, stays lost."""
        if self.lost_reason is not None or self.stream is None:
            return self.lost_reason
        n, now = self._callbacks(), time.monotonic()
        if n != self._progress[0]:
            self._progress = (n, now)
            return None
        try:
            active = bool(self.stream.active)
        except Exception:  # noqa: BLE001 - PortAudio's own error about a dead stream is an answer too
            active = False
        if not active:
            self.lost_reason = "the output stream stopped by itself (the device or its audio server went away)"
        elif now - self._progress[1] > LOST_AFTER_S:
            self.lost_reason = f"no audio callback for {now - self._progress[1]:.1f} s (the device or its audio server went away)"
        return self.lost_reason

    def stream_time(self) -> float:
        """The stream clock, the one ``dac_time_of`` answers in."""
        return float(self.stream.time) if self.stream is not None else 0.0

    def unix_offset(self) -> float:
        """``time.time()`` minus the stream clock, read now. The two clocks are read back to back; a pair
        that took longer than 0.2 ms (the thread was preempted between them) is read again, up to 5
        times, keeping the tightest, so a stall cannot shift the mapping by milliseconds."""
        best = (float("inf"), 0.0)
        for _ in range(5):
            t1 = time.time()
            st = float(self.stream.time)
            t2 = time.time()
            best = min(best, (t2 - t1, (t1 + t2) / 2 - st))
            if best[0] < 0.0002:
                break
        return best[1]

    def frame_at_unix(self, unix_time: float) -> float | None:
        """The engine sample that plays at ``unix_time`` (the clock of OSC time tags). The clocks are
        correlated each call (:meth:`unix_offset`), so a slewed system clock is followed."""
        if self.stream is None:
            return None
        return self.frame_at_dac(unix_time - self.unix_offset())

    def stop(self) -> None:
        if self.stream is not None and not self._bounded(self.stream.abort if self.lost_reason else self.stream.stop):
            self.abandoned = True

    def close(self) -> None:
        if self.stream is not None:
            stream = self.stream
            self.stop()
            if not self.abandoned and not self._bounded(stream.close):
                self.abandoned = True
            self.stream = None

    @staticmethod
    def _bounded(call) -> bool:
        """Run a PortAudio call that may never return (a stream whose JACK server died) for at most
        ``CLOSE_TIMEOUT_S``; whether it returned. Its errors are ignored: this is the way out."""

        def run() -> None:
            try:
                call()
            except Exception:  # noqa: BLE001 - stopping a dead stream must not raise on the way out
                pass

        t = threading.Thread(target=run, name="gesturegan-stream-close", daemon=True)
        t.start()
        t.join(CLOSE_TIMEOUT_S)
        return not t.is_alive()
