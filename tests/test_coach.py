"""Coaching logic: warm-up baseline, targets and plans, off-target hysteresis, land-softer cool-down.

Unit tests feed the coach synthetic engine events; replay tests run the whole
live engine on generated treadmill runs (``stepsound run --input-file --fast``).
"""
import json

import numpy as np
import pytest

from stepsound.cli.main import main
from stepsound.coach.coach import Coach, CoachConfig
from stepsound.engine import CadenceTick, Step
from stepsound.errors import ParameterError
from stepsynth import synth_run

SR = 1000  # one sample per millisecond keeps the arithmetic readable


class FakeMetronome:
    """Records the coach's commands (the real Metronome is tested on its own)."""

    def __init__(self):
        self.calls = []

    def set_tempo(self, spm):
        self.calls.append(("tempo", round(spm, 2)))

    def enable(self, on):
        self.calls.append(("enable", on))

    def trigger_cue(self, kind):
        self.calls.append(("cue", kind))


def _step(t_s, spm, heavy=False, energy=-20.0):
    s = int(t_s * SR)
    return Step(s, t_s, s + 10, spm, spm, "L", False, 0, 9.0 if heavy else 0.0, heavy, {"energy_db": energy})


def run_coach(config, cadence_at, duration_s, heavy_at=lambda t: False):
    """Drive a coach with steps at cadence_at(t) and ticks every 0.25 s."""
    m = FakeMetronome()
    coach = Coach(config, SR, m)
    t, next_tick = 0.5, 0.25
    while t < duration_s:
        while next_tick <= t:
            coach.on_tick(CadenceTick(int(next_tick * SR), next_tick, cadence_at(next_tick)))
            next_tick += 0.25
        coach.on_step(_step(t, cadence_at(t), heavy_at(t)))
        t += 60.0 / cadence_at(t)
    return coach, m


def kinds(coach, kind=None):
    return [c for c in coach.cues if kind is None or c.kind == kind]


def test_relative_target_waits_for_warmup_baseline():
    coach, m = run_coach(CoachConfig(target="+5%", warmup_s=30), lambda t: 160.0, 60)
    assert coach.baseline_spm == pytest.approx(160.0)
    assert coach.target_spm == pytest.approx(168.0)
    on = kinds(coach, "metronome_on")
    assert len(on) == 1 and 30.0 <= on[0].time_s <= 31.5
    assert ("tempo", 168.0) in m.calls and ("enable", True) in m.calls


def test_absolute_target_cues_at_once():
    coach, _ = run_coach(CoachConfig(target="172", warmup_s=60), lambda t: 160.0, 20)
    on = kinds(coach, "metronome_on")
    assert len(on) == 1 and on[0].time_s <= 0.5 and on[0].target_spm == 172
    assert coach.phase == "warmup"  # the landing baseline still warms up


def test_measure_only_and_cues_none_never_play():
    coach, m = run_coach(CoachConfig(target=None), lambda t: 160.0, 90)
    assert coach.baseline_spm == pytest.approx(160.0) and not kinds(coach, "metronome_on") and m.calls == []
    coach, m = run_coach(CoachConfig(target="175", cues="none"), lambda t: 160.0, 90, heavy_at=lambda t: True)
    assert not [c for c in m.calls if c[0] in ("enable", "cue")]


def test_off_target_cue_with_hysteresis_and_no_flapping():
    # 160 for 40 s (off target 172 by 7%), then 172 for 30 s, then hovering at the band edge
    def cadence(t):
        if t < 40:
            return 160.0
        if t < 70:
            return 172.0
        return 172.0 * (1 - 0.025) if int(t) % 2 else 172.0 * (1 - 0.035)  # flips across the 3% edge
    coach, m = run_coach(CoachConfig(target="172", cues="off-target", warmup_s=10), cadence, 120)
    speed = kinds(coach, "speed_up")
    assert len(speed) == 1 and 5.0 <= speed[0].time_s <= 9.0  # 3 s of averaging, then off_hold_s = 5 s
    on = kinds(coach, "on_target")
    assert len(on) == 1 and 43.0 <= on[0].time_s <= 49.0      # mean back within half the band for on_hold_s
    # hovering at the band edge never flaps
    assert len(kinds(coach, "metronome_on")) == 1 and len(kinds(coach, "metronome_off")) == 1
    assert ("cue", "speed_up") in m.calls and ("cue", "on_target") in m.calls


def test_slow_down_when_too_fast():
    coach, _ = run_coach(CoachConfig(target="160", cues="off-target"), lambda t: 180.0, 20)
    assert len(kinds(coach, "slow_down")) == 1 and not kinds(coach, "speed_up")


def test_land_softer_after_repeated_heavy_landings_with_cooldown():
    heavy = lambda t: 70 <= t < 130 and int(t * 3) % 2 == 0  # about every other step heavy for a minute
    coach, m = run_coach(CoachConfig(target=None, warmup_s=60, soft_cooldown_s=30), lambda t: 165.0, 150, heavy)
    soft = kinds(coach, "land_softer")
    assert 2 <= len(soft) <= 3
    assert all(b.time_s - a.time_s >= 30.0 for a, b in zip(soft, soft[1:]))
    assert all(70 <= c.time_s < 131 for c in soft)
    assert m.calls.count(("cue", "land_softer")) == len(soft)


