"""Spoken cues: rendering and caching with the real speech engine, ducking under speech, speech at the
cue times of a replayed session and of a rendered track, the fallback without an engine, the guided
calibration's instructions, and an audio path that neither allocates nor runs the engine."""
import json
import os
import subprocess
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from stepsound.cli.main import main
from stepsound.coach.speech import Speaker
from stepsound.cue import voice
from stepsound.cue.metronome import Metronome
from stepsound.cue.sounds import make_sound
from stepsound.engine import Step

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "audio_fixtures"
RUN = str(FIXTURES / "treadmill_run.flac")

ENGINE = voice.find_engine()
needs_engine = pytest.mark.skipif(ENGINE is None, reason="no speech engine (espeak-ng) installed; scripts/setup "
                                                         "installs it")


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    d = tmp_path / "data"
    monkeypatch.setenv("STEPSOUND_DATA_DIR", str(d))
    return d


def _ncc_best(x: np.ndarray, ref: np.ndarray) -> tuple[float, int]:
    """Best normalised correlation of ``ref`` within ``x`` and its lag [samples]."""
    cc = np.correlate(x, ref, "valid")
    k = int(np.argmax(np.abs(cc)))
    w = x[k:k + len(ref)]
    return float(cc[k] / np.sqrt(np.sum(w ** 2) * np.sum(ref ** 2) + 1e-20)), k


def _speech_band_share(y: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(y)) ** 2
    f = np.fft.rfftfreq(len(y), 1 / sr)
    return float(spec[(f >= 100) & (f <= 4000)].sum() / spec.sum())


# ----------------------------------------------------------------------------- rendering and the cache


@needs_engine
def test_phrase_is_speech_at_the_stream_rate_and_cached(tmp_path):
    cache = tmp_path / "cache"
    stats = voice.RenderStats()
    y = voice.render_phrase("Land softer", 48000, cache=str(cache), stats=stats)
    assert y.dtype == np.float32 and y.ndim == 1
    assert 0.3 < len(y) / 48000 < 3.0                       # a two-word phrase
    assert np.max(np.abs(y)) == pytest.approx(1.0, abs=1e-3)
    assert _speech_band_share(y, 48000) > 0.9                # energy where speech is
    # voiced: the short-time level varies like syllables, unlike a steady tone
    frames = y[: len(y) // 480 * 480].reshape(-1, 480)
    level = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)
    assert np.ptp(level) > 20
    assert stats.rendered == 1 and stats.cached == 0
    files = list(cache.iterdir())
    assert len(files) == 1 and files[0].suffix == ".wav" and ".part" not in files[0].name

    # the second time comes from the cache: an engine that cannot run (same name and version) still gives it
    gone = voice.SpeechEngine(ENGINE.name, str(tmp_path / "no-such-program"), ENGINE.version)
    stats2 = voice.RenderStats()
    again = voice.render_phrase("Land softer", 48000, cache=str(cache), engine=gone, stats=stats2)
    assert np.array_equal(again, y) and stats2.cached == 1 and stats2.rendered == 0
    # ... which cannot say anything new
    with pytest.raises(voice.SpeechError):
        voice.render_phrase("Speed up", 48000, cache=str(cache), engine=gone)


@needs_engine
def test_cache_key_covers_rate_voice_and_speed_and_a_damaged_entry_is_rendered_again(tmp_path):
    cache = tmp_path / "cache"
    a = voice.render_phrase("On target", 48000, cache=str(cache))
    b = voice.render_phrase("On target", 22050, cache=str(cache))
    c = voice.render_phrase("On target", 48000, cache=str(cache), wpm=250)
    voice.render_phrase("On target", 48000, cache=str(cache), voice="en-gb")
    assert len(list(cache.iterdir())) == 4
    assert len(b) / 22050 == pytest.approx(len(a) / 48000, abs=0.01)     # resampled, same duration
    assert len(c) < 0.85 * len(a)                                      # spoken faster
    for f in cache.iterdir():
        f.write_bytes(f.read_bytes()[:30])                              # damaged
    stats = voice.RenderStats()
    again = voice.render_phrase("On target", 48000, cache=str(cache), stats=stats)
    assert stats.rendered == 1 and np.array_equal(again, a)


