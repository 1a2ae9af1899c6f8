"""The browser control surface in a real browser: headless Chromium (Debian's ``chromium``, driven by
Playwright) opens the page that a real ``gesturegan play`` prints, on JACK's dummy driver, and a performer's
gestures go through it: the XY pad moves the engine's ``morph_x``/``morph_y`` (read back over OSCQuery's
HTTP, as another host would), a struck pad plays a trigger of its category with the velocity of where it was
struck (read back from the take's recorded score), the counters follow the engine, and when the instrument
goes away the page says so instead of going stale.

Set ``GESTUREGAN_SCREENSHOT=path.png`` to keep the page's screenshot (the README's picture is made so)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import urllib.request

import pytest

from tests.helpers import wait_for

from .onnx_models import GESTURES, engine_model_file

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the [test] extra installs it)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def value(base: str, path: str):
    with urllib.request.urlopen(f"{base}{path}?VALUE", timeout=5) as r:
        return json.loads(r.read())["VALUE"][0]


@pytest.fixture
def playing(jack, tmp_path):
    """A real ``gesturegan play`` on JACK with its control page; yields (page URL, base URL, process, score
    path, its stderr file). Its output goes to files, not pipes: a pipe is only closed when every process
    holding it is, so a waiting pipe would say nothing about whether ``play`` itself ended."""
    model = engine_model_file(tmp_path / "m.onnx", n_samples=16384, categories=GESTURES)
    take, out, err = tmp_path / "take.toml", tmp_path / "play.out", tmp_path / "play.err"
    with open(out, "w") as o, open(err, "w") as e:
        proc = subprocess.Popen([sys.executable, "-u", "-X", "faulthandler", "-m", "instrument", "play", "--model", str(model),
                                 "--seconds", "120", "--quiet", "--osc-port", "0", "--web-port", "0", "--record-score", str(take)],
                                stdout=o, stderr=e, stdin=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: "control page:" in out.read_text() or proc.poll() is not None, 30, 0.05), out.read_text()
        m = re.search(r"control page: (http://\S+/ui/)\s", out.read_text())
        assert m, out.read_text() + err.read_text()
        page_url = m.group(1)
        yield page_url, page_url[: -len("/ui/")], proc, take, err
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium; tests/install_and_test.sh does it as root)")
def test_the_page_plays_the_instrument_in_a_real_browser(playing):
    page_url, base, proc, take, play_err = playing
    errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(page_url)
            sync_api.expect(page.locator("#connection")).to_have_text("connected", timeout=15000)
            assert page.locator("button.pad").count() == 4
            assert page.locator("#model").inner_text().count("·") == 3  # the four categories, from the namespace

            # the XY pad: a drag towards the top right moves the engine's morph_x/y there
            box = page.locator("#xy").bounding_box()
            page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + 0.5 * box["height"])
            page.mouse.down()
            for k in range(1, 11):
                f = k / 10
                page.mouse.move(box["x"] + (0.5 + 0.3 * f) * box["width"], box["y"] + (0.5 - 0.4 * f) * box["height"])
            page.mouse.up()
            assert wait_for(lambda: abs(value(base, "/gesturegan/param/morph_x") - 0.8) < 0.02
                            and abs(value(base, "/gesturegan/param/morph_y") - 0.9) < 0.02, 5), \
                (value(base, "/gesturegan/param/morph_x"), value(base, "/gesturegan/param/morph_y"))

            # the mix the engine plays now is shown, whatever set it: near the top-right corner, mostly continuous repetition
            sync_api.expect(page.locator("#mix-now")).to_contain_text("continuous repetition 0.", timeout=5000)
            shares = [float(v) for v in re.findall(r"\d+\.\d+|\b[01]\b", page.locator("#mix-now").inner_text())]
            assert len(shares) == 4 and shares[3] == max(shares) and abs(sum(shares) - 1) < 0.02, shares

            # a slider: macro 3 to its top, through the range input as a hand would (keyboard End)
            page.locator('input[data-param="macro3"]').focus()
            page.keyboard.press("End")
            assert wait_for(lambda: value(base, "/gesturegan/param/macro3") == 1.0, 5)

            # a pad struck a quarter of the way down: its category, velocity 0.75
            pad = page.locator('button.pad[data-category="continuous_repetition"]')
            pb = pad.bounding_box()
            page.mouse.click(pb["x"] + pb["width"] / 2, pb["y"] + 0.25 * pb["height"])
            assert wait_for(lambda: value(base, "/gesturegan/status/clips_generated") > 0, 10)

            # the counters follow the engine: its clock advances on the page
            clock = page.locator('#counters tr[data-status="time_s"] td').nth(1)
            sync_api.expect(clock).not_to_have_text("–", timeout=5000)
            t1 = float(clock.inner_text())
            time.sleep(1.0)
            assert float(clock.inner_text()) > t1
            sync_api.expect(page.locator("#spectrogram")).to_have_attribute("title", re.compile(r"s, \d+"), timeout=5000)

            if os.environ.get("GESTUREGAN_SCREENSHOT"):
                page.screenshot(path=os.environ["GESTUREGAN_SCREENSHOT"], full_page=True)

            # the instrument goes away (`kill`: a clean end, its take kept; Ctrl-C cannot reach a process that a
            # non-interactive shell started in the background, which has SIGINT ignored): the page shows it,
            # greyed out and reconnecting, not silently stale
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:  # say where it hangs: faulthandler prints every thread's stack on SIGABRT
                proc.send_signal(signal.SIGABRT)
                proc.wait(timeout=10)
                pytest.fail("gesturegan play did not end within 30 s of SIGTERM:\n" + play_err.read_text()[-6000:])
            sync_api.expect(page.locator("#connection")).to_contain_text("disconnected", timeout=10000)
            assert "offline" in (page.locator("body").get_attribute("class") or "")
        finally:
            browser.close()
    assert proc.returncode == 0, play_err.read_text()
    assert not errors, errors
    events = tomllib.loads(take.read_text())["event"]
    triggers = [e for e in events if "trigger" in e]
    assert len(triggers) == 1 and triggers[0]["trigger"] == "continuous_repetition", triggers
    assert abs(triggers[0]["velocity"] - 0.75) < 0.03, triggers
    morphs = [e["set"] for e in events if "set" in e and "morph_x" in e["set"]]
    assert morphs and abs(morphs[-1]["morph_x"] - 0.8) < 0.02 and abs(morphs[-1]["morph_y"] - 0.9) < 0.02, morphs
