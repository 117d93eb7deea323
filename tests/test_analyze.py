"""`stepsound analyze`: outputs, block-size invariance, many files, bad input."""
import csv
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from stepsound.analyze import analyze_file
from stepsound.cli.main import main

from _signals import bursts, clinks_before, match

SR = 16000


@pytest.fixture(scope="module")
def run_file(tmp_path_factory):
    x, truth = bursts(sample_rate=SR, duration_s=15.0, noise_rms=0.01, hum=0.03, seed=11)
    path = tmp_path_factory.mktemp("run") / "run.flac"
    sf.write(path, x, SR)
    return str(path), truth


def _json(capsys, argv):
    code = main(argv)
    out = capsys.readouterr()
    return code, out


def test_json_schema_and_truth(run_file, tmp_path):
    path, truth = run_file
    out = tmp_path / "a.json"
    assert main([ "analyze", path, "--json", str(out), "--quiet"]) == 0
    doc = json.loads(out.read_text())
    assert doc["file"] == path and doc["sample_rate"] == SR
    assert doc["duration_s"] == pytest.approx(15.0)
    steps = doc["steps"]
    hits, misses, fas, _ = match([s["onset_sample"] for s in steps], truth, int(0.025 * SR))
    assert misses == 0 and fas == 0
    for key in ("time_s", "impact_db", "cadence_spm", "side", "heavy", "strike"):
        assert key in steps[0]
    assert steps[0]["side"] == "L" and steps[1]["side"] == "R"
    # the live display's cadence: at least 2 values per second, right value
    cad = doc["cadence"]
    assert len(cad) >= 2 * 15 - 1
    true_spm = 60.0 * SR / np.median(np.diff(truth))
    known = [c["spm"] for c in cad if c["spm"] is not None]
    assert abs(np.median(known) - true_spm) < 3.0
    s = doc["summary"]
    assert s["steps"] == len(truth)
    assert abs(s["median_cadence_spm"] - true_spm) < 3.0


def test_block_size_does_not_change_results(run_file, tmp_path):
    path, _ = run_file
    docs = []
    for bs in ("1000", "4096", "65536", "7"):
        out = tmp_path / f"b{bs}.json"
        assert main(["analyze", path, "--json", str(out), "--block-size", bs, "--quiet"]) == 0
        docs.append(json.loads(out.read_text()))
    assert all(d == docs[0] for d in docs[1:])


def test_human_summary_csv_and_plot(run_file, tmp_path, capsys):
    path, truth = run_file
    csv_path, png = tmp_path / "s.csv", tmp_path / "p.png"
    code = main(["analyze", path, "--csv", str(csv_path), "--plot", str(png)])
    out = capsys.readouterr().out
    assert code == 0
    assert "steps/min" in out and f"steps: {len(truth)}" in out
    rows = list(csv.DictReader(open(csv_path)))
    assert len(rows) == len(truth)
    assert float(rows[5]["cadence_spm"]) > 100
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_stereo_and_other_rates_are_mixed_and_read(tmp_path):
    x, truth = bursts(sample_rate=44100, duration_s=8.0, noise_rms=0.005, seed=12)
    stereo = np.stack([x, 0.5 * x], axis=1)
    path = tmp_path / "stereo.wav"
    sf.write(path, stereo, 44100, subtype="PCM_16")
    a = analyze_file(str(path))
    hits, misses, fas, _ = match([s.onset_sample for s in a.steps], truth, int(0.025 * 44100))
    assert misses == 0 and fas == 0


def test_silence_is_zero_steps_not_an_error(tmp_path, capsys):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(SR * 3, np.float32), SR)
    code = main(["analyze", str(path), "--json", "-"])
    out = capsys.readouterr()
    assert code == 0
    doc = json.loads(out.out)
    assert doc["steps"] == [] and doc["summary"]["steps"] == 0
    assert doc["summary"]["median_cadence_spm"] is None


def _bad(capsys, path):
    code = main(["analyze", str(path)])
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


def test_bad_inputs_give_one_line_and_exit_1(tmp_path, capsys):
    missing = tmp_path / "nope.wav"
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.flac"
    text.write_text("this is not audio\n" * 100)
    for path, words in ((missing, "no such file"), (empty, "empty"), (text, "not an audio file")):
        code, err = _bad(capsys, path)
        assert code == 1, path
        assert len(err) == 1 and str(path) in err[0] and words in err[0], err
        assert "Traceback" not in err[0]