def test_no_landing_cue_during_warmup():
    coach, _ = run_coach(CoachConfig(target=None, warmup_s=60), lambda t: 165.0, 50, heavy_at=lambda t: True)
    assert not kinds(coach, "land_softer")


def test_plan_target_ramps_after_warmup():
    coach, m = run_coach(CoachConfig(target="plus5", warmup_s=20), lambda t: 160.0, 20 + 16 * 60)
    tempos = [v for k, v in m.calls if k == "tempo"]
    assert tempos and min(tempos) >= 160.0 - 1e-6 and max(tempos) == pytest.approx(168.0, abs=0.1)
    assert tempos == sorted(tempos)  # a rising plan never steps back


def test_invalid_config_is_rejected():
    with pytest.raises(ParameterError):
        Coach(CoachConfig(cues="sometimes"), SR)
    with pytest.raises(ParameterError):
        Coach(CoachConfig(target="no-such-plan"), SR)
    with pytest.raises(ParameterError):
        Coach(CoachConfig(target="400"), SR)


# ----------------------------------------------------------------------------- replayed recordings


@pytest.fixture(scope="module")
def slow_runner(tmp_path_factory):
    """A runner at 158 steps/min for 100 s who then speeds up to 170 (16 kHz, treadmill noise)."""
    scene = synth_run(150.0, 16000, cadence_spm=[(0, 158), (100, 158), (110, 170), (150, 170)], seed=21,
                      snr_db=6.0, noise="treadmill")
    path = tmp_path_factory.mktemp("coach") / "run.flac"
    scene.write(path)
    return str(path), scene


def _replay(path, tmp_path, *extra):
    out = tmp_path / "session.json"
    code = main(["run", "--input-file", path, "--fast", "--json", str(out), "--db", str(tmp_path / "s.sqlite"),
                 "--quiet", *extra])
    assert code == 0
    return json.loads(out.read_text())


def test_replay_baseline_and_off_target_cues(slow_runner, tmp_path):
    path, scene = slow_runner
    doc = _replay(path, tmp_path, "--target", "+7%", "--cues", "off-target", "--warmup", "40s")
    s = doc["summary"]
    # the runner's realised cadence over the warm-up (the synthesiser's interval jitter and
    # left/right asymmetry put it ~1.4 steps/min under the nominal 158)
    t = np.array([st.onset_sample for st in scene.steps], float) / scene.sample_rate
    warm = np.diff(t[(t >= 5.0) & (t < 40.0)])
    assert s["baseline_spm"] == pytest.approx(60.0 / warm.mean(), abs=1.0)
    assert s["baseline_spm"] == pytest.approx(158.0, abs=2.5)
    assert s["final_target_spm"] == pytest.approx(1.07 * s["baseline_spm"], abs=0.01)
    kinds_ = [c["kind"] for c in doc["cues"]]
    speed = [c for c in doc["cues"] if c["kind"] == "speed_up"]
    assert len(speed) == 1 and 40 <= speed[0]["time_s"] <= 52     # 158 is 6.5% under the target
    on = [c for c in doc["cues"] if c["kind"] == "on_target"]
    assert len(on) == 1 and 105 <= on[0]["time_s"] <= 125          # 170 is within 3% of ~169
    assert kinds_.count("metronome_on") == 1 and kinds_.count("metronome_off") == 1


def test_replay_heavy_landings_trigger_land_softer_with_cooldown(tmp_path):
    levels = lambda t: 9.0 if (80 <= t < 140 and int(t * 2.8) % 3 == 0) else 0.0
    scene = synth_run(150.0, 16000, cadence_spm=165, seed=22, snr_db=6.0, noise="treadmill", step_level_db=levels)
    path = tmp_path / "heavy.flac"
    scene.write(path)
    doc = _replay(str(path), tmp_path, "--warmup", "60s")
    soft = [c["time_s"] for c in doc["cues"] if c["kind"] == "land_softer"]
    assert 1 <= len(soft) <= 3
    assert all(80 <= t <= 142 for t in soft)
    assert all(b - a >= 30 for a, b in zip(soft, soft[1:]))


def test_relative_targets_are_checked_at_start_and_stay_holdable():
    from stepsound.coach.coach import _Goal

    for bad in ("+500%", "-100%", "+31%", "+90spm"):
        with pytest.raises(ParameterError):
            CoachConfig(target=bad).validate()
    goal = _Goal("+25%")
    goal.resolve(200.0)                    # 250 steps/min is no goal: the fastest cadence a plan may set
    assert goal.at(0.0)[0] == pytest.approx(240.0)
    goal = _Goal("-3%")
    goal.resolve(170.0)
    assert goal.at(0.0)[0] == pytest.approx(164.9)


def test_a_negative_relative_target_parses_on_the_command_line(tmp_path):
    from pathlib import Path

    fixture = Path(__file__).resolve().parents[1] / "audio_fixtures" / "treadmill_quiet_steps.flac"
    out = tmp_path / "r.json"
    assert main(["run", "--input-file", str(fixture), "--fast", "--quiet",
                 "--target", "-3%", "--warmup", "10s", "--db", str(tmp_path / "s.sqlite"), "--json", str(out)]) == 0
    summary = json.loads(out.read_text())["summary"]
    assert summary["final_target_spm"] == pytest.approx(0.97 * summary["baseline_spm"], abs=0.05)
