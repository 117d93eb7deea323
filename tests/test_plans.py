"""Plans: TOML parsing, errors naming line and field, presets, the time -> target function; units."""
from __future__ import annotations

import math

import pytest

from stepsound.cli.main import main
from stepsound.errors import ParameterError
from stepsound.coach.plans import PlanError, constant_map, list_presets, load_plan, parse_plan
from stepsound.units import format_duration, parse_duration_s, parse_target

# ----------------------------------------------------------------------------- units


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("3min", 180.0),
        ("90s", 90.0),
        ("250ms", 0.25),
        ("0.25s", 0.25),
        ("1.5h", 5400.0),
        ("1h30min", 5400.0),
        ("2min 30s", 150.0),
        ("1:30", 90.0),
        ("1:02:03", 3723.0),
        ("45", 45.0),
        (12, 12.0),
        ("45 minutes", 2700.0),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration_s(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text, match",
    [
        ("-3min", "negative"),
        ("3 fortnights", "unknown unit"),
        ("", "empty"),
        ("abc", "not understood"),
        ("nan", "not understood"),
        ("3min 20", "needs a unit"),
        (True, "duration"),
        (None, "duration"),
    ],
)
def test_parse_duration_errors(text, match):
    with pytest.raises(ParameterError, match=match):
        parse_duration_s(text)


def test_parse_duration_require_unit_and_zero():
    with pytest.raises(ParameterError, match="needs a unit"):
        parse_duration_s("180", require_unit=True)
    with pytest.raises(ParameterError, match="greater than zero"):
        parse_duration_s("0s", allow_zero=False)
    assert parse_duration_s("0s") == 0.0


def test_format_duration():
    assert format_duration(65) == "1:05"
    assert format_duration(3725) == "1:02:05"
    assert format_duration(math.inf) == "--:--"


@pytest.mark.parametrize(
    "text, baseline, spm",
    [
        ("170", None, 170.0),
        (170, None, 170.0),
        ("170spm", None, 170.0),
        ("+5%", 160, 168.0),
        ("-3%", 200, 194.0),
        ("+4spm", 160, 164.0),
        ("+4", 160, 164.0),
        ("baseline", 163, 163.0),
    ],
)
def test_parse_target(text, baseline, spm):
    assert parse_target(text).resolve(baseline) == pytest.approx(spm)


@pytest.mark.parametrize("text", ["5%", "fast", "+%", "1e400", [170]])
def test_parse_target_errors(text):
    with pytest.raises(ParameterError):
        parse_target(text)


def test_relative_target_needs_baseline():
    with pytest.raises(ParameterError, match="baseline"):
        parse_target("+5%").resolve(None)


# ----------------------------------------------------------------------------- plans

GOOD = """\
name = "mine"
description = "test plan"
sound = "click"
accent_every = 2
level_db = -10

[feedback]
audible_from = 1.0
audible_to = 0.5
cycle = "1min"
start = "2min"

[[segment]]
type = "hold"
target = "baseline"
duration = "2min"

[[segment]]
type = "ramp"
from = "+0%"
to = "+5%"
duration = "1min"

[[segment]]
type = "steps"
from = "+5%"
to = "+10%"
step = "+2.5%"
every = "1min"

[[segment]]
type = "intervals"
on = 180
on_duration = "30s"
off_duration = "30s"
repeat = 2
"""


def test_parse_and_resolve_good_plan():
    plan = parse_plan(GOOD, "mine.toml")
    assert plan.name == "mine" and plan.sound == "click" and plan.accent_every == 2 and plan.level_db == -10
    assert plan.needs_baseline
    tm = plan.resolve(160)
    # 2 + 1 + 3 steps (+5, +7.5, +10 of the *starting* cadence 168) + 2 intervals
    assert tm.duration_s == 2 * 60 + 60 + 3 * 60 + 2 * 60
    assert tm.target_at(0) == (160.0, True)
    assert tm.target_at(150)[0] == pytest.approx(164.0)  # half way up the ramp
    assert tm.target_at(185)[0] == pytest.approx(168.0)
    assert tm.target_at(245)[0] == pytest.approx(168.0 * 1.025)
    assert tm.target_at(305)[0] == pytest.approx(176.0)
    assert tm.target_at(365) == (180.0, True)  # interval on
    spm, audible = tm.target_at(395)  # interval off: silent by default
    assert spm == 180.0 and audible is False
    # faded feedback: from 2 min, audible fraction falls from 100% to 50%
    assert tm.feedback.fraction_at(120) == 1.0 and tm.feedback.fraction_at(tm.duration_s) == 0.5
    assert tm.target_at(tm.duration_s - 1)[1] is False  # last 30 s of the cycle are silent
    assert tm.target_at(tm.duration_s + 10)[1] is False  # after the end


