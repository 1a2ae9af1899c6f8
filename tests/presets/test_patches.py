"""The example patches are documentation that runs: the SuperCollider file through real ``sclang`` and the
Pure Data patch through real ``pd -nogui``, each playing an engine on JACK over real UDP; the Max patch
(no Max on Linux) is checked to be a well-formed patcher that uses only addresses that exist."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from instrument.audio import SoundDeviceSink
from instrument.engine import Engine, EngineConfig
from instrument.osc import DEFAULT_OSC_PORT, OscRouter
from instrument.oscserver import OscServer
from instrument.presets import PresetLibrary
from tests.helpers import free_port
from tests.instrument.onnx_models import GESTURES, engine_model

PATCHES = Path(__file__).resolve().parents[2] / "presets" / "patches"
SR, BLOCK = 48000, 128


@pytest.fixture
def playing(jack, tmp_path):
    """An engine on JACK with an OSC server on a free port; yields (engine, router, port, output peak)."""
    sink = SoundDeviceSink(SR, BLOCK, 2, jack)
    peak = [0.0]
    with Engine(engine_model(n_samples=16384, categories=GESTURES), EngineConfig(SR, BLOCK), sink=sink) as eng:
        applied = []  # (kind, sample, posted) of every command as it took effect
        eng.listen(block=lambda block, at: peak.__setitem__(0, max(peak[0], float(np.abs(block).max()))),
                   event=lambda at, command, posted: applied.append((command.kind, at, posted)))
        router = OscRouter(eng, presets=PresetLibrary([tmp_path]))
        with OscServer(router, port=0) as srv:
            eng.start()
            yield eng, router, srv.port, peak, applied


def addresses_in(text: str) -> set[str]:
    return set(re.findall(r"/gesturegan(?:/[A-Za-z0-9_.]+)+", text))


@pytest.fixture(scope="module")
def routes():
    with Engine(engine_model(categories=GESTURES), sync=True) as eng:
        status = ("underruns", "engine_underruns", "late_events", "inference_ms_p99", "mix", "voices", "osc_handled", "osc_scheduled")
        return set(OscRouter(eng).routes) | {f"/gesturegan/status/{k}" for k in status} | {"/gesturegan/pong", "/gesturegan/error"}


@pytest.mark.skipif(shutil.which("sclang") is None, reason="sclang is not installed (apt-get install supercollider-language)")
def test_supercollider_file_plays_the_instrument(playing):
    eng, router, port, peak, applied = playing
    with tempfile.TemporaryDirectory() as run_dir:
        os.chmod(run_dir, 0o700)
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QTWEBENGINE_DISABLE_SANDBOX="1", XDG_RUNTIME_DIR=run_dir,
                   GESTUREGAN_OSC_PORT=str(port), GESTUREGAN_EXIT="1")
        r = subprocess.run(["sclang", str(PATCHES / "gesturegan.scd")], env=env, capture_output=True, text=True, timeout=120,
                           cwd=run_dir)
    out = r.stdout
    assert r.returncode == 0, out[-2000:] + r.stderr[-2000:]
    assert "gesturegan: pong" in out and "gesturegan error" not in out
    line = next(ln for ln in out.splitlines() if ln.startswith("gesturegan status:"))
    assert "engine_underruns 0" in line and "osc_scheduled 8" in line, line  # underruns during host xruns are not the engine's
    s = router.stats
    assert s.bad_args == s.unknown_address == s.malformed == 0 and s.scheduled == 8 and s.late == 0 and s.handled >= 50
    triggers = [a for a in applied if a[0] == "trigger"]
    assert len(triggers) == 12 and eng.values["macro1"] == 1.0 and eng.values["mix_mode"] == 1.0
    assert peak[0] > 0.01


@pytest.mark.skipif(shutil.which("pd") is None, reason="pd is not installed (apt-get install puredata-core)")
def test_pure_data_patch_plays_the_instrument(playing):
    eng, router, port, peak, applied = playing
    reply_port = free_port()
    r = subprocess.run(["pd", "-nogui", "-nosound", "-nomidi", "-stderr", "-open", str(PATCHES / "gesturegan.pd"),
                        "-send", f"gg-port {port}", "-send", f"gg-reply {reply_port}", "-send", "gg-demo bang"],
                       capture_output=True, text=True, timeout=60)
    log = r.stdout + r.stderr
    assert r.returncode == 0, log[-3000:]
    assert "gesturegan-pong: bang" in log or "gesturegan-pong" in log, log[-3000:]
    assert "gesturegan-status: engine_underruns 0" in log and "gesturegan-status: categories trigger trigger_continuous" in log
    assert not re.search(r"^error|couldn't create|no method", log, flags=re.M), log[-3000:]  # Pd's own complaints
    st = router.stats
    assert st.bad_args == st.unknown_address == st.malformed == 0 and st.handled >= 40, st
    triggers = [a for a in applied if a[0] == "trigger"]
    assert len(triggers) == 4 and eng.values["macro1"] == pytest.approx(1.0) and eng.values["morph_x"] == 1.0
    assert peak[0] > 0.01


def test_max_patch_is_a_wellformed_patcher_using_real_addresses(routes):
    patch = json.loads((PATCHES / "gesturegan.maxpat").read_text())["patcher"]
    boxes = {b["box"]["id"]: b["box"] for b in patch["boxes"]}
    assert len(boxes) == len(patch["boxes"])
    for ln in patch["lines"]:
        (src, o), (dst, i) = ln["patchline"]["source"], ln["patchline"]["destination"]
        assert o < boxes[src]["numoutlets"] and i < boxes[dst]["numinlets"], ln
    texts = [b.get("text", "") for b in boxes.values() if b["maxclass"] in ("message", "newobj")]
    used = addresses_in("\n".join(texts))
    assert used and used <= routes, used - routes
    assert f"udpsend 127.0.0.1 {DEFAULT_OSC_PORT}" in texts
    reply = next(t for t in texts if t.startswith("/gesturegan/reply"))
    assert f"udpreceive {reply.split()[1]}" in texts  # replies come where the patch listens
    assert any(t.startswith("/gesturegan/trigger") for t in texts) and any("macro1" in t for t in texts)
    assert any("/gesturegan/morph" in t for t in texts) and "/gesturegan/status" in texts


def test_every_address_the_patches_use_exists(routes):
    scd = (PATCHES / "gesturegan.scd").read_text()
    assert addresses_in(scd) <= routes, addresses_in(scd) - routes
    pd = (PATCHES / "gesturegan.pd").read_text()
    pd_addresses = {"/" + "/".join(m.split()) for m in re.findall(r"oscformat ([A-Za-z0-9_ ]+);", pd)}
    assert pd_addresses and pd_addresses <= routes, pd_addresses - routes
