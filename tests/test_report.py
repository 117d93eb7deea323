"""Reports in a runner's language, and heel/forefoot wherever steps show (CSV, summaries, history, display,
reports)."""
import csv
import json
import re
import threading
from pathlib import Path

import numpy as np
import pytest

from stepsound.cli.main import main
from stepsound.report.session import session_figure, session_html, session_stats
from stepsound.session.display import status_line, step_label
from stepsound.store import SessionStore

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "audio_fixtures"
RUN = str(FIXTURES / "treadmill_run.flac")


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    d = tmp_path / "data"
    monkeypatch.setenv("STEPSOUND_DATA_DIR", str(d))
    return d


@pytest.fixture
def profiled_session(tmp_path, data_dir):
    """A replayed session with a runner profile, in a database; returns (db, document)."""
    assert main(["calibrate", "--heel", str(FIXTURES / "heel_calibration.flac"), "--forefoot",
                 str(FIXTURES / "forefoot_calibration.flac"), "--name", "ann"]) == 0
    db = str(tmp_path / "s.sqlite")
    assert main(["run", "--input-file", RUN, "--fast", "--target", "+5%", "--cues", "off-target", "--warmup", "30s",
                 "--profile", "ann", "--db", db, "--quiet"]) == 0
    store = SessionStore(db)
    try:
        doc = store.load(store.sessions(1)[-1]["id"])
    finally:
        store.close()
    return db, doc


def _synthetic(cadence_pairs, target=170.0, band=3.0, steps=True):
    """A stored-session-like document with a cadence trace of (seconds, spm) pieces."""
    ticks, t = [], 0.0
    for seconds, spm in cadence_pairs:
        for _ in range(int(seconds / 0.25)):
            t += 0.25
            ticks.append({"time_s": round(t, 2), "spm": spm})
    stp = [{"time_s": x["time_s"], "cadence_spm": x["spm"], "impact_db": 0.0, "heavy": False, "side": "LR"[i % 2],
            "strike": None} for i, x in enumerate(ticks[::2])] if steps else []
    return {"session": {"id": 7, "started_at": 1.8e9, "status": "complete"}, "file": "live", "duration_s": t,
            "steps": stp, "cadence": ticks,
            "cues": [{"time_s": 0.0, "kind": "metronome_on", "target_spm": target}],
            "summary": {"band_pct": band, "heavy_threshold_db": 6.0}}


def test_time_in_zone_and_per_minute_splits_follow_their_definitions():
    # one minute at the target, one minute 4 % under it (outside ± 3 %), half a minute 2 % over (inside)
    doc = _synthetic([(60, 170.0), (60, 163.2), (30, 173.4)])
    st = session_stats(doc)
    assert st["time_in_zone_share"] == pytest.approx(90 / 150, abs=0.01)
    assert st["time_in_zone_s"] == pytest.approx(90, abs=0.5)
    assert [m["minute"] for m in st["minutes"]] == [1, 2, 3]
    assert [m["median_cadence_spm"] for m in st["minutes"]] == pytest.approx([170.0, 163.2, 173.4])
    assert [m["in_zone_share"] for m in st["minutes"]] == pytest.approx([1.0, 0.0, 1.0], abs=0.01)
    # a wider band takes the slow minute in
    assert session_stats(_synthetic([(60, 170.0), (60, 163.2)], band=5.0))["time_in_zone_share"] == pytest.approx(1.0)
    # no target: no time in zone
    nt = _synthetic([(60, 170.0)])
    nt["cues"] = []
    assert session_stats(nt)["time_in_zone_share"] is None