@needs_engine
def test_all_session_phrases_render_quickly_once_then_from_the_cache(tmp_path):
    phrases = {voice.phrase_name(k): t for k, t in voice.PHRASES.items()}
    first, second = voice.RenderStats(), voice.RenderStats()
    got, note = voice.load_phrases(phrases, 44100, cache=str(tmp_path), stats=first)
    assert note is None and set(got) == set(phrases)
    got2, _ = voice.load_phrases(phrases, 44100, cache=str(tmp_path), stats=second)
    assert first.rendered == len(phrases) and second.cached == len(phrases) and second.rendered == 0
    assert second.seconds < first.seconds
    assert all(np.array_equal(got[k], got2[k]) for k in got)


def test_bad_text_voice_or_rate_is_a_usage_error(tmp_path):
    from stepsound.errors import ParameterError

    for kwargs in ({"text": ""}, {"text": "x" * 600}, {"voice": "--help"}, {"wpm": 20}, {"sample_rate": 100}):
        args = {"text": "hi", "sample_rate": 48000, "voice": "en-us", "wpm": 160, **kwargs}
        with pytest.raises(ParameterError):
            voice.render_phrase(args.pop("text"), args.pop("sample_rate"), cache=str(tmp_path), **args)


# ----------------------------------------------------------------------------- ducking


def _phrase_like(sr: int, seconds: float = 1.0) -> np.ndarray:
    """A stand-in phrase (no engine needed): a noise burst with a syllable envelope, peak 1."""
    rng = np.random.default_rng(3)
    t = np.arange(int(seconds * sr)) / sr
    y = rng.normal(0, 1, len(t)) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
    return (y / np.max(np.abs(y))).astype(np.float32)


def _click_peaks(out: np.ndarray, clicks: np.ndarray, length: int) -> np.ndarray:
    return np.array([np.max(np.abs(out[c:c + length])) for c in clicks])


def test_clicks_duck_under_speech_and_come_back():
    sr = 16000
    m = Metronome(sr, cadence_spm=180, level_db=-6, phrases={"say:x": _phrase_like(sr)}, duck_db=-12.0)
    speech_at = 3 * sr
    m.trigger_cue("say:x", at_sample=speech_at)
    out = np.zeros(8 * sr, np.float32)
    for start in range(0, len(out), 256):
        m.render_into(out[start:start + 256], start)
    log = m.read_clicks()
    beats = log.sample[log.kind != 2]
    speech_len = m.sound_length("say:x")
    ramp = m.duck_ramp_samples
    clen = m.sound_length("woodblock")
    before = beats[beats + clen < speech_at]
    under = beats[(beats >= speech_at + ramp) & (beats + clen <= speech_at + speech_len - ramp)]
    after = beats[beats > speech_at + speech_len]
    assert len(before) >= 5 and len(under) >= 2 and len(after) >= 5
    # under the speech: a click alone is not measurable in the mix, so the speech is taken out first
    alone = out.copy()
    spk = np.zeros_like(out)
    ph = np.concatenate([np.zeros(ramp), _phrase_like(sr), np.zeros(ramp)]) * 10 ** (-6 / 20)
    spk[speech_at:speech_at + len(ph)] = ph
    alone -= spk
    ref = _click_peaks(alone, before, clen).mean()
    depth = 20 * np.log10(_click_peaks(alone, under, clen) / ref)
    assert np.allclose(depth, -12.0, atol=0.2), depth
    assert np.allclose(_click_peaks(alone, after, clen), ref, rtol=1e-4)   # restored


def test_ducking_is_identical_for_any_block_size():
    sr = 16000
    outs = []
    for block in (1, 37, 4096):
        m = Metronome(sr, cadence_spm=170, phrases={"say:x": _phrase_like(sr, 0.5)})
        m.trigger_cue("say:x", at_sample=sr)
        out = np.zeros(3 * sr, np.float32)
        for start in range(0, len(out), block):
            m.render_into(out[start:start + block], start)
        outs.append(out)
    assert np.array_equal(outs[0], outs[1]) and np.array_equal(outs[0], outs[2])


