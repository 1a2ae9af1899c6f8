"""Small helpers shared by test modules."""

from __future__ import annotations

import socket
import time
from typing import Callable


def wait_for(cond: Callable[[], bool], timeout: float = 5.0, poll_s: float = 0.002) -> bool:
    """Poll ``cond`` until it holds or ``timeout`` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(poll_s)
    return cond()


def free_port() -> int:
    """A UDP port on 127.0.0.1 that nothing holds right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
