"""Options checked at start (one line naming the value, exit 2) and consistent option names."""
import numpy as np
import pytest
import soundfile as sf

from stepsound.cli.main import build_parser, main

from _signals import bursts


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    x, _ = bursts(sample_rate=16000, duration_s=4.0, noise_rms=0.01, seed=31)
    path = tmp_path_factory.mktemp("clip") / "clip.wav"
    sf.write(path, x, 16000)
    return str(path)


def _usage(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err
    return code, err


@pytest.mark.parametrize("option, words", [
    (["--band", "0"], "--band 0:"),
    (["--band", "200"], "--band 200:"),
    (["--band", "-3"], "--band -3:"),
    (["--band", "nan"], "--band nan:"),
    (["--warmup", "-5s"], "'-5s' must not be negative"),
    (["--duration", "-1min"], "'-1min' must not be negative"),
    (["--target", "5%"], "did you mean '+5%'"),
    (["--target", "12.5 %"], "did you mean '+12.5%'"),
    (["--target", "170x"], "'170x' is not understood"),
])
def test_run_refuses_nonsense_at_start(clip, tmp_path, capsys, option, words):
    code, err = _usage(capsys, ["run", "--input-file", clip, "--fast", "--db", str(tmp_path / "s.sqlite"),
                                "--quiet", *option])
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("stepsound: error: ") and words in err, err
    assert not (tmp_path / "s.sqlite").exists()          # refused before anything was started


@pytest.mark.parametrize("band", ["0.5", "3", "20"])
def test_sensible_bands_are_accepted(clip, tmp_path, band):
    assert main(["run", "--input-file", clip, "--fast", "--db", "none", "--quiet", "--band", band,
                 "--target", "+5%"]) == 0


def test_plan_named_like_a_number_is_still_a_plan(tmp_path, clip, monkeypatch):
    """A plan file whose name looks like a target is read as the plan it is."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "5%").write_text('name = "x"\n[[segment]]\ntype = "hold"\ntarget = "170"\nduration = "10s"\n')
    assert main(["run", "--input-file", clip, "--fast", "--db", "none", "--quiet", "--target", "5%"]) == 0


def test_analyze_jobs_must_be_positive(clip, capsys):
    for jobs in ("0", "-2"):
        code, err = _usage(capsys, ["analyze", clip, clip, "--jobs", jobs])
        assert code == 2 and err.count("\n") == 1 and f"--jobs={jobs}" in err


def test_negative_quantities_reach_their_checks_everywhere(tmp_path, capsys):
    code, err = _usage(capsys, ["render", "--spm", "170", "--duration", "-3s", "-o", str(tmp_path / "x.wav")])
    assert code == 2 and "'-3s' must not be negative" in err and err.count("\n") == 1
    code, err = _usage(capsys, ["calibrate", "--live", "--name", "x", "--settle", "-1s"])
    assert code == 2 and "'-1s' must not be negative" in err and err.count("\n") == 1
    # a plain negative number stays a value (argparse reads it), and a dash alone is still stdout
    args = build_parser().parse_args(["analyze", "x.wav", "--heavy-db", "-3", "--json", "-"])
    assert args.heavy_db == -3.0 and args.json == "-"


def test_usage_errors_are_one_stepsound_line(capsys):
    for argv in (["frobnicate"], ["analyze"], ["run", "--warmup"], ["metronome", "--spm", "x"]):
        code, err = _usage(capsys, argv)
        assert code == 2 and err.count("\n") == 1 and err.startswith("stepsound: error: "), (argv, err)


def test_metronome_and_render_use_the_run_option_names_old_ones_still_work(tmp_path, capsys):
    parser = build_parser()
    new = parser.parse_args(["metronome", "--spm", "170", "--output-device", "pulse", "--volume", "-12"])
    old = parser.parse_args(["metronome", "--spm", "170", "--device", "pulse", "--level-db", "-12"])
    older = parser.parse_args(["metronome", "--spm", "170", "--volume-db", "-12"])
    assert (new.output_device, new.level_db) == (old.output_device, old.level_db) == ("pulse", -12.0)
    assert older.level_db == -12.0
    default = parser.parse_args(["metronome", "--spm", "170"])
    assert default.output_device is None and default.level_db is None
    cal = parser.parse_args(["calibrate", "--live", "--name", "x", "--device", "mic"])
    assert cal.input_device == "mic"
    for command in (["metronome"], ["render"], ["calibrate"]):
        with pytest.raises(SystemExit):
            parser.parse_args([*command, "--help"])
        text = capsys.readouterr().out
        assert "--level-db" not in text and "--volume-db" not in text and "--device " not in text
    assert "--volume" in text or "--input-device" in text
    # render: the same track either way
    for name, flag in (("new.wav", "--volume"), ("old.wav", "--level-db")):
        assert main(["render", "--spm", "170", "--duration", "3s", flag, "-15", "-o", str(tmp_path / name)]) == 0
    a, _ = sf.read(str(tmp_path / "new.wav"))
    b, _ = sf.read(str(tmp_path / "old.wav"))
    assert np.array_equal(a, b) and np.abs(a).max() == pytest.approx(10 ** (-15 / 20), abs=1e-3)