def test_truncated_file_is_analysed_up_to_where_it_stops(tmp_path, capsys):
    x, truth = bursts(sample_rate=SR, duration_s=10.0, seed=13)
    good = tmp_path / "good.flac"
    sf.write(good, x, SR)
    data = good.read_bytes()
    cut = tmp_path / "cut.flac"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "cut.json"
    code = main(["analyze", str(cut), "--json", str(out), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 0
    assert len(err) == 1 and err[0].startswith("stepsound: warning: ") and "cut.flac" in err[0], err
    doc = json.loads(out.read_text())
    stopped = doc["duration_s"]
    assert 2.0 < stopped < 8.0 and f"{stopped:.2f} s" in err[0]
    assert doc["warning"] == err[0][len("stepsound: warning: "):]
    # the steps of the readable part are those of the whole file up to there
    whole = analyze_file(str(good))
    assert whole.warning is None
    assert [s["onset_sample"] for s in doc["steps"]] == \
        [s.onset_sample for s in whole.steps if s.onset_sample < stopped * SR - 0.2 * SR][:len(doc["steps"])]
    assert len(doc["steps"]) >= sum(t < (stopped - 0.3) * SR for t in truth)


def test_truncated_wav_says_what_the_header_announced(tmp_path, capsys):
    x, _ = bursts(sample_rate=SR, duration_s=6.0, seed=13)
    good = tmp_path / "good.wav"
    sf.write(good, x, SR, subtype="PCM_16")
    data = good.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: 44 + 2 * SR * 2])          # the header and 2 s of samples
    a = analyze_file(str(cut))
    assert a.duration_s == pytest.approx(2.0)
    assert a.warning is not None and "6.00 s" in a.warning and "2.00 s" in a.warning


def test_file_with_no_readable_audio_is_an_error(tmp_path, capsys):
    x, _ = bursts(sample_rate=SR, duration_s=5.0, seed=13)
    good = tmp_path / "good.flac"
    sf.write(good, x, SR)
    cut = tmp_path / "head.flac"
    cut.write_bytes(good.read_bytes()[:200])          # the header, no audio frame
    code, err = _bad(capsys, cut)
    assert code == 1 and len(err) == 1 and "head.flac" in err[0] and err[0].startswith("stepsound: error:")


def test_nan_samples(tmp_path, capsys):
    x, _ = bursts(sample_rate=SR, duration_s=5.0, seed=14)
    x[SR * 2 + 5] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, x, SR, subtype="FLOAT")
    code, err = _bad(capsys, path)
    assert code == 1 and len(err) == 1
    assert "non-finite" in err[0] and "2.000 s" in err[0]


def test_absurd_sample_rate(tmp_path, capsys):
    path = tmp_path / "slow.wav"
    sf.write(path, np.zeros(1000, np.float32), 1000)
    code, err = _bad(capsys, path)
    assert code == 1 and len(err) == 1 and "sample rate" in err[0] and "1000" in err[0]


def test_folder_in_parallel_one_failure_does_not_stop_the_rest(run_file, tmp_path, capsys):
    path, truth = run_file
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(3):
        shutil.copy(path, folder / f"run{i}.flac")
    (folder / "broken.wav").write_bytes(b"RIFF0000WAVEjunk")
    out = tmp_path / "all.json"
    code = main(["analyze", str(folder), "--json", str(out), "--jobs", "2", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert "broken.wav" in err and err.count("\n") == 1
    docs = json.loads(out.read_text())
    assert len(docs) == 4
    ok = [d for d in docs if "error" not in d]
    assert len(ok) == 3 and all(d["summary"]["steps"] == len(truth) for d in ok)


def test_usage_errors_exit_2(run_file, capsys):
    path, _ = run_file
    assert main(["analyze", path, "--block-size", "0"]) == 2
    assert main(["analyze", path, path, "--jobs", "-1"]) == 2
    assert main(["analyze", path, path, "--jobs", "0"]) == 2
    assert main(["analyze"]) == 2
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full (a device that is always full)")
def test_full_disk_for_csv_and_standard_output_is_one_line(run_file, tmp_path):
    path, _ = run_file
    full = tmp_path / "full.csv"
    full.symlink_to("/dev/full")
    for argv, where in ((["--csv", str(full), "--quiet"], "full.csv"), (["--csv", "-"], "standard output"), ([], "space")):
        with open("/dev/full", "w") as stdout:
            res = subprocess.run([os.sys.executable, "-m", "stepsound", "analyze", path, *argv], stdout=stdout,
                                 stderr=subprocess.PIPE, text=True, timeout=120)
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 1 and len(lines) == 1, res.stderr
        assert where in lines[0] and "internal error" not in lines[0]


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_m4a_through_ffmpeg(run_file, tmp_path):
    path, truth = run_file
    m4a = tmp_path / "run.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-c:a", "aac", "-b:a", "128k", str(m4a)], check=True)
    a = analyze_file(str(m4a))
    assert a.sample_rate == SR
    hits, misses, fas, _ = match([s.onset_sample for s in a.steps], truth, int(0.05 * SR))
    assert hits >= len(truth) - 1 and fas <= 1


