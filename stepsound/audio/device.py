"""Audio devices: the only module that imports :mod:`sounddevice` (lazily).

``import stepsound`` works on a machine without PortAudio; only calling a
function here needs it, and then a missing PortAudio (``OSError`` on Linux),
a missing device, an unsupported sample rate or a busy device becomes one
:class:`~stepsound.errors.AudioDeviceError` with a clear message.

For the live session, :func:`open_stream` opens an output, input or duplex
stream around a callback with one uniform signature
``callback(indata, outdata, frames, time_info, status)`` (``indata`` or
``outdata`` is None when the stream has no such side).  The wrapper zeroes the
output before calling it, counts the callback status flags (xruns) in a
:class:`StreamStats` and turns an exception escaping the callback into
silence plus a count -- nothing is printed or raised on the audio thread.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass

from stepsound.errors import AudioDeviceError, ParameterError

__all__ = [
    "DeviceInfo",
    "StreamStats",
    "AudioStream",
    "sounddevice",
    "rescan",
    "list_devices",
    "resolve_device",
    "default_sample_rate",
    "open_stream",
]


_alsa_handler = None


def _silence_alsa() -> None:
    """Keep alsa-lib's own messages ("underrun occurred", probing noise) off the terminal.

    alsa-lib prints them from C straight to stderr; stepsound counts xruns
    itself and reports device problems in one line.  Installs a no-op error
    handler; does nothing where there is no libasound.
    """
    global _alsa_handler
    if _alsa_handler is not None or not sys.platform.startswith("linux"):
        return
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("asound")
    if not name:
        _alsa_handler = False
        return
    try:
        lib = ctypes.CDLL(name)
        proto = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p)
        _alsa_handler = proto(lambda *args: None)
        lib.snd_lib_error_set_handler(_alsa_handler)
    except (OSError, AttributeError):
        _alsa_handler = False


def sounddevice():
    """Import and return :mod:`sounddevice`, or raise AudioDeviceError if PortAudio is missing."""
    _silence_alsa()
    try:
        import sounddevice as sd
    except OSError as exc:
        raise AudioDeviceError(
            f"PortAudio is not available ({exc}); install it (Debian/Ubuntu: apt-get install libportaudio2)"
        ) from None
    except ImportError:
        raise AudioDeviceError("the sounddevice package is not installed (pip install sounddevice)") from None
    return sd


def rescan() -> None:
    """Make PortAudio enumerate devices again (after an audio server started or stopped).

    Only call it when no stream is open.
    """
    sd = sounddevice()
    sd._terminate()
    sd._initialize()


@dataclass(frozen=True)
class DeviceInfo:
    """One PortAudio device.

    Attributes
    ----------
    index : int
    name : str
    hostapi : str
    max_input_channels, max_output_channels : int
    default_sample_rate : float [Hz]
    default_input, default_output : bool
        Whether it is the default input / output device.
    """

    index: int
    name: str
    hostapi: str
    max_input_channels: int
    max_output_channels: int
    default_sample_rate: float
    default_input: bool
    default_output: bool


def list_devices() -> list[DeviceInfo]:
    """All PortAudio devices (empty when there is none, e.g. no audio server)."""
    sd = sounddevice()
    try:
        devices = sd.query_devices()
        hostapis = sd.query_hostapis()
        default_in, default_out = sd.default.device
    except sd.PortAudioError as exc:
        raise AudioDeviceError(f"cannot list audio devices: {exc}") from None
    out = []
    for i, d in enumerate(devices):
        out.append(
            DeviceInfo(
                index=i,
                name=d["name"],
                hostapi=hostapis[d["hostapi"]]["name"],
                max_input_channels=int(d["max_input_channels"]),
                max_output_channels=int(d["max_output_channels"]),
                default_sample_rate=float(d["default_samplerate"]),
                default_input=(i == default_in),
                default_output=(i == default_out),
            )
        )
    return out


def resolve_device(spec, kind: str = "output") -> int | None:
    """Turn ``--device`` text into a PortAudio device index.

    Parameters
    ----------
    spec : None, int or str
        None or ``""``: the default device (returns None).  An index (``3`` or
        ``"3"``), an exact name, or a case-insensitive part of one name.
    kind : {'output', 'input', 'duplex'}
        Channels the device must have.

    Returns
    -------
    index : int or None

    Raises
    ------
    AudioDeviceError
        No device, no match, several matches, or a device without the channels.
    """
    if kind not in ("output", "input", "duplex"):
        raise ParameterError(f"kind={kind!r} must be 'output', 'input' or 'duplex'")
    devices = list_devices()
    if spec is None or (isinstance(spec, str) and spec.strip() == ""):
        if not devices:
            raise AudioDeviceError("no audio devices found (is an audio server running? see `stepsound devices`)")
        return None

    def ok(d: DeviceInfo) -> bool:
        if kind == "output":
            return d.max_output_channels > 0
        if kind == "input":
            return d.max_input_channels > 0
        return d.max_output_channels > 0 and d.max_input_channels > 0

    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        index = int(spec)
        if not (0 <= index < len(devices)):
            raise AudioDeviceError(
                f"no audio device with index {index} ({len(devices)} devices; see `stepsound devices`)"
            )
        if not ok(devices[index]):
            raise AudioDeviceError(f"device {index} ({devices[index].name!r}) has no {kind} channels")
        return index
    text = str(spec).strip()
    exact = [d for d in devices if d.name == text and ok(d)]
    if len(exact) == 1:
        return exact[0].index
    matches = [d for d in devices if text.lower() in d.name.lower() and ok(d)]
    if not matches:
        raise AudioDeviceError(f"no {kind} device matches {text!r} (see `stepsound devices`)")
    if len(matches) > 1:
        names = "; ".join(f"{d.index}: {d.name}" for d in matches[:6])
        raise AudioDeviceError(f"{len(matches)} {kind} devices match {text!r} ({names}); give an index")
    return matches[0].index


def default_sample_rate(device=None, kind: str = "output") -> int:
    """Default sample rate of a device [Hz] (the default device when None).

    Raises
    ------
    AudioDeviceError
        No such device, or no audio device at all (one line saying so).
    """
    kind = kind if kind in ("input", "output") else "output"
    index = resolve_device(device, kind)
    sd = sounddevice()
    try:
        info = sd.query_devices(index, kind=kind) if index is None else sd.query_devices(index)
    except (sd.PortAudioError, ValueError) as exc:
        raise AudioDeviceError(f"cannot query {kind} device {device!r}: {exc}") from None
    return int(round(info["default_samplerate"]))


class StreamStats:
    """Problems counted on the audio thread, reported by the main thread.

    The callback wrapper calls :meth:`record` once per callback (integer
    increments only).  The main thread reads the attributes or
    :meth:`summary`.

    Attributes
    ----------
    callbacks, frames : int
        Callbacks run and frames processed.
    input_underflow, input_overflow, output_underflow, output_overflow, priming_output : int
        PortAudio status flags seen.
    callback_errors : int
        Exceptions raised by the user callback (the block was silenced).
    last_error : BaseException or None
    settle_frames : int
        Status flags of the stream's first ``settle_frames`` frames are not
        xruns: audio servers report under/overflows while a stream starts
        (PulseAudio: 4 at every start); they are counted in ``startup_flags``.
    startup_flags : int
    """

    __slots__ = (
        "callbacks",
        "frames",
        "input_underflow",
        "input_overflow",
        "output_underflow",
        "output_overflow",
        "priming_output",
        "callback_errors",
        "last_error",
        "settle_frames",
        "startup_flags",
    )

    def __init__(self, settle_frames: int = 0) -> None:
        self.settle_frames = int(settle_frames)
        self.reset()

    def reset(self) -> None:
        self.callbacks = 0
        self.frames = 0
        self.input_underflow = 0
        self.input_overflow = 0
        self.output_underflow = 0
        self.output_overflow = 0
        self.priming_output = 0
        self.callback_errors = 0
        self.last_error = None
        self.startup_flags = 0

    def record(self, status, frames: int) -> None:
        """Count one callback's status flags (audio thread)."""
        self.callbacks += 1
        settling = self.frames < self.settle_frames
        self.frames += frames
        if status and settling:
            self.startup_flags += 1
        elif status:
            if status.input_underflow:
                self.input_underflow += 1
            if status.input_overflow:
                self.input_overflow += 1
            if status.output_underflow:
                self.output_underflow += 1
            if status.output_overflow:
                self.output_overflow += 1
            if status.priming_output:
                self.priming_output += 1

    @property
    def xruns(self) -> int:
        """Total under- and overflows (input and output)."""
        return self.input_underflow + self.input_overflow + self.output_underflow + self.output_overflow

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__ if k not in ("last_error", "settle_frames")}

    def summary(self) -> str:
        """One line for humans."""
        parts = [f"{self.callbacks} callbacks"]
        for k in ("output_underflow", "output_overflow", "input_underflow", "input_overflow", "callback_errors"):
            v = getattr(self, k)
            if v:
                parts.append(f"{k.replace('_', ' ')}: {v}")
        if self.last_error is not None:
            parts.append(f"last error: {self.last_error!r}")
        return ", ".join(parts)


