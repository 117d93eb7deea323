# cython: language_level=3
"""Sample-clock click scheduler and allocation-free renderer (the audio-thread core).

Use it through :class:`stepsound.cue.metronome.Metronome`, which builds the sound
bank, converts plans into spans and documents the public API.  This module
holds what runs once per block on the audio thread:

* the click grid: click ``k`` of a segment is at
  ``anchor + floor(t_k + 0.5)`` samples, where ``t_k`` is computed in closed
  form from the anchor (``k * period`` for a hold, the inverse of the phase
  integral for a linear tempo ramp), never by accumulating rounded periods;
* tempo changes on the beat: a change due at sample ``T`` re-anchors the
  grid at the first click at or after ``T`` -- that click is played once, the
  new tempo governs the intervals after it;
* voices: every sounding click or cue is a voice (start sample, sound, gain)
  that is mixed sample-exactly into whatever blocks it overlaps, so a click
  straddling a block boundary is rendered whole and the output is identical
  for any block size;
* a bounded command queue (main thread → audio thread, drained at block
  start) and a bounded click log ring (audio thread → main thread).

Nothing here allocates after ``__init__``; the per-block functions are
``noexcept nogil``.  They are deliberately called *without* releasing the GIL:
the producer/consumer hand-off of the queue and the log relies on each
Python-level call being atomic with respect to the other thread, and
re-acquiring a released GIL inside a PortAudio callback could wait on the
main thread.  (The callback already holds the GIL: sounddevice calls Python.)
"""
from libc.math cimport floor, fmod, sqrt
from libc.stdint cimport INT64_MAX, INT64_MIN, int8_t, int32_t, int64_t
from libc.string cimport memset

import numpy as np

cdef int64_t I64_MAX = INT64_MAX
cdef int64_t I64_MIN = INT64_MIN

# Command codes (main thread -> audio thread).
cdef enum:
    CMD_TEMPO = 1
    CMD_ENABLE = 2
    CMD_CUE = 3
    CMD_LATENCY = 4
    CMD_STOP = 5

# Log entry kinds.
cdef enum:
    K_BEAT = 0
    K_ACCENT = 1
    K_CUE = 2

#: Log entry kinds (Python names).
KIND_BEAT = K_BEAT
KIND_ACCENT = K_ACCENT
KIND_CUE = K_CUE

#: Sentinel for "as soon as possible" in ``at_sample`` arguments.
NOW = I64_MIN


