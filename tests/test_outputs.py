"""Honest edges of the outputs: atomic files, independent outputs, Ctrl-C, decoder noise, summary keys."""
import json
import os
import signal
import stat
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from stepsound.atomic import TEMP_MARK, atomic_open, atomic_path
from stepsound.cli.main import main

from _signals import bursts

SR = 16000


@pytest.fixture(scope="module")
def run_file(tmp_path_factory):
    x, truth = bursts(sample_rate=SR, duration_s=12.0, noise_rms=0.01, seed=21)
    path = tmp_path_factory.mktemp("run") / "run.flac"
    sf.write(path, x, SR)
    return str(path), truth


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


# ----------------------------------------------------------------------------- the helper


def test_atomic_open_replaces_only_on_success(tmp_path):
    out = tmp_path / "out.json"
    out.write_text("old")
    with atomic_open(out) as fh:
        fh.write("new")
        assert out.read_text() == "old"          # not visible before the end
    assert out.read_text() == "new" and _names(tmp_path) == ["out.json"]
    for exc in (ValueError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(exc)):
            with atomic_open(out) as fh:
                fh.write("half")
                raise exc
        assert out.read_text() == "new" and _names(tmp_path) == ["out.json"]


def test_atomic_path_keeps_extension_permissions_and_links(tmp_path):
    old_umask = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "fresh.png") as tmp:
            assert tmp.endswith(TEMP_MARK + ".png") and os.path.dirname(tmp) == str(tmp_path)
            open(tmp, "wb").write(b"x")
        assert stat.S_IMODE((tmp_path / "fresh.png").stat().st_mode) == 0o644   # as open() would make it
        kept = tmp_path / "kept.txt"
        kept.write_text("a")
        kept.chmod(0o600)
        with atomic_open(kept) as fh:
            fh.write("b")
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600 and kept.read_text() == "b"
    finally:
        os.umask(old_umask)
    real = tmp_path / "real.csv"
    real.write_text("old")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    with atomic_open(link) as fh:
        fh.write("new")
    assert link.is_symlink() and real.read_text() == "new"
    with atomic_open(os.devnull) as fh:                 # a device is written in place
        fh.write("nothing")
    assert os.path.exists(os.devnull) and not os.path.isfile(os.devnull)


# ----------------------------------------------------------------------------- analyze outputs


