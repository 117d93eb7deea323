"""The web side over plain HTTP (urllib and raw sockets, loopback only): the state hand-over, the
security rules, the push channel and its update rate, stalled clients, `run --web` on replayed
sessions (the runner's controls, Ctrl-C, a busy port) and `stepsound serve`."""
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from stepsound.cli.main import main
from stepsound.coach.coach import Coach, CoachConfig
from stepsound.engine import CadenceTick
from stepsound.errors import ParameterError, StepsoundError
from stepsound.web import LiveState, WebServer, parse_web_address
from stepsound.web.history import session_metrics, weekly_trends
from stepsound.web.live import LiveApp, SnapshotBuilder
from stepsound.web.server import WebAddress
from stepsound.web.state import Control

from webtools import (REPO, RUN_FILE, EventReader, Session, StalledClient, csrf_of, http, own_page_headers,
                      state, steps_of, wait_for)


# -- pieces -------------------------------------------------------------------------------------

def test_web_address_parsing():
    assert parse_web_address("") == WebAddress("127.0.0.1", 8765)
    assert parse_web_address(None) == WebAddress("127.0.0.1", 8765)
    assert parse_web_address("9000") == WebAddress("127.0.0.1", 9000)
    assert parse_web_address("0.0.0.0:8080") == WebAddress("0.0.0.0", 8080)
    assert parse_web_address("[::1]:0") == WebAddress("::1", 0)
    assert parse_web_address("localhost:1234").loopback
    assert parse_web_address("127.0.0.2:1").loopback and parse_web_address("[::1]:1").loopback
    assert not parse_web_address("0.0.0.0:1").loopback and not parse_web_address("myhost:1").loopback
    for bad, says in [("70000", "0-65535"), ("abc", "port"), (":80", "no host"), ("::1:80", "IPv6"),
                      ("[::1]80", "IPv6"), ("a/b:80", "not a host")]:
        with pytest.raises(ParameterError, match=says):
            parse_web_address(bad)


def test_the_holder_gives_the_newest_frame_and_the_publisher_never_waits():
    st = LiveState()
    assert st.latest() is None and st.wait_newer(0, 0.01) is None
    for i in range(100):
        st.publish({"cadence_spm": 160.0 + i, "x": float("nan")})
    frame = st.wait_newer(0, 0.01)
    assert frame.seq == 100                                      # a slow reader skips to the newest
    doc = json.loads(frame.body)
    assert doc["cadence_spm"] == 259.0 and doc["x"] is None and doc["seq"] == 100
    assert st.wait_newer(100, 0.01) is None
    # a reader waiting for the next frame holds no lock the publisher needs
    got = []
    t = threading.Thread(target=lambda: got.append(st.wait_newer(100, 5.0)))
    t.start()
    time.sleep(0.05)
    t0 = time.perf_counter()
    st.publish({"cadence_spm": 1.0})
    assert time.perf_counter() - t0 < 0.05
    t.join(5)
    assert got[0].seq == 101
    st.close()
    assert st.wait_newer(101, 5.0) is None      # closed: no waiting
    # the runner's requests: bounded, checked
    for _ in range(32):
        st.request(Control("pause_cues"))
    with pytest.raises(queue.Full):
        st.request(Control("pause_cues"))
    assert len(st.take_controls()) == 32 and st.take_controls() == []
    for bad in (Control("reboot"), Control("nudge_target", 5.0), Control("nudge_target", float("nan")),
                Control("nudge_target", 0.0)):
        with pytest.raises(ValueError):
            st.request(bad)


