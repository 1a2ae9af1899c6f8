"""OSC 1.0 packets on the wire: a strict parser for what arrives, and the encoder for replies.

Parsing is our own, and strict, because a packet from the network is untrusted input: python-osc's
parser skips unknown type tags with a log line per packet (misaligning the arguments after them) and
lets a bad UTF-8 string escape as ``UnicodeDecodeError``. Here every defect raises
:class:`OscParseError` with what was wrong, so the server can count it and move on. Replies are built
with python-osc's ``OscMessageBuilder``, with the types given explicitly: ``i``, ``f`` and ``s`` only,
never ``d`` (Max mishandles doubles) or ``T``/``F``.

Types accepted: ``i h f d s S c b T F N I m r t`` and arrays ``[ ]``. Bundles nest; each message
comes out with its bundle's time tag (``None`` for "immediately" or for a bare message).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any

from pythonosc.osc_message_builder import OscMessageBuilder

NTP_UNIX_OFFSET = 2208988800  # seconds from 1900 (NTP) to 1970 (Unix)
IMMEDIATELY = 1  # the OSC time tag that means "now"
MAX_DEPTH = 8  # nested bundles


class OscParseError(ValueError):
    """A packet that is not valid OSC 1.0: what was wrong and where."""


@dataclass(frozen=True)
class OscIn:
    """One message out of a packet. ``time``: the Unix time its bundle asks for, or None (at once)."""

    address: str
    args: tuple[Any, ...]
    time: float | None = None
    bundled: bool = False


def _string(data: bytes, i: int) -> tuple[str, int]:
    end = data.find(b"\0", i)
    if end < 0:
        raise OscParseError(f"unterminated string at byte {i}")
    try:
        s = data[i:end].decode("utf-8")
    except UnicodeDecodeError:
        raise OscParseError(f"string at byte {i} is not UTF-8") from None
    return s, (end + 4) & ~3


def _take(data: bytes, i: int, n: int, what: str) -> int:
    if i + n > len(data):
        raise OscParseError(f"truncated {what} at byte {i}")
    return i + n


def ntp_to_unix(tag: int) -> float | None:
    if tag == IMMEDIATELY:
        return None
    return (tag >> 32) - NTP_UNIX_OFFSET + (tag & 0xFFFFFFFF) / 2**32


def unix_to_ntp(t: float) -> int:
    s = t + NTP_UNIX_OFFSET
    return (int(s) << 32) | int((s - int(s)) * 2**32)


def parse_message(data: bytes, time: float | None = None, bundled: bool = False) -> OscIn:
    if not data.startswith(b"/"):
        raise OscParseError("an OSC message must start with '/'")
    address, i = _string(data, 0)
    if i >= len(data):
        return OscIn(address, (), time, bundled)  # no type tag string: no arguments (old senders)
    tags, i = _string(data, i)
    if not tags.startswith(","):
        raise OscParseError(f"type tags must start with ',', got {tags[:16]!r}")
    args: list[Any] = []
    stack = [args]
    for t in tags[1:]:
        if t == "i":
            j = _take(data, i, 4, "int32")
            v: Any = struct.unpack_from(">i", data, i)[0]
        elif t == "f":
            j = _take(data, i, 4, "float32")
            v = struct.unpack_from(">f", data, i)[0]
        elif t == "h":
            j = _take(data, i, 8, "int64")
            v = struct.unpack_from(">q", data, i)[0]
        elif t == "d":
            j = _take(data, i, 8, "double")
            v = struct.unpack_from(">d", data, i)[0]
        elif t in "sS":
            v, j = _string(data, i)
            if j > len(data) + 3:
                raise OscParseError(f"truncated string at byte {i}")
        elif t == "c":
            j = _take(data, i, 4, "char")
            v = chr(struct.unpack_from(">I", data, i)[0] & 0x10FFFF)
        elif t == "b":
            j = _take(data, i, 4, "blob size")
            n = struct.unpack_from(">i", data, i)[0]
            if n < 0:
                raise OscParseError(f"negative blob size at byte {i}")
            j = _take(data, j, n, "blob")
            v = bytes(data[i + 4:j])
            j = (j + 3) & ~3
        elif t in "mr":
            j = _take(data, i, 4, "midi/rgba")
            v = bytes(data[i:j])
        elif t == "t":
            j = _take(data, i, 8, "time tag")
            v = ntp_to_unix(struct.unpack_from(">Q", data, i)[0])
        elif t in "TFNI":
            j, v = i, {"T": True, "F": False, "N": None, "I": float("inf")}[t]
        elif t == "[":
            stack.append([])
            continue
        elif t == "]":
            if len(stack) < 2:
                raise OscParseError("']' without '[' in the type tags")
            inner = stack.pop()
            stack[-1].append(tuple(inner))
            continue
        else:
            raise OscParseError(f"unknown type tag {t!r}")
        if j > len(data):
            raise OscParseError(f"truncated argument at byte {i}")
        stack[-1].append(v)
        i = j
    if len(stack) != 1:
        raise OscParseError("'[' without ']' in the type tags")
    return OscIn(address, tuple(args), time, bundled)


def parse_packet(data: bytes, _depth: int = 0) -> list[OscIn]:
    """The messages of one UDP datagram, in the order they appear (nested bundles flattened)."""
    if len(data) % 4:
        raise OscParseError(f"packet length {len(data)} is not a multiple of 4")
    if not data.startswith(b"#bundle\0"):
        return [parse_message(data)]
    if _depth >= MAX_DEPTH:
        raise OscParseError(f"bundles nested deeper than {MAX_DEPTH}")
    _take(data, 8, 8, "bundle time tag")
    when = ntp_to_unix(struct.unpack_from(">Q", data, 8)[0])
    out: list[OscIn] = []
    i = 16
    while i < len(data):
        _take(data, i, 4, "bundle element size")
        n = struct.unpack_from(">i", data, i)[0]
        if n <= 0 or n % 4:
            raise OscParseError(f"bad bundle element size {n} at byte {i}")
        j = _take(data, i + 4, n, "bundle element")
        part = data[i + 4:j]
        if part.startswith(b"#bundle\0"):
            inner = parse_packet(part, _depth + 1)
            out += [m if m.time is not None else OscIn(m.address, m.args, when, True) for m in inner]
        else:
            out.append(parse_message(part, when, True))
        i = j
    return out


def encode(address: str, args: tuple | list = (), bools_as_tf: bool = False) -> bytes:
    """One reply message: ints as ``i``, floats as ``f``, strings as ``s``; bools as 0/1 ints, or as ``T``/``F``
    with ``bools_as_tf`` (OSCQuery value updates, whose boolean nodes have TYPE ``T``)."""
    b = OscMessageBuilder(address=address)
    for a in args:
        if isinstance(a, bool):
            b.add_arg(a, "T" if a else "F") if bools_as_tf else b.add_arg(int(a), "i")
        elif isinstance(a, int):
            b.add_arg(max(-2**31, min(2**31 - 1, a)), "i")
        elif isinstance(a, float):
            b.add_arg(a, "f")
        else:
            b.add_arg(str(a), "s")
    return b.build().dgram


def encode_bundle(messages: list[tuple[str, tuple]], when: float | None = None) -> bytes:
    """A bundle of ``(address, args)`` for time ``when`` (Unix seconds; None = immediately)."""
    tag = IMMEDIATELY if when is None else unix_to_ntp(when)
    body = b"".join(struct.pack(">i", len(m)) + m for m in (encode(a, args) for a, args in messages))
    return b"#bundle\0" + struct.pack(">Q", tag) + body


class OscArgError(ValueError):
    """A message with the wrong number or kind of arguments."""


# --- arguments as numbers: Pd sends floats, sclang ints, Max both ------------------------------------------

def arg_count(args: tuple, lo: int, hi: int | None = None) -> None:
    hi = lo if hi is None else hi
    if not lo <= len(args) <= hi:
        want = str(lo) if lo == hi else f"{lo}..{hi}" if hi < 99 else f"at least {lo}"
        raise OscArgError(f"takes {want} argument{'s' if hi != 1 else ''}, got {len(args)}")


def number(v: Any, name: str) -> float:
    if isinstance(v, bool) or isinstance(v, (int, float)):
        x = float(v)
        if not math.isfinite(x):
            raise OscArgError(f"{name} must be finite, got {x}")
        return x
    raise OscArgError(f"{name} must be a number, got {type(v).__name__} {v!r}")


def integer(v: Any, name: str) -> int:
    x = number(v, name)
    if x != int(x):
        raise OscArgError(f"{name} must be a whole number, got {x}")
    return int(x)


def arg_value(v: Any) -> Any:
    """A parameter value as the table's coerce wants it: names stay strings, numbers become floats."""
    if isinstance(v, str):
        return v
    return number(v, "value")
