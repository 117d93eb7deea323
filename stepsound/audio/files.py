"""Audio sources: recordings read block by block, mixed to mono.

WAV/FLAC/OGG (and MP3 with libsndfile >= 1.1) are read through soundfile.
Other containers (M4A/AAC, …) are decoded by an ``ffmpeg`` process piping raw
float32 samples, when ffmpeg is installed.  Either way memory stays flat:
only one block is held at a time.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from stepsound.detect.detector import check_sample_rate
from stepsound.errors import AudioFileError, ParameterError

#: Extensions ``analyze`` picks up when given a folder.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".m4a", ".aac", ".aiff", ".aif", ".opus", ".webm")

DEFAULT_BLOCK_SIZE = 65536


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds.

    Attributes
    ----------
    path : str
    sample_rate : int [Hz]
    channels : int
    frames : int or None
        Number of sample frames, when the container says so.
    decoder : str
        "soundfile" or "ffmpeg".
    """

    path: str
    sample_rate: int
    channels: int
    frames: int | None
    decoder: str

    @property
    def duration_s(self) -> float | None:
        """Duration [seconds], when known."""
        return None if self.frames is None else self.frames / self.sample_rate


def _fail(path: str, problem: str) -> AudioFileError:
    return AudioFileError(f"{path}: {problem}")


class _MutedStderr:
    """Keep what C decoders print straight to file descriptor 2 off the terminal.

    libsndfile's MP3 decoder (mpg123) and others write notes such as
    "Illegal Audio-MPEG-Header" to the process's stderr themselves; stepsound
    says what went wrong in one line of its own instead.  Use as a context
    manager around each call into the decoder; the notes are discarded.
    Python's own ``sys.stderr`` is flushed first, so nothing of ours is lost.
    """

    def __init__(self):
        import tempfile

        self._sink = tempfile.TemporaryFile()
        self._saved = None

    def __enter__(self):
        import sys

        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        try:
            self._saved = os.dup(2)
            os.dup2(self._sink.fileno(), 2)
        except OSError:          # no fd 2 at all: nothing to keep quiet
            self._saved = None
        return self

    def __exit__(self, *exc):
        if self._saved is not None:
            os.dup2(self._saved, 2)
            os.close(self._saved)
            self._saved = None
            self._sink.seek(0)
            self._sink.truncate()
        return False

    def close(self) -> None:
        self._sink.close()


_WAV_DATA = re.compile(r"^data\s*:\s*(\d+)\s*\(should be \d+\)", re.MULTILINE)
_WAV_ALIGN = re.compile(r"^\s*Block Align\s*:\s*(\d+)", re.MULTILINE)


def _announced_frames(log: str) -> int | None:
    """Frames a truncated WAV header announces (libsndfile reads what is there and notes the rest in its log)."""
    data, align = _WAV_DATA.search(log or ""), _WAV_ALIGN.search(log or "")
    if not (data and align) or int(align.group(1)) <= 0:
        return None
    return int(data.group(1)) // int(align.group(1))


def _decoder_problem(exc: BaseException) -> str:
    """The useful part of a soundfile/libsndfile error message."""
    text = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    if "Error opening" in text and ": " in text:
        text = text.split(": ", 1)[1]
    if "does not exist or is not a regular file" in text:
        # libsndfile's words when no decoder recognises the content (the file itself is fine)
        text = "format not recognised"
    elif "Format not recognised" in text:
        text = "format not recognised"
    return text.strip().rstrip(".")


def _check_path(path: str) -> None:
    if not os.path.exists(path):
        raise _fail(path, "no such file")
    if os.path.isdir(path):
        raise _fail(path, "is a folder, not an audio file")
    if not os.access(path, os.R_OK):
        raise _fail(path, "permission denied")
    if os.path.getsize(path) == 0:
        raise _fail(path, "empty file (0 bytes)")


