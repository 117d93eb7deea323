# cython: language_level=3
"""Learned step-onset model: band energies in, step-onset probability per hop out.

The detection function of the learned detector (:mod:`stepsound.detect.stepnet`).

Front end, per sample: ``n_bands`` band-pass biquads (centres log-spaced,
all below 4 kHz so that every supported sample rate has them; designed by
:func:`stepsound.detect.stepnet.design_bands`).  Per hop (``hop_length`` samples,
boundaries at absolute sample indices that are multiples of ``hop_length``):

* ``e_b`` = mean power of band b over the hop [dB re full scale], at least
  -120 dB;
* a noise floor per band, the same quantile tracker as the core's (up
  ``floor_up_db_s``, down ``floor_down_db_s``, ten times faster over the first
  second of sound);
* features: ``e_b - floor_b`` (how far the band stands above its floor,
  clipped to -30..60 dB) and ``e_b - max_b e_b`` (the spectral shape, at
  least -60 dB), both in dB, then standardised
  with the training set's mean and scale.  Both are invariant to the input
  gain.

Model, per hop: a stack of causal dilated 1-D convolutions over the feature
frames (ReLU between layers, a logistic sigmoid after the last), evaluated
once per hop on the newest frame only -- the inputs of earlier frames are kept
in per-layer history rings, so each hop costs one output frame per layer.
The output, the probability that a footfall began within the last few hops,
is stored per hop in a ring (:meth:`prob_at`).

Extra inputs (models of version 2, ``n_extra`` > 0): the first layer also
reads ``n_extra`` numbers per hop that the detector core supplies -- functions
of its hand-made onset detection function (see
:meth:`stepsound.detect._core.StepDetector.trace`) -- appended to the
``2 * n_bands`` features and standardised with them.  Then :meth:`run` only
computes the feature frames (kept in a ring indexed by hop), and the core
evaluates the model hop by hop (:meth:`eval_hop`) once it has that hop's extra
inputs.

Everything advances one sample (filters) or one hop (features, model) at a
time with state of fixed size, so the output does not depend on how the audio
is cut into blocks; :meth:`run` allocates nothing and needs no GIL.
"""
from libc.math cimport log10, exp, isfinite
cimport cython
import numpy as np


cdef inline double _db(double p) noexcept nogil:
    if p < 1e-12:
        return -120.0
    return 10.0 * log10(p)