def test_snapshot_words_and_trace():
    b = SnapshotBuilder(band_pct=3.0, trace_s=10.0, trace_step_s=2.0)
    base = {"phase": "coaching", "target_spm": 170.0, "elapsed_s": 0.0}
    assert b.build({**base, "target_spm": None, "phase": "warmup", "cadence_spm": 160.0})["cue_word"] == "WARM-UP"
    assert b.build({**base, "cadence_spm": 160.0, "on_target": False})["cue"] == "speed_up"
    assert b.build({**base, "cadence_spm": 180.0, "on_target": False})["cue"] == "slow_down"
    assert b.build({**base, "cadence_spm": 171.0, "on_target": None})["cue"] == "on_target"
    assert b.build({**base, "cadence_spm": None})["cue"] == "no_steps"
    soft = {**base, "cadence_spm": 170.0, "on_target": True, "last_cue": "land_softer", "last_cue_time_s": 10.0}
    assert b.build({**soft, "elapsed_s": 12.0})["cue_word"] == "LAND SOFTER"
    assert b.build({**soft, "elapsed_s": 20.0})["cue_word"] == "ON TARGET"
    assert b.build({**base, "cadence_spm": 170.0, "cues_paused": True})["cue_word"] == "CUES PAUSED"
    snap = b.build({**base, "cadence_spm": 165.0, "ended": True})
    assert snap["cue"] == "ended" and snap["state"] == "ended"
    assert snap["diff_spm"] == -5.0 and snap["band_spm"] == pytest.approx(5.1)
    b2 = SnapshotBuilder(trace_s=10.0, trace_step_s=2.0)
    for i in range(40):
        b2.build({**base, "elapsed_s": i * 0.5, "cadence_spm": 160.0 + i})
    trace = b2.build({**base, "elapsed_s": 20.0, "cadence_spm": 200.0})["trace"]
    assert len(trace) == 5 and [p[0] for p in trace] == [12.0, 14.0, 16.0, 18.0, 20.0]


def test_coach_pause_and_nudge():
    class Metro:
        def __init__(self):
            self.log = []

        def set_tempo(self, spm, ramp_s=0.0):
            self.log.append(("tempo", spm))

        def enable(self, on):
            self.log.append(("enable", on))

        def trigger_cue(self, kind):
            self.log.append(("cue", kind))

    m = Metro()
    c = Coach(CoachConfig(target="170", cues="always"), 1000, m)
    assert c.nudge_target(0, 1.0) is False                  # no target before the first tick
    c.on_tick(CadenceTick(1000, 1.0, 160.0))
    assert c.target_spm == 170 and c.metronome_on
    assert c.nudge_target(1500, 1.0) and c.target_spm == 171 and ("tempo", 171.0) in m.log
    c.on_tick(CadenceTick(2000, 2.0, 160.0))
    assert c.target_spm == 171                               # the nudge holds against the goal
    assert c.pause_cues(2500, True) and not c.metronome_on and m.log[-1] == ("enable", False)
    assert c.pause_cues(2600, True) is False
    c.on_tick(CadenceTick(3000, 3.0, 160.0))
    assert not c.metronome_on                                # coaching does not turn it back on
    assert c.pause_cues(3500, False) and c.metronome_on
    kinds = [q.kind for q in c.cues]
    assert kinds.count("cues_paused") == 1 and kinds.count("cues_resumed") == 1 and "tempo" in kinds
    assert c.status()["cues_paused"] is False and c.status()["target_offset_spm"] == 1.0


# -- the server in this process ---------------------------------------------------------------------

@pytest.fixture
def live():
    """A dashboard server on a free loopback port, fed by the test."""
    st = LiveState()
    server = WebServer(WebAddress("127.0.0.1", 0), LiveApp(st)).start()
    server.base = f"http://127.0.0.1:{server.port}"
    server.state = st
    yield server
    server.close()


def test_loopback_server_pages_headers_and_host_check(live):
    status, headers, body = http(live.base + "/api/state")
    assert status == 503                                        # nothing published yet
    live.state.publish({"cadence_spm": 161.5, "steps": 3})
    status, headers, body = http(live.base + "/api/state")
    assert status == 200 and json.loads(body) == {"cadence_spm": 161.5, "steps": 3, "seq": 1}
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff" and "Access-Control-Allow-Origin" not in headers
    status, _, page = http(live.base + "/")
    assert status == 200 and b'<script src="/static/live.js" defer>' in page
    assert b"http" not in page.replace(b"http-equiv", b"")      # no address of anywhere else
    for name, kind in [("live.js", "javascript"), ("live.css", "css"), ("icon.svg", "svg")]:
        status, headers, body = http(f"{live.base}/static/{name}")
        assert status == 200 and kind in headers["Content-Type"] and b"//cdn" not in body
    assert http(live.base + "/static/../server.py")[0] == 404
    assert http(live.base + "/nothing")[0] == 404
    # a page elsewhere whose name was pointed at 127.0.0.1 (DNS rebinding) gets nothing
    status, _, _ = http(live.base + "/api/state", headers={"Host": f"evil.example:{live.port}"})
    assert status == 403
    assert http(live.base + "/api/state", headers={"Host": f"localhost:{live.port}"})[0] == 200
    assert http(live.base + "/", method="PUT", data=b"")[0] == 405


