"""OSCQuery: the namespace generated from the router and the tables, then served over real loopback HTTP
(urllib, as any host's HTTP client) and followed over a real WebSocket (the ``websockets`` client, a
different implementation from the server's aiohttp), beside a real UDP OSC server. The zeroconf records
are built by python-zeroconf and checked without registering them: the tests never send multicast."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import urllib.error
import urllib.request

import pytest
import websockets

from instrument.oscquery import DEFAULT_WEB_PORT, OSC_SERVICE_TYPE, SERVICE_TYPE, Namespace, advertise, service_infos
from instrument.osc import OscConfigError, OscRouter
from instrument.oscserver import OscServer
from instrument.oscwire import encode, parse_packet
from instrument.presets import PresetLibrary
from instrument.webserver import WebConfigError, WebServer, hostname
from instrument.engine import Engine, EngineConfig
from tests.helpers import wait_for

from .onnx_models import GESTURES, engine_model

SR, BLOCK = 48000, 128


@pytest.fixture
def eng():
    with Engine(engine_model(n_samples=4096, categories=GESTURES), EngineConfig(SR, BLOCK), sync=True) as e:
        yield e


class Applier:
    """Renders blocks of an engine that is not playing, so posted commands take effect (a test's clock)."""

    def __init__(self, eng: Engine) -> None:
        self.eng = eng

    def __call__(self, n: int = 2) -> None:
        for _ in range(n):
            self.eng.process_block()


@pytest.fixture
def served(eng, tmp_path):
    router = OscRouter(eng, presets=PresetLibrary([tmp_path / "presets"]))
    with OscServer(router, port=0) as osc, WebServer(router, port=0, osc_port=osc.port, sample_rate=SR) as web:
        yield eng, router, osc, web


def get(url: str, headers: dict | None = None) -> tuple[int, bytes, dict]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def get_json(url: str):
    status, body, _ = get(url)
    assert status == 200, (url, status, body)
    return json.loads(body)


# --- the namespace ---------------------------------------------------------------------------------------

def test_every_parameter_and_command_is_a_node_with_its_type_range_and_value(eng):
    router = OscRouter(eng)
    ns = Namespace(router, "127.0.0.1", 9000)
    for p in eng.table:
        node = ns.node(f"/gesturegan/param/{p.id}")
        assert node["FULL_PATH"] == f"/gesturegan/param/{p.id}" and node["ACCESS"] == 3 and node["DESCRIPTION"] == p.doc
        if p.kind == "choice":
            assert node["TYPE"] == "s" and node["RANGE"] == [{"VALS": list(p.choices)}] and node["VALUE"] == [p.choices[int(p.default)]]
        elif p.kind == "bool":
            assert node["TYPE"] == "T" and node["VALUE"] == [bool(p.default)]
        else:
            assert node["TYPE"] == ("i" if p.kind == "int" else "f")
            assert node["RANGE"] == [{"MIN": p.min, "MAX": p.max}] and node["VALUE"] == [pytest.approx(p.default)]
            assert node["CLIPMODE"] == ["both" if p.clamp else "none"]
        assert node.get("UNIT", [""]) == [p.unit]
    for address, route in router.routes.items():
        node = ns.node(address)
        assert node["FULL_PATH"] == address
        assert bool(route.args) == bool(node.get("TYPE")), address  # every command that takes arguments says their types
    assert ns.node("/gesturegan/latent")["TYPE"] == "f" * eng.info.latent_dim
    assert ns.node("/gesturegan/category")["TYPE"] == "f" * len(GESTURES)
    morph = ns.node("/gesturegan/morph")  # a command that is also a container
    assert morph["TYPE"] == "ff" and set(morph["CONTENTS"]) == {"path"}
    status = ns.node("/gesturegan/status")
    assert status["CONTENTS"]["underruns"]["ACCESS"] == 1 and status["CONTENTS"]["underruns"]["TYPE"] == "i"
    assert status["CONTENTS"]["categories"]["VALUE"] == list(GESTURES)
    assert status["CONTENTS"]["osc_malformed"]["VALUE"] == [0]
    root = ns.node("/")
    assert list(root["CONTENTS"]) == ["gesturegan"] and "param" in root["CONTENTS"]["gesturegan"]["CONTENTS"]


def test_queries_answer_200_204_400_and_404(eng):
    ns = Namespace(OscRouter(eng), "127.0.0.1", 9000)
    assert ns.query("/gesturegan/param/gain", "VALUE") == (200, {"VALUE": [0.0]})
    assert ns.query("/gesturegan/param/gain", "RANGE") == (200, {"RANGE": [{"MIN": -80.0, "MAX": 6.0}]})
    assert ns.query("/gesturegan/param/layer", "RANGE")[0] == 204  # an attribute this node does not have
    assert ns.query("/gesturegan/trigger", "VALUE")[0] == 204  # a command has no value
    assert ns.query("/gesturegan/param/gain", "COLOUR")[0] == 400
    assert ns.query("/gesturegan/param/nope", "")[0] == 404
    status, info = ns.query("/", "HOST_INFO")
    assert status == 200 and info["OSC_PORT"] == 9000 and info["OSC_TRANSPORT"] == "UDP" and info["EXTENSIONS"]["LISTEN"]


# --- over HTTP -------------------------------------------------------------------------------------------

def test_a_host_discovers_the_osc_port_by_http_then_plays_over_udp(served):
    eng, router, osc, web = served
    info = get_json(f"{web.url}/?HOST_INFO")
    assert info["OSC_PORT"] == osc.port and info["OSC_IP"] == "127.0.0.1" and info["WS_PORT"] == web.port
    space = get_json(f"{web.url}/")
    gain = space["CONTENTS"]["gesturegan"]["CONTENTS"]["param"]["CONTENTS"]["gain"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(encode(gain["FULL_PATH"], (-9.5,)), (info["OSC_IP"], info["OSC_PORT"]))
        assert wait_for(lambda: router.stats.handled == 1, 5)
    Applier(eng)()
    assert get_json(f"{web.url}/gesturegan/param/gain?VALUE") == {"VALUE": [-9.5]}
    assert get_json(f"{web.url}/gesturegan/param/mix_mode?VALUE") == {"VALUE": ["weights"]}


def test_http_refuses_what_it_should(served, tmp_path):
    eng, router, osc, web = served
    assert get(f"{web.url}/gesturegan/param/nope")[0] == 404
    assert get(f"{web.url}/gesturegan/param/gain?NOT_AN_ATTRIBUTE")[0] == 400
    assert get(f"{web.url}/gesturegan/param/layer?RANGE")[0] == 204
    for method in ("POST", "PUT", "DELETE"):
        req = urllib.request.Request(f"{web.url}/gesturegan/param/gain", data=b"[1]", method=method)
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=5)
        assert e.value.code == 405
    assert get(f"{web.url}/ui/..%2F..%2Fpyproject.toml")[0] == 404  # only the page's own files
    assert get(f"{web.url}/ui/secret.txt")[0] == 404
    # DNS rebinding: a page elsewhere that names this server by another host name gets nothing
    assert get(f"{web.url}/gesturegan", {"Host": f"attacker.example:{web.port}"})[0] == 403
    assert get(f"{web.url}/gesturegan", {"Host": f"localhost:{web.port}"})[0] == 200
    assert not list(tmp_path.glob("**/*.toml")) and eng.values["gain"] == 0.0


def test_the_page_and_its_files_are_served(served):
    eng, router, osc, web = served
    status, body, headers = get(f"{web.url}/ui/")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and b"/ui/app.js" in body
    for name, kind in (("app.js", "text/javascript"), ("osc.js", "text/javascript"), ("style.css", "text/css")):
        status, body, headers = get(f"{web.url}/ui/{name}")
        assert status == 200 and headers["Content-Type"].startswith(kind) and body
    status, body, headers = get(f"{web.url}/", {"Accept": "text/html,application/xhtml+xml"})  # a browser at the root
    assert status == 200 and b"/ui/app.js" in body
    assert json.loads(get(f"{web.url}/", {"Accept": "*/*"})[1])["FULL_PATH"] == "/"  # an OSCQuery client at the root


def test_the_spectrogram_of_the_last_clip(served):
    eng, router, osc, web = served
    assert get(f"{web.url}/ui/spectrogram")[0] == 204  # nothing has sounded yet
    eng.trigger("trigger")
    Applier(eng)(4)
    status, body, _ = get(f"{web.url}/ui/spectrogram")
    assert status == 200
    s = json.loads(body)
    data = base64.b64decode(s["data"])
    assert len(data) == s["bins"] * s["frames"] and max(data) == 255 and s["seconds"] > 0
    assert get(f"{web.url}/ui/spectrogram?since={s['at']}")[0] == 204  # the page asks only for a new one


def test_a_port_in_use_is_a_clear_error(eng):
    router = OscRouter(eng)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(WebConfigError, match="another program has the port"):
            WebServer(router, port=busy.getsockname()[1]).start()
    assert DEFAULT_WEB_PORT not in (9000, 57110, 57120)


def test_hostname_parts():
    assert hostname("127.0.0.1:9100") == "127.0.0.1" and hostname("localhost") == "localhost"
    assert hostname("[::1]:9100") == "[::1]" and hostname("evil.example:80") == "evil.example"


# --- over the WebSocket ----------------------------------------------------------------------------------

async def recv_osc(ws, timeout: float = 3.0):
    while True:
        frame = await asyncio.wait_for(ws.recv(), timeout)
        if isinstance(frame, bytes):
            return parse_packet(frame)[0]


def test_listen_follows_values_set_by_another_client_and_ignore_stops_it(served):
    eng, router, osc, web = served
    apply = Applier(eng)

    async def go():
        async with websockets.connect(f"ws://127.0.0.1:{web.port}/") as ws:
            await ws.send(json.dumps({"COMMAND": "LISTEN", "DATA": "/gesturegan/param/macro3"}))
            first = await recv_osc(ws)
            assert (first.address, first.args) == ("/gesturegan/param/macro3", (0.0,))  # its value now
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # a UDP client moves it
                s.sendto(encode("/gesturegan/param/macro3", (0.25,)), ("127.0.0.1", osc.port))
                await asyncio.to_thread(wait_for, lambda: router.stats.handled == 1, 5)
            apply()
            moved = await recv_osc(ws)
            assert moved.args == (0.25,)
            await ws.send(json.dumps({"COMMAND": "IGNORE", "DATA": "/gesturegan/param/macro3"}))
            await asyncio.sleep(0.1)
            eng.set("macro3", -0.5)
            apply()
            with pytest.raises(asyncio.TimeoutError):
                await recv_osc(ws, 0.4)
            await ws.send(json.dumps({"COMMAND": "LISTEN", "DATA": "/gesturegan/param/layer"}))
            layer = await recv_osc(ws)
            assert layer.args == (False,)  # booleans go out as OSC T/F, as the node's TYPE says

    asyncio.run(go())


def test_control_over_the_websocket_is_exactly_osc(served):
    eng, router, osc, web = served
    apply = Applier(eng)

    async def go():
        async with websockets.connect(f"ws://127.0.0.1:{web.port}/") as ws:
            await ws.send(encode("/gesturegan/morph", (0.2, 0.9)))
            await ws.send(encode("/gesturegan/param/gain", (100.0,)))  # clamped, as the same UDP message is
            await ws.send(encode("/gesturegan/param/seed", (-5,)))  # refused, as over UDP
            err = await recv_osc(ws)
            assert err.address == "/gesturegan/error" and err.args[0] == "/gesturegan/param/seed" and "between 0" in err.args[1]
            await ws.send(b"\x00not osc")
            await ws.send(encode("/gesturegan/ping", ()))
            pong = await recv_osc(ws)
            assert pong.address == "/gesturegan/pong"  # replies come back on the socket
            await ws.send("{not json")
            assert json.loads(await asyncio.wait_for(ws.recv(), 3))["COMMAND"] == "ERROR"
            await ws.send(json.dumps({"COMMAND": "LISTEN", "DATA": "/gesturegan/nowhere"}))
            assert "no value" in json.loads(await asyncio.wait_for(ws.recv(), 3))["DATA"]

    asyncio.run(go())
    apply()
    assert eng.values["morph_x"] == pytest.approx(0.2) and eng.values["morph_y"] == pytest.approx(0.9)
    assert eng.values["gain"] == 6.0 and eng.values["seed"] == 0
    assert router.stats.bad_args == 1 and router.stats.malformed == 1 and router.stats.handled == 3
    assert web.stats["ws_bad"] == 2


def test_listening_to_a_container_follows_everything_below_it(served):
    eng, router, osc, web = served

    async def go():
        async with websockets.connect(f"ws://127.0.0.1:{web.port}/") as ws:
            await ws.send(json.dumps({"COMMAND": "LISTEN", "DATA": "/gesturegan/status"}))
            seen = {}
            while len(seen) < 10:
                m = await recv_osc(ws)
                seen[m.address] = m.args
            assert all(a.startswith("/gesturegan/status/") for a in seen)
            eng.trigger("trigger")
            Applier(eng)(3)
            while True:  # the counters move, and the change is pushed
                m = await recv_osc(ws)
                if m.address == "/gesturegan/status/clips_generated" and m.args[0] >= 1:
                    break

    asyncio.run(go())


def test_a_websocket_from_another_site_is_refused(served):
    eng, router, osc, web = served

    async def go():
        with pytest.raises(websockets.exceptions.InvalidStatus) as e:
            async with websockets.connect(f"ws://127.0.0.1:{web.port}/", origin="http://attacker.example"):
                pass
        assert e.value.response.status_code == 403
        async with websockets.connect(f"ws://127.0.0.1:{web.port}/", origin=f"http://127.0.0.1:{web.port}") as ws:
            await ws.send(encode("/gesturegan/ping", ()))
            assert (await recv_osc(ws)).address == "/gesturegan/pong"  # the page itself is welcome

    asyncio.run(go())
    assert web.stats["refused"] == 1


# --- zeroconf --------------------------------------------------------------------------------------------

def test_the_zeroconf_records_are_built_but_never_sent(served, monkeypatch):
    eng, router, osc, web = served
    import zeroconf

    def no_multicast(*a, **k):
        raise AssertionError("a test must not open an mDNS socket")

    monkeypatch.setattr(zeroconf, "Zeroconf", no_multicast)
    infos = web.service_infos()
    assert [i.type for i in infos] == [SERVICE_TYPE, OSC_SERVICE_TYPE] == ["_oscjson._tcp.local.", "_osc._udp.local."]
    assert infos[0].name == "GestureGAN._oscjson._tcp.local." and infos[0].port == web.port
    assert infos[1].port == osc.port and infos[0].parsed_addresses() == ["127.0.0.1"]
    assert infos[0].properties == {b"txtvers": b"1"}
    lan = service_infos("Stage left", 9100, None, "192.0.2.7")  # a documentation address: only parsed, never reached
    assert len(lan) == 1 and lan[0].parsed_addresses() == ["192.0.2.7"] and lan[0].name == "Stage left._oscjson._tcp.local."
    with pytest.raises(OscConfigError, match="network address"):
        advertise(infos, "127.0.0.1")  # loopback is refused before anything is opened
