"""The OSC UDP server: one socket, one thread, each datagram handed to an :class:`~instrument.osc.OscRouter`
in arrival order; replies go out of the same socket."""

from __future__ import annotations

import socket
import threading

from .osc import DEFAULT_OSC_PORT, OscConfigError, OscRouter
from .realtime import raise_control_thread

RECEIVE_BUFFER_BYTES = 1 << 20


class OscServer:
    """A UDP server for ``router`` on ``host:port`` (``127.0.0.1`` by default: only this machine). ``allow``:
    the client addresses accepted when listening on a network (None = any). Replies go out of the same
    socket, so a client that listens on its sending port (sclang, Max's udpsend/udpreceive pair with the
    same port) gets them without configuration. A context manager; :meth:`close` is idempotent."""

    def __init__(self, router: OscRouter, host: str = "127.0.0.1", port: int = DEFAULT_OSC_PORT,
                 allow: list[str] | None = None) -> None:
        if port in (57110, 57120):
            raise OscConfigError(f"port {port} belongs to SuperCollider (57110 scsynth, 57120 sclang); choose another --osc-port")
        self.router = router
        try:
            self.allow = None if not allow else {socket.gethostbyname(h) for h in allow}
        except OSError as e:
            raise OscConfigError(f"cannot resolve an --osc-allow address ({', '.join(allow or [])}): {e}") from None
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # A deep receive queue: a patch that fires a burst (a whole scene, a fast LFO) must not lose packets
        # while the engine holds the GIL for a block. The kernel caps it at net.core.rmem_max.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
        try:
            self.sock.bind((host, port))
        except OSError as e:
            self.sock.close()
            raise OscConfigError(f"cannot listen for OSC on {host}:{port}: {e.strerror or e} "
                                 "(another program has the port? choose another with --osc-port)") from None
        self.host, self.port = self.sock.getsockname()[:2]
        router.send = self._sendto
        self._running = False
        self._thread: threading.Thread | None = None

    def _sendto(self, data: bytes, to: tuple[str, int]) -> None:
        self.sock.sendto(data, to)

    def start(self) -> "OscServer":
        if not self._running:
            self._running = True
            self._thread = threading.Thread(target=self._run, name="gesturegan-osc", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        raise_control_thread()  # a gesture is read as soon as it arrives (instrument.realtime)
        router, sock = self.router, self.sock
        while self._running:
            sock.settimeout(router.tick())
            try:
                data, sender = sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:  # closed under us, or an ICMP error from an earlier reply: keep going while running
                if not self._running:
                    break
                continue
            if self.allow is not None and sender[0] not in self.allow:
                router.stats.denied += 1
                router.note_problem(f"OSC packet from {sender[0]} refused (not in --osc-allow)")
                continue
            try:
                router.handle_packet(data, sender)
            except Exception as e:  # noqa: BLE001 - a bug must not silence the instrument's controls
                router.stats.bad_args += 1
                router.note_problem(f"OSC handler failed on a packet from {sender}: {type(e).__name__}: {e}")

    def close(self) -> None:
        self._running = False
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        self.sock.close()

    def __enter__(self) -> "OscServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