def test_changes_only_by_post_from_the_own_page(live):
    live.state.publish({"x": 1})
    _, _, page = http(live.base + "/")
    csrf = csrf_of(page)
    url = live.base + "/api/control"
    body = json.dumps({"action": "nudge_target", "delta_spm": 1}).encode()
    good = {"Content-Type": "application/json", "X-Stepsound-CSRF": csrf, "Origin": live.base}
    # a GET never changes anything
    assert http(url + "?action=nudge_target&delta_spm=1")[0] == 405
    assert live.state.take_controls() == []
    refused = [
        {k: v for k, v in good.items() if k != "X-Stepsound-CSRF"},          # no CSRF token
        {**good, "X-Stepsound-CSRF": "guess"},                                # a wrong one
        {k: v for k, v in good.items() if k != "Origin"},                     # no Origin nor Referer
        {**good, "Origin": "http://evil.example"},                            # another site
    ]
    for headers in refused:
        assert http(url, method="POST", data=body, headers=headers)[0] == 403, headers
    assert live.state.take_controls() == []
    referer_only = {**{k: v for k, v in good.items() if k != "Origin"}, "Referer": live.base + "/"}
    assert http(url, method="POST", data=body, headers=referer_only)[0] == 202
    assert http(url, method="POST", data=body, headers=good)[0] == 202
    assert live.state.take_controls() == [Control("nudge_target", 1.0)] * 2
    for bad in (b"{", b"[]", json.dumps({"action": "nudge_target", "delta_spm": 3}).encode(),
                json.dumps({"action": "shutdown"}).encode(), json.dumps({"action": "pause_cues",
                                                                        "delta_spm": "x"}).encode()):
        assert http(url, method="POST", data=bad, headers=good)[0] == 400, bad
    assert http(url, method="POST", data=body, headers={**good, "Content-Type": "text/plain"})[0] == 415
    assert http(url, method="POST", data=b"x" * 5000, headers=good)[0] == 413
    assert live.state.take_controls() == []


def test_a_non_loopback_server_refuses_everything_without_its_token():
    st = LiveState()
    st.publish({"cadence_spm": 170.0})
    # bound to every interface; the test itself only connects through the loopback address
    server = WebServer(parse_web_address("0.0.0.0:0"), LiveApp(st)).start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        assert server.token and len(server.token) >= 32
        assert all(f"token={server.token}" in u for u in server.urls())
        for path in ("/", "/api/state", "/api/events", "/static/live.js", "/static/live.css", "/nothing"):
            status, headers, _ = http(base + path)
            assert status == 401 and "WWW-Authenticate" in headers, path
            assert http(f"{base}{path}?token=wrong")[0] == 403, path
        status, _, page = http(f"{base}/?token={server.token}")
        assert status == 200 and f"live.js?token={server.token}".encode() in page
        assert http(f"{base}/api/state?token={server.token}")[0] == 200
        assert http(base + "/api/state", headers={"Authorization": f"Bearer {server.token}"})[0] == 200
        assert http(base + "/api/state", headers={"X-Stepsound-Token": server.token})[0] == 200
        assert http(base + "/api/control", method="OPTIONS")[0] == 401
        assert http(base + "/api/control", method="DELETE", headers={"X-Stepsound-Token": server.token})[0] == 405
        # a state change needs the token too, even with the page's CSRF token and origin
        csrf = csrf_of(page)
        body = json.dumps({"action": "pause_cues"}).encode()
        headers = {"Content-Type": "application/json", "X-Stepsound-CSRF": csrf, "Origin": base}
        assert http(base + "/api/control", method="POST", data=body, headers=headers)[0] == 401
        assert http(base + "/api/control?token=nope", method="POST", data=body, headers=headers)[0] == 403
        assert st.take_controls() == []
        assert http(f"{base}/api/control?token={server.token}", method="POST", data=body, headers=headers)[0] == 202
        assert st.take_controls() == [Control("pause_cues")]
    finally:
        server.close()