cdef class StepNet:
    """Streaming learned step-onset model.

    Parameters
    ----------
    sample_rate : int [Hz]
    hop_length : int [samples]
        Hop of the features and of the model (the core's hop, about 2 ms).
    sos : np.ndarray [shape=(n_bands, 6), float64]
        Band-pass biquads (b0, b1, b2, 1, a1, a2), ``n_bands`` <= 32.
    in_mean, in_scale : np.ndarray [shape=(2 * n_bands + n_extra,), float64]
        Standardisation of the inputs: ``(f - in_mean) / in_scale``.
    layers : sequence of (weight, bias, dilation)
        ``weight`` of shape (out, in, k) [float64], ``bias`` of shape (out,).
        The first layer's ``in`` is ``2 * n_bands + n_extra``, each next layer's ``in``
        the previous ``out``; the last layer has one output (a logit).
        At most 8 layers, 64 channels, ``(k - 1) * dilation < 64``.
    floor_up_db_s, floor_down_db_s : float [dB/s]
        Noise-floor tracker rates.
    max_block : int [samples]
        Longest block :meth:`process` (or the core) feeds at once; sizes the
        output ring.
    n_extra : int
        Extra inputs per hop supplied by the core (0 to 4; 0: the model sees
        the band features only and runs by itself).
    """

    def __init__(self, int sample_rate, int hop_length, sos, in_mean, in_scale, layers, *,
                 double floor_up_db_s=2.0, double floor_down_db_s=8.0, int max_block=1 << 16,
                 int n_extra=0):
        cdef int i, j, l, nb, nin, total
        if not (8000 <= sample_rate <= 192000):
            raise ValueError(f"sample_rate={sample_rate} must be between 8000 and 192000 Hz")
        if not (1 <= hop_length <= sample_rate // 100):
            raise ValueError(f"hop_length={hop_length} must be between 1 and sample_rate/100")
        s = np.ascontiguousarray(sos, dtype=np.float64)
        if s.ndim != 2 or s.shape[1] != 6 or not (1 <= s.shape[0] <= SN_MAXBANDS) or not np.all(np.isfinite(s)):
            raise ValueError("sos must be a finite (n_bands, 6) array, 1 <= n_bands <= 32")
        nb = s.shape[0]
        if not (0 <= n_extra <= SN_MAXEXTRA):
            raise ValueError(f"n_extra={n_extra} must be between 0 and {SN_MAXEXTRA}")
        m = np.ascontiguousarray(in_mean, dtype=np.float64)
        sc = np.ascontiguousarray(in_scale, dtype=np.float64)
        if (m.shape != (2 * nb + n_extra,) or sc.shape != (2 * nb + n_extra,) or not np.all(np.isfinite(m))
                or not np.all(sc > 0)):
            raise ValueError("in_mean and in_scale must be (2 * n_bands + n_extra,) finite arrays, in_scale > 0")
        layers = list(layers)
        if not (1 <= len(layers) <= SN_MAXLAYERS):
            raise ValueError("between 1 and 8 layers")
        self.sample_rate = sample_rate
        self.hop_length = hop_length
        self.n_bands = nb
        self.n_features = 2 * nb
        self.n_extra = n_extra
        self.n_inputs = 2 * nb + n_extra
        self.n_layers = len(layers)
        for i in range(nb):
            for j in range(6):
                self.sos[i][j] = s[i, j]
        for i in range(2 * nb + n_extra):
            self.in_mean[i] = m[i]
            self.in_scale[i] = sc[i]
        flat = []
        total = 0
        nin = 2 * nb + n_extra
        for l, (w, b, d) in enumerate(layers):
            w = np.ascontiguousarray(w, dtype=np.float64)
            b = np.ascontiguousarray(b, dtype=np.float64)
            d = int(d)
            if (w.ndim != 3 or w.shape[1] != nin or b.shape != (w.shape[0],) or w.shape[0] > SN_MAXCH
                    or d < 1 or (w.shape[2] - 1) * d >= SN_HIST or not np.all(np.isfinite(w))
                    or not np.all(np.isfinite(b))):
                raise ValueError(f"layer {l}: bad shapes or values (in {nin}, weight {w.shape}, dilation {d})")
            self.l_in[l] = nin
            self.l_out[l] = w.shape[0]
            self.l_k[l] = w.shape[2]
            self.l_dil[l] = d
            self.l_woff[l] = total
            flat.append(w.ravel())
            total += w.size
            self.l_boff[l] = total
            flat.append(b)
            total += b.size
            nin = w.shape[0]
        if nin != 1:
            raise ValueError("the last layer must have one output")
        self.params = np.concatenate(flat)
        self.hist = np.zeros((self.n_layers, SN_HIST, SN_MAXCH), dtype=np.float64)
        hop_s = hop_length / <double> sample_rate
        self.up_db = floor_up_db_s * hop_s
        self.down_db = floor_down_db_s * hop_s
        self.warm_hops = <int> (1.0 / hop_s)
        self.silence_power = 1e-10
        ring = 1
        while ring < max_block // hop_length + 4:
            ring *= 2
        self.out = np.zeros(ring, dtype=np.float64)
        self.out_mask = ring - 1
        self.out_ring = ring
        self.fring = np.zeros((ring, 2 * nb), dtype=np.float64)
        self.reset()

    def reset(self):
        """Return to the fresh state (filters, floors, histories, clock)."""
        cdef int i
        for i in range(SN_MAXBANDS):
            self.z1[i] = 0.0
            self.z2[i] = 0.0
            self.acc[i] = 0.0
            self.floor_db[i] = 0.0
        self.hist[:, :, :] = 0.0
        self.out[:] = 0.0
        self.fring[:, :] = 0.0
        self.model_hop = 0
        self.hist_pos = 0
        self.hop_pos = 0
        self.sample_index = 0
        self.hop_index = 0
        self.first_signal_hop = -1
        self.last_prob = 0.0

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef void run(self, const float* x, Py_ssize_t n) noexcept nogil:
        """Consume n samples (x may be NULL when n == 0)."""
        cdef Py_ssize_t i
        cdef int b, nb = self.n_bands
        cdef double v, y
        for i in range(n):
            v = x[i]
            if not isfinite(v):
                v = 0.0
            for b in range(nb):
                y = self.sos[b][0] * v + self.z1[b]
                self.z1[b] = self.sos[b][1] * v - self.sos[b][4] * y + self.z2[b]
                self.z2[b] = self.sos[b][2] * v - self.sos[b][5] * y
                self.acc[b] += y * y
            self.sample_index += 1
            self.hop_pos += 1
            if self.hop_pos == self.hop_length:
                self._end_hop()
                self.hop_pos = 0

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef void _end_hop(self) noexcept nogil:
        cdef int b, nb = self.n_bands, l, k, j, c, i, nin, nout, row
        cdef double inv = 1.0 / self.hop_length
        cdef double e, emax = -1e300, up, down, total = 0.0, a, z
        cdef double* w
        cdef long long h = self.hop_index
        for b in range(nb):
            total += self.acc[b]
        if self.first_signal_hop < 0 and total * inv > self.silence_power:
            self.first_signal_hop = h
            for b in range(nb):
                self.floor_db[b] = _db(self.acc[b] * inv)
        up = self.up_db
        down = self.down_db
        if self.first_signal_hop < 0 or h < self.first_signal_hop + self.warm_hops:
            up *= 10.0
            down *= 10.0
        for b in range(nb):
            e = _db(self.acc[b] * inv)
            self.acc[b] = 0.0
            a = e - self.floor_db[b]
            self.feat[b] = -30.0 if a < -30.0 else (60.0 if a > 60.0 else a)
            self.feat[nb + b] = e
            if e > emax:
                emax = e
            if self.first_signal_hop >= 0:
                if e > self.floor_db[b]:
                    self.floor_db[b] += up
                else:
                    self.floor_db[b] -= down
                    if self.floor_db[b] < e:
                        self.floor_db[b] = e
        for b in range(nb):
            a = self.feat[nb + b] - emax
            self.feat[nb + b] = -60.0 if a < -60.0 else a
        self.hop_index = h + 1
        if self.n_extra > 0:
            # the core evaluates the model (eval_hop) once it has this hop's extra inputs
            for i in range(2 * nb):
                self.fring[h & self.out_mask, i] = self.feat[i]
            return
        # layer inputs of this hop: the standardised features
        for i in range(2 * nb):
            self.hist[0, self.hist_pos, i] = (self.feat[i] - self.in_mean[i]) / self.in_scale[i]
        self._forward(h)

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef double eval_hop(self, long long h, const double* extra) noexcept nogil:
        """Evaluate the model for hop ``h`` (models with extra inputs).

        Called by the core once per hop, in order, after :meth:`run` has
        completed hop ``h`` (its feature frame is in the ring); ``extra``
        holds the hop's ``n_extra`` raw extra inputs.  Returns the probability.
        """
        cdef int i, nf = self.n_features
        cdef long long r = h & self.out_mask
        for i in range(nf):
            self.hist[0, self.hist_pos, i] = (self.fring[r, i] - self.in_mean[i]) / self.in_scale[i]
        for i in range(self.n_extra):
            self.hist[0, self.hist_pos, nf + i] = (extra[i] - self.in_mean[nf + i]) / self.in_scale[nf + i]
        self._forward(h)
        return self.last_prob

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef void _forward(self, long long h) noexcept nogil:
        """One output frame of every layer from the newest input frame (hist[0] at hist_pos)."""
        cdef int l, k, j, c, i, nin, nout, row
        cdef double a, z
        cdef double* w
        for l in range(self.n_layers):
            nin = self.l_in[l]
            nout = self.l_out[l]
            k = self.l_k[l]
            for c in range(nout):
                self.tmp[c] = self.params[self.l_boff[l] + c]
            for j in range(k):
                row = (self.hist_pos - (k - 1 - j) * self.l_dil[l]) & (SN_HIST - 1)
                for c in range(nout):
                    w = &self.params[self.l_woff[l] + c * nin * k + j]
                    a = 0.0
                    for i in range(nin):
                        a += w[i * k] * self.hist[l, row, i]
                    self.tmp[c] += a
            if l + 1 < self.n_layers:
                for c in range(nout):
                    self.hist[l + 1, self.hist_pos, c] = self.tmp[c] if self.tmp[c] > 0.0 else 0.0
        z = self.tmp[0]
        if z > 40.0:
            z = 40.0
        elif z < -40.0:
            z = -40.0
        self.last_prob = 1.0 / (1.0 + exp(-z))
        self.out[h & self.out_mask] = self.last_prob
        self.hist_pos = (self.hist_pos + 1) & (SN_HIST - 1)
        self.model_hop = h + 1

    cdef double prob_at(self, long long hop) noexcept nogil:
        """Output of hop ``hop`` (valid for the last ``out_ring`` hops)."""
        return self.out[hop & self.out_mask]

    def process(self, const float[::1] x):
        """Consume a block; return the probabilities of the hops it completed.

        Parameters
        ----------
        x : np.ndarray [shape=(n,), float32]

        Returns
        -------
        prob : np.ndarray [shape=(hops,), float64]
            Step-onset probability of each hop completed by this block, in order.
        """
        cdef long long h0 = self.hop_index
        cdef Py_ssize_t n = x.shape[0]
        if self.n_extra > 0:
            raise ValueError("a model with extra inputs runs inside the detector core (or use forward_frames)")
        with nogil:
            self.run(&x[0] if n > 0 else NULL, n)
        hops = np.arange(h0, self.hop_index)
        return np.asarray(self.out)[hops & self.out_mask].copy() if len(hops) <= self.out_ring else None

    def features(self, const float[::1] x):
        """Feature frames of a whole signal (training and tests; allocates).

        Parameters
        ----------
        x : np.ndarray [shape=(n,), float32]

        Returns
        -------
        feats : np.ndarray [shape=(hops, 2 * n_bands), float32]
            The raw (not standardised) features of each hop completed, dB.
        """
        cdef Py_ssize_t n = x.shape[0], start, stop, i
        cdef int b
        hops = (self.sample_index + n) // self.hop_length - self.hop_index
        out = np.zeros((max(0, hops), 2 * self.n_bands), dtype=np.float32)
        cdef float[:, ::1] o = out
        cdef long long k = 0
        cdef long long h
        start = 0
        while start < n:
            # up to the end of the current hop
            stop = start + (self.hop_length - self.hop_pos)
            if stop > n:
                stop = n
            h = self.hop_index
            self.run(&x[start], stop - start)
            if self.hop_index > h:
                for b in range(2 * self.n_bands):
                    o[k, b] = self.feat[b]
                k += 1
            start = stop
        return out

    def forward_frames(self, frames):
        """Run the model on given raw input frames (training checks and tests; allocates).

        The model's own path (standardisation, layers, sigmoid) on frames given
        from outside instead of the front end's; it advances the model's
        history as :meth:`eval_hop` does.  Call on a fresh (or reset) model.

        Parameters
        ----------
        frames : np.ndarray [shape=(hops, 2 * n_bands + n_extra), float64]
            Raw features (dB, as :meth:`features` returns them) followed by
            the extra inputs of each hop.

        Returns
        -------
        prob : np.ndarray [shape=(hops,), float64]
        """
        f = np.ascontiguousarray(frames, dtype=np.float64)
        if f.ndim != 2 or f.shape[1] != self.n_inputs:
            raise ValueError(f"frames must have shape (hops, {self.n_inputs})")
        cdef double[:, ::1] fv = f
        cdef Py_ssize_t t, i
        cdef long long h
        out = np.zeros(f.shape[0], dtype=np.float64)
        for t in range(f.shape[0]):
            h = self.model_hop
            for i in range(self.n_inputs):
                self.hist[0, self.hist_pos, i] = (fv[t, i] - self.in_mean[i]) / self.in_scale[i]
            self._forward(h)
            out[t] = self.last_prob
        return out
