"""Landing grading: impact against the runner's own baseline, heavy flags, engine and CLI output."""
import json
import math

import numpy as np
import pytest

from stepsound.engine import Engine, Step
from stepsound.errors import ParameterError
from stepsound.engine import EngineFactory
from stepsound.grade.impact import DEFAULT_HEAVY_DB, Grade, ImpactBaseline, LandingGrader
from stepsound.grade.strike import landing_db
from stepsynth import synth_run

RATE = 22050
HEAVY_LEVELS = (-6.0, -3.0, 3.0, 9.0, 12.0)


def _levels(n, seed):
    rng = np.random.default_rng(seed)
    lv = np.zeros(n)
    i = 24
    while i < n:
        i += int(rng.integers(6, 21))
        k = int(rng.integers(6, 17))
        lv[i:i + k] = rng.choice(HEAVY_LEVELS)
        i += k
    return lv


def _steps(audio, rate, grader=None, block=4096):
    eng = Engine(rate, grader=grader)
    out = []
    for a in range(0, len(audio), block):
        out += [e for e in eng.process(audio[a:a + block]) if isinstance(e, Step)]
    return out


def _match(scene, steps, tol_s=0.09):
    truth = scene.onset_samples()
    pairs, used = [], set()
    for s in steps:
        if s.extra:
            continue
        j = int(np.argmin(np.abs(truth - s.onset_sample)))
        if abs(truth[j] - s.onset_sample) <= tol_s * scene.sample_rate and j not in used:
            used.add(j)
            pairs.append((j, s))
    return pairs


# ----------------------------------------------------------------------------- unit level


def test_first_step_is_zero_and_baseline_is_previous_steps():
    b = ImpactBaseline(history=5)
    assert b.baseline_db is None
    assert b.grade(-30.0) == (0.0, False)
    impact, heavy = b.grade(-20.0)
    assert impact == pytest.approx(10.0) and heavy
    # the heavy step is in the window now, but the median ignores one outlier
    for _ in range(3):
        b.grade(-30.0)
    assert b.baseline_db == pytest.approx(-30.0)


def test_gain_invariance_of_the_baseline():
    rng = np.random.default_rng(0)
    x = -30 + rng.normal(0, 1.5, 200)
    x[100:110] += 8
    a, b = ImpactBaseline(), ImpactBaseline()
    ia = [a.grade(v)[0] for v in x]
    ib = [b.grade(v + 37.0)[0] for v in x]
    np.testing.assert_allclose(ia, ib, atol=1e-9)


def test_long_block_stays_heavy_with_the_long_baseline_and_when_frozen():
    x = np.r_[np.full(60, -30.0), np.full(40, -23.0)]  # a 40-step +7 dB block
    b = ImpactBaseline()
    flags = [b.grade(v)[1] for v in x]
    assert all(flags[60:])
    assert not any(flags[:60])
    short = ImpactBaseline(history=24)
    flags = [short.grade(v)[1] for v in x]
    assert not all(flags[60:])  # the old 24-step median absorbs the block
    f = ImpactBaseline(history=10)
    for v in x[:60]:
        f.grade(v)
    f.freeze()
    assert f.frozen and f.baseline_db == pytest.approx(-30.0)
    assert all(f.grade(v)[1] for v in x[60:])
    f.unfreeze()
    assert f.baseline_db == pytest.approx(-23.0)


def test_freeze_and_reset_and_nan():
    b = ImpactBaseline()
    with pytest.raises(ParameterError, match="before any step"):
        b.freeze()
    b.freeze(-40.0)
    assert b.grade(-33.0) == (pytest.approx(7.0), True)
    with pytest.raises(ParameterError, match="finite"):
        b.freeze(float("nan"))
    impact, heavy = b.grade(float("nan"))
    assert math.isnan(impact) and not heavy
    b.reset()
    assert b.baseline_db is None and not b.frozen and not b.ready


@pytest.mark.parametrize("kwargs", [{"heavy_db": 0}, {"heavy_db": float("nan")}, {"heavy_db": "x"},
                                    {"history": 0}, {"history": 2.5}, {"min_steps": 0}])
def test_parameter_errors_name_the_value(kwargs):
    with pytest.raises(ParameterError, match=next(iter(kwargs))):
        ImpactBaseline(**kwargs)


def test_landing_db_sums_the_bands_and_falls_back():
    f = {"low_db": -30.0, "mid_db": -30.0, "high_db": -300.0, "energy_db": -10.0}
    assert landing_db(f) == pytest.approx(-30.0 + 10 * math.log10(2), abs=1e-6)
    assert landing_db({"low_db": float("nan"), "mid_db": -30, "high_db": -30, "energy_db": -12.0}) == -12.0
    assert math.isnan(landing_db({}))


