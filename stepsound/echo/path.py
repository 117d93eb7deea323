"""Where our own output arrives in the microphone *now*: the session's clicks as a probe.

The sweep probes measure the echo path before a session; during it the
path can move (an audio server changes its latency when another program
starts playing, an xrun shifts input against output, and a new stream need
not have the latency the probe's stream had).  The session's own clicks are
a known signal too: every ``every_s`` the main thread deconvolves the last
``window_s`` of microphone by what was played (the same regularised least
squares as the sweep probe, :func:`stepsound.echo.roundtrip.deconvolve`) and finds
the shift that best lines this estimate up with the measured response.

Only while the canceller is failing (it removes less than half of the
microphone's energy where our output sounds, or bypasses itself), and only
when three of the last five estimates agree on a shift that fits the measured
response well, is the measured response loaded at the shifted delay.  While
the canceller works nothing moves it: steps louder than the clicks -- even
steps in time with the metronome, which look like an echo at a steady lag --
do not have the shape of the measured response and cannot pull it away.

The audio thread only copies samples into two rings; all the work is here.
"""
from __future__ import annotations

import collections
import math

import numpy as np
from scipy import fft as sp_fft   # releases the GIL: the audio callback never waits for it

from stepsound.audio.rings import SampleRing
from stepsound.errors import AudioDeviceError
from stepsound.echo.roundtrip import (MAX_ROUND_TRIP_S, MIN_PEAK_DB, PROBE_REGULARISATION, analyse_response, deconvolve,
                                 judge_sweeps, probe_band, trim_response)

#: Shifts within this of each other agree [seconds] (a path off by even 0.2 ms cancels badly at 8 kHz).
AGREE_S = 0.0001
#: This many of the last RECENT estimates must agree before the path moves.
AGREEING = 3
RECENT = 5
#: Regularisation of the deconvolution of our clicks when looking for the path (see roundtrip.deconvolve).
REGULARISATION = 1e-3
#: An estimate must fit the measured response at least this well (normalised correlation).
MIN_FIT = 0.5
#: Fine alignment looks this many samples either side of the working path.
FINE_SPAN = 6
#: ... and moves it when another shift would leave this many times less (2 dB).
FINE_GAIN = 1.6
#: The fine alignment judges the latest this much of what was heard [s] (a click or two).
FINE_S = 0.4
#: While failing, the quick look searches this far either side of the working path [s] ...
QUICK_SPAN_S = 0.25
#: ... over this much of one click's predicted echo [s] ...
QUICK_WINDOW_S = 0.03
#: ... and moves the path there when the echo has the predicted shape this exactly (normalised correlation).
QUICK_FIT = 0.95


def best_shift(estimate: np.ndarray, reference: np.ndarray, max_shift: int) -> tuple[int, float]:
    """The lag that lines ``reference`` up with ``estimate``, and how well it fits there.

    Parameters
    ----------
    estimate, reference : np.ndarray [shape=(n,)]
        Two responses of the same path on the same lag axis, seen through the
        same excitation (see :meth:`EchoPathTracker.update`).
    max_shift : int [samples]

    Returns
    -------
    (int, float)
        ``estimate[t] ~ reference[t - shift]``; the normalised correlation of
        the two over the span that holds 99 % of the reference's energy.
    """
    n = len(estimate) + len(reference)
    nfft = 1 << (n - 1).bit_length()
    xc = sp_fft.irfft(sp_fft.rfft(estimate, nfft) * np.conj(sp_fft.rfft(reference, nfft)), nfft)
    lags = np.concatenate([np.arange(0, max_shift + 1), np.arange(-max_shift, 0)])
    vals = np.concatenate([xc[:max_shift + 1], xc[nfft - max_shift:]])
    shift = int(lags[int(np.argmax(vals))])
    energy = np.cumsum(reference ** 2)
    if energy[-1] <= 0:
        return shift, 0.0
    a = int(np.searchsorted(energy, 0.005 * energy[-1]))
    b = int(np.searchsorted(energy, 0.995 * energy[-1])) + 1
    a, b = max(a, -shift, 0), min(b, len(estimate) - shift, len(reference))
    if b <= a:
        return shift, 0.0
    r = reference[a:b]
    e = estimate[a + shift:b + shift]
    norm = float(np.sqrt(np.dot(r, r) * np.dot(e, e)))
    return shift, (float(np.dot(r, e)) / norm if norm > 0 else 0.0)


