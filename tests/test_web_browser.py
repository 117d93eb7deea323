"""The dashboard and the history pages in a real browser: the distribution's headless Chromium driven
by Selenium (nothing downloaded; skipped with the reason where Chromium or its driver is missing).

Every wait is for a condition, with a timeout.  Screenshots of the pages go to the test's temporary
folder (``STEPSOUND_SCREENSHOTS=DIR`` keeps them in DIR) for a person to look at."""
import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from stepsound.cli.main import main
from stepsound.web import LiveState, WebServer
from stepsound.web.live import LiveApp, SnapshotBuilder
from stepsound.web.server import WebAddress

from webtools import RUN_FILE, EventReader, Session, http, state, wait_for

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
    pytest.skip("Debian's chromium and chromium-driver are not installed (scripts/setup installs them)",
                allow_module_level=True)

from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,800",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(arg)
    try:
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    except WebDriverException as exc:
        pytest.skip(f"headless Chromium does not start here: {exc.msg}")
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def shots(tmp_path):
    folder = Path(os.environ.get("STEPSOUND_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _size(driver, w, h):
    driver.set_window_size(w, h)
    # the window size includes the browser's frame: make the page's viewport what was asked for
    inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    driver.set_window_size(w + (w - inner[0]), h + (h - inner[1]))


def _text(driver, css):
    return driver.find_element(By.CSS_SELECTOR, css).text


def _until(driver, script, timeout, what):
    """Wait until a JavaScript expression is truthy in the page; its value."""
    return wait_for(lambda: driver.execute_script(f"return ({script});"), timeout, what)


@pytest.fixture
def fed_dashboard():
    """A dashboard fed by the test itself: what the page must show is known exactly."""
    st = LiveState()
    server = WebServer(WebAddress("127.0.0.1", 0), LiveApp(st)).start()
    builder = SnapshotBuilder(band_pct=3.0)
    steps = [{"time_s": 10.0 + i * 0.36, "impact_db": d, "heavy": d >= 6, "side": "LR"[i % 2],
              "strike": s} for i, (d, s) in enumerate([(1.2, "heel"), (7.4, "heel"), (-0.6, "forefoot"),
                                                         (2.0, "uncertain"), (6.3, "heel"), (0.4, None)])]

    def publish(**kw):
        st_ = {"phase": "coaching", "elapsed_s": 95.0, "steps": 250, "heavy_share": 0.14, "xruns": 2,
               "metronome_on": True, "last_steps": steps, "target_spm": 171.0, **kw}
        return st.publish(builder.build(st_))

    for i in range(40):   # a trace of the last 80 s
        builder.build({"phase": "coaching", "elapsed_s": 15.0 + 2 * i, "cadence_spm": 160.0 + i / 4,
                       "target_spm": 171.0})
    server.base = f"http://127.0.0.1:{server.port}"
    server.publish = publish
    server.state = st
    yield server
    server.close()


def test_the_page_shows_what_is_published_in_word_shape_and_colour(browser, fed_dashboard, shots):
    d = fed_dashboard
    _size(browser, 1280, 800)
    browser.get(d.base + "/")
    frame = d.publish(cadence_spm=163.4, on_target=False)
    _until(browser, f"document.body.dataset.seq == '{frame.seq}'", 10, "the first frame on the page")
    assert _text(browser, "#spm") == "163"
    assert _text(browser, "#target-spm") == "171" and _text(browser, "#diff") == "−8"
    assert _text(browser, "#cue-word") == "SPEED UP"
    assert browser.execute_script("return document.getElementById('cue-use').getAttribute('href')") == \
        "#shape-speed_up"
    assert _text(browser, "#elapsed") == "0:01:35" and _text(browser, "#steps") == "250"
    assert _text(browser, "#heavy") == "14%" and _text(browser, "#metronome") == "ON"
    assert _text(browser, "#xruns") == "2" and "bad" in browser.find_element(By.ID, "xruns-fact").get_attribute(
        "class")
    landings = browser.find_elements(By.CSS_SELECTOR, "#last-steps li")
    assert len(landings) == 6
    newest_first = [li.text.replace("\n", " ") for li in landings]
    assert newest_first[0] == "+0 dB right" and newest_first[1].startswith("+6 dB")
    assert "HEAVY" in newest_first[1] and "heel first" in newest_first[1]
    assert sum("HEAVY" in t for t in newest_first) == 2 and "forefoot" in newest_first[3]
    assert browser.find_element(By.ID, "trace-line").get_attribute("d").count("L") >= 39
    assert browser.find_element(By.ID, "trace-band").get_attribute("d").endswith("Z")
    browser.save_screenshot(str(shots / "live-speed-up-1280x800.png"))
    speed_up = browser.execute_script("return getComputedStyle(document.getElementById('cue')).borderTopColor")
    # on target: another word, another shape, another colour
    frame = d.publish(cadence_spm=170.6, on_target=True)
    _until(browser, f"document.body.dataset.seq == '{frame.seq}'", 10, "the next frame")
    assert _text(browser, "#spm") == "171" and _text(browser, "#cue-word") == "ON TARGET"
    assert _text(browser, "#diff") == "±0"
    assert browser.execute_script("return document.getElementById('cue-use').getAttribute('href')") == \
        "#shape-on_target"
    on_target = browser.execute_script("return getComputedStyle(document.getElementById('cue')).borderTopColor")
    assert on_target != speed_up
    frame = d.publish(cadence_spm=170.6, on_target=True, last_cue="land_softer", last_cue_time_s=94.0)
    _until(browser, f"document.body.dataset.seq == '{frame.seq}'", 10, "the next frame")
    assert _text(browser, "#cue-word") == "LAND SOFTER"
    assert browser.execute_script("return document.getElementById('cue-use').getAttribute('href')") == \
        "#shape-land_softer"
    browser.save_screenshot(str(shots / "live-land-softer-1280x800.png"))


def test_the_layout_fills_a_laptop_and_fits_a_phone(browser, fed_dashboard, shots):
    d = fed_dashboard
    for w, h, name in ((1280, 800, "laptop"), (412, 915, "phone"), (915, 412, "phone-landscape"),
                       (820, 1180, "tablet")):
        _size(browser, w, h)
        browser.get(d.base + "/")
        frame = d.publish(cadence_spm=176.0, on_target=False)
        _until(browser, f"document.body.dataset.seq == '{frame.seq}'", 10, "a frame")
        box = browser.execute_script("""
            const r = document.getElementById('spm').getBoundingClientRect();
            const c = document.getElementById('cue-word').getBoundingClientRect();
            return {h: r.height, w: r.width, top: r.top, bottom: r.bottom, vw: innerWidth, vh: innerHeight,
                    sw: document.documentElement.scrollWidth, cue_w: c.width, cue_right: c.right,
                    font: parseFloat(getComputedStyle(document.getElementById('spm')).fontSize)};""")
        browser.save_screenshot(str(shots / f"live-{name}-{w}x{h}.png"))
        assert box["sw"] <= box["vw"] + 1, f"{name}: the page scrolls sideways"
        assert box["cue_right"] <= box["vw"] + 1, f"{name}: the cue word is cut off"
        assert 0 <= box["top"] and box["bottom"] <= box["vh"], f"{name}: the cadence is not on the first screen"
        if w > h:      # landscape, readable at 2-3 m on a laptop: the digits are a third of the screen's height
            assert box["font"] >= 0.33 * box["vh"], (name, box)
        else:          # upright phone or tablet: the number spans about half the screen's width or more
            assert box["w"] >= 0.45 * box["vw"], (name, box)
        buttons = browser.find_elements(By.CSS_SELECTOR, "#controls button")
        assert all(b.size["height"] >= 44 for b in buttons), f"{name}: buttons too small to hit while running"


def test_the_page_shows_the_cadence_the_api_reports_during_a_replay(browser, tmp_path, shots):
    s = Session(tmp_path, "--input-file", RUN_FILE, "--speed", "6", "--target", "170", "--cues", "always")
    try:
        _size(browser, 1280, 800)
        frames = EventReader(s.link("/api/events"))      # the same stream the page reads, seen by the test
        browser.get(s.url)
        _until(browser, "document.body.dataset.seq > 0 && document.body.dataset.conn == 'live'", 15, "live data")
        checked = 0
        deadline = time.monotonic() + 20
        while checked < 5 and time.monotonic() < deadline:
            seq, shown = browser.execute_script(
                "return [Number(document.body.dataset.seq), document.getElementById('spm').textContent]")
            frame = wait_for(lambda: frames.frames.get(seq), 5, f"frame {seq} in the test's own stream")
            snap = json.loads(frame[1])
            if snap["cadence_spm"] is None:
                assert shown == "---"
            else:
                assert shown == str(round(snap["cadence_spm"])), (seq, shown, snap["cadence_spm"])
                checked += 1
            # and /api/state answers with that very frame when it is the newest
            api = state(s)
            if api["seq"] in frames.frames:
                assert json.loads(frames.frames[api["seq"]][1]) == api
            time.sleep(0.3)
        assert checked == 5
        # the runner nudges the target from the page
        target = wait_for(lambda: state(s)["target_spm"], 10, "a target")
        _until(browser, "!document.getElementById('nudge-up').disabled", 5, "the +1 button")
        browser.find_element(By.ID, "nudge-up").click()
        wait_for(lambda: state(s)["target_spm"] == target + 1, 5, "the target one higher")
        _until(browser, f"document.getElementById('target-spm').textContent == '{round(target + 1)}'", 5,
               "the page showing it")
        browser.find_element(By.ID, "pause").click()
        wait_for(lambda: state(s)["cues_paused"], 5, "the cues paused")
        _until(browser, "document.getElementById('cue-word').textContent == 'CUES PAUSED'", 5, "CUES PAUSED")
        assert _text(browser, "#pause") == "Resume cues"
        browser.save_screenshot(str(shots / "live-replay-paused.png"))
        browser.find_element(By.ID, "pause").click()
        wait_for(lambda: not state(s)["cues_paused"], 5, "the cues back")
        assert s.wait(60) == 0
        _until(browser, "document.body.dataset.conn == 'ended'", 10, "the page saying the session ended")
        assert _text(browser, "#cue-word") == "SESSION ENDED"
        assert browser.find_element(By.ID, "pause").get_attribute("disabled") is not None
        doc = s.document()
        assert doc["summary"]["final_target_spm"] == target + 1
        assert [c["kind"] for c in doc["cues"]].count("cues_paused") == 1
        frames.close()
    finally:
        s.stop()


@pytest.mark.audio
def test_a_real_time_replay_through_the_audio_device_shows_on_the_page(browser, virtual_audio, tmp_path, shots):
    """The recording and the cues played through the virtual audio device in real time (the replay paced by
    the device, as a runner would hear it): the page shows the cadence the engine computes, frame by frame."""
    s = Session(tmp_path, "--input-file", RUN_FILE, "--output-device", virtual_audio.device, "--duration", "15s",
                "--target", "170", "--cues", "always")
    try:
        _size(browser, 1280, 800)
        frames = EventReader(s.link("/api/events"))
        browser.get(s.url)
        _until(browser, "document.body.dataset.seq > 0 && document.body.dataset.conn == 'live'", 15, "live data")
        checked, started = 0, time.monotonic()
        while checked < 4 and time.monotonic() - started < 14:
            seq, shown = browser.execute_script(
                "return [Number(document.body.dataset.seq), document.getElementById('spm').textContent]")
            snap = json.loads(wait_for(lambda: frames.frames.get(seq), 5, f"frame {seq}")[1])
            if snap["cadence_spm"] is not None:
                assert shown == str(round(snap["cadence_spm"])), (seq, shown, snap["cadence_spm"])
                checked += 1
            time.sleep(0.5)
        assert checked == 4
        browser.save_screenshot(str(shots / "live-device-replay.png"))
        assert s.wait(60) == 0
        doc = s.document()
        assert doc["summary"]["device_sample_rate"] == virtual_audio.sample_rate   # it went through the device
        assert 14.0 <= doc["duration_s"] <= 16.0 and doc["summary"]["steps"] > 20
        frames.close()
    finally:
        s.stop()


def test_off_loopback_the_page_needs_its_token(browser, tmp_path):
    s = Session(tmp_path, "--input-file", RUN_FILE, "--speed", "4", web="0.0.0.0:0")
    try:
        assert s.token and "token=" in s.url
        browser.get(f"{s.base}/")                  # loopback address of this machine, without the token
        assert "unauthorized" in browser.find_element(By.TAG_NAME, "body").text
        browser.get(f"{s.base}/?token=not-it")
        assert "forbidden" in browser.find_element(By.TAG_NAME, "body").text
        browser.get(s.link("/"))
        _until(browser, "document.body.dataset.conn == 'live'", 15, "live data with the token")
        seq = int(browser.execute_script("return document.body.dataset.seq"))
        assert seq > 0 and _text(browser, "#spm") != ""
        # the page's own POSTs carry the token: pausing works from it
        _until(browser, "!document.getElementById('pause').disabled", 5, "the pause button")
        browser.find_element(By.ID, "pause").click()
        wait_for(lambda: state(s)["cues_paused"], 5, "the cues paused")
    finally:
        s.stop()


def test_serve_pages_in_the_browser(browser, tmp_path, shots):
    db = tmp_path / "s.sqlite"
    for target in ("+5%", "170"):
        assert main(["run", "--db", str(db), "--quiet", "--input-file", RUN_FILE, "--fast", "--target", target,
                     "--cues", "off-target"]) == 0
    from stepsound.web.history import HistoryApp

    server = WebServer(WebAddress("127.0.0.1", 0), HistoryApp(str(db)), command="serve").start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        for w, h, name in ((1280, 900, "laptop"), (412, 915, "phone")):
            _size(browser, w, h)
            browser.get(base + "/")
            rows = browser.find_elements(By.CSS_SELECTOR, "table.sessions tbody tr")
            assert len(rows) == 2
            assert len(browser.find_elements(By.CSS_SELECTOR, ".spark svg")) >= 3
            assert browser.execute_script("return document.documentElement.scrollWidth") <= w + 1
            browser.save_screenshot(str(shots / f"serve-list-{name}.png"))
        _size(browser, 1280, 900)
        browser.get(base + "/")
        browser.find_element(By.CSS_SELECTOR, "table.sessions tbody tr a").click()
        wait_for(lambda: "/session/" in browser.current_url, 10, "the session page")
        _until(browser, "document.querySelector('img.figure').complete", 30, "the figure")
        assert browser.execute_script("return document.querySelector('img.figure').naturalWidth") > 500
        facts = browser.find_element(By.CSS_SELECTOR, "dl.facts").text
        assert "median cadence" in facts and "steps/min" in facts and "time in target zone" in facts
        browser.save_screenshot(str(shots / "serve-session.png"))
    finally:
        server.close()
