"""Cue tracks (WAV/FLAC/OGG/MP3) for a phone or MP3 player (``stepsound render``).

The track is rendered block after block by the same :class:`~stepsound.cue.metronome.Metronome`
that plays live, streamed to disk (memory stays flat for any length), optionally
mixed over the runner's own music (streamed and resampled block by block too).
A sidecar ``<output>.clicks.csv`` lists every beat: output sample index, time,
target cadence, kind and whether it sounds.
"""
from __future__ import annotations

import contextlib
import csv
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stepsound.atomic import atomic_open, atomic_path
from stepsound.errors import AudioFileError, ParameterError
from stepsound.cue.metronome import KIND_NAMES, Metronome, MetronomeSettings, make_metronome
from stepsound.units import format_duration

__all__ = ["RenderResult", "RenderSettings", "render_cue_track", "render_track", "StreamResampler", "MusicReader",
           "FORMATS"]

#: Output file extension -> (libsndfile format, default subtype).
FORMATS = {
    ".wav": ("WAV", "PCM_16"),
    ".flac": ("FLAC", "PCM_16"),
    ".ogg": ("OGG", "VORBIS"),
    ".oga": ("OGG", "VORBIS"),
    ".mp3": ("MP3", "MPEG_LAYER_III"),
}
#: Longest track rendered (catches typos such as "45h").
MAX_DURATION_S = 24 * 3600.0
DEFAULT_BLOCK_SIZE = 65536


def sidecar_path(output: Path) -> Path:
    """``out.wav`` -> ``out.wav.clicks.csv`` (so ``out.mp3`` beside it has a list of its own)."""
    return output.with_name(output.name + ".clicks.csv")


