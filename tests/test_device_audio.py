"""Audio devices: import without PortAudio, and live playback through a real PortAudio stream
on the virtual audio device (PulseAudio null sink + monitor; see tests/conftest.py)."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from stepsound.cli.main import main
from stepsound.errors import AudioDeviceError
from stepsound.cue.metronome import Metronome

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- no PortAudio


def test_import_and_offline_commands_work_without_portaudio(tmp_path):
    """Simulate Linux without libportaudio2: ``import sounddevice`` raises OSError."""
    code = textwrap.dedent(
        f"""
        import sys
        class NoPortAudio:
            def find_spec(self, name, path=None, target=None):
                if name == "sounddevice":
                    raise OSError("PortAudio library not found")
        sys.meta_path.insert(0, NoPortAudio())
        import stepsound, stepsound.cue.metronome, stepsound.cue.render, stepsound.audio.device, stepsound.cli.main
        assert "sounddevice" not in sys.modules
        rc = stepsound.cli.main.main(["render", "--spm", "170", "--duration", "2s", "-o", r"{tmp_path}/a.wav"])
        assert rc == 0, rc
        rc = stepsound.cli.main.main(["devices"])
        assert rc == 1, rc
        rc = stepsound.cli.main.main(["metronome", "--spm", "170"])
        assert rc == 1, rc
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    errs = [line for line in proc.stderr.splitlines() if line.startswith("stepsound: error:")]
    assert len(errs) == 2 and all("PortAudio is not available" in e and "libportaudio2" in e for e in errs)
    assert "Traceback" not in proc.stderr


class _Flags:
    def __init__(self, **kw):
        self.__dict__.update(
            dict(input_underflow=False, input_overflow=False, output_underflow=False, output_overflow=False,
                 priming_output=False)
        )
        self.__dict__.update(kw)

    def __bool__(self):
        return any(self.__dict__.values())


def test_stream_stats_counts_flags():
    from stepsound.audio.device import StreamStats

    s = StreamStats()
    s.record(_Flags(), 256)
    s.record(_Flags(output_underflow=True), 256)
    s.record(_Flags(input_overflow=True, output_underflow=True), 256)
    assert s.callbacks == 3 and s.frames == 768 and s.output_underflow == 2 and s.input_overflow == 1
    assert s.xruns == 3 and "output underflow: 2" in s.summary()
    s.reset()
    assert s.xruns == 0


# ----------------------------------------------------------------------------- virtual device


def _onsets(x, sample_rate, threshold=0.05, gap_s=0.1):
    idx = np.flatnonzero(np.abs(x) > threshold)
    if len(idx) == 0:
        return idx
    keep = np.concatenate([[True], np.diff(idx) > gap_s * sample_rate])
    return idx[keep]