def test_push_channel_rate_and_end(live):
    reader = EventReader(live.base + "/api/events")
    wait_for(lambda: reader.status_line, 5, "the stream's headers")
    assert reader.status_line.endswith("200 OK")
    for i in range(1, 11):
        live.state.publish({"i": i})
        wait_for(lambda: i in reader.frames, 5, f"frame {i}")
    assert [json.loads(reader.frames[i][1])["i"] for i in range(1, 11)] == list(range(1, 11))
    live.state.close()
    wait_for(lambda: reader.ended and reader.closed, 5, "the end of the stream")


def _rss_kib() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def test_stalled_clients_cost_the_publisher_nothing_and_memory_stays_bounded(live):
    live.state.publish({"pad": "x"})
    stalled = [StalledClient(live.base + "/api/events") for _ in range(4)]
    stalled.append(StalledClient(live.base + "/api/events", read_head=20))    # stalls mid-response
    stalled.append(StalledClient(live.base + "/"))                              # never reads the page
    reader = EventReader(live.base + "/api/events")
    wait_for(lambda: reader.frames, 5, "the reading client's first frame")
    pad = "x" * 20000
    rss0 = _rss_kib()
    worst = 0.0
    # 3000 frames of ~20 kB (~57 MB) as fast as they can be made: a fixed amount, so that a slow or
    # loaded machine publishes as much as a fast one (a 3 s budget published < 50 MB under load)
    for n in range(3000):
        t0 = time.perf_counter()
        newest = live.state.publish({"n": n, "pad": pad}).seq
        worst = max(worst, time.perf_counter() - t0)
        if n % 50 == 0:
            time.sleep(0.001)
    grown_mib = (_rss_kib() - rss0) / 1024
    published_mib = 3000 * len(pad) / 2 ** 20
    assert grown_mib < 20, f"memory grew {grown_mib:.1f} MiB while {published_mib:.0f} MiB were published"
    # a publisher that waited for a stalled client would wait for ever (its socket buffer is full after
    # a few frames); a busy machine can still delay one publish by a scheduler slice or two
    assert worst < 0.5, f"a publish took {1000 * worst:.0f} ms"
    # the client that reads is not held back by the ones that do not: it has the newest frame
    last = max(reader.frames)
    wait_for(lambda: max(reader.frames) == newest, 5, "the reading client to get the newest frame")
    assert last > 1
    t0 = time.monotonic()
    live.close()
    assert time.monotonic() - t0 < 2.0                # a stalled client does not hold the server's end up
    for c in stalled:
        c.close()


def test_a_busy_port_is_one_line():
    first = WebServer(WebAddress("127.0.0.1", 0), LiveApp(LiveState())).start()
    try:
        with pytest.raises(StepsoundError, match=r"^run: --web 127\.0\.0\.1:\d+: port \d+ is already in use"):
            WebServer(WebAddress("127.0.0.1", first.port), LiveApp(LiveState())).start()
    finally:
        first.close()


# -- `stepsound run --web` on a replayed session -------------------------------------------------------

