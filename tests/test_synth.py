"""Tests of the scene synthesizer (stepsynth): truth, SNR, timing, levels, determinism."""
import math

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from stepsound import AudioFileError, ParameterError
import stepsynth as S


def _clean(duration_s=30.0, sample_rate=16000, **kw):
    """Noise-free, reverb-free scene (the footstep track through the mic filters)."""
    kw.setdefault("snr_db", None)
    kw.setdefault("reverb", False)
    return S.synth_run(duration_s, sample_rate, **kw)


def _tracks(seed, duration_s, sample_rate, **kw):
    """(footstep track, noise track) of a noisy scene, separated via its noise-free twin."""
    noisy = S.synth_run(duration_s, sample_rate, seed=seed, **kw)
    kw_clean = dict(kw, snr_db=None)
    clean = S.synth_run(duration_s, sample_rate, seed=seed, **kw_clean)
    steps = clean.audio.astype(np.float64) / clean.meta["output_gain"]
    noise = noisy.audio.astype(np.float64) / noisy.meta["output_gain"] - steps
    return noisy, steps, noise


# --------------------------------------------------------------------------- onsets


def test_onsets_match_energy_rise_in_clean_audio():
    fs = 16000
    sc = _clean(30.0, fs, seed=11, strike="mixed")
    x = sc.audio.astype(np.float64)
    onsets = sc.onset_samples()
    assert len(onsets) > 70
    ms = fs // 1000
    for o in onsets:
        pre = np.sum(x[o - 10 * ms : o] ** 2)
        post = np.sum(x[o : o + 10 * ms] ** 2)
        assert post > 1e3 * pre + 1e-12  # > 30 dB rise across the onset
        w = np.abs(x[o - 20 * ms : o + 20 * ms])
        first = np.argmax(w > 0.1 * w.max()) - 20 * ms
        assert 0 <= first <= 3 * ms  # the waveform rises at the truth onset, not before, not late