def test_report_of_a_replayed_session_speaks_a_runners_language(profiled_session, tmp_path):
    db, doc = profiled_session
    st = session_stats(doc)
    baseline = next(c for c in doc["cues"] if c["kind"] == "baseline")
    assert st["warmup"] == (0.0, baseline["time_s"])
    ons = [c["time_s"] for c in doc["cues"] if c["kind"] == "metronome_on"]
    assert [a for a, _ in st["metronome"]] == ons
    assert st["strike"]["heel"] + st["strike"]["forefoot"] + st["strike"]["uncertain"] == st["steps"]
    assert len(st["minutes"]) == int(np.ceil(doc["duration_s"] / 60))
    assert sum(m["steps"] for m in st["minutes"]) == st["steps"]
    assert sum(st["distribution"]["counts"]) == sum(1 for s in doc["steps"]
                                                    if not s.get("extra") and s.get("cadence_spm") is not None)

    fig = session_figure(doc)
    text = " ".join(t.get_text() for t in fig.texts)
    for label in ("Median cadence", "Baseline → target", "In target zone", "Heavy landings", "Landings",
                  "Left/right balance"):
        assert label in text
    assert f"{st['median_cadence_spm']:.0f} steps/min" in text
    ax_cad = fig.axes[0]
    assert ax_cad.get_xlim()[1] == pytest.approx(doc["duration_s"] / 60)        # time in minutes
    assert "min" in fig.axes[2].get_xlabel()
    legend = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    assert {"warm-up", "metronome on", "heel-first"} <= set(legend)
    assert any(t.get_text() == f"heavy above +{st['heavy_threshold_db']:g} dB" for ax in fig.axes for t in ax.texts)

    assert main(["report", "last", "--db", db, "-o", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text()
    visible = re.sub(r"<[^>]+>", " ", re.sub(r"src='data:[^']+'", "", page))
    for key in list(doc["summary"]) + ["metronome_on", "speed_up", "on_target", "heavy_share"]:
        if "_" in key:
            assert key not in visible, key                                      # no JSON keys for people
    assert "Minute by minute" in visible and "heel-first" in visible and "speed up" in visible
    assert page.count("<tr><td class='n'>") >= len(st["minutes"])
    assert main(["report", "last", "--db", db, "-o", str(tmp_path / "r.png")]) == 0
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"


def test_an_empty_session_says_so(tmp_path):
    doc = _synthetic([(90, None)], steps=False)
    page = session_html(doc)
    assert "No steps in this session" in page and "1:30" in page
    fig = session_figure(doc)
    assert any("No steps in this session" in t.get_text() for t in fig.texts)
    fig.savefig(tmp_path / "e.png")
    assert (tmp_path / "e.png").stat().st_size > 1000


def test_session_figure_can_be_made_from_other_threads(tmp_path):
    """What a web server does: figures made concurrently from request threads (no pyplot state)."""
    doc = _synthetic([(60, 170.0), (60, 165.0)])
    errors, sizes = [], []

    def work(i):
        try:
            path = tmp_path / f"f{i}.png"
            session_figure(doc).savefig(path)
            sizes.append(path.stat().st_size)
        except Exception as exc:      # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(sizes) == 4 and len(set(sizes)) == 1


def test_heel_forefoot_in_csv_summaries_history_and_display(profiled_session, tmp_path, capsys):
    db, doc = profiled_session
    out = tmp_path / "steps.csv"
    assert main(["analyze", str(FIXTURES / "forefoot_calibration.flac"), "--profile", "ann", "--csv", str(out)]) == 0
    text = capsys.readouterr().out
    assert re.search(r"heel/forefoot: \d+% heel-first, \d+% forefoot of \d+ labelled landings", text)
    rows = list(csv.DictReader(out.open()))
    assert {"strike", "strike_confidence", "detect_latency_ms"} <= set(rows[0])
    labels = [r["strike"] for r in rows if r["extra"] == "False"]
    assert labels.count("forefoot") > 0.8 * len(labels)             # the forefoot recording
    assert all(0.5 <= float(r["strike_confidence"]) <= 1.0 for r in rows if r["strike"])
    assert all(float(r["detect_latency_ms"]) > 0 for r in rows)

    # without a profile: the columns are there and empty
    assert main(["analyze", str(FIXTURES / "forefoot_calibration.flac"), "--csv", str(out), "--quiet"]) == 0
    assert all(r["strike"] == "" for r in csv.DictReader(out.open()))

    # end-of-run summary
    assert main(["run", "--input-file", RUN, "--fast", "--profile", "ann", "--db", db]) == 0
    assert "heel/forefoot:" in capsys.readouterr().out
    # history
    assert main(["history", "--db", db]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "heel" in lines[0] and re.search(r"\d+%\s+\+5%", lines[1])
    assert main(["history", "--db", db, "--json"]) == 0
    hist = json.loads(capsys.readouterr().out)
    s0 = doc["summary"]["strike_counts"]
    assert hist["sessions"][0]["heel_share"] == pytest.approx(s0["heel"] / (s0["heel"] + s0["forefoot"]), abs=1e-3)
    assert hist["sessions"][0]["profile"] == "ann"
    # display
    assert step_label({"side": "R", "strike": "heel", "impact_db": 6.4, "heavy": True}) == "right heel +6 dB HEAVY"
    assert step_label({"side": "L", "strike": None, "impact_db": -1.0, "heavy": False}) == "left -1 dB"
    assert "heel-first 40%" in status_line({"elapsed_s": 3, "cadence_spm": 170, "heel_share": 0.4})
