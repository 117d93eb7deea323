# cython: language_level=3
"""Acoustic echo cancellation of our own output (clicks and cues) in the microphone.

In a live session the microphone hears the metronome as well as the runner.
What we played is known to the sample, so its leak into the microphone can be
*predicted and subtracted* before the step detector and the landing grader see
the signal: steps that land on or just after a click are then heard as they
are, and a click never makes a step louder.

:class:`EchoCanceller` convolves what we played with the measured echo
path (a partitioned-block frequency-domain convolution, overlap-save) over
the reference

    ref(t) = played(t - delay)          delay = round trip - pre-margin,

with ``partitions x frame`` taps (64 ms: the direct sound, the early
reflections and the speaker's own ringing) and subtracts the result.  The
path itself is *measured*, not adapted on the audio thread: by the sweep
probes before the session and from the session's own clicks during it
(:mod:`stepsound.echo.path`, on the main thread), and handed over with
:meth:`load`, taken at the next frame.  (An adaptive NLMS
filter was tried here first: with our sparse, narrow-band clicks and steps
louder than the clicks it converged slowly and drifted *away* from a good
measured path -- 30 dB of cancellation fell to 10 dB within a second -- so the
path is measured by least squares over whole windows instead.)

* **No added latency.**  The echo estimate of a frame needs the reference of
  the whole frame; since ``delay >= frame`` that part of our output has
  already been played, so the estimate is computed when the frame *starts* and
  each microphone sample is cleaned as it arrives.  Frames sit at absolute
  sample indices, so the output does not depend on how the audio is cut into
  blocks (bit-identical for any block sizes).
* **Never worse than nothing**: where the prediction adds more than it removes
  (the echo moved away from where the path puts it) the canceller passes the
  microphone through (:attr:`bypass`) until a path that fits is loaded, and
  says it is :attr:`failing` so the main thread looks for the new path.
* Allocation-free and GIL-free per block.
"""
from libc.math cimport log10, isfinite
cimport cython
import numpy as np
cimport numpy as cnp

cnp.import_array()

#: A frame where subtracting adds more than this share of the loudest recent echo frame's energy (and
#: doubles the frame) counts towards a bypass; smaller additions (a residue in a click's quiet tail) do not.
DEF WORSE_SHARE = 0.01