class AudioStream:
    """An opened PortAudio stream with its stats; a context manager that starts and closes it.

    Attributes
    ----------
    stream : sounddevice.Stream or OutputStream or InputStream
    stats : StreamStats
    sample_rate : int [Hz]
    input_channels, output_channels : int
    input_latency_samples, output_latency_samples : int
        PortAudio's latency estimates, rounded to samples.
    """

    def __init__(self, stream, stats: StreamStats, sample_rate: int, input_channels: int, output_channels: int):
        self.stream = stream
        self.stats = stats
        self.sample_rate = sample_rate
        self.input_channels = input_channels
        self.output_channels = output_channels
        lat = stream.latency
        if isinstance(lat, (tuple, list)):
            lat_in, lat_out = lat
        elif input_channels and not output_channels:
            lat_in, lat_out = lat, 0.0
        else:
            lat_in, lat_out = 0.0, lat
        self.input_latency_samples = int(round(lat_in * sample_rate))
        self.output_latency_samples = int(round(lat_out * sample_rate))

    @property
    def active(self) -> bool:
        return bool(self.stream.active)

    def start(self) -> None:
        sd = sounddevice()
        try:
            self.stream.start()
        except sd.PortAudioError as exc:
            raise AudioDeviceError(f"cannot start the audio stream: {exc}") from None

    def stop(self) -> None:
        sd = sounddevice()
        try:
            self.stream.stop()
        except sd.PortAudioError as exc:
            raise AudioDeviceError(f"audio stream failed while stopping (device lost?): {exc}") from None

    def close(self) -> None:
        sd = sounddevice()
        try:
            self.stream.close()
        except sd.PortAudioError:
            pass

    def __enter__(self) -> "AudioStream":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self.stream.active:
                self.stop()
        finally:
            self.close()


