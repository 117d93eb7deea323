"""Metronome: exact sample grid, tempo changes on the beat, block-size invariance, live control."""
from __future__ import annotations

import math

import numpy as np
import pytest

from stepsound.errors import ParameterError
from stepsound.cue.metronome import ClickLog, Metronome
from stepsound.coach.plans import Feedback, Span, TempoMap, parse_plan
from stepsound.cue.sounds import SOUND_KINDS, db_to_gain, make_sound

# ----------------------------------------------------------------------------- oracles


def ideal_schedule(tm: TempoMap, sample_rate: int, origin: int = 0, end_sample: int | None = None):
    """Slow, obviously-correct reference of the click grid.

    Walks the plan span by span.  Within a segment click k is at
    ``anchor + round(offset_k)``: ``k * 60 * sr / spm`` for a hold, and for a
    ramp the time at which the integral of the (linear) tempo reaches k beats,
    found by bisection -- independent of the engine's closed form.  A segment
    starts (is anchored) at the first click of the previous grid at or after
    the span boundary.
    """
    sr = sample_rate
    bounds = [origin + round(s.start_s * sr) for s in tm.spans] + [
        origin + round(tm.spans[-1].end_s * sr) if math.isfinite(tm.spans[-1].end_s) else 2**62
    ]
    stop = bounds[-1] if end_sample is None else min(bounds[-1], end_sample)
    out = []  # (sample, spm)

    def segment(j, anchor):
        s, e = bounds[j], bounds[j + 1]
        span = tm.spans[j]
        a, b = span.start_spm, span.end_spm
        if a == b:
            period = 60.0 * sr / a
            return (lambda k: k * period), (lambda t: a)
        x = (anchor - s) / (e - s)
        spm_c = a + (b - a) * x
        ramp = e - anchor
        slope = (b - a) / (e - s)  # spm per sample, along the plan's line

        def spm_at(t):
            return spm_c + slope * t if t < ramp else b

        def phase(t):  # beats after t samples
            if t <= ramp:
                return (spm_c * t + 0.5 * slope * t * t) / (60.0 * sr)
            return phase(ramp) + (t - ramp) * b / (60.0 * sr)

        def offset(k):
            lo, hi = 0.0, 1.0
            while phase(hi) < k:
                hi *= 2
            for _ in range(80):
                mid = 0.5 * (lo + hi)
                if phase(mid) < k:
                    lo = mid
                else:
                    hi = mid
            return 0.5 * (lo + hi)

        return offset, spm_at

    j = 0
    anchor = bounds[0]
    offset, spm_at = segment(0, anchor)
    k = 0
    while True:
        c = anchor + math.floor(offset(k) + 0.5)
        if c >= stop:
            break
        while j + 1 < len(tm.spans) and c >= bounds[j + 1]:
            j += 1
            anchor, k = c, 0
            offset, spm_at = segment(j, anchor)
        out.append((c, spm_at(c - anchor)))
        k += 1
    return np.array([c for c, _ in out], np.int64), np.array([s for _, s in out])


def reference_audio(log, n, sample_rate, level_db=-6.0, accent_db=4.0, latency=0, origin=0):
    """Place each logged audible sound at its sample (numpy, whole signal)."""
    out = np.zeros(n, np.float32)
    for s, kind, snd, audible in zip(log.sample, log.kind, log.sound, log.audible):
        if not audible:
            continue
        y = make_sound(SOUND_KINDS[snd], sample_rate, 0.0)
        g = db_to_gain(min(level_db + accent_db, 0.0) if kind == 1 else level_db)
        a, b = max(s, origin), min(s + len(y), origin + n)
        if b > a:
            out[a - origin: b - origin] += (y[a - s: b - s] * np.float32(g)).astype(np.float32)
    return out


def render_blocks(m: Metronome, n: int, sizes, start: int = 0, channels: int | None = None):
    """Render n samples in blocks of the given sizes (an int, or an iterator of ints)."""
    shape = (n,) if channels is None else (n, channels)
    out = np.zeros(shape, np.float32)
    pos = 0
    it = iter(sizes) if not isinstance(sizes, int) else None
    while pos < n:
        b = sizes if it is None else next(it)
        b = min(b, n - pos)
        m.render_into(out[pos: pos + b], start + pos)
        pos += b
    return out