class FileSource:
    """A recording, read as mono float32 blocks.

    Parameters
    ----------
    path : str
    block_size : int [samples]
        Frames per block yielded by :meth:`blocks` (the last may be shorter).

    Raises
    ------
    AudioFileError
        Missing, empty, unreadable or corrupt file; unsupported sample rate.
    """

    def __init__(self, path: str, block_size: int = DEFAULT_BLOCK_SIZE):
        if not (int(block_size) >= 1):
            raise ParameterError(f"block_size={block_size} must be a positive number of samples")
        self.path = os.fspath(path)
        self.block_size = int(block_size)
        #: Set when reading stopped before the end (truncated or corrupt data): what was read is usable.
        self.warning: str | None = None
        self._announced_frames: int | None = None
        _check_path(self.path)
        self.info = self._probe()
        try:
            check_sample_rate(self.info.sample_rate)
        except ParameterError as exc:
            raise _fail(self.path, f"unsupported sample rate: {exc}") from None
        if self.info.channels < 1:
            raise _fail(self.path, "has no audio channels")

    # -- probing -------------------------------------------------------------
    def _probe(self) -> AudioInfo:
        import soundfile as sf

        muted = _MutedStderr()
        try:
            with muted, sf.SoundFile(self.path) as f:
                self._announced_frames = _announced_frames(f.extra_info)
                return AudioInfo(self.path, int(f.samplerate), int(f.channels), int(f.frames), "soundfile")
        except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError / TypeError
            sf_problem = _decoder_problem(exc)
        finally:
            muted.close()
        if shutil.which("ffprobe") and shutil.which("ffmpeg"):
            return self._probe_ffmpeg(sf_problem)
        ext = os.path.splitext(self.path)[1].lower()
        hint = "; install ffmpeg to read this format" if ext in (".m4a", ".aac", ".opus", ".webm") else ""
        raise _fail(self.path, f"not an audio file ({sf_problem}{hint})")

    def _probe_ffmpeg(self, sf_problem: str) -> AudioInfo:
        cmd = ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
               "stream=sample_rate,channels,duration", "-of", "json", self.path]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            streams = json.loads(res.stdout or "{}").get("streams", [])
        except (OSError, subprocess.SubprocessError, ValueError):
            streams = []
        if not streams:
            raise _fail(self.path, f"not an audio file ({sf_problem})")
        st = streams[0]
        try:
            rate = int(st["sample_rate"])
            channels = int(st["channels"])
        except (KeyError, ValueError, TypeError):
            raise _fail(self.path, f"not an audio file ({sf_problem})") from None
        if rate <= 0 or channels <= 0:
            raise _fail(self.path, f"not an audio file ({sf_problem})")
        frames = None
        try:
            frames = int(round(float(st["duration"]) * rate))
        except (KeyError, ValueError, TypeError):
            pass
        return AudioInfo(self.path, rate, channels, frames, "ffmpeg")

    # -- reading ---------------------------------------------------------------
    def blocks(self) -> Iterator[np.ndarray]:
        """Yield mono float32 blocks of ``block_size`` samples (the last may be shorter).

        The yielded array is reused: copy it to keep it past the next block.
        """
        if self.info.decoder == "soundfile":
            yield from self._blocks_soundfile()
        else:
            yield from self._blocks_ffmpeg()

    def _stopped_early(self, done: int, problem: str) -> None:
        """Reading stopped at ``done`` frames: a warning when something was read, else an error."""
        if done == 0:
            raise _fail(self.path, f"no readable audio ({problem})")
        self.warning = (f"{self.path}: {problem}; analysed the readable part, "
                        f"{done / self.info.sample_rate:.2f} s")

    def _blocks_soundfile(self) -> Iterator[np.ndarray]:
        import soundfile as sf

        channels = self.info.channels
        buf = np.empty((self.block_size, channels), dtype=np.float32)
        mono = np.empty(self.block_size, dtype=np.float32)
        done = 0
        muted = _MutedStderr()
        try:
            with muted:
                f = sf.SoundFile(self.path)
            # only the MP3 decoder chatters while reading; other reads leave stderr alone (a live
            # display may be writing to it meanwhile)
            quiet = muted if f.format == "MP3" else contextlib.nullcontext()
            with f:
                while True:
                    try:
                        with quiet:
                            n = len(f.read(self.block_size, dtype="float32", always_2d=True, out=buf))
                    except Exception as exc:
                        self._stopped_early(done, f"corrupt audio data after {done / self.info.sample_rate:.2f} s "
                                                  f"({_decoder_problem(exc)})")
                        return
                    if n == 0:
                        break
                    done += n
                    if channels == 1:
                        np.copyto(mono[:n], buf[:n, 0])
                    else:
                        np.mean(buf[:n], axis=1, out=mono[:n])
                    yield mono[:n]
                    if n < self.block_size:
                        break
        except AudioFileError:
            raise
        except Exception as exc:
            raise _fail(self.path, f"cannot read audio ({_decoder_problem(exc)})") from None
        finally:
            muted.close()
        frames = max(self.info.frames or 0, self._announced_frames or 0)
        if frames and done < frames:
            self._stopped_early(done, f"truncated after {done / self.info.sample_rate:.2f} s (the header "
                                      f"announces {frames / self.info.sample_rate:.2f} s)")

    def _blocks_ffmpeg(self) -> Iterator[np.ndarray]:
        cmd = ["ffmpeg", "-v", "error", "-nostdin", "-i", self.path, "-map", "0:a:0", "-f", "f32le",
               "-acodec", "pcm_f32le", "-ac", "1", "-ar", str(self.info.sample_rate), "-"]
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:
            raise _fail(self.path, f"cannot start ffmpeg ({exc})") from None
        mono = np.empty(self.block_size, dtype=np.float32)
        raw = memoryview(mono).cast("B")
        done = 0
        try:
            while True:
                got = 0
                want = self.block_size * 4
                while got < want:
                    n = proc.stdout.readinto(raw[got:want])
                    if not n:
                        break
                    got += n
                n_samples = got // 4
                if n_samples:
                    done += n_samples
                    yield mono[:n_samples]
                if got < want:
                    break
        finally:
            proc.stdout.close()
            if proc.poll() is None:     # stopped early by the consumer: do not wait for the whole decode
                proc.kill()
            err = proc.stderr.read().decode(errors="replace").strip()
            proc.stderr.close()
            code = proc.wait()
        if code != 0:
            self._stopped_early(done, f"ffmpeg stopped decoding after {done / self.info.sample_rate:.2f} s "
                                      f"({err.splitlines()[-1] if err else code})")


def find_audio_files(paths: list[str]) -> list[str]:
    """Expand folders into the audio files they hold (sorted), keep files as given."""
    out: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            for root, _dirs, files in os.walk(path):
                for name in sorted(files):
                    if name.lower().endswith(AUDIO_EXTENSIONS):
                        out.append(os.path.join(root, name))
        else:
            out.append(path)
    return out
