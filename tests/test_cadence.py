"""Cadence tracker: steps per minute, missed/extra steps, pauses, sides."""
import numpy as np
import pytest

from stepsound.detect.cadence import CadenceTracker, side_asymmetry

SR = 1000  # 1 sample = 1 ms keeps the arithmetic readable


def feed(tracker, onsets):
    return [tracker.add(int(s)) for s in onsets]


def test_steady_cadence_in_steps_per_minute():
    tr = CadenceTracker(SR)
    out = feed(tr, np.arange(20) * 350)  # 350 ms per step = 171.43 steps/min
    assert out[0].cadence_spm is None
    assert out[-1].cadence_spm == pytest.approx(60000 / 350)
    assert out[-1].smoothed_spm == pytest.approx(60000 / 350)
    assert [t.side for t in out[:4]] == ["L", "R", "L", "R"]


def test_missed_step_does_not_halve_cadence_and_keeps_side_parity():
    tr = CadenceTracker(SR)
    onsets = list(np.arange(12) * 350)
    del onsets[8]  # one step not heard
    out = feed(tr, onsets)
    assert out[8].missed == 1
    assert out[8].cadence_spm == pytest.approx(60000 / 350)


def test_missed_step_side_parity_exact():
    tr = CadenceTracker(SR)
    onsets = [i * 350 for i in range(12) if i != 8]
    out = feed(tr, onsets)
    sides = [t.side for t in out]
    true_sides = [["L", "R"][i % 2] for i in range(12) if i != 8]
    assert sides == true_sides


def test_extra_detection_is_flagged_and_ignored():
    tr = CadenceTracker(SR)
    onsets = sorted(list(np.arange(15) * 350) + [10 * 350 + 120])
    out = feed(tr, onsets)
    extra = [t for t in out if t.extra]
    assert len(extra) == 1
    after = out[onsets.index(11 * 350)]
    assert after.cadence_spm == pytest.approx(60000 / 350)
    assert all(t.smoothed_spm is None or abs(t.smoothed_spm - 60000 / 350) < 1 for t in out)


def test_unknown_after_steps_stop_then_recovers():
    tr = CadenceTracker(SR)
    feed(tr, np.arange(10) * 350)
    last = 9 * 350
    assert tr.at(last + 300) == pytest.approx(60000 / 350)
    assert tr.at(last + 5000) is None
    restart = last + 8000
    out = feed(tr, restart + np.arange(6) * 400)
    assert out[0].side == "L" and out[0].cadence_spm is None
    assert tr.at(restart + 5 * 400) == pytest.approx(150.0)


def test_no_cadence_from_too_few_steps():
    tr = CadenceTracker(SR)
    feed(tr, [0, 350])
    assert tr.at(400) is None


def test_cadence_shown_only_after_six_steps_since_the_rhythm_began():
    # three intervals give a period, but a rhythm locked on a consonant among the first steps is
    # often wrong: the display waits for START_STEPS steps, after a pause too
    tr = CadenceTracker(SR)
    for i in range(10):
        tr.add(i * 350)
        shown = tr.at(i * 350 + 10)
        assert (shown is None) == (i + 1 < CadenceTracker.START_STEPS), i
    restart = 9 * 350 + 8000
    for i in range(6):
        tr.add(restart + i * 400)
        shown = tr.at(restart + i * 400 + 10)
        assert (shown is None) == (i + 1 < CadenceTracker.START_STEPS), i
    assert shown == pytest.approx(150.0)


def test_side_asymmetry():
    steps = []
    for i in range(40):
        side = "L" if i % 2 == 0 else "R"
        interval = 0.36 if side == "L" else 0.34
        steps.append({"side": side, "cadence_spm": 60 / interval, "missed": 0,
                      "energy_db": -20.0 if side == "L" else -22.0})
    asym = side_asymmetry(steps)
    assert asym["timing_asymmetry_pct"] == pytest.approx(100 * 0.02 / 0.35, rel=1e-6)
    assert asym["loudness_asymmetry_db"] == pytest.approx(2.0)
    assert side_asymmetry(steps[:3]) == {"timing_asymmetry_pct": None, "loudness_asymmetry_db": None}


def test_half_rate_lock_recovers():
    """If early steps were missed so that the rhythm locked at half the true rate, the
    regular 'extra' detections in between re-lock it to the true rate."""
    tr = CadenceTracker(SR)
    slow = list(np.arange(6) * 700)            # every other step heard: 85.7 "steps/min"
    fast = list(slow[-1] + 350 + np.arange(20) * 350)
    out = feed(tr, slow + fast)
    assert out[5].smoothed_spm == pytest.approx(60000 / 700)
    assert tr.at(fast[-1]) == pytest.approx(60000 / 350)
    assert sum(t.extra for t in out[6:]) <= 3
    assert all(not t.extra for t in out[-8:])


def test_a_superseding_step_erases_the_detection_it_replaces():
    # a sound 250 ms into a 350 ms step interval is taken for the step (ratio 0.71: on the rhythm);
    # the step itself, 100 ms later, supersedes it: the tracker must end exactly as if the sound
    # had never been heard (same sides, same cadence, same display)
    clean = CadenceTracker(SR)
    fooled = CadenceTracker(SR)
    steps = [int(i * 350) for i in range(16)]
    want = feed(clean, steps)
    got = []
    for i, s in enumerate(steps):
        if i in (6, 11):
            fooled.add(s - 100)
            got.append(fooled.add(s, supersedes=True))
        else:
            got.append(fooled.add(s))
    assert got == want
    assert fooled.at(steps[-1] + 100) == clean.at(steps[-1] + 100) == pytest.approx(60000 / 350)


def test_supersedes_without_an_earlier_step_is_a_plain_add():
    tr = CadenceTracker(SR)
    first = tr.add(0, supersedes=True)
    assert first.side == "L" and not first.extra


def test_sounds_that_keep_no_stride_show_no_cadence_but_a_limp_does():
    # after a steady run, sounds whose intervals keep neither a stride nor a
    # foot's interval (a 3-cycle 270/340/430 ms: strides agree within 25 %,
    # but each interval differs from the one two before by > 20 %)
    tr = CadenceTracker(SR)
    onsets = list(np.arange(10) * 350)
    t = onsets[-1]
    for gap in [270, 340, 430] * 3:
        t += gap
        onsets.append(t)
    feed(tr, onsets)
    assert tr.at(onsets[-1] + 100) is None
    # a limp: the long and the short interval alternate, each foot's repeats
    tr = CadenceTracker(SR)
    limp = np.cumsum([0] + [300, 400] * 10)
    feed(tr, limp)
    shown = tr.at(int(limp[-1]) + 100)
    assert shown == pytest.approx(60000 / 350, abs=1.5)


def test_a_stray_sound_now_and_then_after_a_stop_shows_no_cadence():
    # a steady run at 350 ms, then the runner stands; a sound every 0.7 s and 0.98 s in
    # turn is taken for a step (every other one lands two periods on, on the rhythm), so
    # the rhythm looks kept -- but a quarter of the steps it expects arrive: no cadence
    run = list(np.arange(20) * 350)
    stray = list(run[-1] + np.cumsum([700, 980] * 5))
    tr = CadenceTracker(SR)
    feed(tr, run + stray)
    assert tr.at(stray[-1] + 100) is None
    # after the same run, a runner with every third step missed (two of three heard) still
    # shows the cadence
    tr = CadenceTracker(SR)
    heard = run + list(run[-1] + np.cumsum([350, 700] * 8))
    feed(tr, heard)
    assert tr.at(int(heard[-1]) + 100) == pytest.approx(60000 / 350, abs=1.0)