def _convolve(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    n = len(x) + len(h)
    nfft = 1 << (n - 1).bit_length()
    return sp_fft.irfft(sp_fft.rfft(x, nfft) * sp_fft.rfft(h, nfft), nfft)[:n - 1]


class EchoPathTracker:
    """Follow the echo path of a live session from its own clicks.

    Parameters
    ----------
    sample_rate : int [Hz]
    canceller : stepsound.echo._aec.EchoCanceller
        Receives new paths through its ``load`` method.
    window_s : float [s]
        Audio each estimate looks at.
    every_s : float [s]
        Estimate this often (measured in samples heard, not wall time); four
        times as often while the canceller is failing or has a measured path
        (whose fine alignment is then checked).

    Attributes
    ----------
    estimates : int
        Estimates made (with enough of our output in the window).
    moves : int
        New paths handed to the canceller.
    last : dict or None
        The latest estimate: ``arrival`` [samples], ``peak_db`` [dB].
    """

    def __init__(self, sample_rate: int, canceller, window_s: float = 0.5, every_s: float = 0.5,
                 probe_starts=(), probe_length: int = 0):
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
        #: measured response (lag 0 = output sample), or None until one is known
        self.reference: np.ndarray | None = None
        self._delay0 = 0
        self._spectra = None
        #: shift of the path since the reference was measured [samples]
        self.shift = 0
        self.estimates = 0
        self.moves = 0
        self.fine_moves = 0
        self.quick_moves = 0
        self._quick_last = -1
        self.last: dict | None = None
        # sweep probes played by the session itself at its start (see SessionCore): captured whole
        self.probe_starts = [int(v) for v in probe_starts]
        self.probe_length = int(probe_length)
        self.probe_result: dict | None = None
        if self.probe_starts:
            cap = max(self.probe_starts) + self.probe_length + self.lag
            self._cap_mic = np.zeros(cap, np.float32)
            self._cap_played = np.zeros(cap, np.float32)

    # -- audio thread ---------------------------------------------------------
    def push(self, mic: np.ndarray, played: np.ndarray) -> None:
        """Keep a copy of one block (audio thread: copies only)."""
        self.mic_ring.push(mic)
        self.played_ring.push(played)

    # -- main thread ----------------------------------------------------------
    def _roll(self, buf: np.ndarray, ring: SampleRing, n: int, capture: np.ndarray | None = None) -> None:
        """Move the ``n`` oldest samples of ``ring`` onto the end of ``buf`` (and into ``capture``
        while the probe's span is being captured)."""
        ring.pop_into(self._chunk[:n])
        if capture is not None and self.heard < len(capture):
            m = min(n, len(capture) - self.heard)
            capture[self.heard:self.heard + m] = self._chunk[:m]
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
        self._roll(self.mic, self.mic_ring, n, getattr(self, "_cap_mic", None))
        self._roll(self.played, self.played_ring, n, getattr(self, "_cap_played", None))
        self.heard += n
        if self.probe_starts and self.probe_result is None:
            return self._judge_probe() if self.heard >= len(self._cap_mic) else False
        if self.heard < self._next:
            return False
        failing = self.canceller.failing
        # look often while the canceller is failing (a move must be found within a click or two) or works
        # from a measured path (its fine alignment follows moves of a sample or two); otherwise now and then
        quick = failing or self.reference is not None
        self._next = self.heard + (self.every // 4 if quick else self.every)
        if float(np.dot(self.played, self.played)) < 1e-6:
            return False     # the metronome is silent: nothing to learn from
        if not failing and self.reference is not None:
            # while it works only the fine alignment is checked: a path one or two samples off still
            # removes most of a click's energy, but not its sharp start, which the detector then hears
            self._recent.clear()
            return self._align()
        if self.reference is not None and self._quick():
            return True
        response = deconvolve(self.mic, self.played, self.lag, REGULARISATION)
        est = analyse_response(response, self.sample_rate)
        self.estimates += 1
        self.last = est
        if est["peak_db"] < MIN_PEAK_DB:
            self._recent.append(None)
            return False
        if self.reference is None:
            # no measured response (the probe was refused or skipped): the clicks' own estimate,
            # once three agree on where they arrive
            self._recent.append(est["arrival"])
            if self._agreed() is None:
                return False
            # the response itself is best taken with little regularisation (down to 50 dB under the
            # clicks' loudest band: 26 dB of cancellation in a small room instead of 12)
            fine = deconvolve(self.mic, self.played, self.lag, 1e-5)
            fine_est = analyse_response(fine, self.sample_rate)
            self.set_reference(trim_response(fine, fine_est, self.sample_rate), fine_est["arrival"])
            self.canceller.load(self._delay0, *self._spectra)
            self.moves += 1
            self._recent.clear()
            return True
        # the measured response seen through this window's clicks, as the estimate sees the path
        seen = deconvolve(_convolve(self.played, self.reference)[:len(self.played)], self.played, self.lag,
                          REGULARISATION)
        shift, fit = best_shift(response, seen, self.lag // 2)
        self.last = dict(est, shift=shift, fit=fit)
        self._recent.append(shift if fit >= MIN_FIT else None)
        shift = self._agreed()
        if shift is None:
            return False
        shift = self._best_aligned(shift)[0]
        if shift == self.shift:
            return False
        # the path moved: the measured response at the delay the clicks now show (what the filter
        # learned while the path was wrong is dropped; a fresh estimate from clicks would be noisier)
        self.canceller.load(self._delay0 + shift, *self._spectra)
        self.shift = shift
        self.moves += 1
        self._recent.clear()
        return True

    def _best_aligned(self, shift: int, span: int = FINE_SPAN) -> tuple[int, float, float]:
        """The shift within ``span`` samples of ``shift`` at which the canceller, with its path moved
        there and its present gain, would leave the least of the latest clicks' echo.

        Returns
        -------
        (int, float, float)
            That shift, and what would be left there and at ``self.shift`` (energy in the latest
            ``FINE_S`` of the microphone).
        """
        y = _convolve(self.played, self.reference)[:len(self.played)]
        tail = min(len(y), int(FINE_S * self.sample_rate))     # the latest click or two decide
        start = len(y) - tail
        g = float(self.canceller.gain) if self.canceller.gain > 0 else 1.0

        def left(s: int) -> float:
            # the echo predicted with the path moved by s samples is y[t - s]
            if abs(s) >= tail:
                return math.inf
            if s >= 0:
                a, b = self.mic[start:], y[start - s:len(y) - s]
            else:
                a, b = self.mic[start:len(y) + s], y[start - s:]
            return float(np.dot(a, a) - 2.0 * g * np.dot(a, b) + g * g * np.dot(b, b))

        values = {s: left(s) for s in range(shift - span, shift + span + 1)}
        best = min(values, key=values.get)
        now = values.get(self.shift, left(self.shift))
        return best, values[best], now

    def _quick(self) -> bool:
        """While failing: where did the latest click whose echo can be heard whole arrive?

        The estimates of :meth:`update` deconvolve a second of audio, which after a move of the
        round trip still holds the clicks from before it for half a second or more: three
        agreeing estimates took about three clicks, each counted as a step.  This looks at one
        click: the measured response predicts its echo's shape, and the shift (within
        ``QUICK_SPAN_S`` of the working path) where the microphone holds that shape with a
        normalised correlation of at least ``QUICK_FIT`` is taken at once.  A click under a
        step, or a room whose echo does not match the measured shape that exactly, gives a lower
        fit, and the slower estimates decide.

        Returns
        -------
        bool
            True when the path was moved.
        """
        sr = self.sample_rate
        span = int(QUICK_SPAN_S * sr)
        width = int(QUICK_WINDOW_S * sr)
        pre = int(0.002 * sr)
        base = self.arrival_samples - self.shift          # where the reference itself puts the echo
        n = len(self.played)
        level = np.abs(self.played)
        peak = float(level.max())
        if peak <= 0.0:
            return False
        loud = np.flatnonzero(level > 0.1 * peak)
        # onsets: loud samples after 5 ms of quiet
        gap = int(0.005 * sr)
        starts = loud[np.concatenate([[True], np.diff(loud) > gap])] if loud.size else loud
        latest_ok = n - (base + self.shift + span + width)   # its echo's window is heard whole
        starts = starts[(starts <= latest_ok) & (starts - pre + base + self.shift - span >= 0)]
        if not starts.size:
            return False
        c = int(starts[-1])
        absolute = self.heard - n + c
        if absolute <= self._quick_last:
            return False
        self._quick_last = absolute
        y = _convolve(self.played[max(0, c - pre):c + width], self.reference)
        # the predicted echo of this click, from pre before the reference's arrival on
        a0 = base + (c - max(0, c - pre)) - pre
        shape = y[a0:a0 + width + pre]
        e_shape = float(np.dot(shape, shape))
        if len(shape) < width or e_shape <= 0.0:
            return False
        lo = c - pre + base + self.shift - span
        seg = self.mic[lo:lo + 2 * span + len(shape)]
        nfft = 1 << (len(seg) + len(shape)).bit_length()
        corr = sp_fft.irfft(sp_fft.rfft(seg, nfft) * np.conj(sp_fft.rfft(shape, nfft)), nfft)[:2 * span + 1]
        energy = np.concatenate([[0.0], np.cumsum(seg.astype(np.float64) ** 2)])
        window = energy[len(shape):len(shape) + 2 * span + 1] - energy[:2 * span + 1]
        ncc = corr / np.sqrt(np.maximum(window, 1e-30) * e_shape)
        # only where the microphone holds about as much as the echo predicted (a near-silent stretch has
        # no shape to match: its correlation is rounding noise over nothing)
        ncc[window < 0.25 * e_shape] = 0.0
        k = int(np.argmax(ncc))
        found = self.shift - span + k
        # a click from before the move, or a path a sample or two off (the fine alignment's job)
        if not ncc[k] >= QUICK_FIT or abs(found - self.shift) <= FINE_SPAN:
            return False
        shift = self._best_aligned(found)[0]
        if abs(shift - found) == FINE_SPAN:     # no minimum within the fine span: keep what the shape said
            shift = found
        self.canceller.load(self._delay0 + shift, *self._spectra)
        self.shift = shift
        self.moves += 1
        self.quick_moves += 1
        self._recent.clear()
        return True

    def _align(self) -> bool:
        """Move the working path by a few samples when that leaves clearly less of the echo."""
        shift, best, now = self._best_aligned(self.shift)
        # a best shift at the edge of the span is no minimum: the echo is further away than a fine
        # alignment reaches (the path moved; the quick look or the estimates will find it)
        if shift == self.shift or not best * FINE_GAIN < now or abs(shift - self.shift) == FINE_SPAN:
            return False
        self.canceller.load(self._delay0 + shift, *self._spectra)
        self.shift = shift
        self.moves += 1
        self.fine_moves += 1
        return True

    def _judge_probe(self) -> bool:
        """Deconvolve each sweep the session played; take the path if the measurement is clean."""
        responses = [deconvolve(self._cap_mic[s:s + self.probe_length + self.lag],
                                self._cap_played[s:s + self.probe_length + self.lag], self.lag, PROBE_REGULARISATION,
                                probe_band(self.sample_rate))
                     for s in self.probe_starts]
        del self._cap_mic, self._cap_played
        try:
            res = judge_sweeps(responses, self.sample_rate)
        except AudioDeviceError as exc:     # refused, or not heard: the clicks will show the path
            self.probe_result = {"error": str(exc)}
            return False
        res["sample_rate"] = self.sample_rate
        self.probe_result = res
        self.set_reference(res["response"], res["round_trip_samples"])
        self.canceller.load(self._delay0, *self._spectra)
        self.moves += 1
        self._recent.clear()
        return True

    @property
    def arrival_samples(self) -> int:
        """Where the working path puts our output's arrival in the microphone [samples after it was
        played] (meaningful once a reference is set)."""
        return int(self._delay0 + self.shift + self.canceller.pre_samples)

    def set_reference(self, response: np.ndarray, arrival: int) -> None:
        """The measured response (lag 0 = output sample) the canceller runs from, and its arrival."""
        pre = self.canceller.pre_samples
        self.reference = np.zeros(self.lag)
        m = min(len(response), self.lag)
        self.reference[:m] = response[:m]
        self._delay0 = max(0, arrival - pre)
        self._spectra = self.canceller.spectra(self.reference[self._delay0:])
        self.shift = 0

    def _agreed(self) -> int | None:
        """A value that at least AGREEING of the recent estimates share (within AGREE_S), else None."""
        found = [a for a in self._recent if a is not None]
        tol = AGREE_S * self.sample_rate
        for a in reversed(found):
            near = [b for b in found if abs(b - a) <= tol]
            if len(near) >= AGREEING:
                return int(np.median(near))
        return None
