"""Where our own output arrives in the microphone *now*: the session's clicks as a probe.

The sweep probes measure the echo path before a session; during it the
path can move (an audio server changes its latency when another program
starts playing, an xrun shifts input against output).  The session's own
clicks are a known signal too: every ``every_s`` the main thread deconvolves
the last ``window_s`` of microphone by what was played (the same regularised
least squares as the sweep probe, see :func:`stepsound.roundtrip.deconvolve`),
and when the canceller has become worse than nothing (it bypasses itself:
the echo is no longer where it models it) and three of the last five
estimates agree on a clean arrival, the measured response is loaded at the
delay the clicks now show.  While the canceller works, nothing moves it:
steps louder than the clicks -- even steps in time with the metronome, which
look like an echo at a steady lag -- cannot pull it away.

The audio thread only copies samples into two rings; all the work is here.
"""
from __future__ import annotations

import collections

import numpy as np

from stepsound.rings import SampleRing
from stepsound.roundtrip import MAX_ROUND_TRIP_S, MIN_PEAK_DB, analyse_response, deconvolve, trim_response

#: Estimates within this of each other agree [seconds].
AGREE_S = 0.001
#: This many of the last RECENT estimates must agree before the path moves.
AGREEING = 3
RECENT = 5
#: A move smaller than this is left to the adaptive filter (its pre-margin is 8 ms) [seconds].
MOVE_S = 0.003


class EchoPathTracker:
    """Follow the echo path of a live session from its own clicks.

    Parameters
    ----------
    sample_rate : int [Hz]
    canceller : stepsound._aec.EchoCanceller
        Receives new paths through its ``load`` method.
    window_s : float [s]
        Audio each estimate looks at.
    every_s : float [s]
        Estimate this often (measured in samples heard, not wall time).

    Attributes
    ----------
    estimates : int
        Estimates made (with enough of our output in the window).
    moves : int
        New paths handed to the canceller.
    last : dict or None
        The latest estimate: ``arrival`` [samples], ``peak_db`` [dB].
    """

    def __init__(self, sample_rate: int, canceller, window_s: float = 0.5, every_s: float = 0.125):
        self.sample_rate = int(sample_rate)
        self.canceller = canceller
        self.window = int(window_s * sample_rate)
        self.lag = int(MAX_ROUND_TRIP_S * sample_rate)
        self.every = int(every_s * sample_rate)
        size = self.window + self.lag
        self.mic = np.zeros(size, np.float32)
        self.played = np.zeros(size, np.float32)
        self.mic_ring = SampleRing(4 * size)
        self.played_ring = SampleRing(4 * size)
        self._chunk = np.zeros(4 * size, np.float32)
        self.heard = 0
        self._next = size
        self._recent: collections.deque = collections.deque(maxlen=RECENT)
        self.base: int | None = None
        #: (real, imag) partition spectra of the measured response, or None
        self.reference = None
        self.estimates = 0
        self.moves = 0
        self.last: dict | None = None

    # -- audio thread ---------------------------------------------------------
    def push(self, mic: np.ndarray, played: np.ndarray) -> None:
        """Keep a copy of one block (audio thread: copies only)."""
        self.mic_ring.push(mic)
        self.played_ring.push(played)

    # -- main thread ----------------------------------------------------------
    def _roll(self, buf: np.ndarray, ring: SampleRing, n: int) -> None:
        """Move the ``n`` oldest samples of ``ring`` onto the end of ``buf``."""
        ring.pop_into(self._chunk[:n])
        if n >= len(buf):
            buf[:] = self._chunk[n - len(buf):n]
        elif n:
            buf[:-n] = buf[n:]
            buf[-n:] = self._chunk[:n]

    def update(self) -> bool:
        """Take what the audio thread copied; estimate when due.

        Returns
        -------
        bool
            True when a new path was handed to the canceller.
        """
        # the same count from both rings keeps them aligned (the audio thread may push meanwhile)
        n = min(self.mic_ring.available(), self.played_ring.available(), len(self._chunk))
        self._roll(self.mic, self.mic_ring, n)
        self._roll(self.played, self.played_ring, n)
        self.heard += n
        if self.heard < self._next:
            return False
        self._next = self.heard + self.every
        if float(np.dot(self.played, self.played)) < 1e-6:
            return False     # the metronome is silent: nothing to learn from
        response = deconvolve(self.mic, self.played, self.lag)
        est = analyse_response(response, self.sample_rate)
        self.estimates += 1
        self.last = est
        self._recent.append(est["arrival"] if est["peak_db"] >= MIN_PEAK_DB else None)
        arrival = self._agreed()
        if arrival is None:
            return False
        if self.reference is None:
            # no measured response (the probe was refused or skipped): start from this one
            delay = arrival - self.canceller.pre_samples
            self.reference = self.canceller.spectra(trim_response(response, est, self.sample_rate)[max(0, delay):])
            self.canceller.load(delay, *self.reference)
        elif self.base is None:
            self.base = arrival      # where the clicks arrive while the measured path holds
            return False
        elif not self.canceller.bypass:
            return False             # the canceller still removes more than it adds: the path holds
        else:
            # the path moved (or the filter went wrong): the measured response at the delay the clicks
            # now show; what the filter learned meanwhile is dropped (a fresh estimate would be noisier)
            shift = arrival - self.base if abs(arrival - self.base) > MOVE_S * self.sample_rate else 0
            self.canceller.load(self.canceller.delay + shift, *self.reference)
            self.base = arrival if shift else self.base
        if self.base is None:
            self.base = arrival
        self.moves += 1
        self._recent.clear()
        return True

    def _agreed(self) -> int | None:
        """An arrival that at least AGREEING of the recent estimates share (within AGREE_S), else None."""
        found = [a for a in self._recent if a is not None]
        tol = AGREE_S * self.sample_rate
        for a in reversed(found):
            near = [b for b in found if abs(b - a) <= tol]
            if len(near) >= AGREEING:
                return int(np.median(near))
        return None