def test_no_loud_event_outside_truth_windows():
    """Every loud 5 ms frame of the clean audio belongs to a footfall's impacts (<= 100 ms after its onset)."""
    fs = 16000
    sc = _clean(30.0, fs, seed=12, strike="mixed", squeak_prob=0.0)
    x = sc.audio.astype(np.float64)
    frame = 80
    e = np.add.reduceat(x**2, np.arange(0, len(x), frame))
    onsets = sc.onset_samples()
    step_max = np.array([e[o // frame : o // frame + 20].max() for o in onsets])
    loud = np.nonzero(e > np.median(step_max) * 10 ** (-20 / 10))[0] * frame  # frame starts
    idx = np.searchsorted(onsets, loud + frame - 1, side="right") - 1  # last onset before the frame ends
    assert len(loud) > len(onsets) and np.all(idx >= 0)
    assert np.all(loud - onsets[idx] <= int(0.1 * fs))


def test_second_impacts_where_truth_says():
    fs = 16000
    ms = fs // 1000
    heel = _clean(20.0, fs, seed=13, strike="heel")
    hp = signal.butter(4, 1000, "highpass", fs=fs, output="sos")
    x = signal.sosfilt(hp, heel.audio.astype(np.float64))
    rises = []
    for s in heel.steps:
        assert s.strike == "heel" and 25.0 <= s.second_impact_ms <= 70.0
        d = s.onset_sample + int(round(s.second_impact_ms * fs / 1000))
        rises.append(np.sum(x[d : d + 4 * ms] ** 2) / max(np.sum(x[d - 4 * ms : d] ** 2), 1e-30))
    assert np.mean(np.array(rises) > 10.0) > 0.95  # the slap starts at second_impact_ms (> 10 dB HF rise)

    fore = _clean(20.0, fs, seed=13, strike="forefoot")
    assert all(s.strike == "forefoot" and s.second_impact_ms is None for s in fore.steps)
    mixed = _clean(20.0, fs, seed=13, strike="mixed")
    kinds = {s.strike for s in mixed.steps}
    assert kinds == {"heel", "forefoot"}
    assert all((s.second_impact_ms is None) == (s.strike == "forefoot") for s in mixed.steps)


def test_heel_contact_has_more_low_frequency_than_forefoot_contact():
    fs = 16000
    low = signal.butter(4, 300, "lowpass", fs=fs, output="sos")

    def low_share_db(sc):
        x = sc.audio.astype(np.float64)
        lo = signal.sosfilt(low, x)
        e_lo = sum(np.sum(lo[o : o + fs // 50] ** 2) for o in sc.onset_samples())
        e = sum(np.sum(x[o : o + fs // 50] ** 2) for o in sc.onset_samples())
        return 10 * math.log10(e_lo / e)

    heel = low_share_db(_clean(15.0, fs, seed=14, strike="heel"))
    fore = low_share_db(_clean(15.0, fs, seed=14, strike="forefoot"))
    assert heel > fore + 4.0


# --------------------------------------------------------------------------- SNR and gain


@pytest.mark.parametrize("noise", ["treadmill", "treadmill_b", "babble", "music", "street", "pink", "hum"])
@pytest.mark.parametrize("snr_db", [-3.0, 6.0, 20.0])
def test_realised_snr(noise, snr_db):
    sc, steps, nz = _tracks(21, 6.0, 8000, snr_db=snr_db, noise=noise)
    measured = 10 * math.log10(np.mean(steps**2) / np.mean(nz**2))
    assert abs(measured - snr_db) < 0.5
    assert abs(sc.snr_db - snr_db) < 1e-6
    assert sc.noise == noise


def test_silence_and_none_mean_no_noise():
    a = S.synth_run(5.0, 8000, seed=3, snr_db=None)
    b = S.synth_run(5.0, 8000, seed=3, snr_db=6.0, noise="silence")
    assert a.snr_db is None and b.snr_db is None
    assert np.array_equal(a.audio, b.audio)


def test_mic_gain_scales_everything_and_limiter_caps_peak():
    a = S.synth_run(6.0, 8000, seed=4)
    quiet = S.synth_run(6.0, 8000, seed=4, mic_gain_db=-20.0)
    np.testing.assert_allclose(quiet.audio, 0.1 * a.audio, rtol=1e-5, atol=1e-7)
    loud = S.synth_run(6.0, 8000, seed=4, mic_gain_db=30.0)
    assert np.max(np.abs(loud.audio)) <= S.PEAK_CEILING + 1e-6
    assert loud.meta["limiter_gain_db"] < 0
    ratio = loud.meta["output_gain"] / a.meta["output_gain"]
    np.testing.assert_allclose(loud.audio, ratio * a.audio, rtol=1e-4, atol=1e-6)
    assert a.steps == quiet.steps == loud.steps


# --------------------------------------------------------------------------- timing


def _intervals_by_side(sc):
    t = sc.onset_times_s()
    iv = np.diff(t)
    after = np.array([s.side for s in sc.steps[:-1]])
    return iv[after == "L"], iv[after == "R"]


@pytest.mark.parametrize("cv", [0.03, 0.06])
def test_interval_cv_and_lr_asymmetry(cv):
    sc = _clean(240.0, 8000, seed=31, noise="silence", cadence_spm=170.0, interval_cv=cv, lr_timing_asym=0.03)
    after_l, after_r = _intervals_by_side(sc)
    pooled_sd = math.sqrt(0.5 * (np.var(after_l, ddof=1) + np.var(after_r, ddof=1)))
    mean_iv = 0.5 * (after_l.mean() + after_r.mean())
    assert abs(pooled_sd / mean_iv - cv) < 0.15 * cv
    assert abs(60.0 / mean_iv - 170.0) < 1.0
    longer, shorter = max(after_l.mean(), after_r.mean()), min(after_l.mean(), after_r.mean())
    assert abs(longer / shorter - 1.03) < 0.01


def test_zero_jitter_gives_metronomic_intervals():
    sc = _clean(30.0, 8000, seed=32, cadence_spm=180.0, interval_cv=0.0, lr_timing_asym=0.0)
    iv = np.diff(sc.onset_samples())
    assert np.all(np.abs(iv - 8000 * 60 / 180) <= 1)


def test_drifting_cadence_follows_breakpoints():
    sc = _clean(60.0, 8000, seed=33, cadence_spm=[(0.0, 160.0), (60.0, 176.0)])
    t = sc.onset_times_s()
    iv = np.diff(t)
    for lo, hi in [(0.0, 12.0), (24.0, 36.0), (48.0, 60.0)]:
        sel = (t[:-1] >= lo) & (t[:-1] < hi)
        expected = 160.0 + 16.0 * (0.5 * (lo + hi)) / 60.0
        assert abs(60.0 / iv[sel].mean() - expected) < 3.0


def test_sides_alternate_and_one_foot_is_louder():
    sc = _clean(120.0, 8000, seed=34, pauses=[(40.0, 45.0)], lr_level_asym_db=2.0)
    sides = [s.side for s in sc.steps]
    assert all(a != b for a, b in zip(sides, sides[1:]))
    lv = {side: np.mean([s.level_db for s in sc.steps if s.side == side]) for side in "LR"}
    louder = sc.meta["runner"]["louder_side"]
    other = "R" if louder == "L" else "L"
    assert abs(lv[louder] - lv[other] - 2.0) < 0.5


def test_pauses_have_no_steps_and_are_quiet():
    fs = 8000
    pauses = [(5.0, 8.0), (15.0, 16.5)]
    sc = _clean(25.0, fs, seed=35, pauses=pauses)
    t = sc.onset_times_s()
    x = np.abs(sc.audio)
    peak = x.max()
    for a, b in pauses:
        assert not np.any((t >= a) & (t < b))
        assert np.any((t >= a - 0.5) & (t < a))  # running right up to the stop
        assert np.any((t >= b) & (t < b + 0.6))  # and resuming right after
        assert x[int((a + 0.5) * fs) : int(b * fs)].max() < 1e-3 * peak


# --------------------------------------------------------------------------- levels


def test_level_db_is_the_exact_energy_gain_on_dry_audio():
    blocks = [(0, 0.0), (8, 3.0), (16, 6.0), (24, 0.0), (32, -4.0), (40, 6.0)]

    def level(t):
        return [db for start, db in blocks if t >= start][-1]

    fs = 16000
    sc = _clean(48.0, fs, seed=41, step_level_db=level, mic_colouration=False, squeak_prob=0.0, strike="mixed")
    on = sc.onset_samples()
    ends = np.append(on[1:], len(sc.audio))
    x = sc.audio.astype(np.float64)
    measured = np.array([10 * math.log10(np.sum(x[a:b] ** 2)) for a, b in zip(on, ends)])
    truth = np.array([s.level_db for s in sc.steps])
    resid = measured - truth
    assert np.ptp(resid) < 0.1  # only the quiet toe-off scuff is not normalised
    user = np.array([d["user_db"] for d in sc.meta["step_details"]])
    assert set(np.round(user, 6)) == {0.0, 3.0, 6.0, -4.0}
    assert 0.8 < np.std(truth - user) < 1.8  # natural jitter + L/R asymmetry on top


def test_level_db_tracks_energy_with_room_and_mic():
    fs = 16000
    values = np.repeat([0.0, 6.0, -4.0, 3.0, 0.0, 6.0], 25)
    sc = S.synth_run(40.0, fs, seed=42, snr_db=None, step_level_db=values)
    on = sc.onset_samples()
    x = sc.audio.astype(np.float64)
    measured = np.array([10 * math.log10(np.sum(x[o : o + fs // 5] ** 2)) for o in on])
    truth = np.array([s.level_db for s in sc.steps])
    slope, _ = np.polyfit(truth, measured, 1)
    assert 0.9 < slope < 1.1
    assert np.corrcoef(truth, measured)[0, 1] > 0.95


def test_per_step_level_array():
    sc = _clean(10.0, 8000, seed=43, step_level_db=np.arange(100) * 0.5, level_jitter_db=0.0, lr_level_asym_db=0.0)
    assert [s.level_db for s in sc.steps] == [0.5 * i for i in range(len(sc.steps))]
    with pytest.raises(ParameterError, match="step_level_db has 3 values"):
        _clean(10.0, 8000, seed=43, step_level_db=[0.0, 1.0, 2.0])


# --------------------------------------------------------------------------- determinism, rates, noise


def test_deterministic_for_a_seed():
    a = S.synth_run(5.0, 8000, seed=7, noise="babble", strike="mixed")
    b = S.synth_run(5.0, 8000, seed=7, noise="babble", strike="mixed")
    c = S.synth_run(5.0, 8000, seed=8, noise="babble", strike="mixed")
    assert np.array_equal(a.audio, b.audio) and a.steps == b.steps and a.meta == b.meta
    assert not np.array_equal(a.audio, c.audio)
    d = S.synth_run(5.0, 8000, seed=8, runner_seed=7)
    assert d.meta["runner"] == a.meta["runner"] and d.steps != a.steps


@pytest.mark.parametrize("sample_rate", [8000, 16000, 44100, 96000])
def test_sample_rates(sample_rate):
    sc = S.synth_run(4.0, sample_rate, seed=5, strike="mixed", noise="treadmill")
    assert sc.audio.dtype == np.float32 and sc.audio.shape == (4 * sample_rate,)
    assert np.all(np.isfinite(sc.audio)) and 0 < np.max(np.abs(sc.audio)) <= S.PEAK_CEILING
    assert abs(sc.snr_db - 6.0) < 1e-6
    ref = S.synth_run(4.0, 8000, seed=5, strike="mixed", snr_db=None, reverb=False)
    # the schedule is drawn in seconds: the same onsets at every rate (to rounding)
    np.testing.assert_allclose(sc.onset_times_s(), ref.onset_times_s(), atol=1.0 / 8000)
    assert sc.onset_samples().dtype == np.int64 and sc.onset_samples().max() < len(sc.audio)


@pytest.mark.parametrize("sample_rate", [8000, 96000])
def test_every_noise_kind_is_unit_rms(sample_rate):
    for kind in S.NOISE_KINDS:
        y = S.make_noise(kind, sample_rate, sample_rate, np.random.default_rng(1))
        assert y.shape == (sample_rate,) and np.all(np.isfinite(y))
        rms = math.sqrt(np.mean(y**2))
        assert rms == 0.0 if kind == "silence" else abs(rms - 1.0) < 1e-9
    assert np.array_equal(S.make_noise("street", 5000, sample_rate, 3), S.make_noise("street", 5000, sample_rate, 3))


def test_music_tempo_stays_away_from_cadence():
    for seed in range(5):
        sc = S.synth_run(3.0, 8000, seed=seed, noise="music", cadence_spm=[(0, 170), (3, 184)])
        tempo = sc.meta["noise_params"]["tempo_bpm"]
        for cadence in (170.0, 177.0, 184.0):
            for r in (0.5, 1.0, 2.0):
                assert abs(r * tempo - cadence) > 0.08 * cadence


def test_treadmill_parameters_in_range():
    sc = S.synth_run(3.0, 8000, seed=2, noise="treadmill")
    p = sc.meta["noise_params"]
    assert 0.8 <= p["belt_period_s"] <= 1.5 and 50.0 <= p["motor_hz"] <= 300.0


def test_noise_from_file(tmp_path):
    rate = 22050
    t = np.arange(3 * rate) / rate
    bed = 0.1 * np.sin(2 * np.pi * 220 * t) + 0.05 * np.random.default_rng(0).standard_normal(len(t))
    path = tmp_path / "bed.wav"
    sf.write(path, np.stack([bed, bed], axis=1), rate)
    sc, steps, nz = _tracks(9, 8.0, 16000, noise=str(path), snr_db=3.0)  # longer than the file: looped
    assert abs(10 * math.log10(np.mean(steps**2) / np.mean(nz**2)) - 3.0) < 0.5
    assert sc.noise == str(path)
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    with pytest.raises(AudioFileError):
        S.synth_run(2.0, 8000, noise=str(bad))


# --------------------------------------------------------------------------- files and validation


def test_write_and_read_truth(tmp_path):
    sc = S.synth_run(6.0, 16000, seed=6, strike="mixed")
    sc.write(tmp_path / "scene.flac", path_meta_json=tmp_path / "scene.json")
    steps = S.read_truth_csv(tmp_path / "scene.steps.csv")
    assert len(steps) == len(sc.steps)
    for a, b in zip(steps, sc.steps):
        assert (a.onset_sample, a.side, a.strike) == (b.onset_sample, b.side, b.strike)
        assert abs(a.level_db - b.level_db) < 1e-4
        assert (a.second_impact_ms is None) == (b.second_impact_ms is None)
        if a.second_impact_ms is not None:
            assert abs(a.second_impact_ms - b.second_impact_ms) < 1e-3
    header = S.read_truth_header(tmp_path / "scene.steps.csv")
    assert header["sample_rate"] == 16000 and header["noise"] == "treadmill" and header["seed"] == 6
    assert abs(header["snr_db"] - 6.0) < 1e-3
    audio, rate = sf.read(tmp_path / "scene.flac", dtype="float32")
    assert rate == 16000 and np.max(np.abs(audio - sc.audio)) < 2.0 / 32768
    sc.write(tmp_path / "scene.wav", False)
    audio, _ = sf.read(tmp_path / "scene.wav", dtype="float32")
    assert np.array_equal(audio, sc.audio)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"sample_rate": 0}, "sample_rate"),
        ({"sample_rate": 4000}, "sample_rate"),
        ({"duration_s": float("nan")}, "duration_s"),
        ({"cadence_spm": float("nan")}, "cadence_spm"),
        ({"cadence_spm": [(10, 160), (5, 170)]}, "cadence_spm"),
        ({"snr_db": float("inf")}, "snr_db"),
        ({"noise": "jackhammer"}, "noise"),
        ({"strike": "toe"}, "strike"),
        ({"interval_cv": -0.1}, "interval_cv"),
        ({"pauses": [(5, 3)]}, "pauses"),
        ({"seed": -1}, "seed"),
        ({"reverb": {"rt60": 0.3}}, "reverb"),
    ],
)
def test_bad_arguments_are_named(kwargs, name):
    args = {"duration_s": 2.0, "sample_rate": 8000}
    args.update(kwargs)
    with pytest.raises(ParameterError, match=name):
        S.synth_run(args.pop("duration_s"), args.pop("sample_rate"), **args)


def test_empty_scene_is_not_an_error():
    sc = S.synth_run(0.0, 8000)
    assert sc.audio.shape == (0,) and sc.steps == [] and len(sc.onset_times_s()) == 0
