"""Atomic output files: all or nothing, never half a file.

Every file stepsound writes for the user (JSON, CSV, plots, reports, cue
tracks, profiles) goes through :func:`atomic_path` or :func:`atomic_open`:
the content is written to a temporary file in the same folder, flushed to
disk (``fsync``) and renamed over the destination only when everything was
written.  On any error -- a full disk, an exception, Ctrl-C -- the temporary
file is removed and a file that was there before stays untouched.

Examples
--------
>>> with atomic_open("out.json") as fh:            # doctest: +SKIP
...     fh.write("{}")
>>> with atomic_path("plot.png") as tmp:           # doctest: +SKIP
...     fig.savefig(tmp)                           # any writer that takes a path
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from typing import IO, Iterator

from stepsound.errors import StepsoundError

__all__ = ["atomic_path", "atomic_open", "output_file", "TEMP_MARK"]

#: Part of every temporary name (``.<name>.<random>.part<ext>``).
TEMP_MARK = ".part"


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: str) -> None:
    """Make the rename itself durable (best effort: not every file system allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _final_mode(path: str) -> int:
    """Permission bits for the new file: the old file's, else what ``open()`` would give."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path to write; rename it over ``path`` when the block succeeds.

    Parameters
    ----------
    path : str or PathLike
        Destination file.  Its folder must exist.  A symbolic link is
        followed (its target is replaced, the link stays); a destination
        that exists but is not a regular file (a device such as
        ``/dev/stdout``, a pipe) is written directly.  The temporary name keeps
        the destination's extension (``.<name>.<random>.part<ext>``) so that
        writers choosing a format by extension (soundfile, matplotlib) still
        do.

    Yields
    ------
    tmp : str
        Where to write.  It exists (empty) when the block starts.

    Raises
    ------
    OSError
        The temporary file cannot be created, flushed or renamed (the
        destination is unchanged).  Whatever the block raises is re-raised
        after the temporary file is removed.
    """
    path = os.path.realpath(os.fspath(path))   # through a symlink: replace its target, keep the link
    if os.path.exists(path) and not os.path.isfile(path):
        # a device or a pipe (/dev/stdout, /dev/null): nothing to rename over, write it directly
        yield path
        return
    folder = os.path.dirname(path)
    base = os.path.basename(path)
    ext = os.path.splitext(base)[1]
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=f"{TEMP_MARK}{ext}", dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, _final_mode(path))
        _fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    _fsync_dir(folder)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", *, encoding: str | None = "utf-8",
                newline: str | None = None) -> Iterator[IO]:
    """Open a temporary file for writing; rename it over ``path`` when the block succeeds.

    Parameters
    ----------
    path : str or PathLike
        Destination file (its folder must exist).
    mode : {'w', 'wb'}
    encoding, newline
        As for :func:`open` (``encoding`` is ignored in binary mode).

    Yields
    ------
    file object
        Flushed and fsync'ed before the rename.

    Raises
    ------
    OSError
        As :func:`atomic_path`; the destination is unchanged.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode={mode!r} must be 'w' or 'wb'")
    with atomic_path(path) as tmp:
        kwargs = {} if "b" in mode else {"encoding": encoding, "newline": newline}
        with open(tmp, mode, **kwargs) as fh:
            yield fh
            fh.flush()


@contextlib.contextmanager
def output_file(path: str, *, binary: bool = False, newline: str | None = None) -> Iterator[IO]:
    """An output of the command line: ``-`` is standard output, anything else an atomic file.

    Parameters
    ----------
    path : str
        ``-`` or a file path.
    binary : bool
        Open in binary mode (standard output's buffer for ``-``).
    newline : str, optional
        As for :func:`open` (text mode).

    Yields
    ------
    file object

    Raises
    ------
    StepsoundError
        One line naming the output when it cannot be written (the previous
        file, if any, is unchanged).  ``BrokenPipeError`` on standard output
        is re-raised as is (the reader went away).
    """
    import sys

    name = "standard output" if path == "-" else path
    try:
        if path == "-":
            out = sys.stdout.buffer if binary else sys.stdout
            yield out
            out.flush()
        else:
            with atomic_open(path, "wb" if binary else "w", newline=newline) as fh:
                yield fh
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise StepsoundError(f"{name}: cannot write ({exc.strerror or exc})") from None