def test_plan_duration_and_target_at_shortcut():
    plan = parse_plan(GOOD)
    assert plan.duration_s(160) == 480
    assert plan.target_at(0, 150) == (150.0, True)


def test_intervals_with_off_target_are_audible():
    plan = parse_plan(
        '[[segment]]\ntype="intervals"\non="+10%"\noff="+0%"\non_duration="1min"\noff_duration="2min"\nrepeat=3\n'
    )
    tm = plan.resolve(150)
    assert tm.duration_s == 540
    assert tm.target_at(30) == (pytest.approx(165.0), True)
    assert tm.target_at(90) == (150.0, True)


def test_constant_map():
    tm = constant_map(170)
    assert tm.duration_s == math.inf and tm.target_at(1e6) == (170.0, True)
    with pytest.raises(ParameterError):
        constant_map(500)


def _err(text):
    with pytest.raises(PlanError) as info:
        parse_plan(text, "p.toml").resolve(160)
    return info.value


@pytest.mark.parametrize(
    "text, line, field, words",
    [
        ('[[segment]]\ntype = "hold"\ntarget = 170\nduration = "3 weeks"\n', 4, "duration", "unknown unit"),
        ('[[segment]]\ntype = "hold"\ntarget = 170\nduration = "-3min"\n', 4, "duration", "negative"),
        ('[[segment]]\ntype = "hold"\ntarget = 170\nduration = 180\n', 4, "duration", "needs a unit"),
        ('[[segment]]\ntype = "hold"\ntarget = 170\nduration = "0s"\n', 4, "duration", "greater than zero"),
        ('[[segment]]\ntype = "hold"\ntarget = 250\nduration = "3min"\n', 3, "target", "60-240"),
        ('[[segment]]\ntype = "hold"\ntarget = 30\nduration = "3min"\n', 3, "target", "60-240"),
        ('[[segment]]\ntype = "hold"\ntarget = "+60%"\nduration = "3min"\n', 3, "target", "256.0 spm"),
        ('[[segment]]\ntype = "hold"\ntarget = "fast"\nduration = "3min"\n', 3, "target", "not understood"),
        ('# c\n\n[[segment]]\ntype = "hold"\nduration = "3min"\n', 3, "target", "missing field 'target'"),
        ('[[segment]]\ntype = "jog"\n', 2, "type", "not one of"),
        ('[[segment]]\ntarget = 170\n', 1, "type", "missing field 'type'"),
        ('[[segment]]\ntype = "hold"\ntarget = 170\nduration = "1min"\ncolour = "red"\n', 5, "colour", "unknown field"),
        ('tempo = 3\n[[segment]]\ntype = "hold"\ntarget = 170\nduration = "1min"\n', 1, "tempo", "unknown field"),
        ('sound = "gong"\n[[segment]]\ntype = "hold"\ntarget = 170\nduration = "1min"\n', 1, "sound", "metronome sound"),
        ('accent_every = -2\n[[segment]]\ntype="hold"\ntarget=170\nduration="1min"\n', 1, "accent_every", "0-64"),
        ('level_db = 6\n[[segment]]\ntype="hold"\ntarget=170\nduration="1min"\n', 1, "level_db", "-60..0"),
        ('baseline_spm = 20\n[[segment]]\ntype="hold"\ntarget=170\nduration="1min"\n', 1, "baseline_spm", "60-240"),
        (
            '[[segment]]\ntype="hold"\ntarget=170\nduration="1min"\n\n[[segment]]\ntype="ramp"\nfrom=170\nto=300\nduration="1min"\n',
            9,
            "to",
            "segment 2",
        ),
        (
            '[[segment]]\ntype="steps"\nfrom="+0%"\nto="+10%"\nstep="-2%"\nevery="3min"\n',
            5,
            "step",
            "does not go from",
        ),
        ('[[segment]]\ntype="steps"\nfrom="+0%"\nto="+10%"\nstep="2"\nevery="3min"\n', 5, "step", "must be relative"),
        (
            '[[segment]]\ntype="intervals"\non=170\non_duration="1min"\noff_duration="1min"\nrepeat=0\n',
            6,
            "repeat",
            "1-1000",
        ),
        (
            '[[segment]]\ntype="hold"\ntarget=170\naudible="yes"\nduration="1min"\n',
            4,
            "audible",
            "true or false",
        ),
        (
            '[feedback]\naudible_to = 1.5\n[[segment]]\ntype="hold"\ntarget=170\nduration="1min"\n',
            2,
            "audible_to",
            "between 0 and 1",
        ),
        (
            '[feedback]\naudible_from = 1.0\n[[segment]]\ntype="hold"\ntarget=170\nduration="1min"\n',
            1,
            "audible_to",
            "missing field",
        ),
        (
            '[feedback]\naudible_to = 0.5\nend = "5min"\n[[segment]]\ntype="hold"\ntarget=170\nduration="1min"\n',
            3,
            "end",
            "after the end",
        ),
        ('[feedback]\naudible_to = 0.5\ncycle = "0s"\n[[segment]]\ntype="hold"\ntarget=170\nduration="1min"\n', 3, "cycle", "greater than zero"),
        ('[[segment]]\ntype = "hold"\ntarget = 170\nduration = "3min\n', 4, None, "not valid TOML"),
        ('name = "x"\n', None, "segment", "no [[segment]]"),
    ],
)
def test_invalid_plans_name_line_and_field(text, line, field, words):
    err = _err(text)
    msg = str(err)
    assert err.line == line, msg
    if line is not None:
        assert msg.startswith(f"p.toml:{line}: "), msg
    if field is not None:
        assert err.field == field, msg
        assert f"'{field}'" in msg or field == "segment", msg
    assert words in msg, msg


