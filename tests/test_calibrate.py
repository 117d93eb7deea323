"""Calibration -> classification round trip, profiles, bad input, the live routine."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from stepsound.grade.calibrate import LiveCalibration, learn_heavy_db, make_profile
from stepsound.cli.main import main
from stepsound.errors import ParameterError, StepsoundError, StoreError
from stepsound.grade.impact import LandingGrader
from stepsound.grade.profiles import (RunnerProfile, check_name, list_profiles, load_profile, profile_path,
                                save_profile)
from stepsound.grade.strike import CalibrationError, STRIKE_FEATURES, fit_strike_classifier, strike_vector
from stepsynth import synth_run

RATE = 22050
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    d = tmp_path / "data"
    monkeypatch.setenv("STEPSOUND_DATA_DIR", str(d))
    return d


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """Heel-first, forefoot and mixed runs of one runner in one room, treadmill noise at 6 dB SNR."""
    folder = tmp_path_factory.mktemp("cal")
    scenes = {}
    for strike, dur in (("heel", 30), ("forefoot", 30), ("mixed", 40)):
        sc = synth_run(dur, RATE, seed=77, runner_seed=4, snr_db=6, strike=strike)
        sc.write(folder / f"{strike}.wav")
        scenes[strike] = sc
    sc = synth_run(3, RATE, seed=78, runner_seed=4, snr_db=6, strike="heel")
    sc.write(folder / "short.wav")
    import soundfile as sf

    sf.write(folder / "silence.wav", np.zeros(RATE * 10, np.float32), RATE)
    return folder, scenes


def _truth_of(scene, steps, tol_s=0.09):
    truth = scene.onset_samples()
    out = []
    for s in steps:
        j = int(np.argmin(np.abs(truth - s["onset_sample"])))
        out.append(scene.steps[j].strike if abs(truth[j] - s["onset_sample"]) <= tol_s * RATE else None)
    return out


def test_round_trip_files_to_profile_to_analyze(recordings, data_dir, capsys):
    folder, scenes = recordings
    rc = main(["calibrate", "--heel", str(folder / "heel.wav"), "--forefoot", str(folder / "forefoot.wav"),
               "--name", "ann"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "told apart correctly" in out.out and "not a diagnosis" in out.out
    assert (data_dir / "profiles" / "ann.json").is_file()
    prof = load_profile("ann")
    assert prof.report.n_heel >= 40 and prof.report.n_forefoot >= 40
    assert prof.report.cv_accuracy >= 0.9
    assert prof.heavy_db is not None and 3.0 <= prof.heavy_db <= 9.0

    assert main(["analyze", str(folder / "mixed.wav"), "--profile", "ann", "--json", "-", "--quiet"]) == 0
    doc = json.loads(capsys.readouterr().out)
    steps = [s for s in doc["steps"] if not s["extra"]]
    assert {s["strike"] for s in steps} <= {"heel", "forefoot", "uncertain"}
    assert all(0.0 <= s["strike_confidence"] <= 1.0 for s in steps)
    truth = _truth_of(scenes["mixed"], steps)
    pairs = [(s["strike"], t) for s, t in zip(steps, truth) if t is not None]
    labelled = [(p, t) for p, t in pairs if p != "uncertain"]
    accuracy = np.mean([p == t for p, t in pairs])
    assert len(labelled) >= 0.8 * len(pairs)
    assert np.mean([p == t for p, t in labelled]) >= 0.95
    assert accuracy >= 0.85
    # the profile's learned threshold is used unless --heavy-db says otherwise
    assert doc["summary"]["heavy_threshold_db"] == prof.heavy_db


def test_json_report_and_replace(recordings, capsys):
    folder, _ = recordings
    args = ["calibrate", "--heel", str(folder / "heel.wav"), "--forefoot", str(folder / "forefoot.wav"),
            "--name", "bo", "--json", "-"]
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["name"] == "bo" and doc["calibration"]["n_heel"] > 0 and doc["verdict"] in ("good", "fair", "poor")
    assert main(args) == 2  # calibrating again needs --force (no terminal to ask on)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--force" in err and "'bo'" in err
    assert main(args + ["--force"]) == 0  # ... which replaces the profile
    assert json.loads(capsys.readouterr().out)["name"] == "bo"
    assert list_profiles() == ["bo"]


def test_calibration_that_cannot_tell_landings_apart_is_not_saved(recordings, data_dir, capsys):
    folder, _ = recordings
    good = ["calibrate", "--heel", str(folder / "heel.wav"), "--forefoot", str(folder / "forefoot.wav"),
            "--name", "fay"]
    assert main(good) == 0
    capsys.readouterr()
    before = profile_path("fay").read_bytes()
    same = ["calibrate", "--heel", str(folder / "heel.wav"), "--forefoot", str(folder / "heel.wav"),
            "--name", "fay", "--force", "--json", str(data_dir / "cal.json")]
    assert main(same) == 1
    out = capsys.readouterr()
    assert out.out == "" and out.err.count("\n") == 1
    assert out.err.startswith("stepsound: error: ") and "told apart" in out.err and "not saved" in out.err
    assert profile_path("fay").read_bytes() == before          # the good profile is untouched
    assert not (data_dir / "cal.json").exists()
    assert sorted(p.name for p in profile_path("fay").parent.iterdir()) == ["fay.json"]


def test_failed_json_leaves_no_profile_saved(recordings, data_dir, tmp_path, capsys):
    folder, _ = recordings
    argv = ["calibrate", "--heel", str(folder / "heel.wav"), "--forefoot", str(folder / "forefoot.wav"),
            "--name", "gus", "--json", str(tmp_path / "no-such-folder" / "cal.json")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cal.json" in err
    assert list_profiles() == []
    if os.path.exists("/dev/full"):
        full = tmp_path / "full.json"
        full.symlink_to("/dev/full")
        assert main(argv[:-1] + [str(full)]) == 1
        assert "full.json" in capsys.readouterr().err
        assert list_profiles() == []


def test_replace_asks_on_a_terminal(recordings, data_dir, tmp_path):
    """On a terminal, replacing a profile asks first (driven through a real pseudo-terminal)."""
    import pty

    folder, _ = recordings
    argv = [sys.executable, "-m", "stepsound", "calibrate", "--heel", str(folder / "heel.wav"), "--forefoot",
            str(folder / "forefoot.wav"), "--name", "hal"]
    env = dict(os.environ, STEPSOUND_DATA_DIR=str(data_dir))
    assert subprocess.run(argv, env=env, capture_output=True, timeout=120).returncode == 0
    stamp = profile_path("hal").read_bytes()
    for answer, code in ((b"n\n", 2), (b"y\n", 0)):
        controller, child = pty.openpty()
        proc = subprocess.Popen(argv, env=env, stdin=child, stdout=child, stderr=child)
        os.close(child)
        seen = b""
        while b"[y/N]" not in seen:
            seen += os.read(controller, 1024)
        os.write(controller, answer)
        assert proc.wait(timeout=120) == code
        try:
            while os.read(controller, 4096):
                pass
        except OSError:
            pass
        os.close(controller)
        if code == 2:
            assert profile_path("hal").read_bytes() == stamp
    assert json.loads(profile_path("hal").read_text())["created"] >= json.loads(stamp)["created"]


def test_profiles_command_lists_shows_and_deletes(recordings, data_dir, capsys):
    folder, _ = recordings
    assert main(["profiles"]) == 0
    assert "no profiles yet" in capsys.readouterr().out
    for name in ("ida", "jo"):
        assert main(["calibrate", "--heel", str(folder / "heel.wav"), "--forefoot", str(folder / "forefoot.wav"),
                     "--name", name, "--json", "-"]) == 0
    capsys.readouterr()
    assert main(["profiles"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in lines] == ["ida", "jo"] and all("told apart" in ln for ln in lines)
    assert main(["profiles", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["profiles"]
    assert [r["name"] for r in rows] == ["ida", "jo"] and rows[0]["verdict"] in ("good", "fair")
    assert main(["profiles", "show", "ida"]) == 0
    out = capsys.readouterr().out
    assert "runner profile 'ida'" in out and str(profile_path("ida")) in out
    assert main(["profiles", "show", "jo", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(profile_path("jo").read_text())
    for argv in (["profiles", "show", "kim"], ["profiles", "delete", "kim"]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err == "stepsound: error: no profile named 'kim' (known profiles: ida, jo)\n"
    for argv in (["profiles", "show"], ["profiles", "delete", "../x"], ["profiles", "list", "ida"],
                 ["profiles", "frob"]):
        assert main(argv) == 2, argv
        assert capsys.readouterr().err.count("\n") == 1
    assert main(["profiles", "delete", "ida"]) == 0
    assert "deleted profile 'ida'" in capsys.readouterr().err
    assert list_profiles() == ["jo"]
    profile_path("jo").write_text("{broken")
    assert main(["profiles"]) == 0
    assert "unreadable" in capsys.readouterr().out


@pytest.mark.parametrize("which,message", [
    ("short", "only"),          # too few steps
    ("silence", "no steps"),    # silence
])
def test_bad_calibration_input_is_one_line(recordings, capsys, which, message):
    folder, _ = recordings
    rc = main(["calibrate", "--heel", str(folder / f"{which}.wav"), "--forefoot", str(folder / "forefoot.wav"),
               "--name", "cy"])
    err = capsys.readouterr().err
    assert rc == 1
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert list_profiles() == []


@pytest.mark.parametrize("argv,code", [
    (["calibrate", "--heel", "h.wav", "--name", "x"], 2),            # one class only
    (["calibrate", "--heel", "h.wav", "--forefoot", "f.wav"], 2),   # no name
    (["calibrate", "--live", "--heel", "h.wav", "--name", "x"], 2),
    (["calibrate", "--heel", "h.wav", "--forefoot", "f.wav", "--name", "../evil"], 2),
    (["calibrate", "--heel", "/nonexistent.wav", "--forefoot", "/nonexistent.wav", "--name", "x"], 1),
])
def test_usage_errors(capsys, argv, code):
    assert main(argv) == code
    err = capsys.readouterr().err
    assert err.startswith("stepsound") and err.count("\n") == 1


def test_one_class_only_and_too_few_steps_in_the_model(recordings):
    feats = [{"low_db": -30, "mid_db": -32, "high_db": -40, "energy_db": -29, "peak_db": -15,
              "attack_ms": 3, "second_impact_db": float("nan"), "second_impact_ms": float("nan")}] * 30
    with pytest.raises(CalibrationError, match="no forefoot steps"):
        fit_strike_classifier(feats, [])
    with pytest.raises(CalibrationError, match="only 5 heel-first"):
        fit_strike_classifier(feats[:5], feats)
    with pytest.raises(CalibrationError, match="no steps"):
        make_profile("x", [], [])
    assert isinstance(CalibrationError("x"), StepsoundError)


def test_strike_vector_is_gain_invariant():
    f = {"low_db": -30.0, "mid_db": -33.0, "high_db": -41.0, "energy_db": -29.0, "peak_db": -14.0,
         "attack_ms": 40.0, "second_impact_db": -8.0, "second_impact_ms": 30.0, "pre_onset_db": 3.5}
    relative = ("second_impact_db", "pre_onset_db")   # dB re the step itself / its background
    g = {k: (v + 17.0 if k.endswith("_db") and k not in relative else v) for k, v in f.items()}
    np.testing.assert_allclose(strike_vector(f), strike_vector(g), atol=1e-9)
    assert strike_vector(f).shape == (len(STRIKE_FEATURES),)
    pre = STRIKE_FEATURES.index("pre_onset_db")
    assert strike_vector(f)[pre] == 3.5
    # not measurable (our own click before the step): nothing heard, not a missing feature
    for unmeasured in (float("nan"), None):
        v = strike_vector({**f, "pre_onset_db": unmeasured})
        assert v[pre] == 0.0 and np.all(np.isfinite(v))


def test_uncertain_for_unseen_landings(recordings, capsys):
    folder, _ = recordings
    assert main(["calibrate", "--heel", str(folder / "heel.wav"), "--forefoot", str(folder / "forefoot.wav"),
                 "--name", "dee"]) == 0
    capsys.readouterr()
    g = LandingGrader(profile=load_profile("dee"))
    by_name = LandingGrader(profile="dee")  # as the live session passes it
    assert by_name.classifier is not None and by_name.heavy_db == load_profile("dee").heavy_db
    with pytest.raises(StoreError):
        LandingGrader(profile="nobody")
    weird = {"low_db": -80.0, "mid_db": -30.0, "high_db": -20.0, "energy_db": -10.0, "peak_db": 0.0,
             "attack_ms": 140.0, "second_impact_db": 5.0, "second_impact_ms": 100.0}
    grade = g.grade(weird)
    assert grade.strike == "uncertain" and grade.strike_confidence == 0.5
    assert g.grade({"energy_db": -30.0}).strike == "uncertain"  # missing features: never a guess


# ----------------------------------------------------------------------------- profiles store


def test_profiles_store_errors(recordings, data_dir, capsys):
    folder, _ = recordings
    with pytest.raises(StoreError, match="no profile named 'zed' \\(no profiles yet\\)"):
        load_profile("zed")
    for bad in ("", "../x", "a/b", ".hidden", "x" * 65, None, "a.json"):
        with pytest.raises(ParameterError, match="invalid profile name"):
            check_name(bad)
    assert main(["calibrate", "--heel", str(folder / "heel.wav"), "--forefoot", str(folder / "forefoot.wav"),
                 "--name", "eve"]) == 0
    capsys.readouterr()
    path = profile_path("eve")
    good = path.read_text()
    prof = load_profile("eve")
    assert isinstance(prof, RunnerProfile)
    assert load_profile("eve").to_dict()["strike_classifier"] == prof.to_dict()["strike_classifier"]

    path.write_text(good[: len(good) // 2])
    with pytest.raises(StoreError, match="not valid JSON"):
        load_profile("eve")
    doc = json.loads(good)
    doc["schema"] = 99
    path.write_text(json.dumps(doc))
    with pytest.raises(StoreError, match="newer"):
        load_profile("eve")
    doc = json.loads(good)
    del doc["strike_classifier"]["weights"]
    path.write_text(json.dumps(doc))
    with pytest.raises(StoreError, match="corrupt profile"):
        load_profile("eve")
    doc = json.loads(good)
    doc["strike_classifier"]["features"] = ["other"]
    path.write_text(json.dumps(doc))
    with pytest.raises(StoreError, match="older stepsound.*calibrate again") as err:
        load_profile("eve")
    assert "corrupt" not in str(err.value)      # a valid profile from an older version
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(StoreError, match="eve.json"):
        load_profile("eve")
    # analyze reports it in one line
    assert main(["analyze", str(folder / "mixed.wav"), "--profile", "eve"]) == 1
    err = capsys.readouterr().err
    assert "eve.json" in err and err.count("\n") == 1
    # saving round-trips
    path.unlink()
    save_profile(prof)
    assert list_profiles() == ["eve"]


def test_save_into_unwritable_dir_is_store_error(tmp_path, monkeypatch, recordings):
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    monkeypatch.setenv("STEPSOUND_DATA_DIR", str(ro))
    feats = [{"low_db": -30 - i % 3, "mid_db": -32, "high_db": -40, "energy_db": -29, "peak_db": -15,
              "attack_ms": 3 + 40 * (i % 2), "second_impact_db": float("nan"), "second_impact_ms": float("nan")}
             for i in range(40)]
    prof = make_profile("x", feats[0::2], feats[1::2])
    with pytest.raises(StoreError, match="cannot write"):
        save_profile(prof)


def test_learned_heavy_threshold():
    rng = np.random.default_rng(1)
    steps = [{"low_db": v, "mid_db": -300.0, "high_db": -300.0} for v in -30 + rng.normal(0, 1.0, 60)]
    heavy, spread = learn_heavy_db(steps)
    assert 0.75 < spread < 1.3 and heavy == pytest.approx(max(3.0, round(6 * spread) / 2))
    wide = [{"low_db": v, "mid_db": -300.0, "high_db": -300.0} for v in -30 + rng.normal(0, 2.0, 80)]
    heavy, spread = learn_heavy_db(wide)
    assert 1.5 < spread < 2.6 and heavy == pytest.approx(min(9.0, round(6 * spread) / 2))
    assert learn_heavy_db(steps[:5]) == (None, None)


# ----------------------------------------------------------------------------- live routine


def _feed_like_a_runner(routine, scenes, block=1024):
    """Feed heel-first audio until the routine asks for forefoot, then forefoot audio (like a runner)."""
    messages = []
    src = {"heel": scenes["heel"].audio, "forefoot": scenes["forefoot"].audio}
    pos = {"heel": 0, "forefoot": 0}
    while not routine.done:
        phase = routine.phase
        x = src[phase]
        if pos[phase] >= len(x):
            raise AssertionError(f"ran out of {phase} audio; messages: {messages}")
        messages += routine.feed(x[pos[phase]:pos[phase] + block])
        pos[phase] += block
    return messages


def test_live_routine_logic_on_file_audio(recordings):
    _, scenes = recordings
    routine = LiveCalibration(RATE, steps_per_class=20, settle_s=2.0)
    msgs = _feed_like_a_runner(routine, scenes)
    assert msgs[0].startswith("Phase 1 of 2") and any(m.startswith("Phase 2 of 2") for m in msgs)
    assert msgs[-1].startswith("Done")
    assert len(routine.steps["heel"]) == 20 and len(routine.steps["forefoot"]) == 20
    # no step of the settle time after a prompt is used
    assert min(s.onset_sample for s in routine.steps["heel"]) >= 2.0 * RATE
    prof = make_profile("live", routine.steps["heel"], routine.steps["forefoot"], sources=["live"])
    assert prof.report.cv_accuracy >= 0.85
    # the steps really are the landings they were prompted for
    truth = scenes["heel"].onset_samples()
    assert all(np.min(np.abs(truth - s.onset_sample)) < 0.09 * RATE for s in routine.steps["heel"])


def test_live_routine_gives_up_on_silence():
    routine = LiveCalibration(RATE, steps_per_class=10, settle_s=1.0, timeout_s=3.0)
    z = np.zeros(RATE, np.float32)
    with pytest.raises(CalibrationError, match="no steps heard for 3 s during the heel phase"):
        for _ in range(10):
            routine.feed(z)


def test_live_missing_device_is_one_line(capsys):
    rc = main(["calibrate", "--live", "--name", "x", "--device", "no-such-device-xyz"])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "Traceback" not in err


def test_live_ctrl_c_exits_130(monkeypatch, capsys):
    import stepsound.cli.calibrate as cal

    def interrupted(**settings):
        raise KeyboardInterrupt

    monkeypatch.setattr(cal, "live_calibration_steps", interrupted)
    assert main(["calibrate", "--live", "--name", "x"]) == 130
    assert list_profiles() == []


@pytest.mark.audio
def test_live_calibration_on_the_virtual_device(virtual_audio, recordings, data_dir, tmp_path):
    """calibrate --live listens on the null sink's monitor while heel, then forefoot audio is played into it."""
    folder, scenes = recordings
    rate = virtual_audio.sample_rate
    files = {}
    for strike in ("heel", "forefoot"):
        sc = synth_run(40, rate, seed=77, runner_seed=4, snr_db=6, strike=strike)
        files[strike] = tmp_path / f"{strike}.wav"
        sc.write(files[strike], subtype="PCM_16")
    env = {**os.environ, **virtual_audio.env, "STEPSOUND_DATA_DIR": str(data_dir),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "stepsound", "calibrate", "--live", "--name", "vic", "--device",
           virtual_audio.device, "--sample-rate", str(rate), "--steps", "12", "--settle", "1s",
           "--timeout", "20s"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    player = None
    deadline = time.monotonic() + 90
    try:
        for line in proc.stderr:
            lines.append(line.rstrip())
            if line.startswith("Phase 1"):
                player = virtual_audio.play_file(files["heel"])
            elif line.startswith("Phase 2"):
                if player is not None and player.poll() is None:
                    player.terminate()
                player = virtual_audio.play_file(files["forefoot"])
            if time.monotonic() > deadline:
                break
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        if player is not None and player.poll() is None:
            player.terminate()
    assert proc.returncode == 0, "\n".join(lines)
    assert "told apart correctly" in out
    prof = load_profile("vic")
    assert prof.sources == ["live"] and prof.report.n_heel == 12 and prof.report.n_forefoot == 12
    assert prof.report.cv_accuracy >= 0.75