def random_sizes(seed, hi=5000):
    rng = np.random.default_rng(seed)
    while True:
        # about one in six blocks is empty
        yield 0 if rng.random() < 0.16 else int(rng.integers(1, hi))


MIXED_PLAN = """
name = "mixed"
[[segment]]
type = "hold"
target = 160
duration = "20s"
[[segment]]
type = "ramp"
from = 160
to = 180
duration = "15s"
[[segment]]
type = "steps"
from = 180
to = 171
step = "-3spm"
every = "7s"
[[segment]]
type = "ramp"
from = 171
to = 150
duration = "11.3s"
[[segment]]
type = "intervals"
on = 176
off = 150
on_duration = "6s"
off_duration = "5s"
repeat = 2
"""


# ----------------------------------------------------------------------------- grid exactness


def test_constant_tempo_grid_exact_over_two_hours():
    sr = 48000
    m = Metronome(sr, cadence_spm=173.3, log_capacity=1 << 15)
    n = 2 * 3600 * sr
    m.skip_to(n)
    log = m.read_clicks()
    k = np.arange(len(log))
    ideal = np.floor(k * (60.0 * sr / 173.3) + 0.5).astype(np.int64)
    np.testing.assert_array_equal(log.sample, ideal)
    assert ideal[-1] < n <= np.floor(len(log) * (60.0 * sr / 173.3) + 0.5)  # none missing at the end
    assert m.dropped == {"voices": 0, "log": 0, "commands": 0}


def test_two_hour_plan_schedule_matches_ideal_grid_to_the_sample():
    # +2.5% every 3 minutes with ramps in between, 2 hours, at 44.1 kHz.
    segs = []
    for i in range(20):
        lo = 150 + 2 * i
        segs.append(f'[[segment]]\ntype = "hold"\ntarget = {lo}\nduration = "4min 7s"\n')
        segs.append(f'[[segment]]\ntype = "ramp"\nfrom = {lo}\nto = {lo + 2}\nduration = "1min 53s"\n')
    tm = parse_plan("\n".join(segs)).resolve()
    assert tm.duration_s == 2 * 3600
    sr = 44100
    m = Metronome(sr, tempo_map=tm, log_capacity=1 << 16)
    logs = []
    pos = 0
    while not m.finished:
        pos += sr * 60
        m.skip_to(pos)
        logs.append(m.read_clicks())
    sample = np.concatenate([l.sample for l in logs])
    spm = np.concatenate([l.target_spm for l in logs])
    ideal, ideal_spm = ideal_schedule(tm, sr)
    assert m.dropped == {"voices": 0, "log": 0, "commands": 0}
    assert len(sample) == len(ideal) > 20000
    np.testing.assert_array_equal(sample, ideal)
    np.testing.assert_allclose(spm, ideal_spm, atol=1e-6)
    assert sample[-1] < 2 * 3600 * sr


def test_rendered_audio_equals_sounds_at_ideal_grid_across_changes():
    # 70 s of real audio across hold -> ramp -> steps -> ramp -> intervals, random blocks.
    tm = parse_plan(MIXED_PLAN).resolve()
    sr = 22050
    n = int(tm.duration_s * sr) + sr
    m = Metronome(sr, tempo_map=tm, accent_every=2)
    audio = render_blocks(m, n, random_sizes(3))
    log = m.read_clicks()
    ideal, _ = ideal_schedule(tm, sr)
    np.testing.assert_array_equal(log.sample, ideal)
    ref = reference_audio(log, n, sr)
    np.testing.assert_allclose(audio, ref, atol=1e-6, rtol=0)
    assert np.array_equal(log.kind[:4], [1, 0, 1, 0])


def test_long_render_near_boundaries_matches_reference():
    # The 2-hour plan: jump (schedule only) to just before each change, render audio across it.
    tm = TempoMap((Span(0, 3600, 160, 160), Span(3600, 5400, 160, 176), Span(5400, 7200, 172, 172)))
    sr = 48000
    ideal, _ = ideal_schedule(tm, sr)
    for boundary_s in (3600, 5400):
        m = Metronome(sr, tempo_map=tm, log_capacity=1 << 16)
        start = boundary_s * sr - 2 * sr
        m.skip_to(start)
        before = m.read_clicks()  # their tails may sound in the window
        np.testing.assert_array_equal(before.sample, ideal[ideal < start])
        n = 4 * sr
        audio = render_blocks(m, n, 4096, start=start)
        log = m.read_clicks()
        expect = ideal[(ideal >= start) & (ideal < start + n)]
        np.testing.assert_array_equal(log.sample, expect)
        ref = reference_audio(ClickLog.concatenate([before, log]), n, sr, origin=start)
        np.testing.assert_allclose(audio, ref, atol=1e-6, rtol=0)


