"""The learned step-onset model: Cython inference vs a NumPy reference, block-size invariance, behaviour."""
import json

import numpy as np
import pytest

from stepsound.detect.detector import Detector, DetectorConfig, Onset, StepFeatures
from stepsound.errors import ParameterError
from stepsound.detect.stepnet import design_bands, feature_extractor, load_model, make_stepnet, model_info

from _signals import bursts, match

MODEL = DetectorConfig().replace(model="stepnet")


def _reference_probs(model: dict, feats: np.ndarray) -> np.ndarray:
    """The documented network in plain NumPy: causal dilated convolutions, ReLU, sigmoid."""
    x = (feats.astype(np.float64) - model["in_mean"]) / model["in_scale"]    # (T, F)
    n = int(model["n_layers"])
    for i in range(n):
        w, b, d = model[f"w{i}"], model[f"b{i}"], int(model[f"d{i}"])
        k = w.shape[2]
        pad = np.vstack([np.zeros(((k - 1) * d, x.shape[1])), x])
        y = np.tile(b, (len(x), 1))
        for j in range(k):
            shift = (k - 1 - j) * d
            y += pad[(k - 1) * d - shift:(k - 1) * d - shift + len(x)] @ w[:, :, j].T
        x = np.maximum(y, 0.0) if i + 1 < n else y
    return 1.0 / (1.0 + np.exp(-np.clip(x[:, 0], -40, 40)))


def _synth(rate, duration_s=8.0, seed=3, noise="treadmill", snr_db=6.0):
    """A run from stepsound's own synthesizer (a source the model was never trained on)."""
    from stepsynth import synth_run

    sc = synth_run(duration_s, rate, cadence_spm=170.0, seed=seed, snr_db=snr_db, noise=noise, strike="mixed")
    return sc.audio.astype(np.float32), np.array([st.onset_sample for st in sc.steps])


@pytest.fixture(scope="module")
def run16k():
    return _synth(16000)


@pytest.fixture(scope="module")
def v1_path(tmp_path_factory):
    """A model without extra inputs (version 1 layout, random weights): it runs by itself."""
    return _random_v2_archive(tmp_path_factory.mktemp("v1") / "v1.npz", seed=1, n_extra=0)


