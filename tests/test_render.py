"""``stepsound render``: files, click CSV, music mixing and resampling, clear errors."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from stepsound.cli.main import main
from stepsound.errors import AudioFileError
from stepsound.cue.metronome import Metronome
from stepsound.coach.plans import parse_plan
from stepsound.cue.render import MusicReader, StreamResampler, render_track

PLAN = """\
name = "short"
description = "two holds and a ramp"
[[segment]]
type = "hold"
target = "baseline"
duration = "10s"
[[segment]]
type = "ramp"
from = "+0%"
to = "+10%"
duration = "10s"
[[segment]]
type = "hold"
target = "+10%"
duration = "5s"
"""


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def reference(tm, sample_rate, n, **kw):
    m = Metronome(sample_rate, tempo_map=tm, **kw)
    out = np.zeros(n, np.float32)
    m.render_into(out, 0)
    return out, m.read_clicks()


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "mp3"])
def test_render_plan_to_each_format_with_clicks_csv(tmp_path, ext, capsys):
    plan = tmp_path / "short.toml"
    plan.write_text(PLAN)
    out = tmp_path / f"cue.{ext}"
    rc = main(["render", "--plan", str(plan), "--baseline-spm", "160", "-o", str(out), "--json"])
    assert rc == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out)
    info = sf.info(str(out))
    assert info.samplerate == 44100 and info.channels == 1
    if ext != "mp3":  # MP3 frame counts include encoder padding
        assert info.frames == 25 * 44100
    rows = read_csv(tmp_path / f"cue.{ext}.clicks.csv")
    tm = parse_plan(PLAN).resolve(160)
    _, log = reference(tm, 44100, 25 * 44100)
    assert [int(r["sample"]) for r in rows] == list(log.sample)
    assert [float(r["target_spm"]) for r in rows] == pytest.approx(list(log.target_spm), abs=1e-3)
    assert float(rows[1]["time_s"]) == pytest.approx(int(rows[1]["sample"]) / 44100, abs=1e-6)
    assert {r["kind"] for r in rows} == {"beat"} and all(r["audible"] == "1" for r in rows)
    assert summary["beats"] == len(rows) and summary["speed_x_realtime"] > 0


def test_rendered_wav_equals_metronome_output(tmp_path):
    out = tmp_path / "cue.wav"
    assert main(["render", "--spm", "172", "--duration", "20s", "-o", str(out), "--subtype", "FLOAT",
                 "--sample-rate", "22050", "--accent-every", "2", "--sound", "click", "--level-db", "-9"]) == 0
    y, sr = sf.read(str(out), dtype="float32")
    m = Metronome(22050, cadence_spm=172, accent_every=2, sound="click", level_db=-9)
    ref = np.zeros(20 * 22050, np.float32)
    m.render_into(ref, 0)
    assert sr == 22050 and np.array_equal(y, ref)
    rows = read_csv(tmp_path / "cue.wav.clicks.csv")
    assert [r["kind"] for r in rows[:3]] == ["accent", "beat", "accent"]


def test_render_needs_duration_with_spm(tmp_path, capsys):
    assert main(["render", "--spm", "170", "-o", str(tmp_path / "x.wav")]) == 2
    assert "--duration" in capsys.readouterr().err


def test_render_relative_plan_without_baseline_names_line(tmp_path, capsys):
    assert main(["render", "--plan", "plus5", "-o", str(tmp_path / "x.wav")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("stepsound: error: preset:plus5:9: segment 1 field 'target'") and "\n" not in err


@pytest.mark.parametrize(
    "argv, code, words",
    [
        (["--spm", "170", "--duration", "1min", "-o", "{tmp}/x.aac"], 2, "unsupported output format '.aac'"),
        (["--spm", "170", "--duration", "1min", "-o", "{tmp}/nodir/x.wav"], 1, "does not exist"),
        (["--spm", "170", "--duration", "1min", "-o", "{tmp}"], 2, "unsupported output format"),
        (["--spm", "170", "--duration", "1min", "-o", "{tmp}/x.wav", "--subtype", "VORBIS"], 2, "not valid for WAV"),
        (["--spm", "300", "--duration", "1min", "-o", "{tmp}/x.wav"], 2, "60-240"),
        (["--spm", "170", "--duration=-1min", "-o", "{tmp}/x.wav"], 2, "negative"),
        (["--spm", "170", "--duration", "30h", "-o", "{tmp}/x.wav"], 2, "24 h"),
        (["--spm", "170", "--duration", "1min", "-o", "{tmp}/x.wav", "--music", "{tmp}/none.wav"], 1, "not found"),
        (["--spm", "170", "--duration", "1min", "-o", "{tmp}/x.wav", "--music", "{tmp}/junk.wav"], 1, "cannot read music"),
        (["--plan", "nope", "-o", "{tmp}/x.wav"], 2, "no plan file or preset named 'nope'"),
        (["--spm", "170", "--baseline-spm", "150", "--duration", "1min", "-o", "{tmp}/x.wav"], 2, "only applies to --plan"),
    ],
)
def test_render_errors_are_one_line(tmp_path, capsys, argv, code, words):
    (tmp_path / "junk.wav").write_bytes(b"this is not audio" * 10)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["render", *argv]) == code
    err = capsys.readouterr().err.strip()
    assert words in err and err.count("\n") == 0 and "Traceback" not in err


def test_disk_full_leaves_the_previous_track_and_no_partial_file(tmp_path, monkeypatch):
    out = tmp_path / "full.wav"
    out.write_bytes(b"previous track")
    sidecar = tmp_path / "full.wav.clicks.csv"
    sidecar.write_text("previous list\n")
    real_write = sf.SoundFile.write
    calls = {"n": 0}

    def failing_write(self, data):
        calls["n"] += 1
        if calls["n"] > 3:
            raise OSError(28, "No space left on device")
        return real_write(self, data)

    monkeypatch.setattr(sf.SoundFile, "write", failing_write)
    m = Metronome(44100, cadence_spm=170)
    with pytest.raises(AudioFileError, match="disk full.*unchanged"):
        render_track(out, m, 600.0, block_size=44100)
    assert calls["n"] == 4
    assert out.read_bytes() == b"previous track"
    assert sidecar.read_text() == "previous list\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full.wav", "full.wav.clicks.csv"]


def test_ctrl_c_while_rendering_leaves_the_previous_track(tmp_path, monkeypatch):
    out = tmp_path / "run.flac"
    assert main(["render", "--spm", "170", "--duration", "3s", "-o", str(out)]) == 0
    before = out.read_bytes(), (tmp_path / "run.flac.clicks.csv").read_bytes()

    def progress(done_s, total_s):
        if done_s > 2.0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render_track(out, Metronome(44100, cadence_spm=150), 10.0, block_size=44100, progress=progress)
    assert (out.read_bytes(), (tmp_path / "run.flac.clicks.csv").read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.flac", "run.flac.clicks.csv"]


def test_each_output_has_its_own_click_list(tmp_path):
    for ext, spm in (("flac", "170"), ("mp3", "150")):
        assert main(["render", "--spm", spm, "--duration", "4s", "-o", str(tmp_path / f"p.{ext}")]) == 0
    flac = read_csv(tmp_path / "p.flac.clicks.csv")
    mp3 = read_csv(tmp_path / "p.mp3.clicks.csv")
    assert {float(r["target_spm"]) for r in flac} == {170.0}
    assert {float(r["target_spm"]) for r in mp3} == {150.0}
    assert not (tmp_path / "p.clicks.csv").exists()


def test_disk_full_via_cli_exit_code(tmp_path, monkeypatch, capsys):
    def failing_write(self, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sf.SoundFile, "write", failing_write)
    assert main(["render", "--spm", "170", "--duration", "1min", "-o", str(tmp_path / "x.wav")]) == 1
    assert "No space left" in capsys.readouterr().err


# ----------------------------------------------------------------------------- music


def make_music(path, sample_rate, channels, seconds, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    cols = [0.3 * np.sin(2 * np.pi * (220 + 110 * c) * t) + 0.05 * rng.standard_normal(len(t)) for c in range(channels)]
    y = np.stack(cols, axis=1).astype(np.float32)
    sf.write(str(path), y, sample_rate, subtype="FLOAT" if str(path).endswith(".wav") else "PCM_24")
    return sf.read(str(path), dtype="float32", always_2d=True)[0]


@pytest.mark.parametrize("up, down", [(160, 147), (147, 160), (2, 1), (1, 3)])
def test_stream_resampler_equals_resample_poly(up, down):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((20000, 2)).astype(np.float32)
    pos = [0]

    def read(n):
        chunk = x[pos[0]: pos[0] + n]
        pos[0] += len(chunk)
        return chunk

    r = StreamResampler(up, down, read, 2)
    n_out = -(-len(x) * up // down)
    parts = []
    got = 0
    sizes = iter(rng.integers(0, 3000, 10000))
    while got < n_out:
        k = min(int(next(sizes)), n_out - got)
        parts.append(r.read(k))
        got += k
    y = np.concatenate(parts)
    ref = resample_poly(x.astype(np.float64), up, down, axis=0)
    np.testing.assert_allclose(y, ref, atol=1e-9)


def test_music_mixing_with_resampling_and_gain(tmp_path):
    music = make_music(tmp_path / "song.flac", 22050, 2, 12.0)
    out = tmp_path / "mix.wav"
    assert main(["render", "--spm", "165", "--music", str(tmp_path / "song.flac"), "--music-db", "-6",
                 "--sample-rate", "44100", "--subtype", "FLOAT", "-o", str(out), "--level-db", "-12"]) == 0
    y, sr = sf.read(str(out), dtype="float32", always_2d=True)
    assert sr == 44100 and y.shape == (12 * 44100, 2)  # duration defaults to the music's
    clicks = np.zeros(len(y), np.float32)
    Metronome(44100, cadence_spm=165, level_db=-12).render_into(clicks, 0)
    music_up = resample_poly(music.astype(np.float64), 2, 1, axis=0) * 10 ** (-6 / 20)
    np.testing.assert_allclose(y, music_up + clicks[:, None], atol=2e-6)


def test_music_channel_handling(tmp_path):
    mono = make_music(tmp_path / "mono.wav", 8000, 1, 1.0)
    stereo = make_music(tmp_path / "stereo.wav", 8000, 2, 1.0)
    buf = np.zeros((8000, 2), np.float32)
    r = MusicReader(tmp_path / "mono.wav", 8000, 2)
    r.read_into(buf)
    np.testing.assert_array_equal(buf[:, 0], mono[:, 0])
    np.testing.assert_array_equal(buf[:, 1], mono[:, 0])
    buf1 = np.zeros((8000, 1), np.float32)
    r = MusicReader(tmp_path / "stereo.wav", 8000, 1)
    r.read_into(buf1)
    np.testing.assert_allclose(buf1[:, 0], stereo.mean(axis=1), atol=1e-7)
    # past the end: zeros
    r.read_into(buf1)
    assert not buf1.any()


def test_music_shorter_than_plan_warns_and_clicks_continue(tmp_path, capsys):
    make_music(tmp_path / "short.wav", 44100, 1, 2.0)
    out = tmp_path / "mix.flac"
    assert main(["render", "--spm", "170", "--duration", "5s", "--music", str(tmp_path / "short.wav"),
                 "-o", str(out)]) == 0
    assert "ends before the track" in capsys.readouterr().err
    y, _ = sf.read(str(out))
    assert len(y) == 5 * 44100 and np.abs(y[4 * 44100:]).max() > 0.1  # clicks after the music


def test_loud_mix_is_clipped_and_reported(tmp_path, capsys):
    sr = 8000
    sf.write(str(tmp_path / "loud.wav"), np.full(sr, 0.99, np.float32), sr, subtype="FLOAT")
    out = tmp_path / "x.wav"
    assert main(["render", "--spm", "120", "--music", str(tmp_path / "loud.wav"), "--music-db", "0",
                 "--level-db", "0", "--subtype", "FLOAT", "-o", str(out)]) == 0
    assert "clipped" in capsys.readouterr().err
    y, _ = sf.read(str(out))
    assert np.abs(y).max() <= 1.0


def test_no_csv_option(tmp_path):
    assert main(["render", "--spm", "170", "--duration", "3s", "-o", str(tmp_path / "a.wav"), "--no-csv"]) == 0
    assert not (tmp_path / "a.wav.clicks.csv").exists() and not (tmp_path / "a.clicks.csv").exists()