def test_grid_exact_far_beyond_32_bit_sample_counts():
    sr = 48000
    origin = 30 * 24 * 3600 * sr  # a month in: > 2**37 samples
    m = Metronome(sr, cadence_spm=181, start_sample=origin)
    m.skip_to(origin + 600 * sr)
    log = m.read_clicks()
    k = np.arange(len(log))
    np.testing.assert_array_equal(log.sample, origin + np.floor(k * (60.0 * sr / 181) + 0.5).astype(np.int64))


# ----------------------------------------------------------------------------- block size invariance


@pytest.mark.parametrize("sizes", [1, 17, 256, 4096, "random"])
def test_output_identical_for_any_block_size(sizes):
    tm = parse_plan(MIXED_PLAN).resolve()
    sr = 8000
    n = int(tm.duration_s * sr) + 2000
    ref_m = Metronome(sr, tempo_map=tm, accent_every=3, sound="click")
    ref = render_blocks(ref_m, n, n)
    ref_log = ref_m.read_clicks()
    m = Metronome(sr, tempo_map=tm, accent_every=3, sound="click")
    out = render_blocks(m, n, random_sizes(11) if sizes == "random" else sizes)
    log = m.read_clicks()
    assert np.array_equal(out, ref)  # bit for bit
    for a, b in zip(log, ref_log):
        assert np.array_equal(a, b)


def test_zero_length_blocks_do_nothing():
    m = Metronome(8000, cadence_spm=120)
    empty = np.zeros(0, np.float32)
    for _ in range(5):
        assert m.render_into(empty, 0) == 0 or True
    out = np.zeros(8000, np.float32)
    m.render_into(out, 0)
    ref = Metronome(8000, cadence_spm=120)
    out2 = np.zeros(8000, np.float32)
    ref.render_into(out2, 0)
    assert np.array_equal(out, out2)
    assert len(m.read_clicks()) == 2


def test_multichannel_frames_get_the_same_clicks():
    tm = parse_plan(MIXED_PLAN).resolve()
    sr = 8000
    n = 20 * sr
    mono = render_blocks(Metronome(sr, tempo_map=tm), n, 333)
    stereo = render_blocks(Metronome(sr, tempo_map=tm), n, 333, channels=2)
    assert np.array_equal(stereo[:, 0], mono) and np.array_equal(stereo[:, 1], mono)


def test_click_straddling_a_block_boundary_is_rendered_whole():
    sr = 48000
    sound = make_sound("woodblock", sr, -6.0)
    m = Metronome(sr, cadence_spm=120, sound="woodblock", level_db=-6.0)
    # first click at 0, second at 24000: split a block 100 samples into the second click
    a = np.zeros(24100, np.float32)
    b = np.zeros(5000, np.float32)
    m.render_into(a, 0)
    m.render_into(b, 24100)
    second = np.concatenate([a[24000:], b])[: len(sound)]
    np.testing.assert_allclose(second, sound, atol=1e-7)
    np.testing.assert_allclose(a[: len(sound)], sound, atol=1e-7)


# ----------------------------------------------------------------------------- tempo changes


def intervals_ok(samples, periods):
    """Every interval is one of the allowed periods (within rounding)."""
    d = np.diff(samples)
    return all(any(abs(x - p) <= 1 for p in periods) for x in d)


def test_plan_step_change_happens_on_the_beat():
    sr = 48000
    tm = TempoMap((Span(0, 10, 160, 160), Span(10, 20, 170, 170)))
    m = Metronome(sr, tempo_map=tm)
    m.skip_to(20 * sr)
    s = m.read_clicks().sample
    p_old, p_new = 60 * sr / 160, 60 * sr / 170
    boundary = 10 * sr
    c = s[s >= boundary][0]  # first old-grid click at/after the boundary is the new anchor
    assert c == math.floor(math.ceil(boundary / p_old) * p_old + 0.5)
    assert np.all(np.diff(s[s <= c]) >= p_old - 1) and np.all(np.diff(s[s <= c]) <= p_old + 1)
    after = s[s >= c]
    np.testing.assert_array_equal(after, c + np.floor(np.arange(len(after)) * p_new + 0.5).astype(np.int64))
    assert len(np.unique(s)) == len(s)  # nothing doubled


