"""OSCQuery: the instrument's address space as JSON, generated from the OSC router (the parameter table,
the command vocabulary) and the telemetry table, so a host discovers what the README lists.

The namespace follows the OSCQuery proposal (Vidvox, https://github.com/Vidvox/OSCQueryProposal):

- every OSC address is a node with ``FULL_PATH``, ``TYPE`` (its OSC type tags), ``ACCESS`` (1 read, 2
  write, 3 both), ``DESCRIPTION``; parameters add ``VALUE``, ``RANGE`` (``MIN``/``MAX``, or ``VALS`` for a
  choice), ``UNIT`` and ``CLIPMODE`` (``both`` where the table clamps, ``none`` where it refuses);
- containers (``/gesturegan``, ``/gesturegan/param``, ...) have ``CONTENTS``; a command can be a
  container too (``/gesturegan/morph`` and ``/gesturegan/morph/path``);
- ``/gesturegan/status/<name>`` are read-only nodes, one per row of the telemetry table whose value is
  sent (the same names as the ``/gesturegan/status`` replies); their ``VALUE`` is the current one;
- ``HOST_INFO`` names the OSC server's port and transport and the extensions served.

:meth:`Namespace.query` answers one HTTP request's path and query string with ``(status, body)``: 200 and
the node (or the one attribute asked for), 404 for a path that is not there, 400 for a query that is not
an attribute, 204 for an attribute the node does not have. :meth:`Namespace.values` is every node's
current value as OSC arguments, which the WebSocket server diffs to push changes to listeners.
"""

from __future__ import annotations

import socket
from typing import Any

from . import telemetry
from .osc import OscConfigError, OscRouter, Route
from .params import Param

READ, WRITE, READ_WRITE = 1, 2, 3
ATTRIBUTES = ("FULL_PATH", "CONTENTS", "TYPE", "VALUE", "RANGE", "ACCESS", "DESCRIPTION", "UNIT", "CLIPMODE",
              "TAGS", "EXTENDED_TYPE", "CRITICAL", "OVERLOADS", "HOST_INFO")
EXTENSIONS = {"ACCESS": True, "VALUE": True, "RANGE": True, "DESCRIPTION": True, "UNIT": True, "CLIPMODE": True,
              "TAGS": False, "EXTENDED_TYPE": False, "CRITICAL": False, "OVERLOADS": False, "HTML": False,
              "LISTEN": True, "PATH_CHANGED": False, "PATH_RENAMED": False, "PATH_ADDED": False, "PATH_REMOVED": False}
DEFAULT_WEB_PORT = 9100  # the control page and the OSCQuery namespace (HTTP and WebSocket)
SERVICE_TYPE = "_oscjson._tcp.local."
OSC_SERVICE_TYPE = "_osc._udp.local."
STATUS = "status"


class QueryError(ValueError):
    """A request that names no node (404) or no attribute (400)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _param_node(p: Param, route: Route) -> dict[str, Any]:
    node: dict[str, Any] = {"TYPE": route.types, "ACCESS": READ_WRITE, "DESCRIPTION": p.doc}
    if p.kind == "choice":
        node["RANGE"] = [{"VALS": list(p.choices)}]
    elif p.kind != "bool":
        node["RANGE"] = [{"MIN": _num(p.min, p.kind), "MAX": _num(p.max, p.kind)}]
    if p.unit:
        node["UNIT"] = [p.unit]
    if p.kind != "bool":
        node["CLIPMODE"] = ["both" if p.clamp else "none"]
    return node


def _num(v: float, kind: str) -> float | int:
    return int(v) if kind == "int" else float(v)


def param_value(p: Param, value: float) -> Any:
    """A stored value as OSCQuery shows it: a float, an int, a bool or a choice's name."""
    if p.kind == "choice":
        return p.choices[int(value)]
    if p.kind == "bool":
        return bool(value >= 0.5)
    if p.kind == "int":
        return int(value)
    return float(value)


def _type_of(args: tuple) -> str:
    return "".join("T" if isinstance(a, bool) else "i" if isinstance(a, int) else "f" if isinstance(a, float) else "s" for a in args)