def test_audio_path_with_speech_allocates_nothing_and_never_runs_the_engine(monkeypatch):
    sr = 16000
    m = Metronome(sr, cadence_spm=170, phrases={"say:a": _phrase_like(sr), "say:b": _phrase_like(sr, 0.7)})
    out = np.zeros(256, np.float32)
    pos = 0
    for _ in range(50):                       # warm up every code path once
        m.render_into(out, pos)
        pos += 256

    def refuse(*a, **k):
        raise AssertionError("the speech engine ran during playback")

    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)
    for i in range(20):                       # cues queued from the control thread, as the coach does
        m.trigger_cue("say:a" if i % 2 else "say:b", at_sample=pos + i * sr)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for _ in range(1300):                     # ~21 s of audio with speech and clicks, every block ducked
        m.render_into(out, pos)
        pos += 256
    grown = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert grown < 1024, grown                # bytes still held after 1300 blocks: nothing kept per block
    log = m.read_clicks()
    assert np.count_nonzero(log.kind == 2) == 20 and m.dropped["voices"] == 0


# ----------------------------------------------------------------------------- when the coach speaks


class _FakeMetronome:
    def __init__(self, sr):
        self.sample_rate = sr
        self.phrases = tuple(voice.phrase_name(k) for k in voice.PHRASES)
        self.position_sample = 0
        self.queued = []

    def trigger_cue(self, name, at_sample=None):
        self.queued.append((name, at_sample))

    def sound_length(self, name):
        return 2 * self.sample_rate


def _step(t, heavy=False, strike=None):
    return Step(int(t * 1000), t, int(t * 1000), 170.0, 170.0, "L", False, 0, 0.0, heavy, {}, 0.0, strike, None)


def test_speech_never_overlaps_and_reminders_are_rate_limited():
    sr = 1000
    m = _FakeMetronome(sr)
    sp = Speaker(m, sr, strike_goal="forefoot", quiet_s=20, reminder_every_s=60)
    assert sp.say_cue("speed_up", 10_000) and sp.say_cue("land_softer", 10_500)
    (n1, at1), (n2, at2) = m.queued
    assert at1 is None and at2 == 10_000 + 2 * sr + sp.gap        # waits for the first phrase to end
    said = []
    t = 0.0
    while t < 600:                                # 10 min of heel-first, heavy landings below target
        sp.on_step(_step(t, heavy=True, strike="heel"))
        if abs(t * 4 - round(t * 4)) < 1e-9:
            key = sp.on_tick(int(t * sr), 160.0, 170.0)
            if key:
                said.append((t, key))
        t = round(t + 0.25, 2)
    times = [s for s, _ in said]
    assert said and said[0][1] == "ball_of_foot"              # the runner's goal comes first
    assert times[0] >= 20 and all(b - a >= 60 for a, b in zip(times, times[1:]))
    assert len(said) <= 10
    # all well: nothing said
    calm = Speaker(_FakeMetronome(sr), sr, strike_goal="forefoot")
    for i in range(2400):
        calm.on_step(_step(i * 0.25, strike="forefoot"))
        assert calm.on_tick(i * 250, 170.0, 170.0) is None


def test_no_forefoot_reminder_without_that_goal():
    sp = Speaker(_FakeMetronome(1000), 1000, quiet_s=0, reminder_every_s=0)
    for i in range(20):
        sp.on_step(_step(i * 0.3, strike="heel"))
    assert sp.reminder_due(170.0, 170.0) is None


# ----------------------------------------------------------------------------- end to end


@needs_engine
def test_replayed_session_speaks_each_cue_at_its_time(tmp_path, data_dir, capsys):
    mix, js = tmp_path / "mix.flac", tmp_path / "s.json"
    assert main(["run", "--input-file", RUN, "--fast", "--target", "+5%", "--cues", "off-target", "--warmup", "20s",
                 "--voice", "--db", "none", "--quiet", "--output-file", str(mix), "--json", str(js)]) == 0
    doc = json.loads(js.read_text())
    assert doc["summary"]["voice"]["phrases"] >= 6 and "note" not in doc["summary"]["voice"]
    y, sr = sf.read(str(mix), dtype="float32")
    x, _ = sf.read(RUN, dtype="float32")
    played = y - x[:len(y)]                 # what the session added: clicks and speech
    spoken = [c for c in doc["cues"] if c["kind"] in ("speed_up", "slow_down", "on_target", "land_softer")
              or c["kind"].startswith("remind_")]
    assert {"speed_up", "on_target"} <= {c["kind"] for c in spoken}
    for c in spoken:
        key = c["kind"].removeprefix("remind_")
        ref = voice.render_phrase(voice.PHRASES[key], sr)
        i0 = int(c["time_s"] * sr)
        ncc, lag = _ncc_best(played[i0:i0 + len(ref) + sr], ref)
        assert ncc > 0.9 and lag / sr < 0.5, (c, ncc, lag)
        # and not some other phrase
        other = voice.render_phrase("Slow down" if key != "slow_down" else "Speed up", sr)
        assert _ncc_best(played[i0:i0 + len(ref) + sr], other)[0] < 0.6
    # the tone the voice replaces is not played
    tone = make_sound("speed_up", sr, 0.0)
    c = next(c for c in spoken if c["kind"] == "speed_up")
    i0 = int(c["time_s"] * sr)
    assert _ncc_best(played[i0:i0 + sr], tone)[0] < 0.5


