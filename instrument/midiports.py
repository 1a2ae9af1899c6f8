"""MIDI ports: the rtmidi inputs a controller listens to (by name, substring, "all", or a virtual input of
our own), and hot-plug. The bytes go to a callback (:meth:`instrument.midi.MidiController.handle`); this
module knows nothing of what they mean.

Input goes through python-rtmidi directly, with ``ignore_types(sysex, timing, active_sense)`` on, so a
sysex flood, MIDI clock and active sensing are dropped inside RtMidi before Python sees them.

**Hot-plug**: a monitor thread looks at the port list every ``poll_s``; a port that vanished is closed and
reported, and reopened when a port of that name (or matching that substring) comes back. The sound does
not stop: only this module notices. The same thread runs the controller's deferred work (program
changes: a preset is a file to read, not for RtMidi's callback thread, which with the JACK API is JACK's
own process thread) whenever :meth:`MidiInputs.wake` is called.

**APIs**: ``auto`` is ALSA where ``/dev/snd/seq`` exists, else JACK (the test machines, and JACK rigs);
``jack``/``alsa``/``coremidi``/``winmm`` insist.

**No Python in JACK's process thread.** With the JACK API, RtMidi calls an input callback from JACK's real-time
process thread, and a Python callback there must take the GIL: whenever another thread held it, the MIDI client
finished late and JACK counted an xrun for the whole graph (131 in 15 s under a 100/s CC stream, measured).
So with JACK no callback is set: RtMidi queues the messages (C++, no Python) and a reader thread of ours
(real-time priority where allowed, :func:`instrument.realtime.raise_control_thread`) takes them every
``READ_EVERY_S``. The other APIs call back from a thread of RtMidi's own, as before.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable

from .realtime import raise_control_thread

log = logging.getLogger("gesturegan.midi")

CLIENT_NAME = "gesturegan"
POLL_S = 1.0
READ_EVERY_S = 0.0005  # JACK: how often the reader takes messages from RtMidi's queue (adds 0.25 ms on average)
QUEUE_SIZE = 4096  # messages RtMidi keeps for the reader


class MidiError(RuntimeError):
    """No MIDI API, or a port that cannot be opened: the message lists the ports."""


def _rtmidi():
    try:
        import rtmidi  # the system's MIDI libraries: only when MIDI is used
    except ImportError as e:  # pragma: no cover - a dependency
        raise MidiError(f"python-rtmidi is not installed: {e}") from None
    return rtmidi


def api_id(name: str = "auto") -> int:
    rt = _rtmidi()
    apis = {"jack": rt.API_UNIX_JACK, "alsa": rt.API_LINUX_ALSA, "coremidi": rt.API_MACOSX_CORE, "winmm": rt.API_WINDOWS_MM}
    if name == "auto":
        if os.path.exists("/dev/snd/seq"):
            return rt.API_LINUX_ALSA
        return rt.API_UNIX_JACK if rt.API_UNIX_JACK in rt.get_compiled_api() else rt.API_UNSPECIFIED
    if name not in apis:
        raise MidiError(f"unknown MIDI API {name!r}: use auto, {', '.join(apis)}")
    if apis[name] not in rt.get_compiled_api():
        raise MidiError(f"this python-rtmidi has no {name} support (it has: "
                        f"{', '.join(rt.get_api_name(a) for a in rt.get_compiled_api())})")
    return apis[name]


def input_names(api: str = "auto") -> list[str]:
    """The MIDI inputs there are now (mido's listing, on the chosen API)."""
    import mido  # with rtmidi's backend: only when MIDI is used

    rt = _rtmidi()
    wanted = api_id(api)
    mido_name = next((a[4:] for a in dir(rt) if a.startswith("API_") and getattr(rt, a) == wanted), None)  # UNIX_JACK
    backend = mido.Backend("mido.backends.rtmidi", api=mido_name if wanted != rt.API_UNSPECIFIED else None)
    try:
        return list(backend.get_input_names())
    except Exception as e:  # noqa: BLE001 - no server, no sequencer: say so
        raise MidiError(f"cannot list MIDI inputs ({api}): {e}") from None


class MidiInputs:
    """The open inputs (``ports``: name -> rtmidi.MidiIn), the connect/disconnect history (``events``) and
    the monitor thread. ``on_message(bytes)`` gets every message, on RtMidi's thread (JACK: our reader thread); ``on_wake()`` runs on
    the monitor thread after each :meth:`wake`; ``stats`` counts ``disconnects`` and ``reconnects``."""

    def __init__(self, on_message: Callable[[list[int]], None], stats: Any, on_wake: Callable[[], None] = lambda: None) -> None:
        self.on_message, self.stats, self.on_wake = on_message, stats, on_wake
        self.ports: dict[str, Any] = {}
        self.wanted: list[str] = []
        self.virtual: str | None = None
        self.api = "auto"
        self.poll_s = POLL_S
        self.events: list[str] = []  # connect/disconnect history, for the status view and tests
        self.running = False
        self._monitor: threading.Thread | None = None
        self._scanner = None
        self._wake = threading.Event()
        self._polled = False  # JACK: the reader thread takes the messages (no Python in JACK's process thread)
        self._reader: threading.Thread | None = None
        self._ports_lock = threading.Lock()  # the reader vs the hot-plug thread closing a port

    def wake(self) -> None:
        """Have the monitor thread run ``on_wake`` now."""
        self._wake.set()

    def open(self, ports: list[str], api: str = "auto", virtual: str | None = None, poll_s: float = POLL_S) -> "MidiInputs":
        """Connect ``ports`` (exact names or substrings; "all" for every input) and, with ``virtual``, make a
        virtual input of that name for DAWs and other programs to connect to. Ports not there yet are
        connected when they appear."""
        self.api, self.wanted, self.virtual, self.poll_s = api, list(ports), virtual, poll_s
        rt = _rtmidi()
        apiid = api_id(api)
        self._polled = apiid == rt.API_UNIX_JACK
        try:
            self._scanner = rt.MidiIn(apiid, name=f"{CLIENT_NAME}-scan")
        except Exception as e:  # noqa: BLE001 - rtmidi raises SystemError/RuntimeError with the reason
            raise MidiError(f"cannot use MIDI ({api}): {e} (is the JACK server or ALSA sequencer running?)") from None
        if virtual:
            port = self._input_port()
            port.open_virtual_port(virtual)
            self.ports[f"virtual:{virtual}"] = port
        missing = [w for w in self.wanted if w != "all" and not any(self._matches(w, n) for n in self._scanner.get_ports())]
        self._scan()
        if missing and not virtual and not self.ports:
            log.warning("MIDI: no input matches %s yet (waiting for it); inputs now: %s", ", ".join(missing),
                        ", ".join(self._scanner.get_ports()) or "(none)")
        self.running = True
        self._monitor = threading.Thread(target=self._watch, name="gesturegan-midi-hotplug", daemon=True)
        self._monitor.start()
        if self._polled:
            self._reader = threading.Thread(target=self._read, name="gesturegan-midi-in", daemon=True)
            self._reader.start()
        return self

    def _read(self) -> None:
        """JACK: take what RtMidi queued, every ``READ_EVERY_S``."""
        raise_control_thread()
        while self.running:
            with self._ports_lock:
                for port in self.ports.values():
                    while (m := port.get_message()) is not None:
                        self.on_message(m[0])
            time.sleep(READ_EVERY_S)

    def _input_port(self):
        """A new rtmidi input of our client that hands every message to :meth:`handle` (sysex, clock and
        active sensing are dropped inside RtMidi); the caller opens it."""
        port = _rtmidi().MidiIn(api_id(self.api), name=CLIENT_NAME, queue_size_limit=QUEUE_SIZE)
        port.ignore_types(True, True, True)
        if not self._polled:
            port.set_callback(self._callback)
        return port

    @staticmethod
    def _matches(want: str, name: str) -> bool:
        return want == "all" or want == name or want.lower() in name.lower()

    def _callback(self, event: tuple, data: Any = None) -> None:
        self.on_message(event[0])

    def _scan(self) -> None:
        names = self._scanner.get_ports() if self._scanner is not None else []
        for name in [n for n in self.ports if not n.startswith("virtual:") and n not in names]:
            with self._ports_lock:
                port = self.ports.pop(name)
            try:
                port.close_port()
                port.delete()
            except Exception:  # noqa: BLE001 - it is gone already
                pass
            self.stats.disconnects += 1
            self.events.append(f"disconnected {name}")
            log.warning("MIDI: %s disconnected (will reconnect when it returns)", name)
        for i, name in enumerate(names):
            if name in self.ports or name.startswith(CLIENT_NAME) or not any(self._matches(w, name) for w in self.wanted):
                continue
            try:
                port = self._input_port()
                port.open_port(i)
            except Exception as e:  # noqa: BLE001 - it went away between the listing and the open
                log.warning("MIDI: cannot open %s: %s", name, e)
                continue
            again = any(e == f"disconnected {name}" for e in self.events)
            with self._ports_lock:
                self.ports[name] = port
            if again:
                self.stats.reconnects += 1
            self.events.append(f"{'reconnected' if again else 'connected'} {name}")
            log.warning("MIDI: %s %s", "reconnected" if again else "connected", name)

    def _watch(self) -> None:
        """The monitor thread: ``on_wake`` when woken, the port list once per ``poll_s``."""
        next_scan = time.monotonic() + self.poll_s
        while self.running:
            self._wake.wait(max(0.0, next_scan - time.monotonic()))
            self._wake.clear()
            if not self.running:
                break
            self.on_wake()
            if time.monotonic() >= next_scan:
                next_scan = time.monotonic() + self.poll_s
                try:
                    self._scan()
                except Exception as e:  # noqa: BLE001 - the monitor must outlive a driver hiccup
                    log.warning("MIDI: port scan failed: %s", e)

    def close(self) -> None:
        self.running = False
        self._wake.set()
        for th in (self._monitor, self._reader):
            if th is not None:
                th.join(timeout=5)
        self._monitor = self._reader = None
        for port in self.ports.values():
            try:
                port.cancel_callback()
                port.close_port()
                port.delete()
            except Exception:  # noqa: BLE001
                pass
        self.ports.clear()
        if self._scanner is not None:
            self._scanner.delete()
            self._scanner = None