class Namespace:
    """The OSCQuery view of ``router``'s address space; ``osc_host``/``osc_port``: where its OSC server
    listens (None when there is none: the WebSocket is then the only way in)."""

    def __init__(self, router: OscRouter, osc_host: str | None, osc_port: int | None, name: str = "GestureGAN") -> None:
        self.router, self.engine, self.name = router, router.engine, name
        self.osc_host, self.osc_port = osc_host, osc_port
        self.prefix = router.prefix
        self._params = {f"{self.prefix}/param/{p.id}": p for p in self.engine.table}
        self._status_rows = [(f"{self.prefix}/{STATUS}/{prefix}{m.name}", m) for prefix, rows in self._sections() for m in rows]
        self._leaves: dict[str, dict[str, Any]] = {}
        for address, route in router.routes.items():
            p = self._params.get(address)
            if p is not None:
                node = _param_node(p, route)
            else:
                node = {"ACCESS": WRITE, "DESCRIPTION": f"{route.doc} (arguments: {route.args})" if route.args else route.doc}
                if route.types:
                    node["TYPE"] = route.types
            self._leaves[address] = node
        values = self.status_values()
        for address, m in self._status_rows:
            args = values.get(address)
            self._leaves.setdefault(address, {}).update(
                {"ACCESS": READ, "DESCRIPTION": m.doc + (f" ({m.unit})" if m.unit else ""),
                 "TYPE": _type_of(args) if args else "s"})
            if m.unit and m.unit not in ("fraction", "cores"):
                self._leaves[address]["UNIT"] = [m.unit]
        self._containers = {"/"}
        for address in self._leaves:
            parts = address.strip("/").split("/")
            for i in range(1, len(parts)):
                self._containers.add("/" + "/".join(parts[:i]))

    def _sections(self):
        yield "", telemetry.ENGINE
        yield "osc_", telemetry.OSC
        if self.router.midi is not None:
            yield "midi_", telemetry.MIDI

    # --- values ----------------------------------------------------------------------------------------------

    def status_values(self) -> dict[str, tuple]:
        out: dict[str, tuple] = {}
        engine_status = self.engine.status()
        sources = {"": engine_status, "osc_": self.router.stats.as_dict()}
        if self.router.midi is not None:
            sources["midi_"] = self.router.midi.stats.as_dict()
        for prefix, rows in self._sections():
            for name, args in telemetry.status_args(rows, sources[prefix], prefix):
                out[f"{self.prefix}/{STATUS}/{name}"] = args
        err = engine_status.get("last_error")
        out[f"{self.prefix}/{STATUS}/last_error"] = (str(err or ""),)
        return out

    def param_values(self) -> dict[str, tuple]:
        """Every parameter's node and its current value, as OSC arguments (one each)."""
        values = dict(self.engine.values)
        return {a: (param_value(p, values[p.id]),) for a, p in self._params.items()}

    def values(self, status: bool = True) -> dict[str, tuple]:
        """Every node that has a value: the parameters, and (``status``) the telemetry rows."""
        out = self.param_values()
        if status:
            out.update(self.status_values())
        return out

    def is_status(self, path: str) -> bool:
        return path.startswith(f"{self.prefix}/{STATUS}/")

    # --- nodes -----------------------------------------------------------------------------------------------

    def exists(self, path: str) -> bool:
        return path in self._leaves or path in self._containers

    def under(self, path: str) -> list[str]:
        """The nodes with a value at or below ``path``."""
        base = path.rstrip("/") + "/"
        return [a for a in list(self._params) + [a for a, _ in self._status_rows] + [f"{self.prefix}/{STATUS}/last_error"]
                if a == path or a.startswith(base) or path == "/"]

    def node(self, path: str, values: dict[str, tuple] | None = None) -> dict[str, Any]:
        """The node at ``path`` with everything below it."""
        path = _normal(path)
        if not self.exists(path):
            raise QueryError(404, f"no node {path}")
        values = self.values() if values is None else values
        out: dict[str, Any] = {"FULL_PATH": path}
        out.update(self._leaves.get(path, {}))
        if path in values:
            out["VALUE"] = list(values[path])
        if path in self._containers:
            depth = 1 if path == "/" else path.count("/") + 1
            children = sorted({"/" + "/".join(a.strip("/").split("/")[:depth]) for a in list(self._leaves) + list(self._containers)
                               if a != path and a.startswith(path.rstrip("/") + "/")})
            out["CONTENTS"] = {c.rsplit("/", 1)[1]: self.node(c, values) for c in children}
        return out

    def host_info(self, ws_port: int | None = None) -> dict[str, Any]:
        info: dict[str, Any] = {"NAME": self.name, "EXTENSIONS": EXTENSIONS, "OSC_TRANSPORT": "UDP"}
        if self.osc_port is not None:
            info["OSC_IP"], info["OSC_PORT"] = self.osc_host, self.osc_port
        if ws_port is not None:
            info["WS_PORT"] = ws_port
        return info

    def query(self, path: str, query: str, ws_port: int | None = None) -> tuple[int, dict[str, Any] | None]:
        """One HTTP GET: ``(status, JSON body or None)`` (see the module's docstring)."""
        path = _normal(path)
        attr = query.split("=", 1)[0].strip()
        if attr == "HOST_INFO":
            return 200, self.host_info(ws_port)
        if not self.exists(path):
            return 404, None
        if not attr:
            return 200, self.node(path)
        if attr not in ATTRIBUTES:
            return 400, None
        if attr == "VALUE":
            values = self.values(status=self.is_status(path))
            return (200, {"VALUE": list(values[path])}) if path in values else (204, None)
        node = self.node(path)
        return (200, {attr: node[attr]}) if attr in node else (204, None)