def test_live_set_tempo_on_the_beat_no_doubled_or_missing_clicks():
    sr = 16000
    m = Metronome(sr, cadence_spm=150)
    out = np.zeros(256, np.float32)
    pos = 0
    while pos < 5 * sr:
        m.render_into(out, pos)
        pos += 256
    at = 5 * sr + 1234
    assert m.set_tempo(180, at_sample=at)
    while pos < 12 * sr:
        m.render_into(out, pos)
        pos += 256
    s = m.read_clicks().sample
    p1, p2 = 60 * sr / 150, 60 * sr / 180
    c = s[s >= at][0]
    assert c == math.floor(math.ceil(at / p1) * p1 + 0.5)  # the old grid's next beat
    before, after = s[s <= c], s[s >= c]
    np.testing.assert_array_equal(before, np.floor(np.arange(len(before)) * p1 + 0.5).astype(np.int64))
    np.testing.assert_array_equal(after, c + np.floor(np.arange(len(after)) * p2 + 0.5).astype(np.int64))


def test_live_ramp_glides_monotonically_to_target():
    sr = 8000
    m = Metronome(sr, cadence_spm=160)
    m.set_tempo(180, at_sample=2 * sr, ramp_s=20.0)
    m.skip_to(40 * sr)
    log = m.read_clicks()
    d = np.diff(log.sample)
    after = log.sample[1:] >= 2 * sr
    assert np.all(np.diff(d[after]) <= 1)  # intervals shrink (within rounding)
    assert log.target_spm[-1] == pytest.approx(180)
    assert d[-1] == pytest.approx(60 * sr / 180, abs=1)
    assert intervals_ok(log.sample[log.sample >= 25 * sr], [60 * sr / 180])


def test_idle_metronome_starts_on_first_set_tempo():
    sr = 8000
    m = Metronome(sr)
    out = np.zeros(1000, np.float32)
    m.render_into(out, 0)
    assert not out.any() and m.next_click_sample is None
    m.set_tempo(120, at_sample=3000)
    m.render_into(out, 1000)
    m.render_into(out, 2000)
    m.render_into(out, 3000)
    assert out[0] == 0 and np.any(out != 0)
    m.skip_to(3000 + 4 * 4000 + 1)
    np.testing.assert_array_equal(m.read_clicks().sample, [3000, 7000, 11000, 15000, 19000])


# ----------------------------------------------------------------------------- live control


def test_enable_mutes_but_keeps_the_grid():
    sr = 8000
    m = Metronome(sr, cadence_spm=120)
    m.enable(False, at_sample=8000)
    m.skip_to(4000)
    m.enable(True, at_sample=20000)
    m.skip_to(30000)
    log = m.read_clicks()
    np.testing.assert_array_equal(log.sample, np.arange(0, 30000, 4000))
    assert list(log.audible) == [s < 8000 or s >= 20000 for s in log.sample]


def test_trigger_cue_plays_the_cue_sound_at_the_requested_sample():
    sr = 16000
    m = Metronome(sr, cue_level_db=-10.0)
    m.trigger_cue("land_softer", at_sample=5000)
    out = render_blocks(m, 3 * sr, 1000)
    y = make_sound("land_softer", sr, -10.0)
    np.testing.assert_allclose(out[5000: 5000 + len(y)], y, atol=1e-7)
    assert not out[:5000].any()
    log = m.read_clicks()
    assert list(log.kind) == [2] and log.sample[0] == 5000 and SOUND_KINDS[log.sound[0]] == "land_softer"


def test_cue_in_the_past_plays_whole_at_next_block():
    sr = 8000
    m = Metronome(sr)
    m.render_into(np.zeros(1000, np.float32), 0)
    m.trigger_cue("speed_up", at_sample=10)
    out = np.zeros(8000, np.float32)
    m.render_into(out, 1000)
    y = make_sound("speed_up", sr, -6.0)
    np.testing.assert_allclose(out[: len(y)], y, atol=1e-7)