cdef class EchoCanceller:
    """Subtract our own output's echo from the microphone signal.

    Parameters
    ----------
    sample_rate : int [Hz]
    delay : int [samples]
        Reference delay: the output sample ``played[t - delay]`` is the
        earliest that can reach the microphone at ``t`` (the measured round
        trip minus :attr:`pre_samples`).  At least one frame.
    filter_s : float [s]
        Length of the modelled echo path (default 64 ms).
    pre_s : float [s]
        Where, within the filter, the direct sound is expected (default 8 ms):
        room for a band-limited response's onset and a round trip that gets
        a little shorter.
    history_s : float [s]
        Longest reference delay the session may move to (default 1 s).
    max_block : int [samples]
        Largest block :meth:`process` accepts.

    Attributes
    ----------
    frame : int [samples]
        Partition length (a power of two, about 2.7 ms).
    partitions : int
    delay : int [samples]
        Current reference delay (changes when a path is loaded or moved).
    loads : int
        Paths taken (:meth:`load`).
    bypass : bool
        The microphone is passed through: the loaded path adds more than it removes.
    failing : bool
    gain : float
        Least-squares gain on the loaded path (1 = as measured).
    echo_return_loss_db : float [dB]
    """

    cdef readonly int sample_rate, frame, partitions, n_fft, bins, max_block
    cdef readonly int pre_partitions, min_delay
    cdef readonly long long delay, sample_index, frame_index
    cdef double[::1] hist
    cdef long long hist_mask
    cdef double[::1] re, im, cos_t, sin_t
    cdef int[::1] bitrev
    cdef double[:, ::1] xr, xi, wr, wi, pwr, pwi
    cdef double[::1] y, e, mic_frame
    cdef double span_peak, echo_peak
    cdef double erle_num, erle_den, removed, predicted, sxy, syy
    cdef readonly double gain
    cdef long long gain_frames
    cdef bint frame_ready, pending, has_path
    cdef long long pending_delay
    cdef readonly int loads, worse
    cdef readonly bint bypass

    def __init__(self, int sample_rate, long long delay, *, double filter_s=0.064, double pre_s=0.008,
                 double history_s=1.0, int max_block=8192):
        if not (8000 <= sample_rate <= 384000):
            raise ValueError(f"sample_rate={sample_rate} must be 8000-384000 Hz")
        if not (0.01 <= filter_s <= 1.0) or not (0.0 <= pre_s < filter_s):
            raise ValueError(f"filter_s={filter_s}, pre_s={pre_s}: need 0.01 <= filter_s <= 1 and 0 <= pre_s < filter_s")
        if max_block < 1:
            raise ValueError(f"max_block={max_block} must be >= 1")
        self.sample_rate = sample_rate
        cdef int b = 16
        while b * 2 <= sample_rate * 0.004:
            b *= 2
        self.frame = b
        self.n_fft = 2 * b
        self.bins = b + 1
        self.partitions = max(2, <int>(filter_s * sample_rate / b + 0.999))
        self.pre_partitions = min(self.partitions - 1, <int>(pre_s * sample_rate / b + 0.5))
        self.min_delay = b
        self.max_block = max_block
        cdef long long size = 1
        while size < <long long>(history_s * sample_rate) + 2 * max_block + 4 * b:
            size *= 2
        self.hist = np.zeros(size, np.float64)
        self.hist_mask = size - 1
        n = self.n_fft
        self.re = np.zeros(n, np.float64)
        self.im = np.zeros(n, np.float64)
        k = np.arange(n // 2)
        self.cos_t = np.cos(2 * np.pi * k / n)
        self.sin_t = np.sin(2 * np.pi * k / n)
        bits = int(np.log2(n))
        self.bitrev = np.array([int(format(i, f"0{bits}b")[::-1], 2) for i in range(n)], np.int32)
        shape = (self.partitions, self.bins)
        self.xr = np.zeros(shape); self.xi = np.zeros(shape)
        self.wr = np.zeros(shape); self.wi = np.zeros(shape)
        self.pwr = np.zeros(shape); self.pwi = np.zeros(shape)
        self.y = np.zeros(b); self.e = np.zeros(b); self.mic_frame = np.zeros(b)
        self.set_delay(delay)
        self.reset()

    def reset(self):
        """Forget the echo path and the history (a fresh stream)."""
        self.hist[...] = 0.0
        self.xr[...] = 0.0
        self.xi[...] = 0.0
        self.wr[...] = 0.0
        self.wi[...] = 0.0
        self.y[...] = 0.0
        self.sample_index = 0
        self.frame_index = 0
        self.span_peak = 0.0
        self.echo_peak = 0.0
        self.erle_num = 0.0
        self.erle_den = 0.0
        self._fresh_judgement()
        self.frame_ready = False
        self.pending = False
        self.has_path = False
        self.loads = 0

    cdef void _fresh_judgement(self) noexcept nogil:
        """A new path is judged from scratch: no bypass, gain 1, nothing removed or predicted yet."""
        self.bypass = False
        self.worse = 0
        self.removed = 0.0
        self.predicted = 0.0
        self.gain = 1.0
        self.sxy = 0.0
        self.syy = 0.0
        self.gain_frames = 0

    def set_delay(self, long long delay):
        """Set the reference delay [samples] now (before processing starts; later use :meth:`load`)."""
        self.delay = self._checked(delay)

    cdef long long _checked(self, long long delay) except -1:
        if delay < self.min_delay:
            delay = self.min_delay
        if delay > self.hist.shape[0] - 2 * self.max_block - 2 * self.frame:
            raise ValueError(f"delay={delay} samples is longer than the reference history")
        return delay

    @property
    def pre_samples(self):
        """Where the direct sound is expected within the filter [samples]."""
        return self.pre_partitions * self.frame

    @property
    def echo_return_loss_db(self):
        """Smoothed microphone level over the cleaned level where our output sounds [dB] (0: nothing removed)."""
        if self.erle_den <= 0.0 or self.erle_num <= 0.0:
            return 0.0
        return 10.0 * log10(self.erle_num / self.erle_den)

    @property
    def explained(self):
        """Share of the predicted echo energy that subtracting it really removed (recent frames):
        about 1 when the path is right, about -1 when the echo has moved away from it."""
        return self.removed / self.predicted if self.predicted > 0.0 else 0.0

    @property
    def failing(self):
        """True while the canceller has no path, bypasses itself, its path's gain fell below one half,
        or it removes less than 30 % of the echo it predicts (the echo has moved)."""
        return bool(not self.has_path or self.bypass or self.gain < 0.5
                    or (self.predicted > 0.0 and self.removed < 0.3 * self.predicted))

    def spectra(self, h):
        """Partitioned filter spectra of an impulse response (for :meth:`load`; allocates).

        Parameters
        ----------
        h : array_like [shape=(m,)]
            Echo path response, sample 0 at the reference delay; taps beyond
            ``partitions * frame`` are ignored.

        Returns
        -------
        (np.ndarray, np.ndarray) [shape=(partitions, frame + 1), float64]
            Real and imaginary parts.
        """
        h = np.asarray(h, np.float64)
        full = np.zeros(self.partitions * self.frame)
        full[:min(len(h), len(full))] = h[:len(full)]
        seg = np.zeros((self.partitions, self.n_fft))
        seg[:, :self.frame] = full.reshape(self.partitions, self.frame)
        spec = np.fft.rfft(seg, axis=1)
        return np.ascontiguousarray(spec.real), np.ascontiguousarray(spec.imag)

    def load(self, long long delay, const double[:, ::1] wr, const double[:, ::1] wi):
        """Take a path from the next frame on (audio thread safe: copies, no allocation).

        Parameters
        ----------
        delay : int [samples]
            Its reference delay (clamped to at least one frame).
        wr, wi : np.ndarray [shape=(partitions, frame + 1), float64]
            From :meth:`spectra`.
        """
        if wr.shape[0] != self.partitions or wr.shape[1] != self.bins or wi.shape[0] != self.partitions \
                or wi.shape[1] != self.bins:
            raise ValueError("weights do not fit this canceller")
        self.pending_delay = self._checked(delay)
        self.pwr[...] = wr
        self.pwi[...] = wi
        self.pending = True

    def set_impulse_response(self, h):
        """Take a measured response (sample 0 at the current delay) from the next frame on."""
        wr, wi = self.spectra(h)
        self.load(self.delay, wr, wi)

    def impulse_response(self):
        """The path in use as an impulse response from ``delay`` on.

        Returns
        -------
        np.ndarray [shape=(partitions * frame,), float64]
        """
        out = np.zeros(self.partitions * self.frame)
        w = np.asarray(self.wr) + 1j * np.asarray(self.wi)
        for p in range(self.partitions):
            out[p * self.frame:(p + 1) * self.frame] = np.fft.irfft(w[p], self.n_fft)[:self.frame]
        return out

    @cython.boundscheck(False)
    @cython.wraparound(False)
    def process(self, const float[::1] mic, const float[::1] played, float[::1] out):
        """Cancel the echo of ``played`` in ``mic``.

        Parameters
        ----------
        mic : np.ndarray [shape=(n,), float32]
            Microphone samples, ``n <= max_block``.
        played : np.ndarray [shape=(n,), float32]
            What the output played over the same samples (same clock).
        out : np.ndarray [shape=(n,), float32]
            Receives the microphone with our own output's echo removed
            (non-finite samples are passed on as they are).
        """
        cdef Py_ssize_t n = mic.shape[0]
        if played.shape[0] != n or out.shape[0] != n:
            raise ValueError("mic, played and out must have the same length")
        if n > self.max_block:
            raise ValueError(f"block of {n} samples > max_block={self.max_block}")
        if n == 0:
            return
        with nogil:
            self._run(&mic[0], &played[0], &out[0], n)

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef void _run(self, const float* mic, const float* played, float* out, Py_ssize_t n) noexcept nogil:
        cdef Py_ssize_t i
        cdef long long s = self.sample_index
        cdef long long mask = self.hist_mask
        cdef int j
        cdef double x
        for i in range(n):
            self.hist[(s + i) & mask] = played[i]
        for i in range(n):
            if not self.frame_ready:
                self._start_frame()
            j = <int>(self.sample_index - self.frame_index * self.frame)
            x = mic[i]
            if isfinite(x):
                self.mic_frame[j] = x
                self.e[j] = x - self.gain * self.y[j]
                out[i] = mic[i] if self.bypass else <float>self.e[j]
            else:
                self.mic_frame[j] = 0.0
                self.e[j] = 0.0
                out[i] = mic[i]
            self.sample_index += 1
            if j == self.frame - 1:
                self._end_frame()
                self.frame_index += 1
                self.frame_ready = False

    # ------------------------------------------------------------------ FFT

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef void _fft(self, bint inverse) noexcept nogil:
        """In-place radix-2 complex FFT of (re, im); the inverse is scaled by 1/n."""
        cdef int n = self.n_fft
        cdef int i, j, size, half, step, k, t
        cdef double tr, ti, wr, wi, sign = 1.0 if inverse else -1.0
        for i in range(n):
            j = self.bitrev[i]
            if j > i:
                tr = self.re[i]; self.re[i] = self.re[j]; self.re[j] = tr
                ti = self.im[i]; self.im[i] = self.im[j]; self.im[j] = ti
        size = 2
        while size <= n:
            half = size // 2
            step = n // size
            i = 0
            while i < n:
                for k in range(half):
                    t = k * step
                    wr = self.cos_t[t]
                    wi = sign * self.sin_t[t]
                    tr = wr * self.re[i + k + half] - wi * self.im[i + k + half]
                    ti = wr * self.im[i + k + half] + wi * self.re[i + k + half]
                    self.re[i + k + half] = self.re[i + k] - tr
                    self.im[i + k + half] = self.im[i + k] - ti
                    self.re[i + k] += tr
                    self.im[i + k] += ti
                i += size
            size *= 2
        if inverse:
            for i in range(n):
                self.re[i] /= n
                self.im[i] /= n

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef void _spectrum_to_time(self) noexcept nogil:
        """Given bins 0..frame in (re, im), fill the Hermitian half and inverse-transform."""
        cdef int n = self.n_fft, k
        self.im[0] = 0.0
        self.im[self.frame] = 0.0
        for k in range(1, self.frame):
            self.re[n - k] = self.re[k]
            self.im[n - k] = -self.im[k]
        self._fft(True)

    # ------------------------------------------------------------------ frames

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef void _start_frame(self) noexcept nogil:
        """Take a pending path; transform the reference of this frame and predict its echo."""
        cdef int p, k, slot, P = self.partitions
        cdef long long cur = self.frame_index % P
        cdef double ar, ai
        if self.pending:
            self.delay = self.pending_delay
            self.wr[...] = self.pwr
            self.wi[...] = self.pwi
            for p in range(1, P):   # the stored reference spectra, at the new delay
                self._transform_ref(self.frame_index - p, <int>((cur - p + P) % P))
            self.has_path = True
            self._fresh_judgement()
            self.loads += 1
            self.pending = False
        self._transform_ref(self.frame_index, <int>cur)
        for k in range(self.bins):
            ar = 0.0
            ai = 0.0
            for p in range(P):
                slot = <int>((cur - p + P) % P)
                ar += self.wr[p, k] * self.xr[slot, k] - self.wi[p, k] * self.xi[slot, k]
                ai += self.wr[p, k] * self.xi[slot, k] + self.wi[p, k] * self.xr[slot, k]
            self.re[k] = ar
            self.im[k] = ai
        self._spectrum_to_time()
        for k in range(self.frame):
            self.y[k] = self.re[self.frame + k]
        self.frame_ready = True

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef void _transform_ref(self, long long frame_index, int slot) noexcept nogil:
        """Spectrum of the reference over [f - frame, f + frame) of frame ``frame_index`` into ``slot``."""
        cdef long long f = frame_index * self.frame
        cdef long long src
        cdef int k, b = self.frame
        for k in range(self.n_fft):
            src = f - b + k - self.delay
            self.re[k] = self.hist[src & self.hist_mask] if src >= 0 else 0.0
            self.im[k] = 0.0
        self._fft(False)
        for k in range(self.bins):
            self.xr[slot, k] = self.re[k]
            self.xi[slot, k] = self.im[k]

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef void _end_frame(self) noexcept nogil:
        """Judge the frame: is the path removing our output, or adding to the microphone?"""
        cdef int k, p, P = self.partitions
        cdef double e_f = 0.0, e_x = 0.0, e_y = 0.0, xy = 0.0, span = 0.0
        for k in range(self.frame):
            e_f += self.e[k] * self.e[k]
            e_x += self.mic_frame[k] * self.mic_frame[k]
            e_y += self.y[k] * self.y[k]
            xy += self.mic_frame[k] * self.y[k]
        # reference power over the filter span: where our output (or its echo tail) can be heard
        for p in range(P):
            for k in range(self.bins):
                span += self.xr[p, k] * self.xr[p, k] + self.xi[p, k] * self.xi[p, k]
        self.span_peak *= 0.999
        if span > self.span_peak:
            self.span_peak = span
        if span <= 1e-4 * self.span_peak or span < 1e-12 or not self.has_path:
            return
        # never worse than nothing: a path that adds more than it removes (the echo moved away
        # from where it puts it) is bypassed until it fits again or another path is loaded.  What
        # it adds must matter, though: in a click's quiet tail (a silent room, a digital loopback)
        # the microphone is almost nothing and a residue 40 dB under the click is "more than
        # nothing" -- bypassing there let the *next* click's first frame through uncancelled,
        # and the detector took it for a step.  A moved path adds about a whole click.
        self.echo_peak *= 0.999
        if e_y * self.gain * self.gain > self.echo_peak:
            self.echo_peak = e_y * self.gain * self.gain
        if e_f > 2.0 * e_x and e_f - e_x > WORSE_SHARE * self.echo_peak:
            self.worse += 1
            if self.worse >= 2:
                self.bypass = True
        else:
            self.worse = 0
            if self.bypass and e_f < 0.5 * e_x:
                self.bypass = False
        self.erle_num = 0.98 * self.erle_num + e_x
        self.erle_den = 0.98 * self.erle_den + e_f
        # how much of the predicted echo the subtraction really removed: about all of it when the path
        # is right (the rest of the microphone is not correlated with our output), about minus all of
        # it when the echo is elsewhere -- whatever the level of the steps
        self.removed = 0.98 * self.removed + (e_x - e_f)
        self.predicted = 0.98 * self.predicted + e_y * self.gain * self.gain
        # the path's overall gain, by least squares over the frames where it predicts an echo, about
        # the last 20 clicks (a single number: the steps, not correlated with our output, average out
        # -- over one click, a step landing on it would set the gain, and the runner's steps drift
        # across the clicks' phase for seconds): a path measured a little off in level is corrected,
        # and an echo that moved away fades the prediction to nothing
        self.sxy = 0.995 * self.sxy + xy
        self.syy = 0.995 * self.syy + e_y
        if e_y > 0.0:
            self.gain_frames += 1
        if self.gain_frames >= 200 and self.syy > 0.0 and e_y > 0.0:   # about 20 clicks' worth first
            self.gain = min(4.0, max(0.0, self.sxy / self.syy))