def test_grader_interface_without_profile():
    g = LandingGrader()
    assert g.heavy_db == DEFAULT_HEAVY_DB
    out = g.grade({"low_db": -30.0, "mid_db": -35.0, "high_db": -40.0, "energy_db": -30.0})
    assert isinstance(out, Grade)
    assert out.impact_db == 0.0 and out.heavy is False
    assert out.strike is None and out.strike_confidence is None
    assert LandingGrader(heavy_db=4.5).heavy_db == 4.5
    g.freeze()
    assert g.baseline.frozen


# ----------------------------------------------------------------------------- on recordings with known gains


@pytest.mark.parametrize("snr_db,mic_gain_db,strike", [
    (12, 0, "heel"), (6, -24, "forefoot"), (3, 12, "heel"), (0, 0, "heel"), (0, -12, "forefoot"),
])
def test_impact_tracks_known_gains(snr_db, mic_gain_db, strike):
    lv = _levels(260, seed=snr_db + 3)
    sc = synth_run(75, RATE, seed=40 + snr_db, snr_db=snr_db, strike=strike, step_level_db=lv,
                   mic_gain_db=mic_gain_db)
    pairs = [(j, s) for j, s in _match(sc, _steps(sc.audio, RATE)) if j >= 24]
    assert len(pairs) > 0.75 * (len(sc.steps) - 24)
    level = np.array([t.level_db for t in sc.steps])
    normal = np.array([d["user_db"] == 0 for d in sc.meta["step_details"]])
    truth = np.array([level[j] for j, _ in pairs]) - np.median(level[normal])
    measured = np.array([s.impact_db for _, s in pairs])
    heavy = np.array([s.heavy for _, s in pairs])
    assert np.all(np.isfinite(measured))
    r = np.corrcoef(truth, measured)[0, 1]
    rms = np.sqrt(np.mean((measured - truth) ** 2))
    agree = np.mean(heavy == (truth >= 6.0))
    assert r >= 0.95, r
    assert rms <= 1.5, rms
    assert agree >= 0.95, agree
    assert heavy.sum() >= 5  # the recording does have heavy steps


def test_impact_is_the_same_at_any_microphone_gain():
    lv = _levels(200, seed=1)
    out = []
    for gain in (-30.0, 0.0, 10.0):
        sc = synth_run(50, RATE, seed=9, snr_db=6, step_level_db=lv, mic_gain_db=gain)
        out.append({j: s.impact_db for j, s in _match(sc, _steps(sc.audio, RATE))})
    common = sorted(set(out[0]) & set(out[1]) & set(out[2]))
    assert len(common) > 100
    for other in (out[0], out[2]):
        diff = np.array([other[j] - out[1][j] for j in common])
        assert np.median(np.abs(diff)) < 0.05
        assert np.percentile(np.abs(diff), 95) < 0.5


# ----------------------------------------------------------------------------- outputs


@pytest.fixture(scope="module")
def heavy_file(tmp_path_factory):
    lv = np.zeros(200)
    lv[60:75] = 12.0
    sc = synth_run(40, RATE, seed=3, snr_db=6, step_level_db=lv)
    path = tmp_path_factory.mktemp("grade") / "heavy.wav"
    sc.write(path)
    return path, sc


def test_analyze_json_has_heavy_steps_and_share(heavy_file, capsys):
    from stepsound.cli.main import main

    path, sc = heavy_file
    assert main(["analyze", str(path), "--json", "-", "--quiet"]) == 0
    doc = json.loads(capsys.readouterr().out)
    steps = doc["steps"]
    assert all(isinstance(s["heavy"], bool) for s in steps)
    assert all(s["strike"] is None and s["strike_confidence"] is None for s in steps)
    n_heavy = sum(s["heavy"] for s in steps if not s["extra"])
    assert 12 <= n_heavy <= 17
    summary = doc["summary"]
    assert summary["heavy_steps"] == n_heavy
    assert summary["heavy_share"] == pytest.approx(n_heavy / summary["steps"], abs=1e-4)
    assert summary["heavy_threshold_db"] == 6.0


def test_analyze_heavy_db_option(heavy_file, capsys):
    from stepsound.cli.main import main

    path, _ = heavy_file
    assert main(["analyze", str(path), "--json", "-", "--quiet", "--heavy-db", "20"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["heavy_steps"] == 0 and doc["summary"]["heavy_threshold_db"] == 20.0
    assert main(["analyze", str(path), "--heavy-db", "-1"]) == 2
    assert "heavy_db" in capsys.readouterr().err


def test_engine_factory_is_picklable_and_builds_graders():
    import pickle

    f = pickle.loads(pickle.dumps(EngineFactory(heavy_db=5.0)))
    eng = f(RATE)
    assert isinstance(eng.grader, LandingGrader) and eng.grader.heavy_db == 5.0