def test_latency_offset_plays_clicks_early():
    sr = 8000
    lat = 37
    m = Metronome(sr, cadence_spm=120, latency_samples=lat, start_sample=1000)
    out = render_blocks(m, 3 * sr, 100, start=0)
    log = m.read_clicks()
    np.testing.assert_array_equal(log.sample, np.arange(1000, 3 * sr + lat, 4000) - lat)
    ref = reference_audio(log, 3 * sr, sr)
    np.testing.assert_allclose(out, ref, atol=1e-7)


def test_accent_every_second_step():
    sr = 8000
    m = Metronome(sr, cadence_spm=120, accent_every=2, accent_sound="click", sound="woodblock", level_db=-12)
    m.skip_to(5 * sr)
    log = m.read_clicks()
    assert list(log.kind[:4]) == [1, 0, 1, 0]
    assert [SOUND_KINDS[i] for i in log.sound[:2]] == ["click", "woodblock"]


def test_plan_end_stops_clicks():
    sr = 8000
    m = Metronome(sr, tempo_map=TempoMap((Span(0, 10, 120, 120),)))
    out = render_blocks(m, 12 * sr, 4096)
    assert m.finished
    log = m.read_clicks()
    np.testing.assert_array_equal(log.sample, np.arange(0, 10 * sr, 4000))
    assert not out[10 * sr + 2000:].any()


def test_stop_command():
    m = Metronome(8000, cadence_spm=120)
    m.stop(at_sample=10000)
    m.skip_to(40000)
    np.testing.assert_array_equal(m.read_clicks().sample, [0, 4000, 8000])
    assert m.finished


def test_faded_feedback_flags_follow_the_plan_function():
    fb = Feedback(audible_from=1.0, audible_to=0.1, cycle_s=20.0, start_s=30.0, end_s=300.0)
    tm = TempoMap((Span(0, 200, 170, 170), Span(200, 300, 170, 170, audible=False)), fb)
    sr = 8000
    m = Metronome(sr, tempo_map=tm)
    m.skip_to(300 * sr)
    log = m.read_clicks()
    expect = [tm.target_at(s / sr)[1] for s in log.sample]
    assert list(log.audible) == expect
    assert 0.2 < np.mean(log.audible) < 0.8 and log.audible[:10].all()


# ----------------------------------------------------------------------------- bounded queues


def test_log_ring_overflow_is_counted_not_fatal():
    m = Metronome(8000, cadence_spm=240, log_capacity=16)
    m.skip_to(8000 * 10)  # 40 clicks
    log = m.read_clicks()
    assert len(log) == 16 and m.dropped["log"] == 24
    assert log.sample[-1] == 9 * 8000 + 6000


def test_command_queue_full_is_refused_and_counted():
    m = Metronome(8000, cadence_spm=120, command_capacity=4)
    results = [m.enable(True) for _ in range(6)]
    assert results == [True] * 4 + [False] * 2
    assert m.dropped["commands"] == 2
    m.skip_to(100)
    assert m.enable(True)


def test_voice_table_overflow_is_counted():
    m = Metronome(8000, max_voices=2)
    for i in range(4):
        m.trigger_cue("on_target", at_sample=10 + i)
    m.render_into(np.zeros(100, np.float32), 0)
    assert m.dropped["voices"] == 2


# ----------------------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sample_rate": 0},
        {"sample_rate": float("nan")},
        {"sample_rate": 44100.5},
        {"sample_rate": 8000, "cadence_spm": 300},
        {"sample_rate": 8000, "cadence_spm": float("nan")},
        {"sample_rate": 8000, "sound": "cowbell"},
        {"sample_rate": 8000, "level_db": 3},
        {"sample_rate": 8000, "accent_every": -1},
        {"sample_rate": 8000, "latency_samples": -5},
    ],
)
def test_bad_parameters_raise_parameter_error(kwargs):
    sr = kwargs.pop("sample_rate")
    with pytest.raises(ParameterError):
        Metronome(sr, **kwargs)


def test_bad_live_commands_raise_parameter_error():
    m = Metronome(8000, cadence_spm=120)
    with pytest.raises(ParameterError, match="60-240"):
        m.set_tempo(20)
    with pytest.raises(ParameterError, match="ramp_s"):
        m.set_tempo(150, ramp_s=-1)
    with pytest.raises(ParameterError, match="cue"):
        m.trigger_cue("applause")