def test_command_line_entry_point(run_file):
    path, truth = run_file
    env = dict(os.environ)
    res = subprocess.run([os.sys.executable, "-m", "stepsound", "analyze", path, "--json", "-"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["summary"]["steps"] == len(truth)


def test_a_replayed_truncated_file_warns_like_analyze(tmp_path, capsys):
    """run --input-file on a truncated file: the session covers the readable part and says so in one line."""
    x, _ = bursts(sample_rate=SR, duration_s=10.0, seed=13)
    good = tmp_path / "good.flac"
    sf.write(good, x, SR)
    cut = tmp_path / "cut.flac"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    out = tmp_path / "s.json"
    code = main(["run", "--input-file", str(cut), "--fast", "--db", "none", "--json", str(out), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 0
    assert len(err) == 1 and err[0].startswith("stepsound: warning: ") and "cut.flac" in err[0], err
    assert 2.0 < json.loads(out.read_text())["duration_s"] < 8.0


#: The summary keys README.md documents for `run --json` beyond the analyze schema.
RUN_SUMMARY_KEYS = ("baseline_spm", "final_target_spm", "cues_given", "clicks_played", "status", "xruns",
                    "events_dropped", "leak_gains_db", "leak_ref_delay_samples", "leak_ref_shift_samples",
                    "round_trip_changes", "startup_flags", "echo_cancel")


def test_every_documented_summary_key_is_in_a_fast_replay(tmp_path):
    x, _ = bursts(sample_rate=SR, duration_s=5.0, seed=13)
    f = tmp_path / "r.flac"
    sf.write(f, x, SR)
    out = tmp_path / "s.json"
    assert main(["run", "--input-file", str(f), "--fast", "--db", "none", "--json", str(out), "--quiet"]) == 0
    summary = json.loads(out.read_text())["summary"]
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    for key in RUN_SUMMARY_KEYS:
        assert f"`{key}`" in readme, key          # the list above is the README's
        assert key in summary, key
    assert summary["echo_cancel"] is None and summary["xruns"] == 0 and summary["status"] == "complete"


def test_a_superseded_detection_is_not_counted_as_a_step(tmp_path):
    # a clink 4 dB under the steps, 130 ms before every third step, is detected first; the step
    # that follows supersedes it: the outputs count the steps, not the clinks

    x, truth = bursts(sample_rate=SR, duration_s=16.0, cadence_spm=150.0, noise_rms=0.01, jitter=0.0, seed=4)
    y, clicks = clinks_before(x, truth, SR, every=3, before_s=0.13, rel_db=-4.0)
    path = tmp_path / "clinks.flac"
    sf.write(path, y, SR)
    a = analyze_file(str(path))
    tol = int(0.02 * SR)
    sup = [s for s in a.steps if s.supersedes is not None]
    assert len(sup) >= len(clicks) // 2
    by_onset = {s.onset_sample: s for s in a.steps}
    for s in sup:
        assert by_onset[s.supersedes].extra                       # the clink: no step
        assert np.min(np.abs(clicks - s.supersedes)) <= tol
        assert not s.extra and np.min(np.abs(truth - s.onset_sample)) <= tol
        assert s.to_dict()["supersedes"] == s.supersedes
    counted = [s.onset_sample for s in a.steps if not s.extra]
    hits, misses, false, _ = match(counted, truth, tol)
    assert misses <= 1 and false <= 1
    assert a.summary()["steps"] == len(counted)