class StreamResampler:
    """Polyphase resampling by ``up/down``, block by block, equal to :func:`scipy.signal.resample_poly`.

    Output sample ``m`` is computed from the input samples within the filter
    span around ``m * down / up``; input is pulled from a reader as needed
    and discarded once no later output needs it, so memory is bounded by
    the block size plus the filter length.

    Parameters
    ----------
    up, down : int >= 1
    read : callable
        ``read(n) -> np.ndarray [shape=(<=n, channels), float32]``; fewer than
        ``n`` frames means the end of the input (zeros follow).
    channels : int
    """

    def __init__(self, up: int, down: int, read, channels: int):
        from scipy.signal import firwin

        g = math.gcd(up, down)
        self.up, self.down = up // g, down // g
        max_rate = max(self.up, self.down)
        half_len = 10 * max_rate
        h = firwin(2 * half_len + 1, 1.0 / max_rate, window=("kaiser", 5.0)) * self.up
        pre_pad = self.down - half_len % self.down
        self.h = np.concatenate([np.zeros(pre_pad), h])
        self.delay = (half_len + pre_pad) // self.down  # output samples
        self._read = read
        self.channels = channels
        self._buf = np.zeros((0, channels), np.float64)
        self._buf_start = 0  # input index of _buf[0]
        self._eof = False
        self._out_pos = 0  # next output sample (before delay removal)

    def _ensure(self, a: int, b: int) -> np.ndarray:
        """Input frames [a, b) (zeros beyond the end of the input)."""
        # drop what is no longer needed
        if a > self._buf_start:
            drop = min(a - self._buf_start, len(self._buf))
            self._buf = self._buf[drop:]
            self._buf_start += drop
        have_end = self._buf_start + len(self._buf)
        if b > have_end and not self._eof:
            want = max(b - have_end, 65536)
            chunk = self._read(want)
            if len(chunk) < want:
                self._eof = True
            if len(chunk):
                self._buf = np.concatenate([self._buf, np.asarray(chunk, np.float64)])
        have_end = self._buf_start + len(self._buf)
        lo = a - self._buf_start
        x = self._buf[max(lo, 0): b - self._buf_start]
        if b > have_end:
            x = np.concatenate([x, np.zeros((b - max(have_end, a), self.channels))])
        return x

    def read(self, n: int) -> np.ndarray:
        """Next ``n`` output frames [shape=(n, channels), float64]."""
        from scipy.signal import upfirdn

        if n <= 0:
            return np.zeros((0, self.channels))
        m0 = self._out_pos + self.delay  # first index into the full (undelayed) output
        m1 = m0 + n
        up, down, L = self.up, self.down, len(self.h)
        a = max(0, (m0 * down - (L - 1)) // up)
        a -= a % down
        b = (m1 - 1) * down // up + 1
        x = self._ensure(a, b)
        y = upfirdn(self.h, x, up, down, axis=0)
        j0 = m0 - a * up // down
        out = y[j0: j0 + n]
        if len(out) < n:  # pragma: no cover - guarded by the index arithmetic
            out = np.concatenate([out, np.zeros((n - len(out), self.channels))])
        self._out_pos += n
        return out


class MusicReader:
    """The runner's music, streamed at the output rate and channel count, scaled by a gain.

    Parameters
    ----------
    path : str or Path
    sample_rate : int [Hz]
        Output rate; the music is resampled when it differs.
    channels : int
        Output channels: mono music is copied to every channel, surplus
        channels are averaged (to mono) or dropped (beyond stereo).
    gain_db : float [dB]
    """

    def __init__(self, path, sample_rate: int, channels: int, gain_db: float = 0.0):
        import soundfile as sf

        self.path = str(path)
        try:
            if not Path(self.path).is_file():
                raise FileNotFoundError(self.path)
            self._file = sf.SoundFile(self.path)
        except FileNotFoundError:
            raise AudioFileError(f"music file {self.path!r} not found") from None
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise AudioFileError(
                f"cannot read music file {self.path!r}: {exc} (convert it to WAV, FLAC, OGG or MP3)"
            ) from None
        self.sample_rate = int(self._file.samplerate)
        self.in_channels = int(self._file.channels)
        self.frames = int(self._file.frames)
        if self.frames <= 0:
            raise AudioFileError(f"music file {self.path!r} has no audio frames")
        self.channels = channels
        self.gain = float(10 ** (gain_db / 20))
        self.duration_s = self.frames / self.sample_rate
        if self.sample_rate != sample_rate:
            self._resampler = StreamResampler(sample_rate, self.sample_rate, self._read_raw, self.in_channels)
        else:
            self._resampler = None

    def _read_raw(self, n: int) -> np.ndarray:
        import soundfile as sf

        try:
            return self._file.read(n, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise AudioFileError(f"cannot read music file {self.path!r}: {exc}") from None

    def read_into(self, out: np.ndarray) -> None:
        """Fill ``out`` [shape=(n, channels), float32] with the next music frames (zeros after its end)."""
        n = out.shape[0]
        x = self._resampler.read(n) if self._resampler is not None else self._read_raw(n)
        got = len(x)
        if x.shape[1] == out.shape[1]:
            out[:got] = x
        elif x.shape[1] == 1:
            out[:got] = x[:, :1]
        elif out.shape[1] == 1:
            out[:got, 0] = x.mean(axis=1)
        else:
            out[:got] = x[:, : out.shape[1]]
        out[got:] = 0
        if self.gain != 1.0:
            out *= self.gain

    def close(self) -> None:
        self._file.close()


@dataclass
class RenderResult:
    """What :func:`render_track` wrote.

    Attributes
    ----------
    output, clicks_csv : Path or None
    sample_rate, channels, frames : int
    duration_s : float [seconds]
    n_beats, n_audible : int
    clipped_samples : int
        Samples limited to ±1 (music + clicks too loud).
    elapsed_s : float [seconds of wall time]
    """

    output: Path
    clicks_csv: Path | None
    sample_rate: int
    channels: int
    frames: int
    duration_s: float
    n_beats: int
    n_audible: int
    clipped_samples: int
    elapsed_s: float

    @property
    def speed(self) -> float:
        """Rendering speed [× real time]."""
        return self.duration_s / self.elapsed_s if self.elapsed_s > 0 else math.inf


def _output_format(output: Path, subtype: str | None):
    import soundfile as sf

    ext = output.suffix.lower()
    if ext not in FORMATS:
        raise ParameterError(
            f"unsupported output format {ext or '(no extension)'!r} for {str(output)!r}; use .wav, .flac, .ogg or .mp3"
        )
    fmt, default_subtype = FORMATS[ext]
    if fmt not in sf.available_formats():
        raise AudioFileError(f"this libsndfile cannot write {fmt} files; use .wav or .flac")
    subtype = subtype or default_subtype
    if not sf.check_format(fmt, subtype):
        raise ParameterError(f"subtype {subtype!r} is not valid for {fmt} output")
    return fmt, subtype


def render_track(
    output,
    metronome: Metronome,
    duration_s: float,
    *,
    channels: int = 1,
    music: MusicReader | None = None,
    subtype: str | None = None,
    clicks_csv: bool = True,
    block_size: int = DEFAULT_BLOCK_SIZE,
    progress=None,
) -> RenderResult:
    """Render ``duration_s`` of ``metronome`` (over ``music``) into an audio file, streaming.

    Parameters
    ----------
    output : str or Path
        ``.wav``, ``.flac``, ``.ogg`` or ``.mp3``.
    metronome : Metronome
        Fresh (rendered from its ``start_sample``); its sample rate is the file's.
    duration_s : float > 0 [seconds]
    channels : int
    music : MusicReader, optional
    subtype : str, optional
        libsndfile subtype (default PCM_16 for WAV/FLAC).
    clicks_csv : bool
        Write the sidecar ``<output>.clicks.csv``.
    block_size : int [frames]
    progress : callable, optional
        ``progress(done_s, total_s)`` after each block.

    Returns
    -------
    RenderResult

    Raises
    ------
    ParameterError
        Unsupported format/subtype, bad duration.
    AudioFileError
        Output directory missing, file not writable, write failed (disk
        full).  The track and its click list are written atomically: on any
        failure (or Ctrl-C) files that were there before are unchanged and no
        partial file is left.
    """
    import soundfile as sf

    output = Path(output)
    if not (math.isfinite(duration_s) and 0 < duration_s <= MAX_DURATION_S):
        raise ParameterError(f"duration {duration_s!r} s must be > 0 and at most 24 h")
    if not (isinstance(block_size, int) and block_size > 0):
        raise ParameterError(f"block_size={block_size!r} must be a positive integer")
    fmt, subtype = _output_format(output, subtype)
    if output.is_dir():
        raise AudioFileError(f"cannot write {str(output)!r}: it is a directory")
    if not output.parent.is_dir():
        raise AudioFileError(f"cannot write {str(output)!r}: directory {str(output.parent)!r} does not exist")
    sr = metronome.sample_rate
    n_total = int(round(duration_s * sr))
    csv_path = sidecar_path(output) if clicks_csv else None
    n_beats = n_audible = clipped = 0
    pos = 0
    t0 = time.perf_counter()
    buf = np.zeros((min(block_size, max(n_total, 1)), channels), np.float32)
    try:
        with contextlib.ExitStack() as outputs:
            tmp_out = outputs.enter_context(atomic_path(output))
            writer = None
            if csv_path is not None:
                writer = csv.writer(outputs.enter_context(atomic_open(csv_path, newline="")))
                writer.writerow(["sample", "time_s", "target_spm", "kind", "audible"])
            try:
                f = sf.SoundFile(tmp_out, "w", samplerate=sr, channels=channels, format=fmt, subtype=subtype)
            except (sf.LibsndfileError, RuntimeError, OSError) as exc:
                raise AudioFileError(f"cannot write {str(output)!r}: {exc}") from None
            finished = False
            try:
                while pos < n_total:
                    n = min(len(buf), n_total - pos)
                    view = buf[:n]
                    if music is not None:
                        music.read_into(view)
                    else:
                        view.fill(0.0)
                    metronome.render_into(view, pos, add=True)
                    if music is not None:
                        over = np.count_nonzero(np.abs(view) > 1.0)
                        if over:
                            clipped += int(over)
                            np.clip(view, -1.0, 1.0, out=view)
                    log = metronome.read_clicks()
                    try:
                        f.write(view)
                        if writer is not None and len(log):
                            writer.writerows(
                                (int(s), f"{s / sr:.6f}", f"{spm:.3f}", KIND_NAMES[int(k)], int(a))
                                for s, k, spm, a in zip(log.sample, log.kind, log.target_spm, log.audible)
                                if k != 2)
                    except (OSError, RuntimeError, sf.LibsndfileError) as exc:
                        raise AudioFileError(
                            f"writing {str(output)!r} failed after {format_duration(pos / sr)} (disk full?): {exc};"
                            " nothing was written (a previous file of that name is unchanged)"
                        ) from None
                    beats = log.kind != 2
                    n_beats += int(np.count_nonzero(beats))
                    n_audible += int(np.count_nonzero(log.audible & beats))
                    pos += n
                    if progress is not None:
                        progress(pos / sr, n_total / sr)
                finished = True
            finally:
                try:
                    f.close()
                except (OSError, RuntimeError, sf.LibsndfileError) as exc:
                    if finished:   # all was written but the file cannot be finished: the render failed
                        raise AudioFileError(f"cannot finish {str(output)!r}: {exc}") from None
    except OSError as exc:   # the temporary files: cannot create, flush or rename
        raise AudioFileError(f"cannot write {str(output)!r}: {exc.strerror or exc}") from None
    return RenderResult(
        output, csv_path, sr, channels, pos, pos / sr, n_beats, n_audible, clipped, time.perf_counter() - t0
    )


# ------------------------------------------------------------------------------ a whole cue track


@dataclass
class RenderSettings:
    """What ``stepsound render`` writes.

    Parameters
    ----------
    output : str or Path
        .wav, .flac, .ogg or .mp3 file.
    cues : MetronomeSettings
        Plan or constant cadence, sound, level.
    duration_s : float or None
        Track length [s]; None: the plan's, else the music's.
    sample_rate : int or None
        Output rate [Hz]; None: the music's, else 44100.
    channels : int or None
        1 or 2; None: the music's, else 1.
    music : str or None
        Mix the clicks over this music file.
    music_db : float
        Music gain [dB].
    subtype : str or None
        libsndfile subtype (e.g. PCM_24, FLOAT).
    clicks_csv : bool
        Write the ``<output>.clicks.csv`` sidecar.
    """

    output: str | Path
    cues: MetronomeSettings
    duration_s: float | None = None
    sample_rate: int | None = None
    channels: int | None = None
    music: str | None = None
    music_db: float = -6.0
    subtype: str | None = None
    clicks_csv: bool = True


def render_cue_track(settings: RenderSettings, say=None) -> tuple[RenderResult, str]:
    """Render a whole cue track to disk (atomically; memory stays flat).

    Parameters
    ----------
    settings : RenderSettings
    say : callable or None
        Receives one-line notes (e.g. the music ends before the track).

    Returns
    -------
    (RenderResult, str)
        What was written, and what it plays ("plan fade", "170 spm").
    """
    output = Path(settings.output)
    _output_format(output, settings.subtype)  # usage errors before any work
    duration_s = settings.duration_s
    music = None
    try:
        if settings.music:
            import soundfile as sf

            try:
                if not Path(settings.music).is_file():
                    raise FileNotFoundError(settings.music)
                info = sf.info(settings.music)
            except FileNotFoundError:
                raise AudioFileError(f"music file {settings.music!r} not found") from None
            except (sf.LibsndfileError, RuntimeError, OSError) as exc:
                raise AudioFileError(
                    f"cannot read music file {settings.music!r}: {exc} (convert it to WAV, FLAC, OGG or MP3)"
                ) from None
            sample_rate = settings.sample_rate or int(info.samplerate)
            channels = settings.channels or min(int(info.channels), 2)
            music = MusicReader(settings.music, sample_rate, channels, settings.music_db)
        else:
            sample_rate = settings.sample_rate or 44100
            channels = settings.channels or 1
        if fmt_needs_48k(output, settings.subtype) and sample_rate != 48000:
            raise ParameterError("Opus output needs --sample-rate 48000")
        m, plan_s, label = make_metronome(settings.cues, sample_rate)
        if duration_s is None:
            if math.isfinite(plan_s):
                duration_s = plan_s
            elif music is not None:
                duration_s = music.duration_s
            else:
                raise ParameterError("give --duration (e.g. --duration 45min) with --spm")
        if music is not None and music.duration_s + 0.5 < duration_s and say is not None:
            say(f"note: the music ({format_duration(music.duration_s)}) ends before the track"
                f" ({format_duration(duration_s)}); clicks continue alone")
        result = render_track(output, m, duration_s, channels=channels, music=music, subtype=settings.subtype,
                              clicks_csv=settings.clicks_csv)
    finally:
        if music is not None:
            music.close()
    return result, label


def fmt_needs_48k(output: Path, subtype: str | None) -> bool:
    return (subtype or "").upper() == "OPUS"
