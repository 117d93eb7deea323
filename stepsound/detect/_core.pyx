# cython: language_level=3
"""Streaming step (footfall) detector: the Cython core of stepsound.

One :class:`StepDetector` consumes mono float32 audio in blocks of any size
and finds footfalls.  Everything that happens per sample or per hop lives
here; per-step logic (cadence, grading, coaching) is plain Python.

Signal path, per sample::

    x -> HP 40 Hz ("hp", broadband) -+-> LP 300 Hz            -> low band
                                     +-> HP 300 -> LP 2 kHz   -> mid band
                                     +-> HP 2 kHz -> LP 8 kHz -> high band

Per hop (``hop_length`` samples, hop boundaries at absolute sample indices
that are multiples of ``hop_length``) each of the four signals gives a power
in dB.  A quantile tracker follows each band's noise floor.  The onset
detection function (ODF) is, summed over bands with weights, the part of the
band level that is *both* above the noise floor (by more than a margin) *and*
a fresh rise over the last few hops: steady noise, hum and slow swells give
none.  A step is committed when the ODF crosses an adaptive threshold (a
fraction of the recent steps' ODF peaks, never below an absolute minimum)
outside the refractory interval, as soon as its ODF peak is confirmed.  The
onset is then refined to the sample in a ring buffer of the broadband signal.

Three kinds of event are produced:

* ``EVENT_ONSET``: a committed step, ``confirm`` hops after its onset hop at
  the latest (this is the detection latency);
* ``EVENT_STEP``: the same step with its features, once the feature window
  (``feature_window_s`` after the onset) has been seen.
* ``EVENT_ONSET_SUPERSEDES``: an onset that replaces the detection before it.
  Inside the refractory interval after a detection, a candidate whose ODF
  peak is ``override_ratio`` times that detection's (and whose level is
  ``override_db`` above it) is still a step: a sound before the step (a
  clink, a consonant, a scuff) had taken its place.  Consumers drop the
  earlier detection from the rhythm and the step count.

A candidate that passes the level gate can still be vetoed by the *candidate
gate* (:meth:`StepDetector.set_gate`): a small network scores it, once, from
:data:`CANDIDATE_FEATURES`; a vetoed candidate opens no refractory interval.

With a learned model (:meth:`StepDetector.set_model`) the model's probability
times a scale is the ODF instead; a model of version 2 also reads the
hand-made ODF of each hop, computed against noise floors that are never frozen
by a detection (so that it does not depend on what the model itself detected;
see :meth:`StepDetector.trace`).

Because all state advances one sample at a time, the events do not depend on
how the audio is cut into blocks.
"""
from libc.math cimport log10, log1p, log, exp, tanh, sqrt, fabs, isfinite, HUGE_VAL, NAN, pow
cimport cython
import numpy as np
cimport numpy as cnp
from stepsound.detect._stepnet cimport StepNet

cnp.import_array()

DEF NB = 4          # signals tracked per hop: 0 broadband, 1 low, 2 mid, 3 high
DEF NSOS = 6        # biquad sections
DEF MAXW = 256      # max hops in a feature window
DEF LOOKBACK_GAP = 2    # hops below the line the look-back may step over
DEF MAXRISE = 128   # hops of per-band power history (fast + reference windows)
DEF NCF = 14        # features of a candidate step (the gate's inputs, see _gate_score)
DEF MAXGH = 32      # most hidden units of the candidate gate

DEF _ONSET = 1
DEF _STEP = 2
DEF _ONSET_SUPERSEDES = 3
EVENT_ONSET = _ONSET
EVENT_STEP = _STEP
EVENT_ONSET_SUPERSEDES = _ONSET_SUPERSEDES

#: Features of a candidate step at its decision (inputs of the candidate gate), in order.
CANDIDATE_FEATURES = (
    "snr_db", "low_snr_db", "mid_snr_db", "high_snr_db",          # candidate's peak band level over the noise floor, dB
    "rise_db", "low_rise_db", "mid_rise_db", "high_rise_db",      # ... over the level 8-24 ms before it, dB
    "log_peak_re_typical",    # log((ODF peak + 1) / (typical step ODF peak + 1))
    "level_re_typical_db",    # broadband level re the typical step's, dB (0 before any step)
    "phase",                  # time since the last detection / median step interval (1 unknown, <= 3)
    "rhythm_known",           # 1 once three intervals are known
    "supersedes",             # 1: inside the last detection's refractory interval (would supersede it)
    "log_peak",               # log(ODF peak + 1)
)

#: Feature columns of the ``features`` table, in order.  Levels in dB re full
#: scale (dBFS, power), times in ms.
FEATURE_NAMES = (
    "peak_db",            # peak |x| of the broadband (HP 40 Hz) signal in the feature window, dBFS
    "energy_db",          # noise-compensated mean power over the energy window, dBFS
    "snr_db",             # energy window power over the noise floor, dB
    "low_db",             # noise-compensated band powers over the feature window, dBFS
    "mid_db",
    "high_db",
    "attack_ms",          # refined onset -> hop of maximum broadband power, ms
    "decay_ms",           # maximum -> first hop 20 dB below it (window end if never), ms
    "second_impact_db",   # level of a re-rise after the first maximum re that maximum, dB (nan: none)
    "second_impact_ms",   # its delay after the first maximum, ms (nan: none)
    "odf_peak",           # peak of the onset detection function for this step
    "noise_db",           # broadband noise floor at the onset, dBFS
    "pre_onset_db",       # broadband power in the pre-onset window re the background before it, dB (nan: not measurable)
    "low_noise_db",       # band noise floors at the onset, dBFS (bands of low_db, mid_db, high_db; the
                          # impact grader tells a channel change from harder landings by them)
    "mid_noise_db",
    "high_noise_db",
)
DEF NFEAT = 16
DEF LEAK_MIN_DB = -60.0   # lowest learned leak gain [dB] (it can climb back within a few clicks)
DEF LEAK_MARGIN_CANCELLED_DB = 12.0   # leak margin behind the echo canceller (leak state 1) [dB]

cdef inline double _track_floor(double floor_db, double level_db, double up, double down) noexcept nogil:
    """One hop of a noise-floor quantile tracker [dB]: up by ``up`` when the level is above it, else
    down by ``down`` but not below the level."""
    if level_db > floor_db:
        return floor_db + up
    floor_db -= down
    return level_db if floor_db < level_db else floor_db


cdef inline double _bq(double v, double* c, double* z1, double* z2) noexcept nogil:
    """One biquad step (transposed direct form II); c = (b0, b1, b2, 1, a1, a2)."""
    cdef double y = c[0] * v + z1[0]
    z1[0] = c[1] * v - c[4] * y + z2[0]
    z2[0] = c[2] * v - c[5] * y
    return y


cdef inline double _clamp(double v, double lo, double hi) noexcept nogil:
    return lo if v < lo else (hi if v > hi else v)


cdef inline double _db(double p) noexcept nogil:
    if p < 1e-30:
        return -300.0
    return 10.0 * log10(p)