def _loopback_once(va, seconds=4.0, cadence_spm=180):
    from stepsound.audio import device

    sr = va.sample_rate
    m = Metronome(sr, cadence_spm=cadence_spm, sound="click", level_db=-3.0)
    rec = np.zeros(int((seconds + 2) * sr), np.float32)
    state = {"w": 0}
    flags = []  # (input frame index, status text): test-side bookkeeping only

    def callback(indata, outdata, frames, time_info, status):
        if status:
            flags.append((state["w"], str(status)))
        m.render_into(outdata)
        w = state["w"]
        n = min(frames, len(rec) - w)
        rec[w: w + n] = indata[:n, 0]
        state["w"] = w + frames

    stream = device.open_stream(
        callback, sample_rate=sr, input_channels=1, output_channels=1, device=va.device, latency="high"
    )
    with stream:
        time.sleep(seconds)
    recorded = min(state["w"], len(rec))
    log = m.read_clicks()
    onsets = _onsets(rec[:recorded], sr)
    # xruns after start-up (a few "input underflow" flags at the very start are normal)
    late = [f for f in flags if f[0] > sr // 2 or "output" in f[1] or "overflow" in f[1]]
    return {
        "clicks": log.sample,
        "onsets": onsets,
        "recorded": recorded,
        "late_xruns": late,
        "stats": stream.stats,
        "latency_s": stream.stream.latency,
        "sound_len": m.sound_length("click"),
    }


@pytest.mark.audio
def test_live_clicks_arrive_at_one_constant_lag(virtual_audio):
    # the virtual device glitches by itself now and then (a bare duplex stream showed xruns in 1 of 3
    # ten-second runs on the 2-core machine, and CI once saw two glitched runs in a row): up to 4 tries
    # for a glitch-free stream, which is what this test measures
    for _ in range(4):
        result = _loopback_once(virtual_audio)
        if not result["late_xruns"]:
            break
    assert not result["late_xruns"], f"xruns during playback: {result['late_xruns'][:5]}"
    clicks, onsets = result["clicks"], result["onsets"]
    assert len(onsets) >= 5, f"no clicks came back from the monitor ({len(onsets)} onsets)"
    # the lag: for each onset, the delay after the latest click before it; the audio server may swallow
    # the very first samples of a stream (start-up), so the first click may not come back -- every later one must
    diffs = [int(o - clicks[clicks <= o].max()) for o in onsets if np.any(clicks <= o)]
    values, counts = np.unique(diffs, return_counts=True)
    lag = int(values[np.argmax(counts)])
    expected = clicks[(clicks + lag + 64 < result["recorded"]) & (clicks + lag >= onsets[0])]
    assert len(onsets) == len(expected), (len(onsets), len(expected), lag)
    assert expected[0] <= clicks[1], "more than the first click was lost"
    lags = onsets - expected
    assert lags.max() - lags.min() == 0, f"jitter {lags.max() - lags.min()} samples; lags {np.unique(lags)}"
    assert 0 <= lag < 2 * virtual_audio.sample_rate
    print(f"loopback: {len(lags)} clicks, lag {lag} samples ({1000 * lag / virtual_audio.sample_rate:.1f} ms),"
          f" jitter 0, stream latency {result['latency_s']}, {result['stats'].summary()}")


@pytest.mark.audio
def test_devices_command_lists_the_virtual_device(virtual_audio, capsys):
    import json

    assert main(["devices", "--json"]) == 0
    names = [d["name"] for d in json.loads(capsys.readouterr().out)]
    assert virtual_audio.device in names


@pytest.mark.audio
def test_resolve_device_errors(virtual_audio):
    from stepsound.audio import device

    assert device.resolve_device("pulse", "duplex") == [d.name for d in device.list_devices()].index("pulse")
    assert device.resolve_device(None) is None
    with pytest.raises(AudioDeviceError, match="no output device matches 'nosuchcard'"):
        device.resolve_device("nosuchcard")
    with pytest.raises(AudioDeviceError, match="no audio device with index 99"):
        device.resolve_device(99)
    with pytest.raises(AudioDeviceError, match="devices match 'u'.*give an index"):
        device.resolve_device("u")  # 'pulse' and 'default'


@pytest.mark.audio
def test_open_stream_with_impossible_settings_is_a_clear_error(virtual_audio):
    from stepsound.audio import device

    with pytest.raises(AudioDeviceError, match="channel"):
        device.open_stream(lambda *a: None, sample_rate=virtual_audio.sample_rate, output_channels=64,
                           device=virtual_audio.device)


@pytest.mark.audio
def test_callback_exception_is_counted_not_raised(virtual_audio):
    from stepsound.audio import device

    def bad(indata, outdata, frames, time_info, status):
        raise RuntimeError("bug in callback")

    stream = device.open_stream(bad, sample_rate=virtual_audio.sample_rate, output_channels=1,
                                device=virtual_audio.device, latency="high")
    with stream:
        time.sleep(0.5)
        assert stream.active
    assert stream.stats.callback_errors > 0 and isinstance(stream.stats.last_error, RuntimeError)


@pytest.mark.audio
def test_metronome_command_plays_and_ends(virtual_audio, capsys):
    rc = main(["metronome", "--spm", "170", "--duration", "1.5s", "--device", virtual_audio.device,
               "--sample-rate", str(virtual_audio.sample_rate), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "done after" in err


@pytest.mark.audio
def test_metronome_command_ctrl_c_stops_cleanly(virtual_audio, capsys, monkeypatch):
    from stepsound.cue import live as metronome_live

    calls = {"n": 0}
    real_sleep = time.sleep

    def sleep(s):
        calls["n"] += 1
        if calls["n"] > 5:
            raise KeyboardInterrupt
        real_sleep(s)

    monkeypatch.setattr(metronome_live.time, "sleep", sleep)
    rc = main(["metronome", "--plan", "plus5", "--baseline-spm", "160", "--device", virtual_audio.device,
               "--sample-rate", str(virtual_audio.sample_rate)])
    err = capsys.readouterr().err
    assert rc == 130
    assert "stopped after" in err and "Traceback" not in err


@pytest.mark.audio
def test_play_file_into_the_sink_is_heard_on_the_monitor(virtual_audio, tmp_path):
    """The fixture's paplay helper: a file played "into the room" reaches a capture stream."""
    import soundfile as sf

    from stepsound.audio import device

    sr = virtual_audio.sample_rate
    t = np.arange(int(0.5 * sr)) / sr
    sf.write(str(tmp_path / "tone.wav"), (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr)
    rec = np.zeros(3 * sr, np.float32)
    state = {"w": 0}

    def callback(indata, outdata, frames, time_info, status):
        w = state["w"]
        n = min(frames, len(rec) - w)
        rec[w: w + n] = indata[:n, 0]
        state["w"] = w + n

    stream = device.open_stream(callback, sample_rate=sr, input_channels=1, output_channels=0,
                                device=virtual_audio.device, latency="high")
    with stream:
        player = virtual_audio.play_file(tmp_path / "tone.wav")
        player.wait(timeout=10)
        time.sleep(0.5)
    assert player.returncode == 0
    assert np.abs(rec).max() > 0.2


def test_what_c_libraries_print_never_reaches_the_terminal(tmp_path):
    """The command line keeps Python's stderr on the terminal and sends file descriptor 2 (where PortAudio
    and decoders write) to $STEPSOUND_NATIVE_LOG."""
    import subprocess
    import sys

    log = tmp_path / "native.log"
    code = ("import os, sys; from stepsound.cli.main import _divert_native_stderr; _divert_native_stderr(); "
            "os.write(2, b'Expression err failed in pa_linux_alsa.c\\n'); print('stepsound: one line', file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**__import__("os").environ, "STEPSOUND_NATIVE_LOG": str(log)})
    assert proc.returncode == 0
    assert proc.stderr == "stepsound: one line\n"
    assert "pa_linux_alsa" in log.read_text()


def test_run_with_no_audio_server_says_so_in_one_line(tmp_path):
    """No audio server (and no sound card): `run` names the problem, not PortAudio's "device -1"."""
    import json
    import os

    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path), "PULSE_SERVER": f"unix:{tmp_path}/no-server"}
    listed = subprocess.run([sys.executable, "-m", "stepsound", "devices", "--json"], env=env,
                            capture_output=True, text=True, timeout=60)
    if listed.returncode != 0 or json.loads(listed.stdout or "[]"):
        pytest.skip("this machine has audio devices without a server (a sound card): nothing to test")
    for argv in (["run", "--duration", "1s", "--db", "none"], ["calibrate-latency", "--db", str(tmp_path / "s.db")]):
        out = subprocess.run([sys.executable, "-m", "stepsound", *argv], env=env, capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 1, out
        assert out.stderr.count("\n") == 1 and "no audio devices found" in out.stderr, out.stderr