def test_relative_plan_without_baseline_names_line():
    plan = parse_plan('[[segment]]\ntype = "hold"\ntarget = "+5%"\nduration = "3min"\n', "p.toml")
    with pytest.raises(PlanError, match=r"^p.toml:3: .*'target'.*--baseline-spm") as info:
        plan.resolve(None)
    assert info.value.line == 3


def test_baseline_in_plan_is_used_and_checked():
    plan = parse_plan('baseline_spm = 150\n[[segment]]\ntype="hold"\ntarget="+10%"\nduration="1min"\n')
    assert plan.resolve().target_at(0)[0] == pytest.approx(165.0)
    assert plan.resolve(170).target_at(0)[0] == pytest.approx(187.0)
    with pytest.raises(ParameterError, match="baseline_spm"):
        plan.resolve(400)


# ----------------------------------------------------------------------------- presets


def test_presets_listed_with_descriptions_and_all_resolve():
    presets = dict(list_presets())
    assert {"plus5", "plus10", "subliminal", "intervals", "fade"} <= set(presets)
    for name, description in presets.items():
        assert description and "\n" not in description
        tm = load_plan(name).resolve(165)
        assert 10 * 60 <= tm.duration_s <= 60 * 60
        for s in tm.spans:
            assert 60 <= s.start_spm <= 240 and 60 <= s.end_spm <= 240


def test_preset_contents_follow_the_evidence():
    plus5 = load_plan("plus5").resolve(160)
    assert plus5.target_at(plus5.duration_s - 1)[0] == pytest.approx(168.0)
    plus10 = load_plan("plus10").resolve(160)
    assert plus10.target_at(plus10.duration_s - 1)[0] == pytest.approx(176.0)
    sub = load_plan("subliminal").resolve(160)
    levels = sorted({s.start_spm for s in sub.spans})
    steps = [b / a - 1 for a, b in zip(levels, levels[1:])]
    assert steps and max(steps) < 0.03  # every step under the ~4% a runner notices
    fade = load_plan("fade").resolve(160)
    assert fade.feedback is not None and fade.feedback.audible_to < fade.feedback.audible_from


def test_load_plan_from_file_and_errors(tmp_path):
    p = tmp_path / "my.toml"
    p.write_text(GOOD)
    assert load_plan(str(p)).name == "mine"
    with pytest.raises(PlanError, match="not found"):
        load_plan(str(tmp_path / "missing.toml"))
    with pytest.raises(PlanError, match="no plan file or preset named 'plus7'.*plus5"):
        load_plan("plus7")


def test_cli_plans_lists_presets(capsys):
    assert main(["plans"]) == 0
    out = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in out]
    assert {"plus5", "plus10", "subliminal", "intervals"} <= set(names)
    assert all(len(line.split(None, 1)) == 2 for line in out)


def test_cli_plans_show_and_json(capsys):
    import json

    assert main(["plans", "subliminal", "--baseline-spm", "160"]) == 0
    out = capsys.readouterr().out
    assert "176.0" in out and "step 5/5" in out
    assert main(["plans", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert any(d["name"] == "plus5" for d in data)
    assert main(["plans", "plus7"]) == 2
    assert "plus7" in capsys.readouterr().err