def test_run_web_serves_the_session_and_the_runner_controls_it(tmp_path):
    s = Session(tmp_path, "--input-file", RUN_FILE, "--speed", "8", "--target", "170", "--cues", "always")
    try:
        first = wait_for(lambda: http(s.link("/api/state"))[0] == 200 and state(s), 10, "the first snapshot")
        for key in ("cadence_spm", "target_spm", "elapsed_s", "steps", "heavy_share", "cue", "cue_word",
                    "last_steps", "trace", "xruns", "metronome_on", "cues_paused"):
            assert key in first, key
        # the push channel: measured rate over two seconds
        reader = EventReader(s.link("/api/events"))
        wait_for(lambda: len(reader.frames) >= 2, 5, "frames")
        t0, n0 = time.monotonic(), len(reader.frames)
        time.sleep(2.0)
        rate = (len(reader.frames) - n0) / (time.monotonic() - t0)
        assert rate >= 4.0, f"{rate:.1f} updates/s"
        seqs = sorted(reader.frames)
        assert seqs == list(range(seqs[0], seqs[-1] + 1))       # a reading client misses none
        wait_for(lambda: state(s)["target_spm"] == 170.0, 10, "the target")
        _, _, page = http(s.link("/"))
        headers = own_page_headers(s, csrf_of(page))
        # a GET cannot nudge
        assert http(s.link("/api/control?action=nudge_target&delta_spm=1"))[0] == 405
        time.sleep(0.3)
        assert state(s)["target_spm"] == 170.0
        body = json.dumps({"action": "nudge_target", "delta_spm": 1}).encode()
        assert http(s.link("/api/control"), method="POST", data=body, headers=headers)[0] == 202
        wait_for(lambda: state(s)["target_spm"] == 171.0, 5, "the nudged target")
        body = json.dumps({"action": "pause_cues"}).encode()
        assert http(s.link("/api/control"), method="POST", data=body, headers=headers)[0] == 202
        st = wait_for(lambda: (lambda x: x if x["cues_paused"] else None)(state(s)), 5, "paused cues")
        assert st["cue"] == "paused" and st["metronome_on"] is False
        body = json.dumps({"action": "resume_cues"}).encode()
        assert http(s.link("/api/control"), method="POST", data=body, headers=headers)[0] == 202
        wait_for(lambda: state(s)["metronome_on"], 5, "the metronome back on")
        assert s.wait(60) == 0
        wait_for(lambda: reader.ended, 5, "the stream's end event")
        assert json.loads(reader.frames[max(reader.frames)][1])["state"] == "ended"
        doc = s.document()
        tempo = [c for c in doc["cues"] if c["kind"] == "tempo"]
        assert tempo and tempo[-1]["target_spm"] == 171.0 and doc["summary"]["final_target_spm"] == 171.0
        kinds = [c["kind"] for c in doc["cues"]]
        assert kinds.index("cues_paused") < kinds.index("cues_resumed")
        assert doc["summary"]["events_dropped"] == 0
        # the server ended with the session
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", s.port), timeout=1).close()
    finally:
        s.stop()


def test_stalled_and_vanished_browsers_change_nothing_in_the_session(tmp_path):
    """Clients that never read, stall mid-response or vanish while a replay runs: the session's own
    records are those of a run without --web, and it ends on time."""
    assert main(["run", "--db", "none", "--quiet", "--input-file", RUN_FILE, "--fast", "--target", "+5%",
                 "--cues", "off-target", "--json", str(tmp_path / "plain.json")]) == 0
    plain = json.loads((tmp_path / "plain.json").read_text())
    speed = 10.0
    t_start = time.monotonic()
    s = Session(tmp_path, "--input-file", RUN_FILE, "--speed", str(speed), "--target", "+5%",
                "--cues", "off-target")
    try:
        stalled = [StalledClient(s.link("/api/events")) for _ in range(3)]
        stalled.append(StalledClient(s.link("/api/events"), read_head=30))
        stalled.append(StalledClient(s.link("/")))
        vanished = EventReader(s.link("/api/events"))
        wait_for(lambda: vanished.frames, 5, "a frame")
        vanished.close()                                          # a browser tab closed mid-stream
        reader = EventReader(s.link("/api/events"))
        assert s.wait(60) == 0
        took = time.monotonic() - t_start
        duration = plain["duration_s"]
        assert took < duration / speed + 8.0, f"the session took {took:.1f} s"
        assert reader.ended
        web = s.document()
        assert steps_of(web) == steps_of(plain)
        assert len(web["steps"]) > 300
        for c in stalled:
            c.close()
    finally:
        s.stop()


def test_ctrl_c_once_or_twice_ends_a_session_with_clients_promptly(tmp_path):
    for signals in (1, 2):
        s = Session(tmp_path, "--input-file", RUN_FILE, "--speed", "1", "--target", "170",
                    json_name=f"s{signals}.json")
        try:
            stalled = StalledClient(s.link("/api/events"))
            reader = EventReader(s.link("/api/events"))
            # once: long enough for the stalled client to fill its buffers (the server's writes to it block)
            wait_for(lambda: len(reader.frames) > (70 if signals == 1 else 3), 20, "frames")
            t0 = time.monotonic()
            for _ in range(signals):
                s.proc.send_signal(signal.SIGINT)
                time.sleep(0.05)
            code = s.wait(10)
            assert code == 130, (signals, "".join(s.lines))
            assert time.monotonic() - t0 < 5.0
            err = "".join(s.lines)
            assert "Traceback" not in err
            if signals == 1:
                assert s.document()["summary"]["status"] == "interrupted"
            stalled.close()
        finally:
            s.stop()


