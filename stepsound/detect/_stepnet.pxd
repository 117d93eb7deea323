# cython: language_level=3
"""Declarations of the learned step-onset model (see _stepnet.pyx), for cimport by the core."""

cdef enum:
    SN_MAXBANDS = 32     # band-pass filters of the front end, at most
    SN_MAXLAYERS = 8     # convolution layers, at most
    SN_MAXCH = 64        # channels per layer, at most
    SN_HIST = 64         # hops of per-layer input history (power of 2; > (k - 1) * dilation)
    SN_MAXEXTRA = 4      # extra inputs per hop supplied by the core (hand-made ODF), at most


cdef class StepNet:
    cdef readonly int sample_rate, hop_length, n_bands, n_features, n_extra, n_inputs, n_layers, out_ring
    cdef readonly long long sample_index, hop_index
    cdef int hop_pos
    # front end
    cdef double sos[SN_MAXBANDS][6]
    cdef double z1[SN_MAXBANDS]
    cdef double z2[SN_MAXBANDS]
    cdef double acc[SN_MAXBANDS]
    cdef double floor_db[SN_MAXBANDS]
    cdef double up_db, down_db, warm_up_db, warm_down_db
    cdef long long first_signal_hop
    cdef int warm_hops
    cdef double silence_power
    cdef double feat[2 * SN_MAXBANDS]
    cdef double in_mean[2 * SN_MAXBANDS + SN_MAXEXTRA]
    cdef double in_scale[2 * SN_MAXBANDS + SN_MAXEXTRA]
    # raw feature frames per hop, ring indexed by hop index (models with extra inputs: the
    # model is evaluated later, by the core, once it has the extra inputs of that hop)
    cdef double[:, ::1] fring
    cdef readonly long long model_hop
    # layers: causal dilated convolutions, ReLU between, sigmoid after the last
    cdef int l_in[SN_MAXLAYERS]
    cdef int l_out[SN_MAXLAYERS]
    cdef int l_k[SN_MAXLAYERS]
    cdef int l_dil[SN_MAXLAYERS]
    cdef int l_woff[SN_MAXLAYERS]
    cdef int l_boff[SN_MAXLAYERS]
    cdef double[::1] params
    # per-layer input history: [layer][SN_HIST][SN_MAXCH]
    cdef double[:, :, ::1] hist
    cdef int hist_pos
    cdef double tmp[SN_MAXCH]
    # outputs: probability per hop, ring indexed by hop index
    cdef double[::1] out
    cdef long long out_mask
    cdef readonly double last_prob

    cdef void run(self, const float* x, Py_ssize_t n) noexcept nogil
    cdef void _end_hop(self) noexcept nogil
    cdef double prob_at(self, long long hop) noexcept nogil
    cdef void _forward(self, long long h) noexcept nogil
    cdef double eval_hop(self, long long h, const double* extra) noexcept nogil
