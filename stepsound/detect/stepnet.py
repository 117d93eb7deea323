"""The learned step-onset model: its front-end design and its shipped weights.

The model (:class:`stepsound.detect._stepnet.StepNet`, inference in Cython) turns
log band energies into a step-onset probability per hop; the core uses it as
its detection function when :attr:`stepsound.detect.DetectorConfig.model` is
``"stepnet"``.  Its weights are a small NumPy archive shipped in the package
(``stepsound/detect/models/stepnet.npz``), trained by ``bench/train_stepnet.py`` on
domain-randomized scenes built from the *tuning* sources of
``bench/bench_world.py`` only (see bench/RESULTS.md).

Archive keys: ``centres_hz`` (band centres), ``q`` (band-pass Q), ``in_mean``
and ``in_scale`` (feature standardisation), ``n_layers``, and per layer ``i``
``w{i}`` (out, in, k), ``b{i}`` (out,), ``d{i}`` (dilation); ``floor_up_db_s``,
``floor_down_db_s``; ``n_extra`` (optional, default 0: extra inputs per hop that
the detector core supplies, functions of its hand-made ODF -- version 2, see
:meth:`stepsound.detect._core.StepDetector.trace`); ``info`` (a JSON string: how
it was trained).
"""
from __future__ import annotations

import functools
import json
import math

import numpy as np

from stepsound.detect.models import SHIPPED

#: Default band centres [Hz]: 16 log-spaced from 60 Hz to 3.4 kHz (all below
#: the 4 kHz Nyquist frequency of 8 kHz audio, so every rate has every band).
DEFAULT_CENTRES_HZ = tuple(float(f) for f in np.geomspace(60.0, 3400.0, 16))
DEFAULT_Q = 3.0
#: The shipped model (``DetectorConfig.model = "stepnet"``); since version 2 it also reads the
#: hand-made ODF of each hop (``n_extra`` = 3).
MODEL_PATH = SHIPPED["stepnet"]


def bandpass(freq_hz: float, q: float, sample_rate: float) -> np.ndarray:
    """A 2nd-order band-pass biquad, 0 dB at its centre (bilinear transform).

    Parameters
    ----------
    freq_hz : float [Hz]
        Centre, below Nyquist.
    q : float
        Quality factor (centre over -3 dB bandwidth).
    sample_rate : float [Hz]

    Returns
    -------
    sos : np.ndarray [shape=(6,), float64]
        (b0, b1, b2, 1, a1, a2).
    """
    w0 = 2.0 * math.pi * freq_hz / sample_rate
    alpha = math.sin(w0) / (2.0 * q)
    a0 = 1.0 + alpha
    return np.array([alpha / a0, 0.0, -alpha / a0, 1.0, -2.0 * math.cos(w0) / a0, (1.0 - alpha) / a0])


def design_bands(sample_rate: int, centres_hz=DEFAULT_CENTRES_HZ, q: float = DEFAULT_Q) -> np.ndarray:
    """Band-pass biquads of the model's front end for a sample rate.

    Returns
    -------
    sos : np.ndarray [shape=(len(centres_hz), 6), float64]
    """
    nyq = sample_rate / 2.0
    return np.array([bandpass(min(float(f), 0.9 * nyq), q, sample_rate) for f in centres_hz])


@functools.lru_cache(maxsize=4)
def load_model(path: str | None = None) -> dict:
    """The model archive as a dict of arrays (cached).

    Parameters
    ----------
    path : str, optional
        An ``.npz`` written by ``bench/train_stepnet.py``; default the shipped one.
    """
    with np.load(path or MODEL_PATH, allow_pickle=False) as z:
        model = {k: z[k] for k in z.files}
    for a in model.values():
        a.setflags(write=False)
    return model


def model_info(path: str | None = None) -> dict:
    """How the model was trained (the archive's ``info``)."""
    m = load_model(path)
    return json.loads(str(m["info"])) if "info" in m else {}


def make_stepnet(sample_rate: int, hop_length: int, max_block: int, path: str | None = None):
    """A fresh :class:`stepsound.detect._stepnet.StepNet` with the model's weights.

    Parameters
    ----------
    sample_rate : int [Hz]
    hop_length : int [samples]
    max_block : int [samples]
        Longest block fed at once.
    path : str, optional
        Model archive; default the shipped one.
    """
    from stepsound.detect._stepnet import StepNet

    m = load_model(path)
    n = int(m["n_layers"])
    layers = [(m[f"w{i}"], m[f"b{i}"], int(m[f"d{i}"])) for i in range(n)]
    return StepNet(sample_rate, hop_length, design_bands(sample_rate, m["centres_hz"], float(m["q"])),
                   m["in_mean"], m["in_scale"], layers, floor_up_db_s=float(m["floor_up_db_s"]),
                   floor_down_db_s=float(m["floor_down_db_s"]), max_block=max_block,
                   n_extra=int(m["n_extra"]) if "n_extra" in m else 0)


def feature_extractor(sample_rate: int, hop_length: int, centres_hz=DEFAULT_CENTRES_HZ, q: float = DEFAULT_Q,
                      floor_up_db_s: float = 2.0, floor_down_db_s: float = 8.0):
    """A StepNet with a trivial model, for its :meth:`features` (training, tests)."""
    from stepsound.detect._stepnet import StepNet

    nf = 2 * len(centres_hz)
    return StepNet(sample_rate, hop_length, design_bands(sample_rate, centres_hz, q), np.zeros(nf), np.ones(nf),
                   [(np.zeros((1, nf, 1)), np.zeros(1), 1)], floor_up_db_s=floor_up_db_s,
                   floor_down_db_s=floor_down_db_s)


__all__ = ["DEFAULT_CENTRES_HZ", "DEFAULT_Q", "MODEL_PATH", "bandpass", "design_bands", "load_model", "model_info",
           "make_stepnet", "feature_extractor"]