@needs_engine
def test_voice_and_tones_give_the_same_steps_and_cue_times(tmp_path, data_dir):
    docs = []
    for flag in ("--voice", "--no-voice"):
        js = tmp_path / f"{flag}.json"
        assert main(["run", "--input-file", RUN, "--fast", "--target", "+5%", "--cues", "off-target",
                     "--warmup", "20s", flag, "--db", "none", "--quiet", "--json", str(js)]) == 0
        docs.append(json.loads(js.read_text()))
    assert docs[0]["steps"] == docs[1]["steps"]
    cues = [[(c["time_s"], c["kind"]) for c in d["cues"] if not c["kind"].startswith("remind_")] for d in docs]
    assert cues[0] == cues[1]
    assert docs[1]["summary"]["voice"] is None


def test_without_a_speech_engine_the_cues_are_tones_and_one_line_says_so(tmp_path, data_dir, monkeypatch,
                                                                         capsys):
    bare = tmp_path / "bin"
    bare.mkdir()
    monkeypatch.setenv("PATH", str(bare))                  # a system without espeak-ng / espeak
    assert voice.find_engine() is None
    mix, js = tmp_path / "mix.flac", tmp_path / "s.json"
    assert main(["run", "--input-file", RUN, "--fast", "--target", "+5%", "--cues", "off-target", "--warmup", "20s",
                 "--voice", "--db", "none", "--quiet", "--output-file", str(mix), "--json", str(js)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no speech engine" in err[0] and "tones" in err[0]
    doc = json.loads(js.read_text())
    assert doc["summary"]["voice"]["phrases"] == 0
    assert not any(c["kind"].startswith("remind_") for c in doc["cues"])
    y, sr = sf.read(str(mix), dtype="float32")
    x, _ = sf.read(RUN, dtype="float32")
    played = y - x[:len(y)]
    c = next(c for c in doc["cues"] if c["kind"] == "speed_up")
    i0 = int(c["time_s"] * sr)
    ncc, _ = _ncc_best(played[i0:i0 + sr], make_sound("speed_up", sr, 0.0))
    assert ncc > 0.9                                       # the tone cue itself


@needs_engine
def test_rendered_track_with_voice_has_speech_at_its_announcements(tmp_path, data_dir, capsys):
    out = tmp_path / "track.wav"
    assert main(["render", "--plan", "plus5", "--baseline-spm", "160", "--duration", "12min", "--sample-rate",
                 "16000", "-o", str(out), "--voice", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    said = summary["spoken"]
    assert said[0] == {"time_s": 0.0, "phrase": "tempo_160"}
    assert any(s["phrase"].startswith("ramp_") for s in said) and any(s["phrase"] == "quick_light" for s in said)
    y, sr = sf.read(str(out), dtype="float32")
    texts = {"tempo_160": "160 steps per minute", "quick_light": voice.PHRASES["quick_light"]}
    for s in said:
        text = texts.get(s["phrase"]) or f"building to {s['phrase'].split('_')[1]} steps per minute"
        ref = voice.render_phrase(text, sr)
        i0 = int(s["time_s"] * sr)
        ncc, lag = _ncc_best(y[i0:i0 + len(ref) + sr // 2], ref)
        assert ncc > 0.9 and lag / sr < 0.1, (s, ncc)
    # clicks under the speech are 12 dB down: the loudest click-band energy right after the phrase ends
    # equals the level before it, while under it the track is speech plus ducked clicks
    plain = tmp_path / "plain.wav"
    assert main(["render", "--plan", "plus5", "--baseline-spm", "160", "--duration", "12min", "--sample-rate",
                 "16000", "-o", str(plain)]) == 0
    z, _ = sf.read(str(plain), dtype="float32")
    ref = voice.render_phrase(texts["quick_light"], sr)
    q = next(s for s in said if s["phrase"] == "quick_light")
    i0 = int(q["time_s"] * sr)
    speech_part = slice(i0 + int(0.05 * sr), i0 + len(ref))
    after = slice(i0 + len(ref) + int(0.2 * sr), i0 + len(ref) + int(2.2 * sr))
    assert np.array_equal(y[after], z[after])                                # restored after the phrase
    assert not np.array_equal(y[speech_part], z[speech_part])


def test_live_calibration_asks_for_each_instruction_in_order(tmp_path):
    from stepsound.grade.calibrate import LiveCalibration

    x, sr = sf.read(str(FIXTURES / "heel_calibration.flac"), dtype="float32")
    f, _ = sf.read(str(FIXTURES / "forefoot_calibration.flac"), dtype="float32")
    routine = LiveCalibration(sr, steps_per_class=10, settle_s=1.0)
    seen = []
    for audio in (x, f):
        for start in range(0, len(audio), 2048):
            routine.feed(audio[start:start + 2048])
            seen += routine.spoken
            routine.spoken.clear()
            if routine.phase != "heel" and audio is x:
                break
        if routine.done:
            break
    assert seen == ["cal_heel", "cal_forefoot", "cal_done"]


@needs_engine
def test_live_calibration_speaks_through_the_stream_it_listens_on(tmp_path, data_dir, monkeypatch):
    """``calibrate --live --voice`` with the audio device replaced by recordings fed through the very callback
    (the real-time device test is the `audio`-marked one): the instructions are in what it played, the
    settle window covers them, and the profile is made."""
    import threading

    from stepsound.audio import device
    from stepsound.grade import calibrate as cal

    heel, sr = sf.read(str(FIXTURES / "heel_calibration.flac"), dtype="float32")
    fore, _ = sf.read(str(FIXTURES / "forefoot_calibration.flac"), dtype="float32")
    played = []

    class FakeStream:
        def __init__(self, callback, **kw):
            self.callback, self.kw, self.sample_rate = callback, kw, sr
            self.stats = device.StreamStats()
            self.active = False
            self._stop = threading.Event()

        def _pump(self):
            # heel-first audio until the forefoot instruction is given, then forefoot audio
            pos, which = 0, heel
            while not self._stop.is_set():
                if which is heel and any(int(o[1]) for o in played if o[0] == "fore"):
                    which, pos = fore, 0
                block = which[pos % len(which):pos % len(which) + 1024]
                if len(block) < 1024:
                    block = np.concatenate([block, which[:1024 - len(block)]])
                out = np.zeros((1024, self.kw["output_channels"]), np.float32)
                self.callback(block[:, None], out, 1024, None, None)
                played.append(("out", out[:, 0].copy()))
                pos += 1024
                self._stop.wait(0.002)

        def __enter__(self):
            self.active = True
            self._t = threading.Thread(target=self._pump, daemon=True)
            self._t.start()
            return self

        def __exit__(self, *exc):
            self._stop.set()
            self._t.join()
            self.active = False
            return False

    def fake_open(callback, **kw):
        return FakeStream(callback, **kw)

    monkeypatch.setattr(device, "open_stream", fake_open)
    monkeypatch.setattr(device, "resolve_device", lambda spec, kind="output": None)
    monkeypatch.setattr(device, "default_sample_rate", lambda dev, kind="output": sr)
    orig_feed = cal.LiveCalibration.feed

    def feed(self, block):
        msgs = orig_feed(self, block)
        if "cal_forefoot" in self.spoken:
            played.append(("fore", 1))
        return msgs

    monkeypatch.setattr(cal.LiveCalibration, "feed", feed)
    assert main(["calibrate", "--live", "--voice", "--name", "spoken", "--steps", "12", "--settle", "1s"]) == 0
    out = np.concatenate([o[1] for o in played if o[0] == "out"])
    for key in ("cal_heel", "cal_forefoot", "cal_done"):
        ref = voice.render_phrase(voice.PHRASES[key], sr)
        assert _ncc_best(out, ref)[0] > 0.95, key
    assert (data_dir / "profiles" / "spoken.json").exists()