def test_run_with_a_busy_port_is_one_line(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        res = subprocess.run([sys.executable, "-m", "stepsound", "run", "--db", "none", "--input-file", RUN_FILE,
                              "--fast", "--web", f"127.0.0.1:{port}"], cwd=REPO, capture_output=True, text=True,
                             timeout=60)
    assert res.returncode == 1
    assert res.stderr.splitlines() == [f"stepsound: error: run: --web 127.0.0.1:{port}: port {port} is already "
                                       "in use (another stepsound?); choose another port"]


def test_serve_with_a_busy_port_is_one_line(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        res = subprocess.run([sys.executable, "-m", "stepsound", "serve", "--db", str(tmp_path / "none.sqlite"),
                              "--web", f"127.0.0.1:{port}"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert res.stderr.splitlines() == [f"stepsound: error: serve: --web 127.0.0.1:{port}: port {port} is already "
                                       "in use (another stepsound?); choose another port"]
    assert not (tmp_path / "none.sqlite").exists()


def test_bad_web_options_are_usage_errors(tmp_path, capsys):
    assert main(["run", "--db", "none", "--input-file", RUN_FILE, "--fast", "--web", "99999"]) == 2
    assert main(["run", "--db", "none", "--input-file", RUN_FILE, "--speed", "0"]) == 2
    assert main(["run", "--db", "none", "--speed", "2"]) == 2
    assert main(["run", "--db", "none", "--input-file", RUN_FILE, "--fast", "--speed", "2"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 4 and all(line.startswith("stepsound: error: ") for line in err)
    assert "0-65535" in err[0] and "--speed" in err[1] and "--input-file" in err[2] and "choose one" in err[3]


# -- `stepsound serve` ----------------------------------------------------------------------------

def test_session_metrics_and_weekly_trends():
    doc = {"session": {"id": 3, "started_at": 1_790_000_000.0, "status": "complete", "source": "x.flac",
                       "target": "170", "duration_s": 120.0, "median_cadence_spm": 168.0, "baseline_spm": 160.0,
                       "heavy_share": 0.25},
           "duration_s": 120.0, "summary": {"final_target_spm": 170.0},
           "steps": [{"time_s": i, "heavy": i % 4 == 0, "impact_db": 1.0, "strike": s}
                     for i, s in enumerate(["heel", "heel", "forefoot", "uncertain"] * 2)],
           "cadence": [{"time_s": t / 4, "spm": 170.0 if t < 40 else 150.0} for t in range(80)],
           "cues": [{"time_s": 5.0, "kind": "metronome_on", "target_spm": 170.0}]}
    m = session_metrics(doc, band_pct=3.0)
    # 20 s with a target (ticks 20-79, 0.25 s apart): 5 s at 170 (in the zone), 10 s at 150 (out)
    assert m["target_s"] == pytest.approx(15.0) and m["in_zone_s"] == pytest.approx(5.0)
    assert m["in_zone_share"] == pytest.approx(1 / 3)
    assert m["strikes"] == {"heel": 4, "forefoot": 2, "uncertain": 2}
    assert m["forefoot_share"] == pytest.approx(2 / 6) and m["heavy_share"] == pytest.approx(0.25)
    assert m["minutes"] == 2.0
    doc["summary"]["band_pct"] = 15.0      # a session that stored its own band: 150 is within 170 ± 15 %
    assert session_metrics(doc, band_pct=3.0)["in_zone_share"] == 1.0
    # the printed/HTML report says the same of this session (one computation: stepsound.report.numbers)
    from stepsound.report.session import session_stats

    doc["summary"]["band_pct"] = 3.0
    doc["steps"].append({"time_s": 9.0, "heavy": False, "impact_db": None})     # not graded: in neither share
    m, r = session_metrics(doc), session_stats(doc)
    assert r["time_in_zone_share"] == m["in_zone_share"] and r["time_in_zone_s"] == m["in_zone_s"]
    assert r["heavy_share"] == m["heavy_share"] == pytest.approx(0.25)
    assert r["strike"]["forefoot_share"] == m["forefoot_share"]
    other = dict(m, started_at=m["started_at"] + 86400 * 7, median_cadence_spm=172.0, in_zone_s=15.0)
    weeks = weekly_trends([m, other])
    assert len(weeks) == 2 and weeks[0]["cadence_spm"] == 168.0 and weeks[1]["in_zone_share"] == 1.0


def _serve(tmp_path, *argv):
    proc = subprocess.Popen([sys.executable, "-m", "stepsound", "serve", *argv], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    lines = []
    threading.Thread(target=lambda: [lines.append(ln) for ln in proc.stderr], daemon=True).start()

    def url():
        if proc.poll() is not None:
            raise AssertionError("".join(lines))
        return next((ln.split(" at ", 1)[1].strip() for ln in list(lines) if "session history at" in ln), None)

    return proc, wait_for(url, 30, "the serve URL"), lines


@pytest.fixture(scope="module")
def history_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("serve") / "s.sqlite"
    for target in ("+5%", "170"):
        assert main(["run", "--db", str(db), "--quiet", "--input-file", RUN_FILE, "--fast", "--target", target,
                     "--cues", "off-target"]) == 0
    return db


def test_serve_lists_sessions_and_shows_each(tmp_path, history_db):
    proc, url, lines = _serve(tmp_path, "--db", str(history_db), "--web", "127.0.0.1:0")
    try:
        base = url.rstrip("/")
        status, headers, page = http(base + "/")
        assert status == 200 and "text/html" in headers["Content-Type"]
        text = page.decode()
        assert text.count('href="/session/') == 2 and "time in target zone" in text and "heavy landings" in text
        doc = json.loads(http(base + "/api/sessions")[2])
        assert [m["id"] for m in doc["sessions"]] == [1, 2] and len(doc["weeks"]) == 1
        assert all(m["steps"] == 414 and 0 < m["in_zone_share"] < 1 for m in doc["sessions"])
        median = doc["sessions"][1]["median_cadence_spm"]
        assert 162.0 <= median <= 170.0       # the fixture's runner goes from 162 to 170 steps/min
        status, _, page = http(base + "/session/2")
        assert status == 200 and f"{median:.1f} steps/min".encode() in page and b"/session/2/figure.png" in page
        status, headers, png = http(base + "/session/2/figure.png")
        assert status == 200 and headers["Content-Type"] == "image/png" and png.startswith(b"\x89PNG")
        assert http(base + "/session/99")[0] == 404
        assert http(base + "/api/session/1")[0] == 200
        assert http(base + "/", method="POST", data=b"{}")[0] == 403      # no state change here at all
        assert http(base + "/", headers={"Host": "evil.example"})[0] == 403
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_without_a_database_says_so_and_creates_none(tmp_path):
    from stepsound.web.history import HistoryApp

    db = tmp_path / "nothing.sqlite"
    server = WebServer(WebAddress("127.0.0.1", 0), HistoryApp(str(db)), command="serve").start()
    try:
        status, _, page = http(f"http://127.0.0.1:{server.port}/")
        assert status == 200 and b"No sessions yet" in page
        assert json.loads(http(f"http://127.0.0.1:{server.port}/api/sessions")[2])["sessions"] == []
        assert http(f"http://127.0.0.1:{server.port}/session/1")[0] == 404
        assert not db.exists()
    finally:
        server.close()


def test_serve_off_loopback_needs_the_token(tmp_path, history_db):
    proc, url, lines = _serve(tmp_path, "--db", str(history_db), "--web", "0.0.0.0:0")
    try:
        import urllib.parse

        parts = urllib.parse.urlsplit(url)
        token = urllib.parse.parse_qs(parts.query)["token"][0]
        base = f"http://127.0.0.1:{parts.port}"
        text = wait_for(lambda: (lambda t: t if "Ctrl-C stops" in t else None)("".join(lines)), 10, "the notes")
        assert "access token" in text
        qr = [ln for ln in text.splitlines() if set(ln) <= set(" \u2580\u2584\u2588") and ln.strip()]
        assert len(qr) > 15                             # a QR code of the URL in the terminal, for a phone
        for path in ("/", "/session/1", "/session/1/figure.png", "/api/sessions", "/static/serve.css"):
            assert http(base + path)[0] == 401, path
            assert http(base + path + "?token=x")[0] == 403, path
        status, _, page = http(f"{base}/?token={token}")
        assert status == 200 and f"/session/1?token={token}".encode() in page
        assert http(f"{base}/session/1/figure.png?token={token}")[0] == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
