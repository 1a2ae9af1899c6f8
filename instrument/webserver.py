"""The OSCQuery server and the browser control surface: one HTTP port (aiohttp, on a thread of its own
with its own asyncio loop) beside the OSC server.

- ``GET /<path>[?ATTRIBUTE]``: the OSCQuery namespace (:mod:`instrument.oscquery`) as JSON; ``?HOST_INFO``
  names the OSC port. Anything but GET/HEAD is 405: no request writes anything.
- A WebSocket on the same port (an upgrade of any path, as OSCQuery has it): text frames carry
  ``{"COMMAND": "LISTEN" | "IGNORE", "DATA": path}`` (a container listens to everything below it);
  binary frames are OSC packets, handed to the same :class:`~instrument.osc.OscRouter` as UDP ones, so a
  WebSocket client can do exactly what an OSC client can and no more (a refused value is refused
  alike, and its ``/gesturegan/error`` comes back on the socket). Values that change are pushed to
  their listeners as binary OSC messages, at most ``FOLLOW_HZ`` times a second (telemetry rows at most
  ``STATUS_HZ``), polled here rather than on the audio path.
- ``GET /ui/``: the control surface (``instrument/web``: plain HTML/JS/CSS, one more client of the
  namespace over the WebSocket) and ``/ui/spectrogram``, the last clip's spectrogram.

**Who may connect.** The server listens where OSC does (loopback unless ``--osc-host`` widens both). On
loopback, a request whose ``Host`` is not a loopback name is refused (a web page cannot reach it by
DNS rebinding), and a WebSocket whose ``Origin`` is another site's is refused, so a page elsewhere in
the performer's browser cannot play the instrument or make it write files.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from aiohttp import WSMsgType, web

from .osc import OscConfigError, OscRouter
from .oscquery import DEFAULT_WEB_PORT, Namespace, is_loopback, service_infos
from .oscwire import encode

log = logging.getLogger("gesturegan.web")

FOLLOW_HZ = 30.0
STATUS_HZ = 10.0
PEER_QUEUE = 1024  # frames waiting for a slow WebSocket client; beyond it, updates are dropped (counted)
WEB_DIR = Path(__file__).with_name("web")
FILES = {"index.html": "text/html", "app.js": "text/javascript", "osc.js": "text/javascript", "style.css": "text/css"}
LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1", "[::1]"}


class WebConfigError(OscConfigError):
    """A web server that cannot start as asked (the port is taken)."""


def hostname(host: str) -> str:
    """The name part of an HTTP ``Host`` header (``[::1]:9100`` -> ``[::1]``, ``localhost:9100`` -> ``localhost``)."""
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Peer:
    """One WebSocket client: what it listens to, what it was last sent, and its outgoing queue.
    :meth:`send_osc` may be called from any thread (the router answers from the model-loading one)."""

    def __init__(self, ws: web.WebSocketResponse, loop: asyncio.AbstractEventLoop, remote: str | None) -> None:
        self.ws, self.loop, self.remote = ws, loop, remote
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=PEER_QUEUE)
        self.listening: set[str] = set()
        self.sent: dict[str, tuple] = {}
        self.dropped = 0

    def __repr__(self) -> str:
        return f"WebSocket client {self.remote}"

    def send_osc(self, data: bytes) -> None:
        self.loop.call_soon_threadsafe(self.put, data)

    def put(self, item: bytes | str) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped += 1

    async def drain(self) -> None:
        while True:
            item = await self.queue.get()
            if isinstance(item, str):
                await self.ws.send_str(item)
            else:
                await self.ws.send_bytes(item)


class WebServer:
    """OSCQuery + WebSocket + the browser surface for ``router`` on ``host:port`` (port 0: any free one).
    ``osc_host``/``osc_port``: the OSC server's, for ``HOST_INFO``; ``sample_rate``: the engine's (the
    spectrogram's time axis). A context manager; :meth:`close` is idempotent."""

    def __init__(self, router: OscRouter, host: str = "127.0.0.1", port: int = DEFAULT_WEB_PORT, *, osc_host: str | None = None,
                 osc_port: int | None = None, sample_rate: int = 48000, name: str = "GestureGAN") -> None:
        self.router, self.host, self.port, self.sample_rate = router, host, port, sample_rate
        self.namespace = Namespace(router, osc_host or host, osc_port, name)
        self.name = name
        self.peers: set[Peer] = set()
        self.stats = {"requests": 0, "refused": 0, "ws_clients": 0, "ws_frames": 0, "ws_bad": 0, "ws_dropped": 0}
        self.loopback = is_loopback(host)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._spectrogram: tuple[int, bytes] | None = None

    @property
    def url(self) -> str:
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{self.port}"

    def service_infos(self) -> list[Any]:
        """The zeroconf records ``--zeroconf`` registers (built, not sent: :func:`instrument.oscquery.service_infos`)."""
        return service_infos(self.name, self.port, self.namespace.osc_port, self.host)

    # --- life ------------------------------------------------------------------------------------------------

    def start(self) -> "WebServer":
        if self._thread is not None:
            return self
        started = threading.Event()
        failure: list[BaseException] = []
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            loop = self._loop
            assert loop is not None
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve())
            except BaseException as e:  # noqa: BLE001 - handed to start()'s caller
                failure.append(e)
                started.set()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
            loop.close()

        self._thread = threading.Thread(target=run, name="gesturegan-web", daemon=True)
        self._thread.start()
        started.wait(10)
        if failure:
            self._thread.join(1)
            self._thread = None
            e = failure[0]
            raise WebConfigError(f"cannot serve the control surface on {self.host}:{self.port}: {getattr(e, 'strerror', None) or e} "
                                 "(another program has the port? choose another with --web-port, or --no-web)") from None
        return self

    async def _serve(self) -> None:
        app = web.Application(middlewares=[self._guard])
        app.router.add_get("/ui", self._to_page)
        app.router.add_get("/ui/", self._file)
        app.router.add_get("/ui/spectrogram", self._spectrogram_handler)
        app.router.add_get("/ui/{name}", self._file)
        app.router.add_get("/{tail:.*}", self._oscquery)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        sockets = site._server.sockets if site._server is not None else []  # type: ignore[union-attr]
        if sockets:
            self.port = sockets[0].getsockname()[1]
        self._follower = asyncio.get_running_loop().create_task(self._follow())

    async def _shutdown(self) -> None:
        self._follower.cancel()
        for peer in list(self.peers):
            await peer.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def close(self) -> None:
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._thread = None

    def __enter__(self) -> "WebServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- HTTP ------------------------------------------------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler):
        self.stats["requests"] += 1
        if self.loopback and hostname(request.host) not in LOOPBACK_NAMES:
            self.stats["refused"] += 1
            return web.Response(status=403, text=f"this server answers to 127.0.0.1:{self.port} only, not Host {request.host}\n")
        return await handler(request)

    async def _to_page(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/ui/")

    async def _file(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info.get("name", "index.html")
        if name not in FILES:
            return web.Response(status=404, text=f"no page {name}\n")
        return web.FileResponse(WEB_DIR / name, headers={"Content-Type": FILES[name], "Cache-Control": "no-cache"})

    async def _oscquery(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request)
        if request.path == "/" and not request.query_string and "text/html" in request.headers.get("Accept", ""):
            return await self._to_page(request)  # a browser asking for the root gets the page; OSCQuery clients the JSON
        status, body = self.namespace.query(request.path, request.query_string, self.port)
        if status == 200:
            return web.Response(text=json.dumps(body), content_type="application/json")
        if status == 204:
            return web.Response(status=204)
        what = f"no node {request.path}" if status == 404 else f"{request.query_string!r} is not an OSCQuery attribute"
        return web.Response(status=status, text=what + "\n")

    async def _spectrogram_handler(self, request: web.Request) -> web.Response:
        recent = self.router.engine.recent_clip()
        if recent is None or str(recent[0]) == request.query.get("since"):
            return web.Response(status=204)
        cached = self._spectrogram
        if cached is None or cached[0] != recent[0]:
            cached = self._spectrogram = (recent[0], json.dumps(spectrogram(recent[1], self.sample_rate) | {"at": recent[0]}).encode())
        return web.Response(body=cached[1], content_type="application/json")

    # --- the WebSocket ---------------------------------------------------------------------------------------

    def _origin_ok(self, request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        if origin is None:
            return True  # not a browser: a host program (ossia, Chataigne, a script)
        return urlsplit(origin).netloc == request.host

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if not self._origin_ok(request):
            self.stats["refused"] += 1
            return web.Response(status=403, text=f"WebSocket from {request.headers.get('Origin')} refused: only this server's own page\n")
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=1 << 16)
        await ws.prepare(request)
        peer = Peer(ws, asyncio.get_running_loop(), request.remote)
        self.peers.add(peer)
        self.stats["ws_clients"] += 1
        writer = asyncio.get_running_loop().create_task(peer.drain())
        try:
            async for msg in ws:
                self.stats["ws_frames"] += 1
                if msg.type == WSMsgType.BINARY:
                    self.router.handle_packet(msg.data, peer)
                elif msg.type == WSMsgType.TEXT:
                    self._command(peer, msg.data)
        finally:
            self.peers.discard(peer)
            self.router.pushes.pop(peer, None)  # type: ignore[call-overload]
            if self.router.reply_to is peer:
                self.router.reply_to = None
            self.stats["ws_dropped"] += peer.dropped
            writer.cancel()
        return ws

    def _command(self, peer: Peer, text: str) -> None:
        try:
            msg = json.loads(text)
            command, path = msg["COMMAND"], msg.get("DATA")
            if command not in ("LISTEN", "IGNORE") or not isinstance(path, str):
                raise ValueError(f"unknown command {command!r} (LISTEN and IGNORE are served)")
        except (ValueError, KeyError, TypeError) as e:
            self.stats["ws_bad"] += 1
            peer.put(json.dumps({"COMMAND": "ERROR", "DATA": f"not an OSCQuery command: {e}"}))
            return
        paths = self.namespace.under(path) if self.namespace.exists(path) else []
        if not paths:
            self.stats["ws_bad"] += 1
            peer.put(json.dumps({"COMMAND": "ERROR", "DATA": f"no value to {command.lower()} at {path}"}))
            return
        for p in paths:
            if command == "LISTEN":
                peer.listening.add(p)
                peer.sent.pop(p, None)  # the current value goes out at the next look
            else:
                peer.listening.discard(p)

    async def _follow(self) -> None:
        """Push changed values to their listeners (the loop's only periodic work)."""
        last_status = 0.0
        while True:
            await asyncio.sleep(1.0 / FOLLOW_HZ)
            peers = [p for p in self.peers if p.listening]
            if not peers:
                continue
            try:
                values = self.namespace.param_values()
                now = time.monotonic()
                if now - last_status >= 1.0 / STATUS_HZ and any(self.namespace.is_status(a) for p in peers for a in p.listening):
                    values.update(self.namespace.status_values())
                    last_status = now
                for p in peers:
                    for a in p.listening:
                        v = values.get(a)
                        if v is not None and p.sent.get(a) != v:
                            p.sent[a] = v
                            p.put(encode(a, v, bools_as_tf=True))
            except Exception as e:  # noqa: BLE001 - a bug here must not stop the surface
                log.warning("following values failed: %s: %s", type(e).__name__, e)


def spectrogram(clip: np.ndarray, sample_rate: int, bins: int = 96, frames: int = 160) -> dict[str, Any]:
    """A clip's log-frequency magnitude spectrogram for the page: ``bins`` x ``frames`` bytes (0 = -90 dB
    below the clip's peak, 255 = its peak), base64, low frequencies first."""
    mono = np.asarray(clip, np.float32)
    mono = mono.mean(axis=1) if mono.ndim == 2 else mono
    n_fft = 1024
    hop = max(1, (len(mono) - n_fft) // max(1, frames - 1)) if len(mono) > n_fft else 1
    padded = np.pad(mono, (0, max(0, n_fft + hop * (frames - 1) - len(mono))))
    idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    mag = np.abs(np.fft.rfft(padded[idx] * np.hanning(n_fft)[None, :], axis=1))  # [frames, n_fft/2+1]
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges = np.geomspace(40.0, sample_rate / 2, bins + 1)
    which = np.clip(np.searchsorted(edges, freqs) - 1, -1, bins)
    banded = np.zeros((frames, bins), np.float32)
    for b in range(bins):
        sel = which == b
        banded[:, b] = mag[:, sel].max(axis=1) if sel.any() else mag[:, np.argmin(np.abs(freqs - edges[b]))]
    db = 20 * np.log10(np.maximum(banded, 1e-9))
    scaled = np.clip((db - (db.max() - 90.0)) / 90.0 * 255.0, 0, 255).astype(np.uint8)
    return {"bins": bins, "frames": frames, "seconds": len(mono) / sample_rate, "low_hz": 40.0, "high_hz": sample_rate / 2,
            "data": base64.b64encode(scaled.T.copy().tobytes()).decode()}
