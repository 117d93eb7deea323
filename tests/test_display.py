"""The terminal panel: digits that scale with the terminal, the cue as a word and a shape, not colour alone."""
from __future__ import annotations

import pytest
from rich.console import Console

from stepsound.coach.words import CUE_WORDS, cue_code
from stepsound.session.display import LiveDisplay, big_number, digit_scale

STATUS = {"cadence_spm": 163.4, "target_spm": 171.0, "phase": "coaching", "on_target": False, "elapsed_s": 125,
          "steps": 300, "xruns": 2, "heavy_share": 0.02, "metronome_on": True, "last_cue": "speed_up",
          "last_steps": [{"side": "R", "impact_db": 6.2, "heavy": True, "strike": "heel"}]}


def _screen(st: dict, width: int, height: int) -> list[str]:
    console = Console(width=width, height=height, record=True, color_system=None)
    console.print(LiveDisplay("none")._render(st, width, height))
    return console.export_text().splitlines()


def test_big_digits_scale_in_both_directions():
    one, three = big_number("17", 1).splitlines(), big_number("17", 3).splitlines()
    assert len(one) == 5 and len(three) == 15
    assert len(three[0]) == 3 * len(one[0])


@pytest.mark.parametrize("width, height", [(80, 24), (120, 40), (200, 60), (60, 30)])
def test_the_panel_fills_the_terminal_without_overflowing_it(width, height):
    lines = _screen(STATUS, width, height)
    assert len(lines) <= height and max(len(line) for line in lines) <= width
    digit_rows = sum("█" in line for line in lines)
    assert digit_rows == 5 * digit_scale(width, height, beside=0) or digit_rows >= 5
    if height >= 40 and width >= 120:
        assert digit_rows >= height // 3          # readable from the treadmill: a third of the screen at least
    text = "\n".join(lines)
    assert "▲ SPEED UP" in text and "audio glitches (xruns)" in text and "right heel +6 dB HEAVY" in text


@pytest.mark.parametrize("change, code", [
    ({}, "speed_up"),
    ({"cadence_spm": 180.0}, "slow_down"),
    ({"cadence_spm": 171.5, "on_target": True}, "on_target"),
    ({"last_cue": "land_softer", "last_cue_time_s": 123.0}, "land_softer"),
    ({"cues_paused": True}, "paused"),
    ({"target_spm": None, "phase": "warmup"}, "warmup"),
    ({"cadence_spm": None}, "no_steps"),
])
def test_the_cue_is_a_word(change, code):
    st = {**STATUS, **change}
    assert cue_code(st) == code
    assert CUE_WORDS[code] in "\n".join(_screen(st, 120, 40))