def _wrap_callback(sd, callback, stats: StreamStats, has_in: bool, has_out: bool):
    stop_types = (sd.CallbackStop, sd.CallbackAbort)
    record = stats.record
    if has_in and has_out:

        def pa_callback(indata, outdata, frames, time_info, status):
            record(status, frames)
            outdata.fill(0)
            try:
                callback(indata, outdata, frames, time_info, status)
            except stop_types:
                raise
            except Exception as exc:  # never raise on the audio thread
                stats.callback_errors += 1
                stats.last_error = exc
                outdata.fill(0)

    elif has_out:

        def pa_callback(outdata, frames, time_info, status):
            record(status, frames)
            outdata.fill(0)
            try:
                callback(None, outdata, frames, time_info, status)
            except stop_types:
                raise
            except Exception as exc:
                stats.callback_errors += 1
                stats.last_error = exc
                outdata.fill(0)

    else:

        def pa_callback(indata, frames, time_info, status):
            record(status, frames)
            try:
                callback(indata, None, frames, time_info, status)
            except stop_types:
                raise
            except Exception as exc:
                stats.callback_errors += 1
                stats.last_error = exc

    return pa_callback


def open_stream(
    callback,
    *,
    sample_rate: int | None = None,
    output_channels: int = 1,
    input_channels: int = 0,
    device=None,
    block_size: int = 0,
    latency="high",
    dtype: str = "float32",
    stats: StreamStats | None = None,
    finished_callback=None,
) -> AudioStream:
    """Open (not start) an output, input or duplex stream.

    Parameters
    ----------
    callback : callable
        ``callback(indata, outdata, frames, time_info, status)`` on the audio
        thread.  ``indata``: np.ndarray [shape=(frames, input_channels),
        float32] or None; ``outdata``: [shape=(frames, output_channels)] or
        None, already zeroed.  Must not block, allocate block-sized arrays,
        print or raise (an exception silences the block and is counted).
    sample_rate : int, optional [Hz]
        Default: the device's default rate.
    output_channels, input_channels : int >= 0
        At least one is > 0; both > 0 opens a duplex stream.
    device : None, int, str or (input, output) pair
        Resolved with :func:`resolve_device`.
    block_size : int >= 0 [frames]
        0 lets PortAudio choose (variable sizes: the callback must cope).
    latency : {'high', 'low'} or float [seconds]
        'high' is robust on loaded machines (see docs/virtual-audio.md).
    dtype : str
    stats : StreamStats, optional
        Where to count status flags (a new one by default).
    finished_callback : callable, optional

    Returns
    -------
    AudioStream
        Use ``with stream: ...`` to start it and stop/close it on exit.

    Raises
    ------
    AudioDeviceError
        PortAudio missing, no/ambiguous device, unsupported sample rate or
        channel count, device busy.
    ParameterError
        Invalid arguments.
    """
    sd = sounddevice()
    for name, v in (("output_channels", output_channels), ("input_channels", input_channels), ("block_size", block_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ParameterError(f"{name}={v!r} must be a whole number >= 0")
    if output_channels == 0 and input_channels == 0:
        raise ParameterError("a stream needs input_channels > 0 or output_channels > 0")
    if isinstance(latency, str):
        if latency not in ("high", "low"):
            raise ParameterError(f"latency={latency!r} must be 'high', 'low' or seconds")
    elif not (isinstance(latency, (int, float)) and math.isfinite(latency) and latency >= 0):
        raise ParameterError(f"latency={latency!r} must be 'high', 'low' or a number of seconds >= 0")

    if isinstance(device, (tuple, list)):
        in_spec, out_spec = device
    else:
        in_spec = out_spec = device
    in_dev = resolve_device(in_spec, "input") if input_channels else None
    out_dev = resolve_device(out_spec, "output") if output_channels else None

    if sample_rate is None:
        sample_rate = default_sample_rate(out_dev if output_channels else in_dev, "output" if output_channels else "input")
    if isinstance(sample_rate, bool) or int(sample_rate) != sample_rate or not (1000 <= sample_rate <= 768000):
        raise ParameterError(f"sample_rate={sample_rate!r} must be a positive integer [Hz]")
    sample_rate = int(sample_rate)

    def describe(dev):
        return "the default device" if dev is None else f"device {dev} ({sd.query_devices(dev)['name']!r})"

    try:
        if output_channels:
            sd.check_output_settings(device=out_dev, channels=output_channels, dtype=dtype, samplerate=sample_rate)
        if input_channels:
            sd.check_input_settings(device=in_dev, channels=input_channels, dtype=dtype, samplerate=sample_rate)
    except (sd.PortAudioError, ValueError) as exc:
        side = "output" if output_channels else "input"
        dev = out_dev if output_channels else in_dev
        raise AudioDeviceError(
            f"{describe(dev)} cannot {side} {max(output_channels, input_channels)} channel(s) at"
            f" sample_rate={sample_rate}: {exc}"
        ) from None

    stats = stats if stats is not None else StreamStats()
    if not stats.settle_frames:
        stats.settle_frames = sample_rate // 4   # start-up flags are not xruns (see StreamStats)
    pa_callback = _wrap_callback(sd, callback, stats, input_channels > 0, output_channels > 0)
    common = dict(
        samplerate=sample_rate,
        blocksize=block_size,
        dtype=dtype,
        latency=latency,
        callback=pa_callback,
        finished_callback=finished_callback,
    )
    try:
        if input_channels and output_channels:
            stream = sd.Stream(device=(in_dev, out_dev), channels=(input_channels, output_channels), **common)
        elif output_channels:
            stream = sd.OutputStream(device=out_dev, channels=output_channels, **common)
        else:
            stream = sd.InputStream(device=in_dev, channels=input_channels, **common)
    except (sd.PortAudioError, ValueError) as exc:
        raise AudioDeviceError(f"cannot open the audio stream at sample_rate={sample_rate}: {exc}") from None
    return AudioStream(stream, stats, sample_rate, input_channels, output_channels)