def test_two_outputs_on_standard_output_is_a_usage_error(run_file, capsys):
    path, _ = run_file
    assert main(["analyze", path, "--json", "-", "--csv", "-"]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.count("\n") == 1 and out.err.startswith("stepsound: error:") and "standard output" in out.err


def test_a_failed_json_does_not_stop_csv_and_plot(run_file, tmp_path, capsys):
    path, truth = run_file
    bad_json = tmp_path / "missing-folder" / "a.json"
    csv_out, png = tmp_path / "s.csv", tmp_path / "p.png"
    code = main(["analyze", path, "--json", str(bad_json), "--csv", str(csv_out), "--plot", str(png), "--quiet"])
    err = capsys.readouterr().err.splitlines()
    assert code == 1
    assert len(err) == 1 and err[0].startswith("stepsound: error: ") and "a.json" in err[0]
    assert len(csv_out.read_text().splitlines()) == len(truth) + 1
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_a_failed_csv_and_plot_do_not_stop_json(run_file, tmp_path, capsys):
    path, truth = run_file
    out = tmp_path / "a.json"
    code = main(["analyze", path, "--json", str(out), "--csv", str(tmp_path / "nope" / "s.csv"),
                 "--plot", str(tmp_path / "p.frobnicate"), "--quiet"])
    err = capsys.readouterr().err.splitlines()
    assert code == 1
    assert len(err) == 2 and all(e.startswith("stepsound: error: ") for e in err)
    assert "s.csv" in err[0] and "p.frobnicate" in err[1]
    assert json.loads(out.read_text())["summary"]["steps"] == len(truth)
    assert _names(tmp_path) == ["a.json"]


def test_analyze_replaces_the_previous_output_whole(run_file, tmp_path, capsys):
    path, _ = run_file
    out = tmp_path / "a.json"
    out.write_text('{"previous": true}\n')
    assert main(["analyze", path, "--json", str(out), "--quiet"]) == 0
    assert json.loads(out.read_text())["file"] == path
    assert _names(tmp_path) == ["a.json"]


def test_non_audio_mp3_is_one_line_without_decoder_noise(tmp_path, capfd):
    junk = tmp_path / "song.mp3"
    junk.write_text("this is not audio\n" * 100)
    rnd = tmp_path / "noise.ogg"
    rnd.write_bytes(np.random.default_rng(3).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    for path in (junk, rnd):
        code = main(["analyze", str(path)])
        out, err = capfd.readouterr()        # what reaches the terminal, C libraries included
        lines = err.strip().splitlines()
        assert code == 1
        assert lines == [f"stepsound: error: {path}: not an audio file (format not recognised)"], err
        assert out == ""


def test_damaged_mp3_is_analysed_with_one_warning_and_no_decoder_noise(tmp_path, capfd):
    x, _ = bursts(sample_rate=SR, duration_s=10.0, noise_rms=0.01, seed=23)
    good = tmp_path / "good.mp3"
    sf.write(good, x, SR)
    data = good.read_bytes()
    hole = tmp_path / "hole.mp3"                      # 3 kB of zeros in the middle
    hole.write_bytes(data[: len(data) // 2] + bytes(3000) + data[len(data) // 2 + 3000:])
    cut = tmp_path / "cut.mp3"                        # the second half missing
    cut.write_bytes(data[: len(data) // 2 + 17])
    for path in (hole, cut):
        code = main(["analyze", str(path), "--quiet"])
        out, err = capfd.readouterr()
        lines = err.strip().splitlines()
        assert code == 0
        assert len(lines) == 1 and lines[0].startswith(f"stepsound: warning: {path}: "), err
        assert "analysed the readable part" in lines[0]


def test_summary_latency_keys_are_a_bound_and_measurements(run_file, capsys):
    path, _ = run_file
    assert main(["analyze", path, "--json", "-", "--quiet"]) == 0
    doc = json.loads(capsys.readouterr().out)
    s = doc["summary"]
    assert "detect_latency_max_ms" not in s
    delays = [st["detect_latency_ms"] for st in doc["steps"] if not st["extra"]]
    assert s["detect_latency_median_ms"] == pytest.approx(np.median(delays), abs=0.01)
    assert s["detect_latency_p95_ms"] == pytest.approx(np.percentile(delays, 95), abs=0.01)
    assert s["detect_latency_median_ms"] <= s["detect_latency_p95_ms"] <= s["detect_latency_bound_ms"]
    assert doc["warning"] is None


def test_history_json_rounds_floats(tmp_path, capsys):
    from stepsound.store import SessionStore

    db = tmp_path / "s.sqlite"
    store = SessionStore(str(db))
    for cad in (170.123456789, 171.987654321, 173.333333333):
        sid = store.begin(source="live", sample_rate=48000, target="+5%", cues_mode="always")
        store.finish(sid, status="complete", duration_s=1800.0 / 7, summary={
            "steps": 100, "median_cadence_spm": cad, "heavy_share": 1 / 3}, baseline_spm=160.0 / 3)
    store.close()
    assert main(["history", "--db", str(db), "--json"]) == 0
    text = capsys.readouterr().out
    doc = json.loads(text)
    row = doc["sessions"][0]
    assert row["median_cadence_spm"] == 170.123 and row["heavy_share"] == 0.333
    assert row["duration_s"] == 257.143 and row["baseline_spm"] == 53.333
    assert doc["trend"]["cadence_spm_per_session"] == round(doc["trend"]["cadence_spm_per_session"], 3)
    assert "0.33333" not in text and "170.1234" not in text


# ----------------------------------------------------------------------------- Ctrl-C


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc to find the worker processes")
def test_second_ctrl_c_stops_workers_and_keeps_previous_outputs(tmp_path):
    x, _ = bursts(sample_rate=SR, duration_s=60.0, noise_rms=0.01, seed=22)
    folder = tmp_path / "runs"
    folder.mkdir()
    for i in range(4):
        sf.write(folder / f"r{i}.wav", x, SR)
    outdir = tmp_path / "out"
    outdir.mkdir()
    out = outdir / "all.json"
    out.write_text('{"previous": true}\n')
    # --block-size 1 makes each file take a minute or more: the workers are busy when Ctrl-C comes
    proc = subprocess.Popen([sys.executable, "-m", "stepsound", "analyze", str(folder), "--json", str(out),
                             "--plot", str(outdir / "p.png"), "--jobs", "2", "--block-size", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while len(_children(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = _children(proc.pid)
        assert len(workers) >= 2, "the worker processes did not start"
        time.sleep(1.0)
        os.killpg(proc.pid, signal.SIGINT)        # Ctrl-C reaches the whole process group
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130
    assert stderr.splitlines() == ["stepsound: interrupted"], stderr
    assert out.read_text() == '{"previous": true}\n'
    assert _names(outdir) == ["all.json"]
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers)


def test_report_of_a_file_name_the_font_cannot_draw_is_quiet(tmp_path):
    from stepsound.store import SessionStore

    db = tmp_path / "s.sqlite"
    store = SessionStore(str(db))
    sid = store.begin(source="run-\U0004da6c.flac", sample_rate=8000, target=None, cues_mode="none")
    store.finish(sid, status="complete", duration_s=1.0, summary={})
    store.close()
    res = subprocess.run([sys.executable, "-m", "stepsound", "report", "last", "--db", str(db), "-o",
                          str(tmp_path / "r.png")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0
    assert res.stderr.splitlines() == [f"report of session {sid} written to {tmp_path / 'r.png'}"]