def _normal(path: str) -> str:
    return "/" + path.strip("/")


def service_infos(name: str, http_port: int, osc_port: int | None, host: str) -> list[Any]:
    """The zeroconf service records this server would register (``_oscjson._tcp``, and ``_osc._udp`` for the
    OSC server), built by python-zeroconf; :func:`advertise` registers them. Building them sends nothing."""
    from zeroconf import ServiceInfo  # loaded only when a server is advertised or its records are asked for

    addresses = _addresses(host)
    server = f"{socket.gethostname().split('.')[0] or 'gesturegan'}.local."
    infos = [ServiceInfo(SERVICE_TYPE, f"{name}.{SERVICE_TYPE}", port=http_port, addresses=addresses, server=server,
                         properties={"txtvers": "1"})]
    if osc_port is not None:
        infos.append(ServiceInfo(OSC_SERVICE_TYPE, f"{name}.{OSC_SERVICE_TYPE}", port=osc_port, addresses=addresses, server=server))
    return infos


def _addresses(host: str) -> list[bytes]:
    if host in ("0.0.0.0", ""):
        from zeroconf import get_all_addresses  # loaded only when a server is advertised

        ips = [ip for ip in get_all_addresses() if not ip.startswith("127.")]
    else:
        ips = [socket.gethostbyname(host)]
    return [socket.inet_aton(ip) for ip in ips]


def is_loopback(host: str) -> bool:
    try:
        return socket.gethostbyname(host).startswith("127.")
    except OSError:
        return False


def advertise(infos: list[Any], host: str):
    """Register ``infos`` by mDNS on ``host``'s interface (a network one: never loopback); returns the
    function that unregisters them. This is the only place that sends multicast."""
    from zeroconf import Zeroconf  # loaded only when a server is advertised

    if is_loopback(host):
        raise OscConfigError("--zeroconf advertises on the network: it needs --osc-host on a network address (e.g. 0.0.0.0), "
                         f"not the loopback {host}")
    zc = Zeroconf(interfaces=None if host in ("0.0.0.0", "") else [socket.gethostbyname(host)])
    for info in infos:
        zc.register_service(info)

    def stop() -> None:
        for info in infos:
            zc.unregister_service(info)
        zc.close()

    return stop