cdef class ClickEngine:
    """Click scheduler + renderer on an int64 sample clock.

    Parameters
    ----------
    sample_rate : float > 0 [Hz]
    bank : np.ndarray [shape=(n_sounds, max_len), float32]
        The sounds, zero padded; row ``i`` is sound id ``i``.
    bank_len : np.ndarray [shape=(n_sounds,), int64]
        Length of each sound [samples].
    max_voices : int
        Simultaneously sounding clicks/cues; more are dropped and counted.
    log_capacity : int
        Size of the click log ring (entries); unread entries beyond it are
        overwritten and counted in ``log_dropped``.
    command_capacity : int
        Size of the command queue; pushes to a full queue are refused and
        counted in ``commands_dropped``.

    Notes
    -----
    Threads: ``render_*``, ``skip`` and ``reset`` belong to the audio thread
    (or whoever renders); ``push_*``, ``read_log`` and the read-only
    attributes may be used from one other thread.  All configuration
    (``set_plan``, ``set_fade``, ``set_click_sounds``, ``set_latency``) is done
    before rendering starts.
    """

    cdef readonly double sample_rate
    cdef float[:, ::1] _bank
    cdef int64_t[::1] _bank_len
    cdef readonly int n_sounds
    # voices
    cdef int64_t[::1] _v_start
    cdef int32_t[::1] _v_sound
    cdef float[::1] _v_gain
    cdef int _n_voices
    cdef readonly int max_voices
    cdef readonly int64_t dropped_voices
    # plan spans [grid samples], targets [steps/min]
    cdef int64_t[::1] _sp_start
    cdef int64_t[::1] _sp_end
    cdef double[::1] _sp_spm0
    cdef double[::1] _sp_spm1
    cdef int8_t[::1] _sp_audible
    cdef int _n_spans
    cdef int _span
    cdef readonly int64_t origin
    # faded feedback [seconds from origin]
    cdef bint _fade
    cdef double _fade_from, _fade_to, _fade_start, _fade_end, _fade_cycle
    # current segment
    cdef int64_t _anchor
    cdef int64_t _k
    cdef double _spm0, _spm_end, _slope_spm
    cdef double _f, _slope, _ramp_len, _period, _period_end
    cdef int64_t _next
    cdef readonly bint running
    cdef readonly bint finished
    cdef int64_t _stop_at
    # changes waiting for their beat (FIFO, applied in the order given)
    cdef int32_t[::1] _pq_type
    cdef int64_t[::1] _pq_at
    cdef double[::1] _pq_a
    cdef double[::1] _pq_b
    cdef int _pq_cap, _pq_head, _pq_n
    cdef bint _enabled
    # sounds
    cdef int _sound, _accent_sound, _accent_every
    cdef float _gain, _accent_gain
    cdef readonly int64_t n_clicks
    cdef readonly int64_t latency_samples
    cdef readonly int64_t position
    cdef int64_t _skip_end  # voices ending before this are not kept (skip mode)
    # log ring
    cdef int64_t[::1] _log_sample
    cdef int8_t[::1] _log_kind
    cdef int32_t[::1] _log_sound
    cdef double[::1] _log_spm
    cdef int8_t[::1] _log_audible
    cdef int64_t _log_cap, _log_write, _log_read
    cdef readonly int64_t log_dropped
    # command queue
    cdef int32_t[::1] _cq_type
    cdef int64_t[::1] _cq_at
    cdef double[::1] _cq_a
    cdef double[::1] _cq_b
    cdef int64_t _cq_cap, _cq_write, _cq_read
    cdef readonly int64_t commands_dropped

    def __init__(self, double sample_rate, bank, bank_len, int max_voices=64,
                 int log_capacity=8192, int command_capacity=256):
        if not (sample_rate > 0):
            raise ValueError(f"sample_rate={sample_rate!r} must be > 0")
        if max_voices < 1 or log_capacity < 1 or command_capacity < 1:
            raise ValueError("max_voices, log_capacity and command_capacity must be >= 1")
        self.sample_rate = sample_rate
        self._bank = np.ascontiguousarray(bank, dtype=np.float32)
        self._bank_len = np.ascontiguousarray(bank_len, dtype=np.int64)
        self.n_sounds = self._bank.shape[0]
        if self._bank_len.shape[0] != self.n_sounds:
            raise ValueError("bank_len must have one entry per sound")
        for i in range(self.n_sounds):
            if not (0 <= self._bank_len[i] <= self._bank.shape[1]):
                raise ValueError("bank_len entries must be within the bank width")
        self.max_voices = max_voices
        self._v_start = np.zeros(max_voices, np.int64)
        self._v_sound = np.zeros(max_voices, np.int32)
        self._v_gain = np.zeros(max_voices, np.float32)
        self._log_cap = log_capacity
        self._log_sample = np.zeros(log_capacity, np.int64)
        self._log_kind = np.zeros(log_capacity, np.int8)
        self._log_sound = np.zeros(log_capacity, np.int32)
        self._log_spm = np.zeros(log_capacity, np.float64)
        self._log_audible = np.zeros(log_capacity, np.int8)
        self._cq_cap = command_capacity
        self._cq_type = np.zeros(command_capacity, np.int32)
        self._cq_at = np.zeros(command_capacity, np.int64)
        self._cq_a = np.zeros(command_capacity, np.float64)
        self._cq_b = np.zeros(command_capacity, np.float64)
        self._pq_cap = command_capacity
        self._pq_type = np.zeros(command_capacity, np.int32)
        self._pq_at = np.zeros(command_capacity, np.int64)
        self._pq_a = np.zeros(command_capacity, np.float64)
        self._pq_b = np.zeros(command_capacity, np.float64)
        self._sp_start = np.zeros(1, np.int64)
        self._sp_end = np.zeros(1, np.int64)
        self._sp_spm0 = np.zeros(1, np.float64)
        self._sp_spm1 = np.zeros(1, np.float64)
        self._sp_audible = np.zeros(1, np.int8)
        self._n_spans = 0
        self.origin = 0
        self._fade = False
        self._sound = 0
        self._accent_sound = 0
        self._accent_every = 0
        self._gain = 1.0
        self._accent_gain = 1.0
        self.latency_samples = 0
        self.reset()

    # ------------------------------------------------------------------ configuration

    def set_plan(self, sp_start, sp_end, sp_spm0, sp_spm1, sp_audible, int64_t origin):
        """Load plan spans (grid samples, steps/min) and restart from ``origin``.

        Spans must be contiguous and increasing; ``sp_end[-1]`` may be
        ``2**63 - 1`` for an open-ended plan.  An empty plan leaves the engine
        idle until a live ``push_tempo``.
        """
        self._sp_start = np.ascontiguousarray(sp_start, dtype=np.int64)
        self._sp_end = np.ascontiguousarray(sp_end, dtype=np.int64)
        self._sp_spm0 = np.ascontiguousarray(sp_spm0, dtype=np.float64)
        self._sp_spm1 = np.ascontiguousarray(sp_spm1, dtype=np.float64)
        self._sp_audible = np.ascontiguousarray(sp_audible, dtype=np.int8)
        n = self._sp_start.shape[0]
        if not (self._sp_end.shape[0] == n and self._sp_spm0.shape[0] == n
                and self._sp_spm1.shape[0] == n and self._sp_audible.shape[0] == n):
            raise ValueError("span arrays must have equal lengths")
        for i in range(n):
            if not (self._sp_spm0[i] > 0 and self._sp_spm1[i] > 0):
                raise ValueError("span tempi must be > 0")
            if self._sp_end[i] <= self._sp_start[i]:
                raise ValueError("spans must have positive length")
            if i and self._sp_start[i] != self._sp_end[i - 1]:
                raise ValueError("spans must be contiguous")
        self._n_spans = n
        self.origin = origin
        self.reset()

    def set_fade(self, bint enabled, double audible_from=1.0, double audible_to=1.0,
                 double start_s=0.0, double end_s=0.0, double cycle_s=60.0):
        """Faded feedback (times in seconds from ``origin``); see :class:`stepsound.coach.plans.Feedback`."""
        self._fade = enabled
        self._fade_from = audible_from
        self._fade_to = audible_to
        self._fade_start = start_s
        self._fade_end = end_s
        self._fade_cycle = cycle_s if cycle_s > 0 else 60.0

    def set_click_sounds(self, int sound, float gain, int accent_sound, float accent_gain, int accent_every):
        """Sound id and linear gain of ordinary and accented clicks; accent every Nth (0: never)."""
        if not (0 <= sound < self.n_sounds and 0 <= accent_sound < self.n_sounds):
            raise ValueError("sound ids out of range")
        if accent_every < 0:
            raise ValueError("accent_every must be >= 0")
        self._sound = sound
        self._gain = gain
        self._accent_sound = accent_sound
        self._accent_gain = accent_gain
        self._accent_every = accent_every

    def set_latency(self, int64_t latency_samples):
        """Play every click ``latency_samples`` early (before rendering starts)."""
        self.latency_samples = latency_samples

    def reset(self):
        """Back to the fresh state: grid at the plan origin, no voices, empty log and queue."""
        self._n_voices = 0
        self.dropped_voices = 0
        self._log_write = 0
        self._log_read = 0
        self.log_dropped = 0
        self._cq_write = 0
        self._cq_read = 0
        self.commands_dropped = 0
        self.n_clicks = 0
        self.position = self.origin
        self._skip_end = I64_MIN
        self.finished = False
        self._stop_at = I64_MAX
        self._pq_head = 0
        self._pq_n = 0
        self._enabled = True
        self._span = -1
        self.running = False
        if self._n_spans > 0:
            self._span = 0
            self.running = True
            self._anchor_span(self._sp_start[0], 0)

    # ------------------------------------------------------------------ grid (nogil)

    cdef void _set_segment(self, int64_t anchor, double spm0, double spm1, double ramp_len) noexcept nogil:
        cdef double spm_rate = 60.0 * self.sample_rate
        self._anchor = anchor
        self._k = 0
        self._next = anchor
        self._spm0 = spm0
        self._f = spm0 / spm_rate
        self._period = spm_rate / spm0
        if ramp_len > 0 and spm1 != spm0:
            self._ramp_len = ramp_len
            self._spm_end = spm1
            self._slope_spm = (spm1 - spm0) / ramp_len
            self._slope = self._slope_spm / spm_rate
            self._period_end = spm_rate / spm1
        else:
            self._ramp_len = 0.0
            self._spm_end = spm0
            self._slope_spm = 0.0
            self._slope = 0.0
            self._period_end = self._period

    cdef void _anchor_span(self, int64_t c, int j) noexcept nogil:
        cdef int64_t s = self._sp_start[j]
        cdef int64_t e = self._sp_end[j]
        cdef double a = self._sp_spm0[j]
        cdef double b = self._sp_spm1[j]
        cdef double x, spm_c
        if a == b or c >= e:
            self._set_segment(c, b if c >= e else a, b, 0.0)
            return
        x = <double>(c - s) / <double>(e - s)
        if x < 0.0:
            x = 0.0
        spm_c = a + (b - a) * x
        self._set_segment(c, spm_c, b, <double>(e - c))

    cdef double _offset(self, int64_t k) noexcept nogil:
        """Offset of click k from the anchor [samples, unrounded]."""
        cdef double kk = <double>k
        cdef double phi_l, disc
        if self._slope == 0.0:
            return kk * self._period
        phi_l = self._f * self._ramp_len + 0.5 * self._slope * self._ramp_len * self._ramp_len
        if kk <= phi_l:
            disc = self._f * self._f + 2.0 * self._slope * kk
            if disc < 0.0:
                disc = 0.0
            return 2.0 * kk / (self._f + sqrt(disc))
        return self._ramp_len + (kk - phi_l) * self._period_end

    cdef double _spm_at(self, int64_t sample) noexcept nogil:
        cdef double t = <double>(sample - self._anchor)
        if self._slope == 0.0 or t >= self._ramp_len:
            return self._spm_end
        if t <= 0.0:
            return self._spm0
        return self._spm0 + self._slope_spm * t

    cdef bint _fade_audible(self, int64_t c) noexcept nogil:
        cdef double t, frac, x
        if not self._fade:
            return True
        t = <double>(c - self.origin) / self.sample_rate
        if t < self._fade_start:
            return True
        if self._fade_end <= self._fade_start:
            frac = self._fade_to
        else:
            x = (t - self._fade_start) / (self._fade_end - self._fade_start)
            if x > 1.0:
                x = 1.0
            frac = self._fade_from + (self._fade_to - self._fade_from) * x
        return fmod(t - self._fade_start, self._fade_cycle) < frac * self._fade_cycle

    cdef void _add_voice(self, int64_t start, int sound, float gain) noexcept nogil:
        cdef int i = self._n_voices
        if start + self._bank_len[sound] <= self._skip_end:
            return  # skip mode: would never be heard
        if i >= self.max_voices:
            self.dropped_voices += 1
            return
        self._v_start[i] = start
        self._v_sound[i] = sound
        self._v_gain[i] = gain
        self._n_voices = i + 1

    cdef void _log(self, int64_t sample, int kind, int sound, double spm, bint audible) noexcept nogil:
        cdef int64_t i = self._log_write % self._log_cap
        self._log_sample[i] = sample
        self._log_kind[i] = kind
        self._log_sound[i] = sound
        self._log_spm[i] = spm
        self._log_audible[i] = audible
        self._log_write += 1

    cdef void _emit(self) noexcept nogil:
        """Emit the click at ``self._next`` (applying due changes first) and advance."""
        cdef int64_t c = self._next
        cdef int j
        cdef bint changed = False
        cdef bint audible, accent
        cdef double spm
        cdef int sound
        if c >= self._stop_at:
            self.finished = True
            return
        if self._span >= 0:
            if c >= self._sp_end[self._n_spans - 1]:
                self.finished = True
                return
            j = self._span
            while j + 1 < self._n_spans and c >= self._sp_start[j + 1]:
                j += 1
                changed = True
            if changed:
                self._span = j
                self._anchor_span(c, j)
        while self._pq_n > 0 and c >= self._pq_at[self._pq_head]:
            j = self._pq_head
            if self._pq_type[j] == CMD_TEMPO:
                spm = self._spm_at(c)
                self._span = -1
                self._set_segment(c, spm if self._pq_b[j] > 0 else self._pq_a[j], self._pq_a[j], self._pq_b[j])
            else:
                self._enabled = self._pq_a[j] != 0.0
            self._pq_head = (self._pq_head + 1) % self._pq_cap
            self._pq_n -= 1
        spm = self._spm_at(c)
        audible = self._enabled
        if audible and self._span >= 0:
            audible = self._sp_audible[self._span] != 0 and self._fade_audible(c)
        accent = self._accent_every > 0 and (self.n_clicks % self._accent_every) == 0
        sound = self._accent_sound if accent else self._sound
        if audible:
            self._add_voice(c - self.latency_samples, sound,
                            self._accent_gain if accent else self._gain)
        self._log(c - self.latency_samples, K_ACCENT if accent else K_BEAT,
                  sound, spm, audible)
        self.n_clicks += 1
        self._k += 1
        self._next = self._anchor + <int64_t>floor(self._offset(self._k) + 0.5)

    cdef void _pend(self, int typ, int64_t at, double a, double b) noexcept nogil:
        cdef int j
        if self._pq_n >= self._pq_cap:
            self.commands_dropped += 1
            return
        j = (self._pq_head + self._pq_n) % self._pq_cap
        self._pq_type[j] = typ
        self._pq_at[j] = at
        self._pq_a[j] = a
        self._pq_b[j] = b
        self._pq_n += 1

    cdef void _drain(self, int64_t start) noexcept nogil:
        cdef int64_t i, at
        cdef int typ
        cdef double a, b
        while self._cq_read < self._cq_write:
            i = self._cq_read % self._cq_cap
            typ = self._cq_type[i]
            at = self._cq_at[i]
            a = self._cq_a[i]
            b = self._cq_b[i]
            if typ == CMD_TEMPO:
                if not self.running:
                    if at < start + self.latency_samples:
                        at = start + self.latency_samples
                    self._set_segment(at, a, a, 0.0)
                    self._span = -1
                    self.running = True
                    self.finished = False
                else:
                    self._pend(typ, at, a, b)
            elif typ == CMD_ENABLE:
                self._pend(typ, at, a, b)
            elif typ == CMD_CUE:
                if at == I64_MIN:
                    at = start
                else:
                    at = at - self.latency_samples
                    if at < start:
                        at = start
                self._add_voice(at, <int>a, <float>b)
                self._log(at, K_CUE, <int>a, self._spm_at(self._next) if self.running else 0.0, True)
            elif typ == CMD_LATENCY:
                self.latency_samples = at
            elif typ == CMD_STOP:
                self._stop_at = at
            self._cq_read += 1

    cdef void _mix(self, float* out, Py_ssize_t nch, int64_t start, int64_t lo, int64_t hi) noexcept nogil:
        """Mix output samples [lo, hi) of every voice into ``out`` (``out[0]`` is sample ``start``).

        Voices that have ended by ``hi`` are removed; the others keep their order,
        so every output sample sums its voices in emission order whatever the
        block boundaries.
        """
        cdef int v, w = 0, snd
        cdef int64_t vs, ve, a, b, i
        cdef Py_ssize_t ch, base
        cdef float g, x
        for v in range(self._n_voices):
            vs = self._v_start[v]
            snd = self._v_sound[v]
            ve = vs + self._bank_len[snd]
            if out != NULL:
                a = vs if vs > lo else lo
                b = ve if ve < hi else hi
                g = self._v_gain[v]
                i = a
                while i < b:
                    x = self._bank[snd, i - vs] * g
                    base = (i - start) * nch
                    for ch in range(nch):
                        out[base + ch] += x
                    i += 1
            if ve > hi:  # still sounding: keep, preserving order
                self._v_start[w] = vs
                self._v_sound[w] = snd
                self._v_gain[w] = self._v_gain[v]
                w += 1
        self._n_voices = w

    cdef int64_t _render(self, float* out, Py_ssize_t n, Py_ssize_t nch, int64_t start, bint add) noexcept nogil:
        cdef int64_t end = start + n
        cdef int64_t emitted = 0
        cdef int64_t cursor = start
        cdef int64_t cut
        if out != NULL and not add and n > 0:
            memset(out, 0, n * nch * sizeof(float))
        self._skip_end = end if out == NULL else I64_MIN
        self._drain(start)
        while self.running and not self.finished and self._next - self.latency_samples < end:
            if self._n_voices >= self.max_voices:
                # A long block with many clicks: mix what precedes the next click
                # first, which frees the voices that have ended by then.
                cut = self._next - self.latency_samples
                if cut > cursor:
                    self._mix(out, nch, start, cursor, cut)
                    cursor = cut
            self._emit()
            emitted += 1
        self._mix(out, nch, start, cursor, end)
        self.position = end
        return emitted

    # ------------------------------------------------------------------ audio thread API

    def render_mono(self, float[::1] out, int64_t start_sample, bint add=False):
        """Render output samples ``[start_sample, start_sample + len(out))`` into ``out``.

        Parameters
        ----------
        out : float32[::1] [shape=(n,)]
            Zeroed first unless ``add`` (then clicks are mixed onto it).
        start_sample : int64
            Output sample index of ``out[0]``.  Consecutive calls normally pass
            consecutive ranges; any block sizes (including 0) give identical output.

        Returns
        -------
        n_clicks : int
            Grid clicks emitted in this block (audible or not).
        """
        if out.shape[0] == 0:
            return self._render(NULL, 0, 1, start_sample, True)
        return self._render(&out[0], out.shape[0], 1, start_sample, add)

    def render_frames(self, float[:, ::1] out, int64_t start_sample, bint add=False):
        """Like :meth:`render_mono` for ``out`` of shape (frames, channels); every channel gets the clicks."""
        if out.shape[0] == 0 or out.shape[1] == 0:
            return self._render(NULL, 0, 1, start_sample, True)
        return self._render(&out[0, 0], out.shape[0], out.shape[1], start_sample, add)

    def skip(self, int64_t end_sample):
        """Advance the schedule to ``end_sample`` without producing audio (clicks are logged)."""
        cdef int64_t start = self.position
        if end_sample < start:
            end_sample = start
        return self._render(NULL, end_sample - start, 1, start, True)

    # ------------------------------------------------------------------ main thread API

    cdef bint _push(self, int typ, int64_t at, double a, double b):
        cdef int64_t i
        if self._cq_write - self._cq_read >= self._cq_cap:
            self.commands_dropped += 1
            return False
        i = self._cq_write % self._cq_cap
        self._cq_type[i] = typ
        self._cq_at[i] = at
        self._cq_a[i] = a
        self._cq_b[i] = b
        self._cq_write += 1
        return True

    def push_tempo(self, int64_t at_sample, double spm, double ramp_samples=0.0):
        """Queue a tempo change at the first click at or after grid sample ``at_sample``."""
        return self._push(CMD_TEMPO, at_sample, spm, ramp_samples)

    def push_enable(self, int64_t at_sample, bint on):
        """Queue muting/unmuting from the first click at or after ``at_sample``."""
        return self._push(CMD_ENABLE, at_sample, 1.0 if on else 0.0, 0.0)

    def push_cue(self, int64_t at_sample, int sound, float gain):
        """Queue a one-off sound heard at grid sample ``at_sample`` (``NOW``: next block)."""
        if not (0 <= sound < self.n_sounds):
            raise ValueError("sound id out of range")
        return self._push(CMD_CUE, at_sample, sound, gain)

    def push_latency(self, int64_t latency_samples):
        """Queue a new latency offset (applies to clicks not yet emitted)."""
        return self._push(CMD_LATENCY, latency_samples, 0.0, 0.0)

    def push_stop(self, int64_t at_sample):
        """Queue a stop: no click at or after grid sample ``at_sample``."""
        return self._push(CMD_STOP, at_sample, 0.0, 0.0)

    def read_log(self):
        """Entries logged since the previous call, oldest first.

        Returns
        -------
        sample, kind, sound, spm, audible : np.ndarray
            int64 output sample, int8 kind (0 beat, 1 accent, 2 cue), int32
            sound id, float64 target [steps/min], bool audible.
        """
        cdef int64_t n = self._log_write - self._log_read
        cdef int64_t i, j
        if n > self._log_cap:
            self.log_dropped += n - self._log_cap
            self._log_read = self._log_write - self._log_cap
            n = self._log_cap
        sample = np.empty(n, np.int64)
        kind = np.empty(n, np.int8)
        sound = np.empty(n, np.int32)
        spm = np.empty(n, np.float64)
        audible = np.empty(n, np.bool_)
        cdef int64_t[::1] s_v = sample
        cdef int8_t[::1] k_v = kind
        cdef int32_t[::1] so_v = sound
        cdef double[::1] sp_v = spm
        for i in range(n):
            j = (self._log_read + i) % self._log_cap
            s_v[i] = self._log_sample[j]
            k_v[i] = self._log_kind[j]
            so_v[i] = self._log_sound[j]
            sp_v[i] = self._log_spm[j]
            audible[i] = self._log_audible[j] != 0
        self._log_read = self._log_write
        return sample, kind, sound, spm, audible

    @property
    def next_click_sample(self):
        """Grid sample of the next click not yet emitted (None when idle or finished)."""
        if not self.running or self.finished:
            return None
        return self._next

    @property
    def current_spm(self):
        """Tempo at the next click [steps/min] (0.0 when idle)."""
        if not self.running:
            return 0.0
        return self._spm_at(self._next)

    @property
    def enabled(self):
        return bool(self._enabled)

    @property
    def span_index(self):
        """Index of the current plan span (-1 in live mode)."""
        return self._span

    @property
    def n_voices(self):
        return self._n_voices
