"""Shared test fixtures.

``virtual_audio`` (session scope) gives the tests a real PortAudio duplex device
with no sound card: a private PulseAudio server with a null sink, whose monitor
source captures whatever is played to the sink (see ``.ci/virtual-audio.sh`` and
docs/virtual-audio.md).  Tests using it are marked ``@pytest.mark.audio``;
it skips them with a clear reason where no audio server can run (pulseaudio or
PortAudio missing, server refuses to start, PortAudio sees no ``pulse`` device).

Usage::

    @pytest.mark.audio
    def test_loopback(virtual_audio):
        sd = virtual_audio.sounddevice()          # imported after the server is up
        with sd.Stream(device=virtual_audio.device, samplerate=virtual_audio.sample_rate,
                       latency="high", ...):
            ...
        player = virtual_audio.play_file("run.wav")   # mixes into the same sink
        player.wait()

The server is private to the test session (its own ``XDG_RUNTIME_DIR``), so
concurrent test runs on one machine do not disturb each other.  Set
``STEPSOUND_TEST_SINK_RATE`` to run the sink (and so the streams) at another rate.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / ".ci" / "virtual-audio.sh"


@dataclass
class VirtualAudio:
    """A running virtual audio device.

    Attributes
    ----------
    sink : str
        PulseAudio sink name (play here).
    monitor : str
        Its monitor source (record here: hears everything played to the sink).
    sample_rate : int [Hz]
        The sink's rate; streams must use it (a mismatch causes underflows and lag).
    channels : int
    device : str
        PortAudio device name to open (ALSA ``pulse`` plugin: in and out).
    runtime_dir : str
    env : dict
        Environment for other clients (paplay, a subprocess running stepsound).
    """

    sink: str
    monitor: str
    sample_rate: int
    channels: int
    device: str
    runtime_dir: str
    env: dict
    _players: list = field(default_factory=list, repr=False)

    def sounddevice(self):
        """The sounddevice module, enumerating this server's devices."""
        import sounddevice as sd

        return sd

    def play_file(self, path, *, volume: float | None = None) -> subprocess.Popen:
        """Play an audio file into the sink with ``paplay`` (mixes with other streams).

        Returns the Popen; call ``.wait()`` to block until it has played.
        Still-running players are terminated at the end of the session.
        """
        cmd = ["paplay", f"--device={self.sink}"]
        if volume is not None:
            cmd.append(f"--volume={int(round(volume * 65536))}")
        cmd.append(str(path))
        proc = subprocess.Popen(cmd, env={**os.environ, **self.env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._players.append(proc)
        return proc

    def pactl(self, *args: str) -> str:
        """Run ``pactl`` against this server; return its stdout."""
        return subprocess.run(
            ["pactl", *args], env={**os.environ, **self.env}, capture_output=True, text=True, timeout=10, check=True
        ).stdout


def _script(command: str, env: dict, timeout: float = 30.0) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), command], env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="session")
def virtual_audio():
    """Start a private PulseAudio null sink for the session (or skip with the reason)."""
    for tool in ("pulseaudio", "pactl", "parec"):
        if shutil.which(tool) is None:
            pytest.skip(
                f"no audio server can run: {tool} not installed"
                " (apt-get install pulseaudio pulseaudio-utils libasound2-plugins)"
            )
    sd_imported_before = "sounddevice" in sys.modules
    rate = int(os.environ.get("STEPSOUND_TEST_SINK_RATE", "44100"))
    runtime_dir = tempfile.mkdtemp(prefix="ssaudio-", dir="/tmp")  # short: unix socket paths are limited
    os.chmod(runtime_dir, 0o700)
    env = {
        "XDG_RUNTIME_DIR": runtime_dir,
        "PULSE_SERVER": f"unix:{runtime_dir}/pulse/native",
        "PULSE_COOKIE": f"{runtime_dir}/pulse-cookie",
        "STEPSOUND_SINK": "stepsound_sink",
        "STEPSOUND_SINK_RATE": str(rate),
        "STEPSOUND_SINK_CHANNELS": "1",
    }
    try:
        started = _script("start", env)
    except subprocess.TimeoutExpired:
        shutil.rmtree(runtime_dir, ignore_errors=True)
        pytest.skip("no audio server can run: .ci/virtual-audio.sh start timed out")
    if started.returncode != 0:
        _script("stop", env)
        shutil.rmtree(runtime_dir, ignore_errors=True)
        pytest.skip(f"no audio server can run: {started.stderr.strip() or 'virtual-audio.sh start failed'}")
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # PortAudio's ALSA pulse plugin in this process must find the server
    info = VirtualAudio(
        sink=env["STEPSOUND_SINK"],
        monitor=env["STEPSOUND_SINK"] + ".monitor",
        sample_rate=rate,
        channels=1,
        device="pulse",
        runtime_dir=runtime_dir,
        env=env,
    )
    try:
        try:
            import sounddevice as sd
        except OSError as exc:  # libportaudio2 missing: not an ImportError
            pytest.skip(f"PortAudio library not found ({exc}); apt-get install libportaudio2")
        except ImportError:
            pytest.skip("the sounddevice package is not installed")
        if sd_imported_before:
            sd._terminate()  # PortAudio enumerated before the server existed: re-scan
            sd._initialize()
        names = [d["name"] for d in sd.query_devices()]
        if info.device not in names:
            pytest.skip(
                f"PortAudio sees no {info.device!r} device ({names}); is libasound2-plugins installed?"
            )
        yield info
    finally:
        for proc in info._players:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
        _script("stop", env)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(runtime_dir, ignore_errors=True)
