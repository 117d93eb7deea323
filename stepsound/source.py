"""Audio sources: recordings read block by block, mixed to mono.

WAV/FLAC/OGG (and MP3 with libsndfile >= 1.1) are read through soundfile.
Other containers (M4A/AAC, …) are decoded by an ``ffmpeg`` process piping raw
float32 samples, when ffmpeg is installed.  Either way memory stays flat:
only one block is held at a time.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from stepsound.detect import check_sample_rate
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

        try:
            with sf.SoundFile(self.path) as f:
                return AudioInfo(self.path, int(f.samplerate), int(f.channels), int(f.frames), "soundfile")
        except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError / TypeError
            sf_problem = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        if shutil.which("ffprobe") and shutil.which("ffmpeg"):
            return self._probe_ffmpeg(sf_problem)
        ext = os.path.splitext(self.path)[1].lower()
        hint = " (install ffmpeg to read this format)" if ext in (".m4a", ".aac", ".opus", ".webm", ".mp3") else ""
        raise _fail(self.path, f"not a readable audio file: {sf_problem}{hint}")

    def _probe_ffmpeg(self, sf_problem: str) -> AudioInfo:
        cmd = ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
               "stream=sample_rate,channels,duration", "-of", "json", self.path]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            streams = json.loads(res.stdout or "{}").get("streams", [])
        except (OSError, subprocess.SubprocessError, ValueError):
            streams = []
        if not streams:
            raise _fail(self.path, f"not a readable audio file: {sf_problem}")
        st = streams[0]
        try:
            rate = int(st["sample_rate"])
            channels = int(st["channels"])
        except (KeyError, ValueError, TypeError):
            raise _fail(self.path, f"not a readable audio file: {sf_problem}") from None
        if rate <= 0 or channels <= 0:
            raise _fail(self.path, f"not a readable audio file: {sf_problem}")
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

    def _blocks_soundfile(self) -> Iterator[np.ndarray]:
        import soundfile as sf

        channels = self.info.channels
        buf = np.empty((self.block_size, channels), dtype=np.float32)
        mono = np.empty(self.block_size, dtype=np.float32)
        done = 0
        try:
            with sf.SoundFile(self.path) as f:
                while True:
                    try:
                        n = f.read(self.block_size, dtype="float32", always_2d=True, out=buf)
                        n = len(n)
                    except Exception as exc:
                        raise _fail(self.path, f"corrupt audio data after {done / self.info.sample_rate:.2f} s "
                                               f"({str(exc).strip() or type(exc).__name__})") from None
                    if n == 0:
                        break
                    done += n
                    if channels == 1:
                        out = buf[:n, 0]
                        np.copyto(mono[:n], out)
                    else:
                        np.mean(buf[:n], axis=1, out=mono[:n])
                    yield mono[:n]
                    if n < self.block_size:
                        break
        except AudioFileError:
            raise
        except Exception as exc:
            raise _fail(self.path, f"cannot read audio ({str(exc).strip() or type(exc).__name__})") from None
        frames = self.info.frames
        if frames and done < frames:
            raise _fail(self.path, f"truncated: the header announces {frames} frames, only {done} could be read")

    def _blocks_ffmpeg(self) -> Iterator[np.ndarray]:
        cmd = ["ffmpeg", "-v", "error", "-nostdin", "-i", self.path, "-map", "0:a:0", "-f", "f32le",
               "-acodec", "pcm_f32le", "-ac", "1", "-ar", str(self.info.sample_rate), "-"]
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:
            raise _fail(self.path, f"cannot start ffmpeg ({exc})") from None
        mono = np.empty(self.block_size, dtype=np.float32)
        raw = memoryview(mono).cast("B")
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
                    yield mono[:n_samples]
                if got < want:
                    break
        finally:
            proc.stdout.close()
            err = proc.stderr.read().decode(errors="replace").strip()
            proc.stderr.close()
            code = proc.wait()
        if code != 0:
            raise _fail(self.path, f"ffmpeg could not decode it ({err.splitlines()[-1] if err else code})")


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
