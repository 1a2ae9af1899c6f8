"""OSC control: the address space (a view of the parameter table) and its router.

**Routing is separate from the socket**: :class:`OscRouter` turns packets into engine commands, replies,
pushes and rate limits (a test drives it without a network); :class:`instrument.oscserver.OscServer` (one
UDP socket, one thread) and the WebSocket clients of :mod:`instrument.webserver` hand it packets in order.

**Types.** Numbers may come as ``i``, ``h``, ``f`` or ``d`` interchangeably (Pd sends floats, sclang sends
ints for integer literals); ``T``/``F`` are 1/0; a name (a category, a choice, a preset) is a string or
symbol, and a category may also be its index. NaN/Inf are refused. Replies use only ``i``, ``f`` and ``s``.

**Time tags.** A bundle's time tag is turned into an engine sample with :meth:`Engine.sample_at` (the
audio callback's own DAC timestamps), and its messages are posted for that sample: the engine applies
them there, sample-accurately; nothing sleeps. A bundle whose time has already gone by (or is closer than
the output buffer) is applied at once and counted as late; "immediately" applies at once.

**Bad input** (malformed packets, unknown addresses, wrong arguments, NaN/Inf, refused values) is counted by
kind, logged at most once per ``LOG_INTERVAL_S``, answered with ``/gesturegan/error`` at a bounded rate, and ignored.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

from . import telemetry
from .control import Controls
from .oscwire import OscArgError, OscIn, OscParseError, arg_count, arg_value, encode, integer, number, parse_packet
from .params import ParamError
from .presets import PresetError, PresetLibrary, recall
from .telemetry import RateLimitedLog, status_args

log = logging.getLogger("gesturegan.osc")

PREFIX = "/gesturegan"
DEFAULT_OSC_PORT = 9000  # not 57120 (sclang) or 57110 (scsynth)
LOG_INTERVAL_S = 5.0
ERROR_REPLIES_PER_S = 20
MAX_AHEAD_S = 600.0  # a time tag further ahead than this is refused (a wrong clock, not a plan)
MAX_PUSH_HZ = 30.0


class OscConfigError(ValueError):
    """A server that cannot start as asked: port taken, bad host or allow-list."""


@dataclass
class OscStats:
    packets: int = 0
    bundles: int = 0
    messages: int = 0
    handled: int = 0
    scheduled: int = 0  # messages posted for a later sample by their bundle's time tag
    late: int = 0  # messages whose time tag had gone by: applied at once
    malformed: int = 0  # packets that are not OSC
    unknown_address: int = 0
    bad_args: int = 0  # wrong count/type, NaN/Inf, refused values
    denied: int = 0  # packets from outside the allow-list
    replies: int = 0
    errors_logged: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Route:
    address: str
    args: str  # the signature, for people: "value", "[category] [velocity] [pitch]"
    doc: str
    handler: Callable[[tuple, int | None, Any], None]  # (args, at sample or None, sender)
    timed: bool = True  # whether a bundle's time tag schedules it (commands that do I/O run on arrival)
    types: str = ""  # the OSC type tags of its fullest form ("" = no arguments): OSCQuery's TYPE


class OscRouter:
    """The address space of one engine: ``/gesturegan/param/<id>`` for every parameter, plus commands.
    ``send(data, to)`` delivers replies (the server sets it); ``midi`` enables ``/learn``."""

    def __init__(self, engine: Controls, *, presets: PresetLibrary | None = None, midi: Any = None,
                 prefix: str = PREFIX, reply_to: tuple[str, int] | None = None) -> None:
        self.engine, self.presets, self.midi, self.prefix = engine, presets or PresetLibrary(), midi, prefix
        self.stats = OscStats()
        self.send: Callable[[bytes, tuple[str, int]], None] | None = None
        self.reply_to = reply_to
        self.pushes: dict[tuple[str, int], list[float]] = {}  # target -> [period, next time]
        self._log = RateLimitedLog(log, LOG_INTERVAL_S)
        self.lock = threading.RLock()  # packets from the UDP server and the WebSocket clients, one at a time
        self._error_budget = [0.0, float(ERROR_REPLIES_PER_S)]  # (last refill, tokens)
        self.routes: dict[str, Route] = {}
        self._build()

    # --- the address space ---------------------------------------------------------------------------------

    def _add(self, path: str, args: str, doc: str, handler: Callable, timed: bool = True, types: str = "") -> None:
        addr = f"{self.prefix}/{path}"
        self.routes[addr] = Route(addr, args, doc, handler, timed, types)

    def _build(self) -> None:
        eng = self.engine
        for p in eng.table:
            self._add(f"param/{p.id}", "value", f"set `{p.id}`: {p.describe()}{p.unit_suffix} ({p.doc})",
                      lambda a, at, s, pid=p.id: (arg_count(a, 1), eng.set(pid, arg_value(a[0]), at)))
        cats = ", ".join(eng.info.categories)
        self._add("trigger", "[category] [velocity] [pitch]",
                  f"play a one-shot gesture: category by name ({cats}) or index, or `mix` / none for the current mix; "
                  "velocity 0..1 (gain = velocity squared, default 1); pitch in semitones (default 0)", self._trigger)
        self._add("note", "note velocity [category]",
                  "MIDI-style note: note 0..127 (pitch relative to 60), velocity 0..127 (0 = note off)", self._note)
        self._add("note_off", "note", "release the voices of a note", lambda a, at, s: (arg_count(a, 1), eng.note_off(integer(a[0], "note"), at)))
        self._add("all_notes_off", "", "release every one-shot voice", lambda a, at, s: (arg_count(a, 0), eng.all_notes_off(at)))
        self._add("latent", "[latent_dim numbers]",
                  "set the whole base latent (replacing the seed's); no arguments: back to the seed's", self._latent)
        self._add("category", "one weight per category | name",
                  "set the whole category mix (normalised; switches mix_mode to weights), or one pure category by name", self._category)
        self._add("morph", "x y", "move the XY pad (0..1 each; corners are the first four categories; switches mix_mode to xy)",
                  lambda a, at, s: (arg_count(a, 2), eng.morph(number(a[0], "x"), number(a[1], "y"), at)))
        self._add("ramp", "param to seconds [from]",
                  "move a parameter to `to` over `seconds` (0..3600), from `from` or from its value when the ramp begins; "
                  "the engine steps it 20 times a second and the gains glide between", self._ramp)
        self._add("morph/path", "seconds x y [x y ...]", "move the XY pad along the points over `seconds` (switches mix_mode to xy)",
                  self._morph_path)
        self._add("seed", "seed", "choose the base latent by seed (as /param/seed)",
                  lambda a, at, s: (arg_count(a, 1), eng.set("seed", arg_value(a[0]), at)))  # the table checks, as for /param/seed
        self._add("layer", "on", "the continuous layer on (1) or off (0) (as /param/layer)",
                  lambda a, at, s: (arg_count(a, 1), eng.set("layer", arg_value(a[0]), at)))
        self._add("preset", "name", "recall a preset by name (all its values at one sample)", self._preset)
        self._add("preset/save", "name", "save the current values as a preset (in the user's preset folder)", self._preset_save, timed=False)
        self._add("preset/list", "", "reply /gesturegan/preset/list with the preset names", self._preset_list, timed=False)
        self._add("model", "path", "hot-swap to another model file (loaded in the background, crossfaded); "
                  "replies /gesturegan/model ok|error path [message]", self._model, timed=False)
        self._add("record/start", "[path.wav]", "record the output to a WAV (default: gesturegan-<time>.wav here)", self._record_start, timed=False)
        self._add("record/stop", "", "stop recording; replies /gesturegan/record path seconds", self._record_stop, timed=False)
        self._add("learn", "param", "MIDI learn: the next control moved on the MIDI controller is bound to `param` "
                  "and saved to the map file; replies /gesturegan/learn param binding", self._learn, timed=False)
        self._add("learn/cancel", "", "disarm MIDI learn", self._learn_cancel, timed=False)
        self._add("status", "", "reply with the telemetry: one /gesturegan/status/<name> message per value (see the docs)",
                  lambda a, at, s: self.reply_status(self._target(s)), timed=False)
        self._add("status/push", "rate_hz", f"push the status to the sender this many times a second (0 = stop, at most {MAX_PUSH_HZ:g})",
                  self._push, timed=False)
        self._add("reply", "[host] port", "send replies to this address instead of the sender's; no arguments: back to the sender",
                  self._reply, timed=False)
        self._add("addresses", "", "reply with the address space: /gesturegan/address path args doc, then /gesturegan/addresses count",
                  self._addresses, timed=False)
        self._add("ping", "", "reply /gesturegan/pong", lambda a, at, s: self._send(f"{self.prefix}/pong", (), self._target(s)), timed=False)
        # each command's OSC types in its fullest form (OSCQuery's TYPE; the parameters' come from their kind)
        n, dim = eng.info.n_categories, eng.info.latent_dim
        for path, types in (("trigger", "sff"), ("note", "ifs"), ("note_off", "i"), ("latent", "f" * dim), ("category", "f" * n),
                            ("morph", "ff"), ("ramp", "sfff"), ("morph/path", "fffff"), ("seed", "i"), ("layer", "T"), ("preset", "s"),
                            ("preset/save", "s"), ("model", "s"), ("record/start", "s"), ("learn", "s"), ("status/push", "f"), ("reply", "si")):
            self.routes[f"{self.prefix}/{path}"] = replace(self.routes[f"{self.prefix}/{path}"], types=types)
        for p in eng.table:
            addr = f"{self.prefix}/param/{p.id}"
            self.routes[addr] = replace(self.routes[addr], types={"bool": "T", "choice": "s", "int": "i"}.get(p.kind, "f"))

    def markdown(self) -> str:
        """The address space as a Markdown table (the README's is generated from it)."""
        rows = ["| address | arguments | what it does |", "|---|---|---|"]
        for r in self.routes.values():
            rows.append(f"| `{r.address}` | {r.args} | {r.doc.replace('|', '&#124;')} |")
        return "\n".join(rows)

    # --- commands --------------------------------------------------------------------------------------------

    def _category_arg(self, v: Any) -> str | int | None:
        if isinstance(v, str):
            return None if v == "mix" else v
        return integer(v, "category")

    def _trigger(self, a: tuple, at: int | None, s: Any) -> None:
        arg_count(a, 0, 3)
        cat = self._category_arg(a[0]) if a else None
        vel = number(a[1], "velocity") if len(a) > 1 else 1.0
        pitch = number(a[2], "pitch") if len(a) > 2 else 0.0
        self.engine.trigger(cat, vel, pitch, at)

    def _note(self, a: tuple, at: int | None, s: Any) -> None:
        arg_count(a, 2, 3)
        note, vel = integer(a[0], "note"), number(a[1], "velocity")
        if not 0 <= vel <= 127:
            raise OscArgError(f"velocity must be 0..127, got {vel:g}")
        if vel == 0:
            self.engine.note_off(note, at)
        else:
            self.engine.note_on(note, vel / 127.0, self._category_arg(a[2]) if len(a) > 2 else None, at=at)

    def _ramp(self, a: tuple, at: int | None, s: Any) -> None:
        if not 3 <= len(a) <= 4 or not isinstance(a[0], str):
            raise OscArgError("expected param to seconds [from], e.g. /gesturegan/ramp macro1 0.8 4")
        self.engine.ramp(a[0], arg_value(a[1]), number(a[2], "seconds"), arg_value(a[3]) if len(a) > 3 else None, at)

    def _morph_path(self, a: tuple, at: int | None, s: Any) -> None:
        if len(a) < 3 or len(a) % 2 == 0:
            raise OscArgError("expected seconds then x y pairs, e.g. /gesturegan/morph/path 8 0 0 1 1")
        xy = [number(x, "x or y") for x in a[1:]]
        self.engine.morph_path(list(zip(xy[::2], xy[1::2])), number(a[0], "seconds"), at)

    def _latent(self, a: tuple, at: int | None, s: Any) -> None:
        self.engine.set_latent([number(x, "latent value") for x in a] if a else None, at)

    def _category(self, a: tuple, at: int | None, s: Any) -> None:
        n = self.engine.info.n_categories
        if len(a) == 1 and isinstance(a[0], str):
            if a[0] not in self.engine.info.categories:
                raise OscArgError(f"unknown category {a[0]!r}; this model has {', '.join(self.engine.info.categories)}")
            self.engine.set_mix({a[0]: 1.0}, at)
            return
        arg_count(a, n)
        self.engine.set_mix([number(x, "weight") for x in a], at)

    def _preset(self, a: tuple, at: int | None, s: Any) -> None:
        arg_count(a, 1)
        if not isinstance(a[0], str):
            raise OscArgError("a preset is recalled by name (a string)")
        skipped = recall(self.engine, self.presets.find(a[0]), at)
        if skipped:
            self.note_problem(f"preset {a[0]!r}: skipped values this model has no parameter for: {', '.join(skipped)}")

    def _preset_save(self, a: tuple, at: int | None, s: Any) -> None:
        arg_count(a, 1)
        path = self.presets.save(str(a[0]), self.engine.table, dict(self.engine.values), Path(self.engine.model_source).name)
        self._send(f"{self.prefix}/preset/saved", (str(a[0]), str(path)), self._target(s))

    def _preset_list(self, a: tuple, at: int | None, s: Any) -> None:
        self._send(f"{self.prefix}/preset/list", tuple(self.presets.names()), self._target(s))

    def _model(self, a: tuple, at: int | None, s: Any) -> None:
        arg_count(a, 1)
        path = Path(str(a[0])).expanduser()
        if not path.is_file():
            raise OscArgError(f"no model file {path}")
        target = self._target(s)

        def done(err: str | None) -> None:  # from the loading thread: sendto is thread-safe
            self._send(f"{self.prefix}/model", ("ok", str(path)) if err is None else ("error", str(path), err), target)

        self.engine.load_model(path, on_done=done)

    def _record_start(self, a: tuple, at: int | None, s: Any) -> None:
        arg_count(a, 0, 1)
        path = Path(str(a[0])).expanduser() if a else Path(time.strftime("gesturegan-%Y%m%d-%H%M%S.wav"))
        if path.suffix.lower() != ".wav":
            raise OscArgError(f"the recording must be a .wav file, got {path}")
        try:
            self.engine.start_recording(path)
        except (OSError, RuntimeError) as e:  # soundfile's LibsndfileError is a RuntimeError
            raise OscArgError(f"cannot record to {path}: {e}") from None
        self._send(f"{self.prefix}/record", ("started", str(path)), self._target(s))

    def _record_stop(self, a: tuple, at: int | None, s: Any) -> None:
        done = self.engine.stop_recording()
        self._send(f"{self.prefix}/record", ("stopped", done[0], float(done[1])) if done else ("idle",), self._target(s))

    def _learn(self, a: tuple, at: int | None, s: Any) -> None:
        arg_count(a, 1)
        if self.midi is None:
            raise OscArgError("MIDI learn needs a MIDI input (start with --midi)")
        target = self._target(s)
        self.midi.learn(str(a[0]), lambda pid, what: self._send(f"{self.prefix}/learn", (pid, what), target))

    def _learn_cancel(self, a: tuple, at: int | None, s: Any) -> None:
        if self.midi is not None:
            self.midi.cancel_learn()

    def _push(self, a: tuple, at: int | None, s: Any) -> None:
        arg_count(a, 1)
        hz = number(a[0], "rate_hz")
        target = self._target(s)
        if target is None:
            return
        if hz <= 0:
            self.pushes.pop(target, None)
        else:
            self.pushes[target] = [1.0 / min(hz, MAX_PUSH_HZ), time.monotonic()]

    def _reply(self, a: tuple, at: int | None, s: Any) -> None:
        arg_count(a, 0, 2)
        if not a:
            self.reply_to = None
            return
        host = str(a[0]) if len(a) == 2 else (s[0] if s else "127.0.0.1")
        port = integer(a[-1], "port")
        if not 0 < port < 65536:
            raise OscArgError(f"port must be 1..65535, got {port}")
        self.reply_to = (host, port)

    def _addresses(self, a: tuple, at: int | None, s: Any) -> None:
        target = self._target(s)
        for r in self.routes.values():
            self._send(f"{self.prefix}/address", (r.address, r.args, r.doc), target)
        self._send(f"{self.prefix}/addresses", (len(self.routes),), target)

    # --- replies -------------------------------------------------------------------------------------------

    def _target(self, sender: Any) -> tuple[str, int] | None:
        return self.reply_to or sender

    def _send(self, address: str, args: tuple, to: Any) -> None:
        """To a UDP address, or to a peer with ``send_osc(data)`` (a WebSocket client, instrument.webserver)."""
        deliver = getattr(to, "send_osc", None)
        if to is None or deliver is None and self.send is None:
            return
        try:
            deliver(encode(address, args)) if deliver is not None else self.send(encode(address, args), to)
            self.stats.replies += 1
        except OSError as e:  # an unreachable peer must not stop the server
            self._log(f"OSC reply to {to[0]}:{to[1]} failed: {e}")

    def status_messages(self) -> list[tuple[str, tuple]]:
        """One message per row of the telemetry table (:mod:`instrument.telemetry`), typed by its kind."""
        out = status_args(telemetry.ENGINE, self.engine.status())
        out += status_args(telemetry.OSC, self.stats.as_dict(), "osc_")
        if self.midi is not None:
            out += status_args(telemetry.MIDI, self.midi.stats.as_dict(), "midi_")
        return [(f"{self.prefix}/status/{k}", args) for k, args in out]

    def reply_status(self, to: tuple[str, int] | None) -> None:
        for address, args in self.status_messages():
            self._send(address, args, to)

    def tick(self, now: float | None = None) -> float:
        """Send the status pushes that are due; returns the seconds until the next one (or 0.2)."""
        now, wait = time.monotonic() if now is None else now, 0.2
        with self.lock:
            for target, slot in list(self.pushes.items()):
                if now >= slot[1]:
                    self.reply_status(target)
                    slot[1] = max(slot[1] + slot[0], now)
                wait = min(wait, slot[1] - now)
        return max(wait, 0.001)

    # --- incoming ----------------------------------------------------------------------------------------

    def note_problem(self, message: str) -> None:
        if self._log(message):
            self.stats.errors_logged += 1

    def _error_reply(self, address: str, message: str, sender: Any) -> None:
        now = time.monotonic()
        last, tokens = self._error_budget
        tokens = min(float(ERROR_REPLIES_PER_S), tokens + (now - last) * ERROR_REPLIES_PER_S)
        if tokens >= 1:
            tokens -= 1
            self._send(f"{self.prefix}/error", (address, message), self._target(sender))
        self._error_budget = [now, tokens]

    def handle_packet(self, data: bytes, sender: Any = None) -> None:
        """One datagram (or WebSocket frame): parse, then each message in order. Never raises for what a
        client sends. Thread-safe: UDP and WebSocket packets are handled one at a time."""
        with self.lock:
            self._handle_packet(data, sender)

    def _handle_packet(self, data: bytes, sender: Any) -> None:
        self.stats.packets += 1
        try:
            messages = parse_packet(data)
        except OscParseError as e:
            self.stats.malformed += 1
            self.note_problem(f"malformed OSC packet ({len(data)} bytes) from {sender}: {e}")
            return
        if messages and messages[0].bundled:
            self.stats.bundles += 1
        samples: dict[float, int] = {}  # one clock reading per time tag: a bundle's messages share a sample
        for m in messages:
            self.dispatch(m, sender, samples)

    def dispatch(self, m: OscIn, sender: tuple[str, int] | None = None, samples: dict[float, int] | None = None) -> bool:
        """Route one message; returns whether it was applied."""
        self.stats.messages += 1
        route = self.routes.get(m.address)
        if route is None:
            self.stats.unknown_address += 1
            self.note_problem(f"unknown OSC address {m.address!r} from {sender} (send {self.prefix}/addresses for the list)")
            self._error_reply(m.address, "unknown address", sender)
            return False
        at = None
        try:
            if m.time is not None and route.timed:
                if m.time - time.time() > MAX_AHEAD_S:
                    raise OscArgError(f"time tag {m.time - time.time():.0f} s ahead (more than {MAX_AHEAD_S:g} s: is the sender's clock right?)")
                samples = {} if samples is None else samples
                at = samples.get(m.time)
                if at is None:
                    at = samples[m.time] = self.engine.sample_at(m.time)
                if at < self.engine.now():
                    self.stats.late += 1
                    at = None
                else:
                    self.stats.scheduled += 1
            route.handler(m.args, at, sender)
        except (OscArgError, ParamError, PresetError, ValueError, TypeError, OSError) as e:
            self.stats.bad_args += 1
            self.note_problem(f"OSC {m.address} {list(m.args)[:8]} from {sender}: {e}")
            self._error_reply(m.address, str(e), sender)
            return False
        self.stats.handled += 1
        return True