def test_cython_inference_matches_numpy_reference(run16k, v1_path):
    x, _ = run16k
    model = load_model(v1_path)
    hop = 32
    feats = feature_extractor(16000, hop, model["centres_hz"], float(model["q"]), float(model["floor_up_db_s"]),
                              float(model["floor_down_db_s"])).features(x)
    ref = _reference_probs(model, feats)
    got = make_stepnet(16000, hop, len(x) + hop, v1_path).process(x)
    assert got.shape == ref.shape == (len(x) // hop,)
    # features() hands out float32 frames; the model itself runs on the float64 values (measured 9e-8 apart)
    assert np.max(np.abs(got - ref)) < 1e-6
    assert got.std() > 1e-3


def test_shipped_model_responds_to_steps_and_not_everywhere(run16k):
    x, _ = run16k
    det = Detector(16000, MODEL)
    p = det._core.trace(x)[:, 3] / det.config.model_scale
    assert p.max() > 0.85 and np.median(p) < 0.1


@pytest.mark.parametrize("sizes", [[1], [17], [256], [4096], "random"])
def test_model_output_is_block_size_invariant(run16k, sizes, v1_path):
    x, _ = run16k
    whole = make_stepnet(16000, 32, len(x) + 64, v1_path).process(x)
    if sizes == "random":
        rng = np.random.default_rng(5)
        sizes = [int(s) for s in rng.integers(0, 3000, size=500)]
        sizes[::5] = [0] * len(sizes[::5])
    net = make_stepnet(16000, 32, 4096, v1_path)
    parts, i, k = [], 0, 0
    while i < len(x):
        n = sizes[k % len(sizes)]
        parts.append(net.process(x[i:i + n]))
        i += n
        k += 1
    assert np.array_equal(np.concatenate(parts), whole)     # bit for bit


def _keys(events):
    return [(type(e).__name__, e.onset_sample, e.detect_sample,
             tuple(np.nan_to_num(list(e.values.values()), nan=-1e9)) if isinstance(e, StepFeatures) else ())
            for e in events]


def _check_block_size_invariance(cfg, rate, sizes, min_events):
    """Events for any cut of the audio equal those of the whole; reset returns to the fresh state."""
    x, _ = _synth(rate, seed=4)
    whole = _keys(Detector(rate, cfg).process(x))
    assert len(whole) > min_events
    if sizes == "random":
        rng = np.random.default_rng(rate)
        sizes = [int(s) for s in rng.integers(0, 20000, size=300)]
    det = Detector(rate, cfg)
    events, i, k = [], 0, 0
    while i < len(x):
        n = sizes[k % len(sizes)]
        events += det.process(x[i:i + n])
        i += n
        k += 1
    assert _keys(events) == whole
    det.reset()
    assert _keys(det.process(x)) == whole     # reset returns the model to its fresh state too


@pytest.mark.parametrize("rate", [8000, 44100, 96000])
@pytest.mark.parametrize("sizes", [[1, 255, 7], [256], "random"])
def test_detector_with_model_is_block_size_invariant(rate, sizes):
    _check_block_size_invariance(MODEL, rate, sizes, 10)


def _synth_scores(cfg):
    x, truth = _synth(44100, duration_s=12.0)
    ev = Detector(44100, cfg).process(x)
    onsets = [e.onset_sample for e in ev if isinstance(e, Onset)]
    return match(onsets, truth, tolerance=int(0.05 * 44100)), len(truth)


def test_model_finds_most_synthesized_steps_with_accurate_onsets():
    """stepsound's synthesizer is held out for the model.  Version 2 measured 25 of 33 steps and 8 false ones:
    on this scene (stepsynth's treadmill noise, +6 dB) it fires 20-150 ms *before* 8 steps, and the refractory
    interval then hides the step (the hand-made ODF finds all 33, version 1 found 27 with no false one)."""
    (hits, misses, fas, err), n = _synth_scores(MODEL)
    assert hits >= 0.7 * n and fas <= 10, (hits, misses, fas)
    assert np.median(np.abs(err)) < 0.005 * 44100


@pytest.mark.xfail(strict=True, reason="known defect of version 2: early false onsets on stepsynth's treadmill "
                   "noise (8 of 33 steps pre-empted at +6 dB)")
def test_model_finds_synthesized_steps_without_false_onsets():
    (hits, misses, fas, err), n = _synth_scores(MODEL)
    assert hits >= 0.9 * n and fas <= 1, (hits, misses, fas)


def test_model_finds_most_plain_noise_bursts():
    """Decaying white-noise bursts (the unit tests' footfall stand-in) are not footsteps to a model trained on real
    ones; version 1 found fewer than half of them.  Version 2, which reads the hand-made ODF, finds 23 of 33 (none
    false); the hand-made ODF finds all 33."""
    x, truth = bursts(sample_rate=16000, duration_s=12.0, noise_rms=0.01, hum=0.05, seed=1)
    onsets = [e.onset_sample for e in Detector(16000, MODEL).process(x) if isinstance(e, Onset)]
    hits, misses, fas, _ = match(onsets, truth, tolerance=int(0.05 * 16000))
    assert hits >= 0.6 * len(truth) and fas == 0, (hits, misses, fas)


@pytest.mark.parametrize("name", ["silence", "dc", "sine", "hum", "white noise"])
def test_model_is_silent_on_steady_signals(name):
    """Version 1 fired on steady white noise (a strict xfail then); version 2 was trained with generated steady
    coloured noise and does not."""
    sr = 16000
    t = np.arange(10 * sr) / sr
    x = {"silence": np.zeros_like(t), "dc": np.full_like(t, 0.3), "sine": 0.3 * np.sin(2 * np.pi * 440 * t),
         "hum": 0.2 * np.sin(2 * np.pi * 50 * t) + 0.1 * np.sin(2 * np.pi * 100 * t),
         "white noise": 0.1 * np.random.default_rng(2).standard_normal(len(t))}[name]
    ev = Detector(sr, MODEL).process(x.astype(np.float32))
    assert not [e for e in ev if isinstance(e, Onset)], name


def test_model_archive_says_it_never_saw_held_out_sources():
    info = model_info()
    seen = info["trained_on"]
    assert set(seen["step_banks"]) <= {"bbc", "moodist"}
    assert set(seen["beds"]) <= {"street", "domestic", "speech"}
    assert set(seen["generated_beds"]) <= {"gen_colour", "gen_motor", "gen_thump"}
    m = load_model()
    assert int(m["n_extra"]) == 3
    assert len(m["centres_hz"]) * 2 + int(m["n_extra"]) == len(m["in_mean"])
    assert np.all(np.asarray(m["centres_hz"]) < 4000.0)     # every band exists at 8 kHz


def test_bands_are_stable_and_peak_at_their_centres():
    from scipy.signal import freqz

    for rate in (8000, 16000, 44100, 96000):
        sos = design_bands(rate)
        for row, f in zip(sos, load_model()["centres_hz"]):
            assert np.all(np.abs(np.roots([1.0, row[4], row[5]])) < 1.0)
            _, h = freqz(row[:3], row[3:], worN=[f], fs=rate)
            assert abs(20 * np.log10(abs(h[0]))) < 0.5


def test_bad_models_are_rejected(tmp_path):
    with pytest.raises(ParameterError):
        Detector(16000, MODEL.replace(model=str(tmp_path / "missing.npz")))
    with pytest.raises(ParameterError):
        Detector(16000, MODEL.replace(model_threshold=1.5))
    det = Detector(16000)
    with pytest.raises(ValueError):
        det._core.set_model(make_stepnet(44100, 88, 4096))       # another rate
    with pytest.raises(ValueError):
        det._core.set_model(make_stepnet(16000, 32, 256))        # output ring shorter than a block


# --------------------------------------------------------------------------- version 2: hand-made ODF as extra inputs

def _random_v2_archive(path, seed=0, n_extra=3):
    """A model archive with extra inputs and random weights (structure tests, not behaviour)."""
    rng = np.random.default_rng(seed)
    base = load_model()
    nf = len(base["centres_hz"]) * 2 + n_extra
    out = {k: base[k] for k in ("centres_hz", "q", "floor_up_db_s", "floor_down_db_s")}
    out["in_mean"] = rng.normal(0, 1, nf)
    out["in_scale"] = rng.uniform(5, 20, nf)
    out["n_extra"] = np.array(n_extra)
    shapes = [(8, nf, 3, 1), (8, 8, 3, 2), (1, 8, 1, 1)]
    for i, (o, n_in, k, d) in enumerate(shapes):
        out[f"w{i}"] = rng.normal(0, 0.4, (o, n_in, k))
        out[f"b{i}"] = rng.normal(0, 0.1, o)
        out[f"d{i}"] = np.array(d)
    out["n_layers"] = np.array(len(shapes))
    out["info"] = np.array(json.dumps({"test": True}))
    np.savez(path, **out)
    return str(path)


@pytest.fixture(scope="module")
def v2_path(tmp_path_factory):
    return _random_v2_archive(tmp_path_factory.mktemp("v2") / "v2.npz")


def test_hand_inputs_do_not_depend_on_the_model_or_block_size(run16k, v2_path):
    """The extra inputs are computed against noise floors of their own (never frozen by a detection), so they are
    the same with or without a model, and for any cut of the audio: training can compute them without the model."""
    x, _ = run16k
    plain = Detector(16000)._core.trace(x)
    with_model = Detector(16000, MODEL.replace(model=v2_path))._core.trace(x)
    assert np.array_equal(plain[:, :3], with_model[:, :3])
    assert plain[:, 0].max() > 1.0          # the steps show in it
    det = Detector(16000)
    rng = np.random.default_rng(9)
    parts, i = [], 0
    while i < len(x):
        n = int(rng.integers(0, 700))
        parts.append(det._core.trace(x[i:i + n]))
        i += n
    assert np.array_equal(np.vstack(parts), plain)


def test_v2_model_in_core_equals_training_side_computation(run16k, v2_path):
    """What the training script feeds the network (the front end's features + the core's extra inputs, as
    bench/train_stepnet.py computes them) gives, in the model's own path and in a NumPy reference, the probabilities
    the core used."""
    x, _ = run16k
    model = load_model(v2_path)
    det = Detector(16000, MODEL.replace(model=v2_path))
    got = det._core.trace(x)[:, 3] / det.config.model_scale
    feats = feature_extractor(16000, 32, model["centres_hz"], float(model["q"]), float(model["floor_up_db_s"]),
                              float(model["floor_down_db_s"])).features(x)
    extra = Detector(16000)._core.trace(x)[:, :3]
    frames = np.hstack([feats, extra])
    net = make_stepnet(16000, 32, 4096, v2_path)
    assert np.max(np.abs(net.forward_frames(frames) - got)) < 1e-6      # float32 features vs float64 in the core
    assert np.max(np.abs(_reference_probs(model, frames) - got)) < 1e-6
    assert got.std() > 1e-3                                               # not a constant
    with pytest.raises(ValueError):
        net.process(x)                                                     # needs the core's extra inputs


@pytest.mark.parametrize("rate", [8000, 44100])
@pytest.mark.parametrize("sizes", [[1, 255, 7], "random"])
def test_detector_with_v2_model_is_block_size_invariant(rate, sizes, v2_path):
    _check_block_size_invariance(MODEL.replace(model=v2_path, model_threshold=0.5), rate, sizes, 4)


def test_v1_model_forward_frames_matches_its_own_path(run16k, v1_path):
    x, _ = run16k
    model = load_model(v1_path)
    feats = feature_extractor(16000, 32, model["centres_hz"], float(model["q"]), float(model["floor_up_db_s"]),
                              float(model["floor_down_db_s"])).features(x)
    got = make_stepnet(16000, 32, len(x) + 32, v1_path).process(x)
    assert np.max(np.abs(make_stepnet(16000, 32, 4096, v1_path).forward_frames(feats) - got)) < 1e-6


def test_too_many_extra_inputs_are_rejected(tmp_path):
    path = _random_v2_archive(tmp_path / "v4.npz", n_extra=4)
    with pytest.raises(ParameterError):
        Detector(16000, MODEL.replace(model=path))