cdef class StepDetector:
    """Streaming footfall detector.

    Parameters
    ----------
    sample_rate : int [Hz]
        8000 to 192000.
    hop_length : int [samples]
        Analysis hop (about 2 ms).  Hop boundaries are absolute sample indices.
    sos : np.ndarray [shape=(6, 6), float64]
        Biquad sections (b0, b1, b2, a0=1, a1, a2): HP 40, LP 300, HP 300,
        LP 2k, HP 2k, LP 8k.  Designed by :func:`stepsound.detect.detector.design_filters`.
    band_weights : np.ndarray [shape=(4,), float64]
        ODF weights of broadband, low, mid and high band.
    min_interval_s : float [seconds]
        Shortest allowed interval between two steps (refractory).
    refractory_fraction : float
        The refractory interval grows to this fraction of the median recent
        step interval (never below ``min_interval_s``).
    feature_window_s, energy_window_s : float [seconds]
        Length of the per-step feature window and of the energy window.
    floor_up_db_s, floor_down_db_s : float [dB/s]
        Noise-floor quantile tracker rates (up / down).
    rise_s : float [seconds]
        Length of the reference window that ends where a band's fast window
        starts; the rise is the fast-window level over the reference level.
    fast_windows_s : sequence of 4 floats [seconds]
        Per-band averaging window of the current level (broadband, low, mid,
        high): long enough to span a period of hum in that band.
    excess_margin_db : float [dB]
        A band must exceed its noise floor, and rise over its reference
        level, by this much to count.
    threshold_abs : float [ODF units]
        Absolute minimum threshold of the ODF.
    threshold_rel : float
        Threshold as a fraction of the typical recent step ODF peak (fast
        start over the first four steps, then tracked).  While no step comes for
        more than 1.5 s (and the input is not digital silence) the typical
        peak halves every 2 s and the typical step level (the level gate)
        falls by 3 dB/s: a few hard landings, or a level that dropped, cannot
        hide every later step.
    confirm_s : float [seconds]
        Longest wait after the ODF crossing before committing (latency bound).
    lookback_s : float [seconds]
        How far before the ODF crossing the onset may be moved back, over
        contiguous hops standing ``lookback_db`` above the noise floor (a heel
        contact heard in noise before its louder forefoot slap).
    pre_window_s : float [seconds]
        Length of the window just before the refined onset whose mean
        broadband power, re the background (median hop power of the 30 hops
        before the window), is the ``pre_onset_db`` feature: a heel contact
        too quiet for the look-back still raises it.  Hops of an earlier
        step's feature window, and (in reference mode) hops where our own
        output is audible above the noise floor, are left out.  Shortened to
        fit the power history after the look-back span.
    abs_floor_db : float [dBFS]
        Levels below this are treated as silence.
    level_gate_db : float [dB]
        After the first steps, a candidate more than this far below the
        typical step level (broadband, dBFS) is not a footfall; one that comes
        earlier than ``early_ratio`` of the usual step interval must be within
        ``early_gate_db`` of it and have at least ``early_peak`` of the usual
        ODF peak.
    early_ratio : float
        Fraction of the median recent step interval before which a candidate
        is *early* (default 0.75; 0: never).
    early_gate_db : float [dB]
        Level gate of an early candidate (default 6).
    early_peak : float
        ODF peak an early candidate needs, as a fraction of the typical one
        (default 0.6).
    expect_tol, expect_rel, expect_abs : float
        Within ``expect_tol`` of one median step interval after the last
        detection (where the rhythm expects the next step) the ODF threshold
        is ``expect_rel`` times the typical step peak, if that is lower (never
        below ``expect_abs * threshold_abs``); ``expect_rel`` 0: off.
    halve_rel : float
        Half-rate escape (see ``_half_rate_check``); 0: off.
    limp_tol : float
        A limp's rhythm also expects a step (``expect_rel``): when the last
        four intervals alternate and each foot's repeats within ``limp_tol``
        of the median interval, one same-foot interval after the last
        detection (see ``_limp_expects``); 0: off.
    rhythm_override, rhythm_tol : float
        Supersession by the rhythm: inside the refractory interval of a
        detection that came off the rhythm, a candidate where the rhythm
        expects the step (within ``rhythm_tol`` of the median interval after
        the detection before it, and closer to it than that detection by
        ``expect_tol`` at least) supersedes it with an ODF peak of
        ``rhythm_override`` times that detection's, at any level (a clink or
        a consonant just before the step had taken its place); 0: off.
    capacity : int
        Size of the internal event table; :meth:`process` must be fed at most
        :attr:`max_block` samples per call so the table cannot overflow.

    Notes
    -----
    One :meth:`process` call consumes a block of samples and writes the
    events it completes into the internal tables (``kinds``, ``onset_samples``,
    ``detect_samples``, ``features``); it returns how many rows it wrote.  It
    allocates nothing and runs without the GIL.  :meth:`reset` returns to the
    fresh state.  Not thread-safe: call it from one thread (the audio thread
    in a live session).
    """

    cdef readonly int sample_rate, hop_length, capacity, max_block
    cdef readonly int n_hi_sections
    cdef double sos[NSOS][6]
    cdef double z1[NSOS]
    cdef double z2[NSOS]
    cdef double weights[NB]
    # parameters in hops / per hop
    cdef int min_interval_hops, feature_hops, energy_hops, rise_hops, confirm_hops
    cdef int fast_hops[NB]
    cdef double refractory_fraction, up_db, down_db, warm_up_db, down_warm_db
    cdef double forget_level, forget_db      # per-hop decay of the step level / step dB while no step comes
    cdef int warm_hops, settle_hops
    cdef double silence_power
    cdef double margin_db, thr_abs, thr_rel, abs_floor_db, lookback_db
    cdef int lookback_hops, pre_hops
    # per-sample state
    cdef readonly long long sample_index
    cdef int hop_pos
    cdef double acc[NB]
    cdef double hop_peak
    cdef double[::1] ring
    cdef long long ring_mask
    # per-hop state
    cdef readonly long long hop_index
    cdef double floor_db[NB]
    cdef double hist[NB][MAXRISE]
    cdef int hist_pos
    cdef int state            # 0 idle, 1 rising (candidate), 2 collecting features
    cdef long long cand_hop
    cdef double cand_peak, cand_level
    cdef double cand_e[NB]      # candidate's peak band levels [dB]
    cdef double cand_ref[NB]    # band levels 8-24 ms before the candidate [dB]
    # candidate gate: a small network on the candidate's features (see set_gate)
    cdef bint has_gate
    cdef int g_nh
    cdef double g_mu[NCF]
    cdef double g_sd[NCF]
    cdef double g_w1[MAXGH][NCF]
    cdef double g_b1[MAXGH]
    cdef double g_w2[MAXGH]
    cdef double g_b2, g_thr
    cdef double[:, ::1] clog_v
    cdef long long clog_n, clog_cap
    cdef readonly double step_db       # typical broadband level of recent steps [dBFS]
    cdef double gate_db, early_gate_db, early_ratio, early_peak
    cdef double expect_tol, expect_rel, expect_abs
    # half-rate escape: the ODF peak half-way between detections vs around it
    cdef double halve_rel, mid_peak, side_peak
    cdef int mid_hist
    cdef long long last_onset_hop
    # a louder step inside the refractory interval of a quieter detection
    # supersedes it (see _end_hop): the detection before it, its ODF peak and
    # level, and whether its interval went into the rhythm
    cdef long long prev_onset_hop, replaced_hop
    cdef double last_peak, last_level
    cdef bint last_pushed, cand_override, cand_rhythm
    cdef readonly double override_ratio, override_db, rhythm_override, rhythm_tol, limp_tol
    cdef double step_level     # typical ODF peak of recent steps (tracked)
    cdef long long first_signal_hop   # first hop that was not digital silence (-1: none yet)
    cdef long long last_silent_hop    # latest hop of digital silence
    cdef int n_steps_seen
    cdef long long intervals[8]
    cdef int n_intervals
    # current step (feature collection)
    cdef long long cur_onset_sample, cur_detect_sample, cur_onset_hop
    cdef double cur_odf_peak
    cdef double cur_pre_db
    cdef double cur_noise[NB]
    cdef double win[NB][MAXW]
    cdef double win_peak[MAXW]
    cdef int win_len
    cdef int collecting
    # outputs
    cdef readonly int n_events
    cdef int[::1] kinds_v
    cdef long long[::1] onset_v
    cdef long long[::1] detect_v
    cdef double[:, ::1] feat_v
    cdef readonly object kinds, onset_samples, detect_samples, features
    cdef readonly long long nonfinite_count
    # own-output leak suppression (live duplex only)
    cdef bint use_ref
    cdef double rz1[NSOS]
    cdef double rz2[NSOS]
    cdef double racc[NB]
    cdef double ref_hold[NB]
    cdef double leak_hist[NB][MAXRISE]
    cdef double out_hist[MAXRISE]     # broadband level our own output may reach in each hop
    cdef double rref[NB][MAXRISE]
    cdef long long veto_until[NB]
    cdef int veto_hops
    # measured arrival of our own output (lag of input rises after reference onsets)
    cdef long long ref_onset_hop
    cdef double pre_level
    cdef int lags[8]
    cdef readonly long long n_lags_total
    cdef int ref_shift
    cdef readonly int shift_changes
    cdef int lag_window_hops
    cdef long long last_out_hop       # latest hop in which we played something (reference mode)
    cdef double leak_db[NB]
    cdef double leak_db_other[NB]   # the other leak state's gains (see set_leak_state)
    cdef int leak_state
    cdef double ref_decay, leak_margin_db
    cdef readonly double last_odf
    # learned detection function (optional, see set_model)
    cdef StepNet net
    cdef bint has_net
    cdef double net_scale, hand_thr
    # the hand-made ODF as the model's extra inputs (model-independent: own noise floors, never frozen)
    cdef double in_floor_db[NB]
    cdef double in_peak
    cdef bint inputs_on     # computed only for a model that reads them, or while tracing (see trace)
    cdef double net_in[4]
    cdef double[:, ::1] trace_v
    cdef long long trace_n, trace_cap

    def __init__(self, int sample_rate, int hop_length, sos, band_weights, *,
                 double min_interval_s=0.2, double refractory_fraction=0.5,
                 double feature_window_s=0.1, double energy_window_s=0.05,
                 double floor_up_db_s=2.0, double floor_down_db_s=8.0,
                 double rise_s=0.008, double excess_margin_db=3.0,
                 double threshold_abs=6.0, double threshold_rel=0.3,
                 double confirm_s=0.008, double abs_floor_db=-100.0,
                 fast_windows_s=(0.008, 0.02, 0.005, 0.004), double lookback_s=0.08,
                 double lookback_db=8.0, double pre_window_s=0.06, double level_gate_db=20.0,
                 double override_ratio=0.0, double override_db=0.0, double early_ratio=0.75,
                 double early_gate_db=6.0, double early_peak=0.6, double expect_tol=0.15,
                 double expect_rel=0.0, double expect_abs=1.0, double halve_rel=0.0,
                 double rhythm_override=0.0, double rhythm_tol=0.1, double limp_tol=0.0,
                 int capacity=64):
        cdef int i, j
        if not (8000 <= sample_rate <= 192000):
            raise ValueError(f"sample_rate={sample_rate} must be between 8000 and 192000 Hz")
        if not (1 <= hop_length <= sample_rate // 100):
            raise ValueError(f"hop_length={hop_length} must be between 1 and sample_rate/100")
        s = np.ascontiguousarray(sos, dtype=np.float64)
        if s.shape != (NSOS, 6) or not np.all(np.isfinite(s)):
            raise ValueError("sos must be a finite (6, 6) array of biquad sections")
        w = np.ascontiguousarray(band_weights, dtype=np.float64)
        if w.shape != (NB,) or not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError("band_weights must be 4 finite non-negative weights")
        for name, value in (("min_interval_s", min_interval_s), ("feature_window_s", feature_window_s),
                            ("energy_window_s", energy_window_s), ("rise_s", rise_s),
                            ("confirm_s", confirm_s), ("floor_up_db_s", floor_up_db_s),
                            ("floor_down_db_s", floor_down_db_s)):
            if not (isfinite(value) and value > 0):
                raise ValueError(f"{name}={value} must be a positive number")
        if feature_window_s > min_interval_s:
            raise ValueError("feature_window_s must not exceed min_interval_s")
        if not (capacity >= 4):
            raise ValueError("capacity must be >= 4")
        self.sample_rate = sample_rate
        self.hop_length = hop_length
        for i in range(NSOS):
            for j in range(6):
                self.sos[i][j] = s[i, j]
        for i in range(NB):
            self.weights[i] = w[i]
        cdef double hop_s = hop_length / <double> sample_rate
        self.min_interval_hops = max(1, <int> (min_interval_s / hop_s + 0.5))
        self.feature_hops = min(MAXW, max(2, <int> (feature_window_s / hop_s + 0.5)))
        self.energy_hops = min(self.feature_hops, max(1, <int> (energy_window_s / hop_s + 0.5)))
        fw = np.ascontiguousarray(fast_windows_s, dtype=np.float64)
        if fw.shape != (NB,) or not np.all(np.isfinite(fw)) or np.any(fw <= 0):
            raise ValueError("fast_windows_s must be 4 positive durations")
        self.rise_hops = max(1, <int> (rise_s / hop_s + 0.5))
        for i in range(NB):
            self.fast_hops[i] = max(1, <int> (fw[i] / hop_s + 0.5))
            if self.fast_hops[i] + self.rise_hops >= MAXRISE:
                raise ValueError("fast_windows_s + rise_s is too long for this hop length")
        self.confirm_hops = max(1, <int> (confirm_s / hop_s + 0.5))
        if not (isfinite(lookback_s) and 0 <= lookback_s <= 0.2):
            raise ValueError(f"lookback_s={lookback_s} must be between 0 and 0.2 s")
        self.lookback_hops = min(MAXRISE - self.confirm_hops - 8, <int> (lookback_s / hop_s + 0.5))
        self.lookback_db = lookback_db
        if not (isfinite(pre_window_s) and 0 < pre_window_s <= 0.2):
            raise ValueError(f"pre_window_s={pre_window_s} must be between 0 and 0.2 s")
        self.pre_hops = max(1, min(MAXRISE - 8 - self.confirm_hops - self.lookback_hops,
                                   <int> (pre_window_s / hop_s + 0.5)))
        self.gate_db = level_gate_db
        if not (isfinite(override_ratio) and override_ratio >= 0 and isfinite(override_db)):
            raise ValueError(f"override_ratio={override_ratio} must be >= 0 (0: off), override_db finite")
        self.override_ratio = override_ratio
        self.override_db = override_db
        if not (isfinite(early_ratio) and 0 <= early_ratio <= 2 and isfinite(early_gate_db)
                and isfinite(early_peak) and early_peak >= 0):
            raise ValueError(f"early_ratio={early_ratio} must be in [0, 2], early_gate_db and "
                             f"early_peak={early_peak} finite (early_peak >= 0)")
        self.early_ratio = early_ratio
        self.early_gate_db = early_gate_db
        self.early_peak = early_peak
        if not (isfinite(expect_tol) and 0 <= expect_tol <= 0.5 and isfinite(expect_rel) and expect_rel >= 0
                and isfinite(expect_abs) and expect_abs > 0):
            raise ValueError(f"expect_tol={expect_tol} must be in [0, 0.5], expect_rel={expect_rel} >= 0, "
                             f"expect_abs={expect_abs} > 0")
        self.expect_tol = expect_tol
        self.expect_rel = expect_rel
        self.expect_abs = expect_abs
        if not (isfinite(halve_rel) and halve_rel >= 0):
            raise ValueError(f"halve_rel={halve_rel} must be >= 0 (0: off)")
        self.halve_rel = halve_rel
        if not (isfinite(rhythm_override) and rhythm_override >= 0):
            raise ValueError(f"rhythm_override={rhythm_override} must be >= 0 (0: off)")
        self.rhythm_override = rhythm_override
        if not (isfinite(rhythm_tol) and 0 <= rhythm_tol <= 0.5):
            raise ValueError(f"rhythm_tol={rhythm_tol} must be in [0, 0.5]")
        self.rhythm_tol = rhythm_tol
        if not (isfinite(limp_tol) and 0 <= limp_tol <= 0.5):
            raise ValueError(f"limp_tol={limp_tol} must be in [0, 0.5] (0: off)")
        self.limp_tol = limp_tol
        self.ref_decay = pow(10.0, -hop_s / 0.02)      # reference hold: -10 dB per 20 ms
        self.leak_margin_db = 6.0
        self.veto_hops = max(2, <int> (0.006 / hop_s + 0.5))  # + arrival tolerance
        self.lag_window_hops = <int> (0.2 / hop_s + 0.5)     # arrivals searched up to 200 ms late
        self.refractory_fraction = refractory_fraction
        self.up_db = floor_up_db_s * hop_s
        self.down_db = floor_down_db_s * hop_s
        self.warm_hops = <int> (1.0 / hop_s)
        self.forget_level = pow(0.5, hop_s / 2.0)   # halves every 2 s
        self.forget_db = 3.0 * hop_s                # 3 dB/s
        self.settle_hops = <int> (0.1 / hop_s)   # filters and noise floors settle: no steps yet
        self.silence_power = pow(10.0, abs_floor_db / 10.0)
        self.margin_db = excess_margin_db
        self.thr_abs = threshold_abs
        self.thr_rel = threshold_rel
        self.abs_floor_db = abs_floor_db
        self.capacity = capacity
        # at most one onset and one step row per min interval, plus slack; a superseding onset
        # needs only the previous step's feature window to have passed (which begins up to the
        # look-back before its candidate hop)
        cdef int spacing = self.min_interval_hops
        if override_ratio > 0.0 and self.feature_hops - self.lookback_hops - 2 < spacing:
            spacing = max(1, self.feature_hops - self.lookback_hops - 2)
        if rhythm_override > 0.0:
            # a supersession by the rhythm may follow the detection it replaces
            # at once: two onsets and two steps per min interval
            spacing = max(1, min(spacing, self.min_interval_hops // 2))
        self.max_block = max(1, (capacity // 2 - 2)) * spacing * hop_length
        ring_len = 1
        while ring_len < hop_length * (self.lookback_hops + self.confirm_hops + 8):
            ring_len *= 2
        self.ring = np.zeros(ring_len, dtype=np.float64)
        self.ring_mask = ring_len - 1
        self.kinds = np.zeros(capacity, dtype=np.int32)
        self.onset_samples = np.zeros(capacity, dtype=np.int64)
        self.detect_samples = np.zeros(capacity, dtype=np.int64)
        self.features = np.zeros((capacity, NFEAT), dtype=np.float64)
        self.kinds_v = self.kinds
        self.onset_v = self.onset_samples
        self.detect_v = self.detect_samples
        self.feat_v = self.features
        self.reset()

    @property
    def latency_samples(self):
        """Longest delay from a step's onset to its ONSET event [samples]."""
        return (self.confirm_hops + 3 + self.lookback_hops) * self.hop_length

    @property
    def feature_latency_samples(self):
        """Delay from a step's onset to its STEP (features) event [samples]
        (at most; one hop less when the onset was found by the look-back)."""
        return (self.feature_hops + 1) * self.hop_length

    def set_model(self, StepNet net, double scale=20.0, double hand_threshold=8.0):
        """Use a learned step-onset model as the detection function.

        Parameters
        ----------
        net : stepsound.detect._stepnet.StepNet or None
            Same sample rate and hop; its output ring must hold a whole
            ``max_block``.  None returns to the hand-made ODF.  The model is
            reset with the detector.
        scale : float
            The ODF of a hop is ``scale`` times the model's probability
            (``threshold_abs`` and ``threshold_rel`` apply to it).  A model
            with extra inputs (``net.n_extra`` of 1 to 3) reads, per hop, the
            first ``n_extra`` of the inputs :meth:`trace` records (functions of
            the hand-made ODF), and is evaluated by this core hop by hop.
        hand_threshold : float
            Reference mode only: in a hop where our own output may sound, the
            model's output counts only if the hand-made ODF (which counts only
            what stands above our own output) exceeds this.
        """
        if net is None:
            self.net = None
            self.has_net = False
            self.reset()
            return
        if net.sample_rate != self.sample_rate or net.hop_length != self.hop_length:
            raise ValueError("the model's sample rate and hop must be the detector's")
        if net.n_extra > 3:
            raise ValueError("the core supplies at most 3 extra inputs (see trace)")
        if <long long> net.out_ring * self.hop_length < self.max_block + 4 * self.hop_length:
            raise ValueError("the model's output ring is shorter than max_block")
        self.net = net
        self.has_net = True
        self.net_scale = scale
        self.hand_thr = hand_threshold
        self.reset()

    def set_gate(self, mu=None, sd=None, w1=None, b1=None, w2=None, double b2=0.0, double threshold=0.5):
        """Veto candidate steps with a small network on their features (None: no gate).

        At its decision a candidate that would be committed is scored
        ``p = sigmoid(w2 . tanh(w1 @ ((f - mu) / sd) + b1) + b2)`` from its
        :data:`CANDIDATE_FEATURES` ``f``; it is committed only if ``p >=
        threshold``.  Evaluated once per candidate, not per hop.

        Parameters
        ----------
        mu, sd : array [shape=(NCF,)]
            Feature normalisation (``sd`` > 0).
        w1 : array [shape=(hidden, NCF)], b1, w2 : arrays [shape=(hidden,)]
            At most 32 hidden units.
        b2, threshold : float
        """
        cdef int i, j
        if mu is None:
            self.has_gate = False
            return
        m = np.ascontiguousarray(mu, dtype=np.float64)
        d = np.ascontiguousarray(sd, dtype=np.float64)
        a = np.ascontiguousarray(w1, dtype=np.float64)
        c = np.ascontiguousarray(b1, dtype=np.float64)
        v = np.ascontiguousarray(w2, dtype=np.float64)
        nh = a.shape[0] if a.ndim == 2 else -1
        if (m.shape != (NCF,) or d.shape != (NCF,) or a.ndim != 2 or a.shape[1] != NCF or not 1 <= nh <= MAXGH
                or c.shape != (nh,) or v.shape != (nh,)):
            raise ValueError(f"gate weights must be mu, sd ({NCF},), w1 (hidden <= {MAXGH}, {NCF}), b1 and w2 (hidden,)")
        if not (np.all(np.isfinite(m)) and np.all(np.isfinite(a)) and np.all(np.isfinite(c)) and np.all(np.isfinite(v))
                and np.all(np.isfinite(d)) and np.all(d > 0) and isfinite(b2) and 0.0 <= threshold <= 1.0):
            raise ValueError("gate weights must be finite, sd > 0 and the threshold in [0, 1]")
        self.g_nh = nh
        for j in range(NCF):
            self.g_mu[j] = m[j]
            self.g_sd[j] = d[j]
        for i in range(nh):
            self.g_b1[i] = c[i]
            self.g_w2[i] = v[i]
            for j in range(NCF):
                self.g_w1[i][j] = a[i, j]
        self.g_b2 = b2
        self.g_thr = threshold
        self.has_gate = True

    def log_candidates(self, long long capacity):
        """Record every candidate's decision from now on (training the gate; allocates).

        :attr:`candidate_log` then holds one row per candidate that reached its
        decision (at most ``capacity``): candidate hop, 1 if it passed the
        detector's own tests (level gate, supersession), the gate's score
        (NaN without a gate), then its :data:`CANDIDATE_FEATURES`.
        """
        self.clog_v = np.zeros((max(0, capacity), NCF + 3), dtype=np.float64)
        self.clog_n = 0
        self.clog_cap = max(0, capacity)

    @property
    def candidate_log(self):
        """The candidates recorded since :meth:`log_candidates` (rows, see there)."""
        if self.clog_cap == 0:
            return np.zeros((0, NCF + 3))
        return np.asarray(self.clog_v)[:self.clog_n].copy()

    def reset(self):
        """Return to the fresh state (filters, noise floors, counters, events)."""
        cdef int i, j
        self.clog_n = 0
        if self.has_net:
            self.net.reset()
        for i in range(NSOS):
            self.z1[i] = 0.0
            self.z2[i] = 0.0
        for i in range(NB):
            self.acc[i] = 0.0
            self.floor_db[i] = HUGE_VAL
            for j in range(MAXRISE):
                self.hist[i][j] = 0.0
        self.ring[:] = 0.0
        for i in range(NSOS):
            self.rz1[i] = 0.0
            self.rz2[i] = 0.0
        for i in range(NB):
            self.racc[i] = 0.0
            self.ref_hold[i] = 0.0
            self.leak_db[i] = 20.0
            self.leak_db_other[i] = 20.0
            self.veto_until[i] = 0
            for j in range(MAXRISE):
                self.leak_hist[i][j] = 0.0
                self.rref[i][j] = 0.0
        for j in range(MAXRISE):
            self.out_hist[j] = 0.0
        self.use_ref = False
        self.leak_state = 0
        self.ref_onset_hop = -1
        self.pre_level = 0.0
        self.n_lags_total = 0
        self.ref_shift = 0
        self.shift_changes = 0
        for i in range(8):
            self.lags[i] = 0
        self.hop_peak = 0.0
        self.sample_index = 0
        self.hop_pos = 0
        self.hop_index = 0
        self.hist_pos = 0
        self.state = 0
        self.cand_hop = 0
        self.cand_peak = 0.0
        self.cand_level = -300.0
        self.step_db = -300.0
        self.last_onset_hop = -(1 << 40)
        self.prev_onset_hop = -(1 << 40)
        self.replaced_hop = -(1 << 40)
        self.last_peak = 0.0
        self.last_level = -300.0
        self.last_pushed = 0
        self.cand_override = 0
        self.cand_rhythm = 0
        self.step_level = 0.0
        self.first_signal_hop = -1
        self.last_silent_hop = -(1 << 40)
        self.n_steps_seen = 0
        self.n_intervals = 0
        self.mid_peak = 0.0
        self.side_peak = 0.0
        self.mid_hist = 0
        self.last_out_hop = -(1 << 40)
        self.collecting = 0
        self.cur_onset_hop = -(1 << 40)
        self.win_len = 0
        self.n_events = 0
        self.nonfinite_count = 0
        self.last_odf = 0.0
        for i in range(NB):
            self.in_floor_db[i] = HUGE_VAL
        self.in_peak = 0.0
        self.inputs_on = self.has_net and self.net.n_extra > 0
        for i in range(4):
            self.net_in[i] = 0.0
        self.trace_cap = 0
        self.trace_n = 0

    def trace(self, const float[::1] x):
        """Process a signal and record, per hop, the model's extra inputs and the ODF (training, tests; allocates).

        Runs :meth:`process` over ``x`` in blocks of ``max_block`` (events
        are produced and dropped) from the current state, and returns one row
        per hop completed.  The extra inputs are computed per hop only where
        they are read (a model with extra inputs, or a trace), so a detector
        without such a model must be traced from its fresh state.

        Parameters
        ----------
        x : np.ndarray [shape=(n,), float32]

        Returns
        -------
        rows : np.ndarray [shape=(hops, 4), float64]
            Columns: ``log1p(hand)``, ``hand / (peak + 6)``, ``log1p(peak)``
            -- the extra inputs a model with ``n_extra`` > 0 reads, in order,
            where ``hand`` is the hand-made ODF measured against noise floors
            that are never frozen (ODF units, independent of the detections)
            and ``peak`` its peak hold (halving every 2 s) -- and the ODF the
            detector thresholded (ODF units).
        """
        cdef Py_ssize_t n = x.shape[0], a = 0, m
        if not self.inputs_on:
            if self.sample_index > 0:
                raise ValueError("trace a fresh detector (or one with a model of extra inputs): "
                                 "the extra inputs were not computed for the audio before")
            self.inputs_on = True
        hops = (self.sample_index + n) // self.hop_length - self.hop_index
        out = np.zeros((max(0, hops), 4), dtype=np.float64)
        self.trace_v = out
        self.trace_n = 0
        self.trace_cap = out.shape[0]
        try:
            while a < n:
                m = min(n - a, self.max_block)
                self.n_events = 0
                with nogil:
                    self._run(&x[a], NULL, m)
                a += m
        finally:
            self.trace_cap = 0
            self.trace_v = None
        return out

    def process(self, const float[::1] x):
        """Consume a block of samples; return the number of event rows written.

        Parameters
        ----------
        x : np.ndarray [shape=(n,), float32, C-contiguous]
            Mono audio, nominally in [-1, 1]; ``0 <= n <= max_block``.
            Non-finite samples are replaced by 0 and counted
            (:attr:`nonfinite_count`).

        Returns
        -------
        n_events : int
            Rows ``0 .. n_events-1`` of ``kinds``, ``onset_samples``,
            ``detect_samples`` and ``features`` are this call's events, in
            order (valid until the next call).
        """
        cdef Py_ssize_t n = x.shape[0]
        if n > self.max_block:
            raise ValueError(f"block of {n} samples exceeds max_block={self.max_block}")
        self.n_events = 0
        with nogil:
            self._run(&x[0] if n > 0 else NULL, NULL, n)
        return self.n_events

    def process_ref(self, const float[::1] x, const float[::1] ref):
        """Like :meth:`process`, with a reference of our own output.

        Parameters
        ----------
        x : np.ndarray [shape=(n,), float32]
            Microphone samples.
        ref : np.ndarray [shape=(n,), float32]
            What we played, delayed by the round-trip latency so that
            ``ref[i]`` is the output sample that reaches the microphone at
            ``x[i]``.  Its leak (clicks and cues heard back) is suppressed
            before detection.  Once called, the detector stays in
            reference mode until :meth:`reset`.
        """
        cdef Py_ssize_t n = x.shape[0]
        if ref.shape[0] != n:
            raise ValueError("x and ref must have the same length")
        if n > self.max_block:
            raise ValueError(f"block of {n} samples exceeds max_block={self.max_block}")
        self.n_events = 0
        self.use_ref = True
        with nogil:
            self._run(&x[0] if n > 0 else NULL, &ref[0] if n > 0 else NULL, n)
        return self.n_events

    @property
    def leak_gains_db(self):
        """Learned leak gain of our own output into the input, per band [dB] (current leak state)."""
        return [self.leak_db[i] for i in range(NB)]

    @property
    def leak_state(self):
        """Which of two leak gains is learned and used (see :meth:`set_leak_state`)."""
        return self.leak_state

    def set_leak_state(self, int state):
        """Switch between two independently learned leak gains (0 or 1).

        A live session's input is either the raw microphone (state 0) or the
        microphone with our output cancelled (state 1), whose leak is a
        residue 30-40 dB under the raw one.  Each state keeps its own gains,
        so that when the canceller fails (the round trip moved) the raw
        gains, learned earlier, veto our clicks at once, instead of climbing
        back from the residue's level over many clicks.  Call between blocks.
        """
        cdef int i
        cdef double t
        if state not in (0, 1):
            raise ValueError("leak state must be 0 or 1")
        if state == self.leak_state:
            return
        for i in range(NB):
            t = self.leak_db[i]
            self.leak_db[i] = self.leak_db_other[i]
            self.leak_db_other[i] = t
        self.leak_state = state
        # the residue behind a canceller varies more from click to click than a raw click (the
        # canceller's gain and the path's last sample of alignment move it by several dB), and
        # steps stand far above it: a wider margin costs nothing there
        self.leak_margin_db = 6.0 if state == 0 else LEAK_MARGIN_CANCELLED_DB

    cdef inline void _ref_sample(self, double v) noexcept nogil:
        cdef double hp, lo, m, mid, h, hi
        hp = _bq(v, self.sos[0], &self.rz1[0], &self.rz2[0])
        lo = _bq(hp, self.sos[1], &self.rz1[1], &self.rz2[1])
        m = _bq(hp, self.sos[2], &self.rz1[2], &self.rz2[2])
        mid = _bq(m, self.sos[3], &self.rz1[3], &self.rz2[3])
        h = _bq(hp, self.sos[4], &self.rz1[4], &self.rz2[4])
        hi = _bq(h, self.sos[5], &self.rz1[5], &self.rz2[5])
        self.racc[0] += hp * hp
        self.racc[1] += lo * lo
        self.racc[2] += mid * mid
        self.racc[3] += hi * hi

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef void _run(self, const float* x, const float* ref, Py_ssize_t n) noexcept nogil:
        cdef Py_ssize_t i
        cdef double v, hp, lo, m, mid, h, hi, y
        cdef double s00 = self.sos[0][0], s01 = self.sos[0][1], s02 = self.sos[0][2], s04 = self.sos[0][4], s05 = self.sos[0][5]
        cdef double s10 = self.sos[1][0], s11 = self.sos[1][1], s12 = self.sos[1][2], s14 = self.sos[1][4], s15 = self.sos[1][5]
        cdef double s20 = self.sos[2][0], s21 = self.sos[2][1], s22 = self.sos[2][2], s24 = self.sos[2][4], s25 = self.sos[2][5]
        cdef double s30 = self.sos[3][0], s31 = self.sos[3][1], s32 = self.sos[3][2], s34 = self.sos[3][4], s35 = self.sos[3][5]
        cdef double s40 = self.sos[4][0], s41 = self.sos[4][1], s42 = self.sos[4][2], s44 = self.sos[4][4], s45 = self.sos[4][5]
        cdef double s50 = self.sos[5][0], s51 = self.sos[5][1], s52 = self.sos[5][2], s54 = self.sos[5][4], s55 = self.sos[5][5]
        cdef double a0z1 = self.z1[0], a0z2 = self.z2[0], a1z1 = self.z1[1], a1z2 = self.z2[1]
        cdef double a2z1 = self.z1[2], a2z2 = self.z2[2], a3z1 = self.z1[3], a3z2 = self.z2[3]
        cdef double a4z1 = self.z1[4], a4z2 = self.z2[4], a5z1 = self.z1[5], a5z2 = self.z2[5]
        cdef double acc0 = self.acc[0], acc1 = self.acc[1], acc2 = self.acc[2], acc3 = self.acc[3]
        cdef double peak = self.hop_peak
        cdef int hop_pos = self.hop_pos
        cdef int hop_length = self.hop_length
        cdef long long si = self.sample_index
        cdef long long mask = self.ring_mask
        cdef double* ring = &self.ring[0]
        if self.has_net:
            # the model first: its output for every hop of this block is ready
            # when the per-hop logic below reaches that hop
            self.net.run(x, n)
        for i in range(n):
            v = x[i]
            if not isfinite(v):
                v = 0.0
                self.nonfinite_count += 1
            # HP 40 Hz (broadband)
            hp = s00 * v + a0z1
            a0z1 = s01 * v - s04 * hp + a0z2
            a0z2 = s02 * v - s05 * hp
            # LP 300 Hz (low band)
            lo = s10 * hp + a1z1
            a1z1 = s11 * hp - s14 * lo + a1z2
            a1z2 = s12 * hp - s15 * lo
            # HP 300 -> LP 2k (mid band)
            m = s20 * hp + a2z1
            a2z1 = s21 * hp - s24 * m + a2z2
            a2z2 = s22 * hp - s25 * m
            mid = s30 * m + a3z1
            a3z1 = s31 * m - s34 * mid + a3z2
            a3z2 = s32 * m - s35 * mid
            # HP 2k -> LP 8k (high band)
            h = s40 * hp + a4z1
            a4z1 = s41 * hp - s44 * h + a4z2
            a4z2 = s42 * hp - s45 * h
            hi = s50 * h + a5z1
            a5z1 = s51 * h - s54 * hi + a5z2
            a5z2 = s52 * h - s55 * hi
            acc0 += hp * hp
            acc1 += lo * lo
            acc2 += mid * mid
            acc3 += hi * hi
            y = fabs(hp)
            if y > peak:
                peak = y
            ring[si & mask] = hp
            if ref != NULL:
                v = ref[i]
                if not isfinite(v):
                    v = 0.0
                self._ref_sample(v)
            si += 1
            hop_pos += 1
            if hop_pos == hop_length:
                self.sample_index = si
                self.acc[0] = acc0
                self.acc[1] = acc1
                self.acc[2] = acc2
                self.acc[3] = acc3
                self.hop_peak = peak
                self._end_hop()
                acc0 = 0.0
                acc1 = 0.0
                acc2 = 0.0
                acc3 = 0.0
                peak = 0.0
                hop_pos = 0
        self.z1[0] = a0z1
        self.z2[0] = a0z2
        self.z1[1] = a1z1
        self.z2[1] = a1z2
        self.z1[2] = a2z1
        self.z2[2] = a2z2
        self.z1[3] = a3z1
        self.z2[3] = a3z2
        self.z1[4] = a4z1
        self.z2[4] = a4z2
        self.z1[5] = a5z1
        self.z2[5] = a5z2
        self.acc[0] = acc0
        self.acc[1] = acc1
        self.acc[2] = acc2
        self.acc[3] = acc3
        self.hop_peak = peak
        self.hop_pos = hop_pos
        self.sample_index = si

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef void _end_hop(self) noexcept nogil:
        """Per-hop update: levels, noise floors, ODF, peak picking, features."""
        cdef int b, k, j
        cdef double e[NB]
        cdef double p, excess, lowest, rise, contrib, odf, thr, up, down, fast, ref, above, hand, c2, score, med, t2
        cdef bint passed, quiet_out = 1
        cdef double pn, pl
        cdef double inv = 1.0 / self.hop_length
        cdef long long h = self.hop_index
        cdef int refractory
        odf = 0.0
        hand = 0.0
        for b in range(NB):
            self.hist[b][self.hist_pos] = self.acc[b] * inv
        # digital silence (a stream's first buffers, a dropout, a gated input)
        # tells nothing about the noise floor: the floors start, and warm up,
        # with the first hop of sound
        if self.hist[0][self.hist_pos] <= self.silence_power:
            self.last_silent_hop = h
        elif self.first_signal_hop < 0:
            self.first_signal_hop = h
        up = self.up_db
        down = self.down_db
        if self.first_signal_hop < 0 or h < self.first_signal_hop + self.warm_hops:
            up = up * 10.0
            down = down * 10.0
        if self.use_ref:
            self._suppress_leak(h)
        for b in range(NB):
            # level over the fast window (current hop included) and over the
            # reference window just before it
            fast = 0.0
            for k in range(self.fast_hops[b]):
                fast += self.hist[b][(self.hist_pos - k + MAXRISE) % MAXRISE]
            fast /= self.fast_hops[b]
            ref = 0.0
            for k in range(self.fast_hops[b], self.fast_hops[b] + self.rise_hops):
                ref += self.hist[b][(self.hist_pos - k + MAXRISE) % MAXRISE]
            ref /= self.rise_hops
            e[b] = _db(fast)
            if e[b] < self.abs_floor_db:
                e[b] = self.abs_floor_db
            lowest = _db(ref)
            if lowest < self.abs_floor_db:
                lowest = self.abs_floor_db
            rise = e[b] - lowest - self.margin_db
            if self.floor_db[b] == HUGE_VAL and self.first_signal_hop >= 0:
                self.floor_db[b] = e[b]
            excess = e[b] - self.floor_db[b] - self.margin_db   # -inf before any sound
            contrib = excess if excess < rise else rise
            above = HUGE_VAL
            if self.use_ref and self.leak_hist[b][self.hist_pos] > 0.0:
                # our own output is sounding: count only what stands above it
                above = e[b] - _db(self.leak_hist[b][self.hist_pos]) - self.margin_db
                if above < contrib:
                    contrib = above
            if contrib > 0.0:
                odf += self.weights[b] * contrib
            if self.inputs_on:
                # the same against floors that are never frozen (the model's input: it must not depend
                # on the detections the model itself drives)
                if self.in_floor_db[b] == HUGE_VAL and self.first_signal_hop >= 0:
                    self.in_floor_db[b] = e[b]
                c2 = e[b] - self.in_floor_db[b] - self.margin_db
                if rise < c2:
                    c2 = rise
                if above < c2:
                    c2 = above
                if c2 > 0.0:
                    hand += self.weights[b] * c2
                if self.in_floor_db[b] != HUGE_VAL:
                    self.in_floor_db[b] = _track_floor(self.in_floor_db[b], e[b], up, down)
            # noise floor quantile tracker (not updated while a step sounds)
            if self.floor_db[b] != HUGE_VAL and (self.collecting == 0 or h >= self.cur_onset_hop + self.feature_hops):
                self.floor_db[b] = _track_floor(self.floor_db[b], e[b], up, down)
        if self.inputs_on:
            self.in_peak *= self.forget_level
            if hand > self.in_peak:
                self.in_peak = hand
            self.net_in[0] = log1p(hand)
            self.net_in[1] = hand / (self.in_peak + 6.0)
            self.net_in[2] = log1p(self.in_peak)
        if self.has_net:
            contrib = odf       # the hand-made ODF
            if self.net.n_extra > 0:
                odf = self.net_scale * self.net.eval_hop(h, &self.net_in[0])
            else:
                odf = self.net_scale * self.net.prob_at(h)
            if self.use_ref and contrib <= self.hand_thr:
                for b in range(NB):
                    if self.leak_hist[b][self.hist_pos] > 0.0:
                        odf = 0.0      # our own output may be what the model heard
                        break
        self.hist_pos = (self.hist_pos + 1) % MAXRISE
        self.last_odf = odf
        if self.trace_n < self.trace_cap:
            for k in range(3):
                self.trace_v[self.trace_n, k] = self.net_in[k]
            self.trace_v[self.trace_n, 3] = odf
            self.trace_n += 1

        # feature collection for the current step
        if self.collecting:
            k = <int> (h - self.cur_onset_hop)
            if 0 <= k < self.feature_hops:
                for b in range(NB):
                    self.win[b][k] = self.hist[b][(self.hist_pos - 1 + MAXRISE) % MAXRISE]
                self.win_peak[k] = self.hop_peak
                self.win_len = k + 1
                if k == self.feature_hops - 1:
                    self._emit_step()

        # no step for more than 1.5 s although there is sound: the typical
        # step (ODF peak and level) may have been set by a few hard landings
        # or before the level dropped, and can hide every step that follows;
        # forget it gradually (back towards the fresh state)
        if (self.n_steps_seen > 0 and self.state == 0 and not self.collecting
                and h - self.last_onset_hop > (3 * self.warm_hops) // 2 and h - self.last_silent_hop > self.warm_hops):
            self.step_level *= self.forget_level
            self.step_db -= self.forget_db

        # peak picking
        thr = self.thr_rel * self.step_level
        if thr < self.thr_abs:
            thr = self.thr_abs
        refractory = self.min_interval_hops
        med = 0.0
        if self.n_intervals >= 3:
            med = self._median_interval()
            k = <int> (self.refractory_fraction * med)
            if k > refractory:
                refractory = k
            # (both never within 200 ms after we played something: our own
            # click, before the canceller has its round trip right, is no step)
            quiet_out = not self.use_ref or h - self.last_out_hop > self.lag_window_hops
            if self.halve_rel > 0.0 and quiet_out:
                t2 = (h - self.last_onset_hop) / med
                if 0.38 <= t2 <= 0.62:
                    if odf > self.mid_peak:
                        self.mid_peak = odf
                elif 0.15 <= t2 <= 0.85 and odf > self.side_peak:
                    self.side_peak = odf
            if (self.expect_rel > 0.0 and quiet_out
                    and (fabs((h - self.last_onset_hop) / med - 1.0) <= self.expect_tol
                         or self._limp_expects(h, med))):
                # where the rhythm expects the next step: a quieter one is still a step
                t2 = self._expect_threshold()
                if t2 < thr:
                    thr = t2
        if self.state == 0:
            if (odf > thr and self.first_signal_hop >= 0 and h >= self.first_signal_hop + self.settle_hops):
                # (while the last detection's features are still being
                # collected, only a supersession by the rhythm may begin)
                if self.collecting:
                    pass
                elif h - self.last_onset_hop >= refractory:
                    self.state = 1
                    self.cand_override = 0
                    self.cand_rhythm = 0
                elif (self.override_ratio > 0.0 and odf > self.override_ratio * self.last_peak
                        and h - self.prev_onset_hop >= self.min_interval_hops
                        and not (self.use_ref and self.out_hist[(self.hist_pos - 1 + MAXRISE) % MAXRISE]
                                 > pow(10.0, self.floor_db[0] / 10.0))):
                    # (never where our own output may be heard over the noise: a click the
                    # canceller missed is louder than the step before it, and would replace it)
                    # inside the refractory interval of the last detection, but far
                    # stronger: the step that detection (a clink, a consonant, a
                    # scuff) came before; confirmed like any candidate
                    self.state = 1
                    self.cand_override = 1
                    self.cand_rhythm = 0
            if (self.state == 0 and self.rhythm_override > 0.0 and med > 0.0 and quiet_out
                    and self.first_signal_hop >= 0 and h >= self.first_signal_hop + self.settle_hops
                    and h - self.last_onset_hop < refractory
                    and h - self.prev_onset_hop >= self.min_interval_hops
                    and odf > self.rhythm_override * self.last_peak):
                # where the rhythm expects the step, after a detection that
                # came off it: that detection took the step's place.  The
                # threshold where the rhythm expects a step applies, timed
                # from the detection before it.
                pn = fabs((h - self.prev_onset_hop) / med - 1.0)
                pl = fabs((self.last_onset_hop - self.prev_onset_hop) / med - 1.0)
                t2 = self._expect_threshold() if self.expect_rel > 0.0 else thr
                if pn <= self.rhythm_tol and pl >= pn + self.expect_tol and odf > t2:
                    self.state = 1
                    self.cand_override = 1
                    self.cand_rhythm = 1
            if self.state == 1:
                self.cand_hop = h
                self.cand_peak = odf
                self.cand_level = e[0]
                for b in range(NB):
                    self.cand_e[b] = e[b]
                    p = 0.0
                    for k in range(4, 12):
                        p += self.hist[b][(self.hist_pos - 1 - k + MAXRISE) % MAXRISE]
                    self.cand_ref[b] = _db(p / 8.0)
                    if self.cand_ref[b] < self.abs_floor_db:
                        self.cand_ref[b] = self.abs_floor_db
        else:
            if odf > self.cand_peak:
                self.cand_peak = odf
            if e[0] > self.cand_level:
                self.cand_level = e[0]
            for b in range(NB):
                if e[b] > self.cand_e[b]:
                    self.cand_e[b] = e[b]
            if odf < 0.5 * self.cand_peak or h - self.cand_hop >= self.confirm_hops:
                # far quieter than this runner's steps (a toe-off scuff, a
                # rustle heard in a silent room): not a footfall
                gate = self.gate_db
                if (self.n_intervals >= 3 and not self.cand_rhythm
                        and h - self.last_onset_hop < self.early_ratio * self._median_interval()):
                    # earlier than the rhythm expects: only a step as loud as
                    # this runner's steps (not a scuff or a rustle between steps)
                    gate = self.early_gate_db
                    if self.cand_peak < self.early_peak * self.step_level:
                        gate = -1e9
                passed = 0
                if self.cand_override and self.cand_rhythm:
                    if self.cand_peak >= self.rhythm_override * self.last_peak and (
                            self.n_steps_seen < 4 or self.cand_level >= self.step_db - gate):
                        passed = 1
                elif self.cand_override and (self.cand_peak < self.override_ratio * self.last_peak
                                             or self.cand_level < self.last_level + self.override_db):
                    pass
                elif self.n_steps_seen < 4 or self.cand_level >= self.step_db - gate:
                    passed = 1
                if (self.has_gate and passed) or self.clog_n < self.clog_cap:
                    score = self._gate_score(passed)
                    if score < self.g_thr:
                        passed = 0
                if passed:
                    if self.cand_override:
                        if self.collecting:
                            # the detection it replaces: its features from
                            # the window seen so far
                            self._emit_step()
                        self._supersede()
                    self._commit()
                self.state = 0
        self.hop_index = h + 1

    cdef void _suppress_leak(self, long long h) noexcept nogil:
        """Estimate how loud our own output is in this hop's bands.

        The reference (what we played, delayed by the round trip) is filtered
        into the same bands and shifted by what the arrival-lag tracker
        measured (:meth:`_update_shift`).  After each onset of the reference (a click
        starting), for as long as the input's rise measure can see it (fast +
        reference window + 6 ms), its power, held with a fast exponential decay
        (early/late arrival of a few ms), times a learned per-band leak gain
        plus a safety margin, is the *leak level* of the hop.  The ODF counts a
        band only by how far it stands above that level, so our clicks never
        make a step while a step louder than the click still does.  Outside
        those onsets nothing is vetoed: a ringing or decaying click makes no
        rise in the input, and a step on top of it does.  The input
        itself is left untouched (no dips, so no false rises after a click).
        The leak gain tracks a low quantile of input-over-reference power
        ratios on the hops of the veto window where the reference is within
        10 dB of its held peak (where the leak can be heard, and where it is
        used), so steps that coincide with clicks do not inflate it; it
        starts high (veto everything we play), comes down within a few
        clicks, and stays above -60 dB.  In leak state 1 (the input is the
        microphone with our output cancelled, :meth:`set_leak_state`) the gain
        is that of the canceller's residue, the margin 12 dB, and the veto
        covers the whole click, not only its onsets.
        """
        cdef int b, k, j, cur
        cdef double inv = 1.0 / self.hop_length
        cdef double r, raw, p, noise, excess, ratio_db, prev, prev_raw
        for b in range(NB):
            raw = self.racc[b] * inv
            self.racc[b] = 0.0
            # previous raw reference powers, for the lag tracker
            prev_raw = 0.0
            for k in range(1, self.rise_hops + 1):
                j = (self.hist_pos - k + MAXRISE) % MAXRISE
                if self.rref[b][j] > prev_raw:
                    prev_raw = self.rref[b][j]
            self.rref[b][self.hist_pos] = raw
            # the reference as it reaches us: shifted by what the lag tracker
            # measured (the round trip can change while a session runs)
            cur = (self.hist_pos - self.ref_shift + MAXRISE) % MAXRISE
            r = self.rref[b][cur]
            self.ref_hold[b] *= self.ref_decay
            if r > self.ref_hold[b]:
                self.ref_hold[b] = r
            p = self.hist[b][self.hist_pos]
            noise = 0.0
            if self.floor_db[b] != HUGE_VAL:
                noise = pow(10.0, self.floor_db[b] / 10.0)
            # the reference's own onsets: only there can our output make a rise
            # in the input; while a click rings or decays, the input's rise
            # measure already ignores it and a step on top still rises above it
            prev = 0.0
            for k in range(1, self.rise_hops + 1):
                j = (cur - k + MAXRISE) % MAXRISE
                if self.rref[b][j] > prev:
                    prev = self.rref[b][j]
            if b == 0:
                self._track_lag(h, raw, prev_raw, p, noise)
                if raw > 1e-13:
                    self.last_out_hop = h
                self.out_hist[self.hist_pos] = self.ref_hold[0] * pow(10.0, (self.leak_db[0] + self.leak_margin_db) / 10.0)
            if r > 1e-13 and r > 2.0 * prev:
                # as long as the input's rise measure (fast window + reference
                # window) can still see this onset
                self.veto_until[b] = h + self.fast_hops[b] + self.rise_hops + self.veto_hops
            # the leak gain is learned where it is used (the veto window after
            # an onset of our output) and where our output is strong; in a
            # click's long quiet tail the input is only noise, and learning
            # there walked the gain down without limit (a veto that vetoed
            # nothing: our clicks were counted)
            if r > 1e-13 and h >= self.settle_hops and h < self.veto_until[b] and r >= 0.1 * self.ref_hold[b]:
                excess = p - noise
                if excess > 1e-30:
                    ratio_db = 10.0 * log10(excess / r)
                else:
                    ratio_db = -300.0
                if ratio_db > self.leak_db[b]:
                    self.leak_db[b] += 0.15
                elif self.leak_db[b] > LEAK_MIN_DB:
                    self.leak_db[b] -= 0.35
            # behind the canceller (leak state 1) what is left of a click is no clean decay: its
            # tail has bumps of a few dB that, in a silent room, stand far above the noise floor;
            # there the veto covers the whole click (steps stand far above a residue), not only
            # its onset
            if self.ref_hold[b] > 1e-30 and (h < self.veto_until[b] or self.leak_state == 1):
                self.leak_hist[b][self.hist_pos] = self.ref_hold[b] * pow(10.0, (self.leak_db[b] + self.leak_margin_db) / 10.0)
            else:
                self.leak_hist[b][self.hist_pos] = 0.0

    cdef void _track_lag(self, long long h, double r, double prev, double p, double noise) noexcept nogil:
        """Measure when our own output actually arrives: the first clear rise of
        the input's broadband power after an onset of the reference."""
        cdef int k
        cdef double base
        if self.ref_onset_hop >= 0:
            base = self.pre_level
            if base < noise:
                base = noise
            if p > 8.0 * base and base > 0.0:
                self.lags[self.n_lags_total % 8] = <int> (h - self.ref_onset_hop)
                self.n_lags_total += 1
                self.ref_onset_hop = -1
                self._update_shift()
            elif h - self.ref_onset_hop > self.lag_window_hops:
                self.ref_onset_hop = -1
        if self.ref_onset_hop < 0 and r > 1e-13 and r > 4.0 * prev and h >= self.settle_hops:
            self.ref_onset_hop = h
            base = 0.0
            for k in range(1, 4):
                base += self.hist[0][(self.hist_pos - k + MAXRISE) % MAXRISE]
            self.pre_level = base / 3.0

    cdef void _update_shift(self) noexcept nogil:
        """When the last 3 arrival lags agree within two hops, align the
        reference with them (our clicks arrive at one constant lag)."""
        cdef int i, k, lo = 1 << 30, hi = -(1 << 30), v, shift
        if self.n_lags_total < 3:
            return
        for i in range(3):
            v = self.lags[(self.n_lags_total - 1 - i) % 8]
            if v < lo:
                lo = v
            if v > hi:
                hi = v
        if hi - lo > 2:
            return
        # lags count from the unshifted reference.  A click's rise is found
        # 1-3 hops after its onset; start the veto before that (early is
        # harmless, late lets the click's first hop through)
        shift = lo - 3
        if shift < 0:
            shift = 0
        if shift > MAXRISE - 48:
            shift = MAXRISE - 48
        if shift >= self.ref_shift + 3 or shift <= self.ref_shift - 3:   # a few hops of jitter: keep it
            self.ref_shift = shift
            self.shift_changes += 1

    @property
    def ref_shift_samples(self):
        """How much later than given the reference is used, as measured [samples]."""
        return self.ref_shift * self.hop_length

    @property
    def leak_lag_samples(self):
        """Measured delay from a reference onset to its arrival in the input
        [samples, hop resolution]: the median of the last (up to 8, at least 6)
        onsets when all but one agree within a hop, else None."""
        cdef int n = <int> min(self.n_lags_total, 8)
        if n < 6:
            return None
        lags = np.array([self.lags[(self.n_lags_total - 1 - i) % 8] for i in range(n)])
        med = int(np.median(lags))
        # our clicks arrive at one constant lag; rises that are steps do not:
        # only a consistent lag counts
        if np.sum(np.abs(lags - med) <= 1) < n - 1:
            return None
        return med * self.hop_length

    cdef double _median_hop_power(self, int b, long long end_hop) noexcept nogil:
        """Median per-hop power of band b over the (up to) 30 hops before end_hop."""
        cdef double tmp[30]
        cdef int n = 0, i, k
        cdef long long hh
        cdef double t
        for hh in range(end_hop - 30, end_hop):
            if hh < 0 or self.hop_index - hh >= MAXRISE - 1:
                continue
            tmp[n] = self.hist[b][(self.hist_pos - 1 - (self.hop_index - hh) + 4 * MAXRISE) % MAXRISE]
            n += 1
        if n == 0:
            return 0.0
        for i in range(1, n):
            t = tmp[i]
            k = i - 1
            while k >= 0 and tmp[k] > t:
                tmp[k + 1] = tmp[k]
                k -= 1
            tmp[k + 1] = t
        return tmp[n // 2]

    cdef inline double _expect_threshold(self) noexcept nogil:
        """The ODF threshold where the rhythm expects a step: ``expect_rel`` of
        the typical step peak, never below ``expect_abs`` times the absolute one."""
        cdef double t = self.expect_rel * self.step_level
        if t < self.expect_abs * self.thr_abs:
            t = self.expect_abs * self.thr_abs
        return t

    cdef inline double _limp_interval(self, double med) noexcept nogil:
        """The interval a limp's rhythm expects next [hops], or 0 (no limp).

        A limp alternates a long and a short interval, each about 15 % off the
        median, so the median never predicts the next step; the same foot's
        last interval (the one before the last) does.  Only when the last four
        intervals alternate (the last two differ by more than ``limp_tol`` of
        the median) and each foot's repeats (within ``limp_tol``).
        """
        if self.limp_tol <= 0.0 or self.n_intervals < 4:
            return 0.0
        if (fabs(<double> (self.intervals[0] - self.intervals[2])) > self.limp_tol * med
                or fabs(<double> (self.intervals[1] - self.intervals[3])) > self.limp_tol * med
                or fabs(<double> (self.intervals[0] - self.intervals[1])) <= self.limp_tol * med):
            return 0.0
        return <double> self.intervals[1]

    cdef inline bint _limp_expects(self, long long h, double med) noexcept nogil:
        """Does a limp's rhythm expect the next step at hop h (see _limp_interval)?"""
        cdef double a = self._limp_interval(med)
        return a > 0.0 and fabs((h - self.last_onset_hop) / a - 1.0) <= self.expect_tol

    cdef double _median_interval(self) noexcept nogil:
        cdef long long tmp[8]
        cdef int i, j, n = self.n_intervals
        cdef long long t
        if n > 8:
            n = 8
        for i in range(n):
            tmp[i] = self.intervals[i]
        for i in range(1, n):
            t = tmp[i]
            j = i - 1
            while j >= 0 and tmp[j] > t:
                tmp[j + 1] = tmp[j]
                j -= 1
            tmp[j + 1] = t
        return <double> tmp[n // 2]

    cdef void _commit(self) noexcept nogil:
        """Commit the candidate step: refine its onset, emit an ONSET event."""
        cdef long long start, stop, s, onset
        cdef double peak, thr, y, noise_rms
        cdef long long gap
        # look back: the footfall may have begun before the ODF crossing
        # (a heel contact heard in noise, its forefoot slap crossing): walk
        # back over hops whose broadband or low-band power stands clearly above
        # the noise floor, stepping over at most LOOKBACK_GAP hops that dip.
        cdef long long first = self.cand_hop, j, lim
        cdef int holes = 0
        cdef int idx
        cdef double g = pow(10.0, self.lookback_db / 10.0)
        cdef double n0 = pow(10.0, self.floor_db[0] / 10.0) * g
        cdef double n1 = pow(10.0, self.floor_db[1] / 10.0) * g
        # and within 25 dB of the candidate itself (in a quiet room the tail
        # of the previous step stands far above the noise floor too)
        cdef double lvl0 = 0.0, lvl1 = 0.0
        for j in range(self.cand_hop, self.hop_index + 1):
            idx = <int> ((self.hist_pos - 1 - (self.hop_index - j) + 4 * MAXRISE) % MAXRISE)
            if self.hist[0][idx] > lvl0:
                lvl0 = self.hist[0][idx]
            if self.hist[1][idx] > lvl1:
                lvl1 = self.hist[1][idx]
        lvl0 *= 0.00316
        lvl1 *= 0.00316
        lim = self.cand_hop - self.lookback_hops
        if lim < self.last_onset_hop + self.min_interval_hops // 2:
            lim = self.last_onset_hop + self.min_interval_hops // 2
        if self.cand_rhythm and lim <= (self.replaced_hop + self.cand_hop) // 2:
            # (not back into the sound it supersedes, which may be close before it)
            lim = (self.replaced_hop + self.cand_hop) // 2 + 1
        if lim < 0:
            lim = 0
        # and 6 dB above the local background (the median hop just before the
        # look-back span): in babble or clatter the level before a step stands
        # above the long-term floor, and is no part of the step
        cdef double bg0 = self._median_hop_power(0, lim) * 3.98
        cdef double bg1 = self._median_hop_power(1, lim) * 3.98
        if lvl0 < bg0:
            lvl0 = bg0
        if lvl1 < bg1:
            lvl1 = bg1
        j = self.cand_hop - 1
        while j >= lim:
            idx = <int> ((self.hist_pos - 1 - (self.hop_index - j) + 4 * MAXRISE) % MAXRISE)
            if self.leak_hist[0][idx] > 0.0 or self.leak_hist[1][idx] > 0.0:
                # our own click sounds here: look through it (it neither ends
                # the footfall nor can be its start), but beyond it accept only
                # hops that pass outright (no dips stepped over)
                holes = LOOKBACK_GAP
                j -= 1
            elif ((self.hist[0][idx] >= n0 and self.hist[0][idx] >= lvl0)
                    or (self.hist[1][idx] >= n1 and self.hist[1][idx] >= lvl1)):
                first = j
                holes = 0
                j -= 1
            elif holes < LOOKBACK_GAP:
                # a heel thud heard in noise dips below the line for a hop
                # or two between its contact and the forefoot slap
                holes += 1
                j -= 1
            else:
                break
        # search window: from 2 hops before the first hop to the end of the
        # candidate hop
        start = (first - 2) * self.hop_length
        if start < 0:
            start = 0
        if start < self.sample_index - self.ring_mask:
            start = self.sample_index - self.ring_mask
        stop = (self.cand_hop + 1) * self.hop_length
        if first < self.cand_hop - 1:
            stop = (first + 1) * self.hop_length
        if stop > self.sample_index:
            stop = self.sample_index
        peak = 0.0
        for s in range(start, stop):
            y = fabs(self.ring[s & self.ring_mask])
            if y > peak:
                peak = y
        noise_rms = 0.0
        if self.floor_db[0] > -290.0:
            noise_rms = sqrt(pow(10.0, self.floor_db[0] / 10.0))
        thr = 0.25 * peak
        if thr < 3.0 * noise_rms:
            thr = 3.0 * noise_rms
        if thr > peak:
            thr = peak
        onset = first * self.hop_length
        for s in range(start, stop):
            if fabs(self.ring[s & self.ring_mask]) >= thr:
                onset = s
                break
        # interval bookkeeping (for the adaptive refractory period)
        gap = self.cand_hop - self.last_onset_hop
        self.last_pushed = 0
        if self.halve_rel > 0.0:
            self._half_rate_check(gap)
        if self.n_steps_seen > 0 and gap < 2 * self.warm_hops:
            for s in range(7, 0, -1):
                self.intervals[s] = self.intervals[s - 1]
            self.intervals[0] = gap
            if self.n_intervals < 8:
                self.n_intervals += 1
            self.last_pushed = 1
        elif self.n_steps_seen > 0:
            self.n_intervals = 0       # long pause: forget the old rhythm
        self.prev_onset_hop = self.last_onset_hop
        self.last_onset_hop = self.cand_hop
        self.last_peak = self.cand_peak
        self.last_level = self.cand_level
        # typical step ODF level: fast start, then slow
        if self.n_steps_seen < 4:
            if self.cand_peak > self.step_level:
                self.step_level = self.cand_peak
            else:
                self.step_level = 0.5 * (self.step_level + self.cand_peak)
            if self.cand_level > self.step_db:
                self.step_db = self.cand_level
            else:
                self.step_db = 0.5 * (self.step_db + self.cand_level)
        else:
            self.step_level += 0.1 * (self.cand_peak - self.step_level)
            self.step_db += 0.1 * (self.cand_level - self.step_db)
        self.n_steps_seen += 1
        # the previous step's onset hop is still in cur_onset_hop here
        self.cur_pre_db = self._pre_onset_db(onset // self.hop_length, self.cur_onset_hop + self.feature_hops)
        self.cur_onset_sample = onset
        self.cur_detect_sample = self.sample_index
        # the feature window starts at the hop of the (refined) onset, so a heel
        # contact found by the look-back is part of the step's features
        self.cur_onset_hop = onset // self.hop_length
        self.cur_odf_peak = self.cand_peak
        for s in range(NB):
            self.cur_noise[s] = pow(10.0, self.floor_db[s] / 10.0)
        # feature window starts at the candidate hop; fill the hops already seen
        self.collecting = 1
        self.win_len = 0
        self._backfill()
        if self.n_events < self.capacity:
            self.kinds_v[self.n_events] = _ONSET_SUPERSEDES if self.cand_override else _ONSET
            self.onset_v[self.n_events] = onset
            self.detect_v[self.n_events] = self.sample_index
            self.n_events += 1

    cdef double _gate_score(self, bint passed) noexcept nogil:
        """The candidate's features; its gate score (1.0 without a gate); a log row if logging."""
        cdef double f[NCF]
        cdef double med = 0.0, z, act, out, alt
        cdef int b, i, j
        for b in range(NB):
            f[b] = _clamp(self.cand_e[b] - self.floor_db[b], -20.0, 80.0)
            f[NB + b] = _clamp(self.cand_e[b] - self.cand_ref[b], -20.0, 80.0)
        f[8] = log((self.cand_peak + 1.0) / (self.step_level + 1.0)) if self.n_steps_seen > 0 else 0.0
        f[9] = _clamp(self.cand_level - self.step_db, -40.0, 40.0) if self.n_steps_seen > 0 else 0.0
        f[10] = 1.0
        f[11] = 0.0
        if self.n_intervals >= 3:
            med = self._median_interval()
            if med > 0:
                # place in the rhythm: re the interval expected next (a
                # limp's same-foot interval where it limps)
                alt = self._limp_interval(med)
                f[10] = _clamp((self.cand_hop - self.last_onset_hop) / (alt if alt > 0.0 else med), 0.0, 3.0)
                f[11] = 1.0
        f[12] = 1.0 if self.cand_override else 0.0
        f[13] = log(self.cand_peak + 1.0)
        out = 1.0
        if self.has_gate:
            z = self.g_b2
            for i in range(self.g_nh):
                act = self.g_b1[i]
                for j in range(NCF):
                    act += self.g_w1[i][j] * (f[j] - self.g_mu[j]) / self.g_sd[j]
                z += self.g_w2[i] * tanh(act)
            out = 1.0 / (1.0 + exp(-z)) if z > -700.0 else 0.0
        if self.clog_n < self.clog_cap:
            self.clog_v[self.clog_n, 0] = self.cand_hop
            self.clog_v[self.clog_n, 1] = 1.0 if passed else 0.0
            self.clog_v[self.clog_n, 2] = out if self.has_gate else NAN
            for j in range(NCF):
                self.clog_v[self.clog_n, 3 + j] = f[j]
            self.clog_n += 1
        return out

    cdef void _half_rate_check(self, long long gap) noexcept nogil:
        """Is the rhythm twice the runner's step interval?  Then halve it.

        When the step interval is twice the true one (every other step too
        quiet to pass), the refractory interval and the early gate keep it
        so.  The evidence: in 3 of the last 4 intervals that kept the rhythm,
        the ODF peaked half-way (0.38-0.62 of the interval) at ``halve_rel``
        of the typical step peak or more, twice as high as anywhere else
        between 0.15 and 0.85 of the interval.
        """
        cdef double med, ratio
        cdef int s, ev = 0, n = 0
        if self.n_intervals >= 3:
            med = self._median_interval()
            ratio = gap / med
            if 0.8 <= ratio <= 1.25:
                ev = (self.mid_peak >= self.halve_rel * self.step_level
                      and self.mid_peak >= 2.0 * self.side_peak)
                self.mid_hist = ((self.mid_hist << 1) | ev) & 15
                for s in range(4):
                    n += (self.mid_hist >> s) & 1
                if n >= 3:
                    for s in range(8):
                        self.intervals[s] = self.intervals[s] // 2
                    self.mid_hist = 0
        self.mid_peak = 0.0
        self.side_peak = 0.0

    cdef void _supersede(self) noexcept nogil:
        """Forget the last detection's place in the rhythm before a stronger step replaces it.

        Its interval leaves the interval history and the step committed next
        is timed from the detection before it.  (Its events were emitted
        already; the next onset event says it supersedes it.)
        """
        cdef int s
        if self.last_pushed:
            for s in range(7):
                self.intervals[s] = self.intervals[s + 1]
            self.n_intervals -= 1
        self.last_pushed = 0
        self.replaced_hop = self.last_onset_hop
        self.last_onset_hop = self.prev_onset_hop

    cdef double _pre_onset_db(self, long long onset_hop, long long not_before) noexcept nogil:
        """Mean broadband power of the ``pre_hops`` hops before onset_hop re the
        background just before them (median hop power) [dB]: a heel contact
        the onset missed raises it.  Hops before ``not_before`` (an earlier
        step) or where our own output is audible are left out; NaN when none
        is left, or there is no background yet (digital silence in the windows)."""
        cdef long long j
        cdef int idx, n = 0
        cdef double total = 0.0, bg
        cdef double noise = pow(10.0, self.floor_db[0] / 10.0)
        if self.floor_db[0] == HUGE_VAL or self.last_silent_hop >= onset_hop - self.pre_hops - 30:
            return NAN      # digital silence in the windows: no background to compare with
        for j in range(onset_hop - self.pre_hops, onset_hop):
            if j < 0 or j < not_before or self.hop_index - j >= MAXRISE - 1:
                continue
            idx = <int> ((self.hist_pos - 1 - (self.hop_index - j) + 4 * MAXRISE) % MAXRISE)
            if self.out_hist[idx] > noise:
                continue
            total += self.hist[0][idx]
            n += 1
        if n == 0 or noise <= 0.0:
            return NAN
        bg = self._median_hop_power(0, onset_hop - self.pre_hops)
        if bg <= 0.0:
            return NAN
        return _db(total / n) - _db(bg)

    cdef void _backfill(self) noexcept nogil:
        """Fill the feature window with the hops from the onset to now."""
        cdef long long hh, s, s0, s1
        cdef int k
        cdef double y, pk
        for hh in range(self.cur_onset_hop, self.hop_index + 1):
            k = <int> (hh - self.cur_onset_hop)
            if k >= self.feature_hops:
                break
            s0 = hh * self.hop_length
            s1 = s0 + self.hop_length
            if s1 > self.sample_index:
                break
            pk = 0.0
            for s in range(s0, s1):
                y = self.ring[s & self.ring_mask]
                if fabs(y) > pk:
                    pk = fabs(y)
            # band powers of past hops are in the power history
            self.win[0][k] = self.hist[0][(self.hist_pos - 1 - (self.hop_index - hh) + 2 * MAXRISE) % MAXRISE]
            self.win[1][k] = self.hist[1][(self.hist_pos - 1 - (self.hop_index - hh) + 2 * MAXRISE) % MAXRISE]
            self.win[2][k] = self.hist[2][(self.hist_pos - 1 - (self.hop_index - hh) + 2 * MAXRISE) % MAXRISE]
            self.win[3][k] = self.hist[3][(self.hist_pos - 1 - (self.hop_index - hh) + 2 * MAXRISE) % MAXRISE]
            self.win_peak[k] = pk
            self.win_len = k + 1

    cdef void _emit_step(self) noexcept nogil:
        """Compute the features of the current step and emit a STEP event."""
        cdef int k, kmax, kd, k2, b, n = self.win_len
        cdef double pk, e, emax, sub, tot, emin, best, hop_ms
        cdef double bands[NB]
        cdef double* f
        self.collecting = 0
        if self.n_events >= self.capacity or n <= 0:
            return
        hop_ms = 1000.0 * self.hop_length / <double> self.sample_rate
        f = &self.feat_v[self.n_events, 0]
        pk = 0.0
        for k in range(n):
            if self.win_peak[k] > pk:
                pk = self.win_peak[k]
        f[0] = 20.0 * log10(pk) if pk > 1e-15 else -300.0
        # energy window, noise compensated
        tot = 0.0
        sub = 0.0
        for k in range(min(n, self.energy_hops)):
            tot += self.win[0][k]
            sub += self.win[0][k] - self.cur_noise[0]
        k = min(n, self.energy_hops)
        tot /= k
        sub /= k
        if sub < 1e-3 * tot:
            sub = 1e-3 * tot      # floor the noise subtraction at -30 dB
        f[1] = _db(sub)
        f[2] = _db(tot) - _db(self.cur_noise[0])
        for b in range(1, NB):
            bands[b] = 0.0
            for k in range(n):
                bands[b] += self.win[b][k] - self.cur_noise[b]
            bands[b] /= n
            tot = 0.0
            for k in range(n):
                tot += self.win[b][k]
            tot /= n
            if bands[b] < 1e-3 * tot:
                bands[b] = 1e-3 * tot
            f[2 + b] = _db(bands[b])
        # envelope shape on the broadband hop powers
        kmax = 0
        emax = self.win[0][0]
        for k in range(n):
            if self.win[0][k] > emax:
                emax = self.win[0][k]
                kmax = k
        f[6] = ((self.cur_onset_hop + kmax) * self.hop_length + self.hop_length // 2
                - self.cur_onset_sample) * 1000.0 / self.sample_rate
        kd = n
        for k in range(kmax + 1, n):
            if self.win[0][k] < 0.01 * emax:
                kd = k
                break
        f[7] = (kd - kmax) * hop_ms
        # second impact: a re-rise of >= 3 dB over the dip since the maximum,
        # at least 10 ms after it
        emin = emax
        best = 0.0
        k2 = -1
        for k in range(kmax + 1, n):
            e = self.win[0][k]
            if e < emin:
                emin = e
            if (k - kmax) * hop_ms >= 10.0 and e >= 2.0 * emin and e > best:
                best = e
                k2 = k
        if k2 >= 0:
            f[8] = _db(best) - _db(emax)
            f[9] = (k2 - kmax) * hop_ms
        else:
            f[8] = NAN
            f[9] = NAN
        f[10] = self.cur_odf_peak
        f[11] = _db(self.cur_noise[0])
        f[12] = self.cur_pre_db
        for b in range(1, NB):
            f[12 + b] = _db(self.cur_noise[b])
        self.kinds_v[self.n_events] = _STEP
        self.onset_v[self.n_events] = self.cur_onset_sample
        self.detect_v[self.n_events] = self.cur_detect_sample
        self.n_events += 1


