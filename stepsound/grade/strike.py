"""Heel-first vs forefoot landings: a small per-runner classifier.

How a landing sounds depends on the runner, the shoes, the floor and the
microphone, so stepsound learns each runner's signature from a short
calibration (steps deliberately landed heel-first, then on the forefoot) and
never guesses without one.

Model
-----
Each step's detector features (:data:`stepsound.detect.detector.FEATURE_NAMES`) become
:data:`STRIKE_FEATURES`, all *relative* (band shares, timing, envelope
shape), so the microphone gain and distance do not matter.  Then:

1. the features are standardised with the calibration steps' mean and
   standard deviation;
2. an L2-regularised logistic regression (Newton's method, numpy only)
   separates heel (1) from forefoot (0);
3. its scores are *calibrated* by Platt scaling fitted on out-of-fold scores
   of a k-fold cross-validation, so ``strike_confidence`` is an honest
   probability, not the over-confident in-sample one;
4. a novelty check: a step whose features are far from both calibration
   classes (Mahalanobis distance in the shrunk per-class Gaussian beyond the
   chi-square 99.9 % quantile) is ``"uncertain"`` whatever the regression
   says -- the model has never seen such a landing.

A step is labelled only when its calibrated probability reaches
``min_confidence`` (0.8 by default); otherwise it is ``"uncertain"``.

The same cross-validation gives the self-check reported to the runner after
calibration (:class:`CalibrationReport`).

This is coaching feedback, not a diagnosis.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from stepsound.errors import ParameterError, StepsoundError

__all__ = [
    "STRIKE_FEATURES",
    "STRIKE_LABELS",
    "MIN_STEPS_PER_CLASS",
    "landing_db",
    "strike_vector",
    "strike_matrix",
    "StrikeClassifier",
    "CalibrationReport",
    "fit_strike_classifier",
]

#: Labels of :meth:`StrikeClassifier.classify`.
STRIKE_LABELS = ("heel", "forefoot", "uncertain")

#: Per-step features the classifier uses (all gain-invariant):
#:
#: ``low_share_db``, ``mid_share_db``, ``high_share_db``
#:     band power (<300 Hz, 0.3–2 kHz, 2–8 kHz) over the 120 ms feature
#:     window re the step's total (:func:`landing_db`) [dB]: the heel thud
#:     is low, the forefoot contact brighter.
#: ``crest_db``
#:     peak over the 50 ms power (``peak_db - energy_db``) [dB]: attack sharpness.
#: ``attack_ms``
#:     onset to the loudest hop [ms]: for a heel landing often the forefoot
#:     slap, tens of ms after contact; for a forefoot landing the contact.
#: ``second_impact_db``
#:     a re-rise after the maximum re that maximum [dB] (-30 when none).
#: ``impact_span_ms``
#:     onset to the last *strong* impact [ms]: ``attack_ms`` plus the delay
#:     of a second impact weighted by how strong it is (half weight at -6 dB
#:     re the maximum).  A heel-first landing spans contact and slap
#:     whichever is louder; a forefoot landing is one impact.
#: ``pre_onset_db``
#:     broadband power of the 60 ms before the onset re the background just
#:     before that [dB] (the detector's ``pre_onset_db``; about 0.5 dB when only
#:     noise precedes the step).  In noise the detector can place a heel-first
#:     landing's onset on its louder forefoot slap; the quiet heel contact it
#:     missed then shows up here.  0 dB when it could not be measured (our own
#:     click sounding there).
#:
#: The share of the power in the first 50 ms (``energy_db`` re the total) is
#: not used: it repeats what ``attack_ms`` and ``impact_span_ms`` say, and
#: with 20 calibration steps every extra feature costs (measured in
#: ``bench/bench_grading.py``).
STRIKE_FEATURES = (
    "low_share_db",
    "mid_share_db",
    "high_share_db",
    "crest_db",
    "attack_ms",
    "second_impact_db",
    "impact_span_ms",
    "pre_onset_db",
)

#: Fewest steps of each landing a calibration needs.
MIN_STEPS_PER_CLASS = 10

_NO_SECOND_IMPACT_DB = -30.0
_BANDS = ("low_db", "mid_db", "high_db")


#: Held-out accuracy below which a calibration is "poor" (its landings are not told apart; not saved).
POOR_BELOW = 0.75


class CalibrationError(StepsoundError):
    """Calibration data cannot make a classifier (too few steps, one class, silence)."""


def landing_db(features: dict) -> float:
    """Loudness of one landing [dBFS]: noise-compensated power of the 40 Hz–8 kHz bands.

    The sum of the detector's ``low_db``, ``mid_db`` and ``high_db`` band
    powers over the 120 ms feature window.  The window holds the heel
    contact *and* the forefoot slap of a heel-first landing (25–70 ms
    later), which the 50 ms ``energy_db`` window can miss; so it tracks the
    loudness of the whole landing.  Falls back to ``energy_db`` when the
    bands are missing or non-finite; NaN when neither is finite.
    """
    try:
        powers = [10.0 ** (float(features[b]) / 10.0) for b in _BANDS]
    except (KeyError, TypeError, ValueError):
        powers = []
    total = sum(powers) if powers else float("nan")
    if powers and math.isfinite(total) and total > 0:
        return 10.0 * math.log10(total)
    energy = features.get("energy_db", float("nan")) if hasattr(features, "get") else float("nan")
    try:
        energy = float(energy)
    except (TypeError, ValueError):
        return float("nan")
    return energy if math.isfinite(energy) else float("nan")


def strike_vector(features: dict) -> np.ndarray:
    """One step's :data:`STRIKE_FEATURES` from its detector features.

    Parameters
    ----------
    features : dict
        Detector features of one step (names of
        :data:`stepsound.detect.detector.FEATURE_NAMES` -> float).

    Returns
    -------
    x : np.ndarray [shape=(len(STRIKE_FEATURES),), float64]
        NaN where a feature is missing or non-finite (except
        ``pre_onset_db``: 0 dB, nothing heard before the onset).
    """
    def get(name):
        try:
            v = float(features[name])
        except (KeyError, TypeError, ValueError):
            return float("nan")
        return v if math.isfinite(v) else float("nan")

    total = landing_db(features)
    second = get("second_impact_db")
    second_ms = get("second_impact_ms")
    if math.isnan(second) or math.isnan(second_ms):
        second, second_ms = _NO_SECOND_IMPACT_DB, 0.0
    attack = min(max(get("attack_ms"), 0.0), 150.0)
    strong = 1.0 / (1.0 + math.exp(-(second + 6.0) / 1.5))
    span = attack + strong * min(max(second_ms, 0.0), 150.0)
    pre = get("pre_onset_db")
    x = np.array([
        get("low_db") - total,
        get("mid_db") - total,
        get("high_db") - total,
        get("peak_db") - get("energy_db"),
        attack,
        max(second, _NO_SECOND_IMPACT_DB),
        span,
        0.0 if math.isnan(pre) else pre,
    ], dtype=float)
    return x


def strike_matrix(steps) -> np.ndarray:
    """:func:`strike_vector` of several steps [shape=(n_steps, n_features)].

    ``steps`` holds feature dicts or objects with a ``features`` dict
    (e.g. :class:`stepsound.engine.Step`).
    """
    rows = [strike_vector(getattr(s, "features", s)) for s in steps]
    if not rows:
        return np.empty((0, len(STRIKE_FEATURES)))
    return np.vstack(rows)


# ----------------------------------------------------------------------------- model pieces


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=float)))


def _fit_logistic(X: np.ndarray, y: np.ndarray, l2: float, sample_weight=None, iterations: int = 50):
    """L2-regularised logistic regression by Newton's method (intercept not penalised).

    Returns (w [shape=(d,)], b).
    """
    n, d = X.shape
    A = np.hstack([X, np.ones((n, 1))])
    sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, float)
    theta = np.zeros(d + 1)
    reg = np.full(d + 1, l2)
    reg[-1] = 1e-8
    for _ in range(iterations):
        p = _sigmoid(A @ theta)
        grad = A.T @ (sw * (p - y)) + reg * theta
        wgt = sw * p * (1.0 - p)
        H = (A * wgt[:, None]).T @ A + np.diag(reg)
        try:
            step = np.linalg.solve(H, grad)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(H, grad, rcond=None)[0]
        theta -= step
        if np.max(np.abs(step)) < 1e-9:
            break
    return theta[:-1].copy(), float(theta[-1])


def _fit_platt(scores: np.ndarray, y: np.ndarray):
    """Platt scaling with the usual target smoothing; returns (a, c): p = sigmoid(a*s + c)."""
    n1 = float(np.sum(y == 1))
    n0 = float(np.sum(y == 0))
    t = np.where(y == 1, (n1 + 1.0) / (n1 + 2.0), 1.0 / (n0 + 2.0))
    # weighted two-row trick: each score appears as a positive and a negative example
    S = np.concatenate([scores, scores])[:, None]
    Y = np.concatenate([np.ones_like(t), np.zeros_like(t)])
    W = np.concatenate([t, 1.0 - t])
    w, c = _fit_logistic(S, Y, l2=1e-3, sample_weight=W)
    a = float(w[0])
    if not (math.isfinite(a) and a > 0):  # scores carry no usable information
        a = 0.0
    return a, float(c)


def _shrunk_gaussian(X: np.ndarray, shrink: float):
    """Mean and inverse of a shrunk covariance (towards the identity) of standardised data."""
    mean = X.mean(axis=0)
    d = X.shape[1]
    cov = np.cov(X, rowvar=False) if len(X) > 1 else np.eye(d)
    cov = np.atleast_2d(cov)
    cov = (1.0 - shrink) * cov + shrink * np.eye(d)
    return mean, np.linalg.pinv(cov)


def _stratified_folds(y: np.ndarray, k: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    folds = [[] for _ in range(k)]
    for label in (0, 1):
        idx = np.flatnonzero(y == label)
        idx = idx[rng.permutation(len(idx))]
        for i, j in enumerate(idx):
            folds[i % k].append(j)
    return [np.array(sorted(f), dtype=int) for f in folds]


# ----------------------------------------------------------------------------- public model


@dataclass(frozen=True)
class CalibrationReport:
    """How well a runner's calibration steps separate (cross-validated).

    Attributes
    ----------
    n_heel, n_forefoot : int
        Calibration steps of each landing used.
    cv_folds : int
    cv_accuracy : float
        Held-out accuracy over *all* steps, an "uncertain" answer counting as
        wrong (0–1).
    cv_labelled_share : float
        Share of held-out steps given a label (not "uncertain").
    cv_labelled_accuracy : float or None
        Accuracy among the labelled held-out steps.
    separation : float
        Distance between the classes' mean scores in pooled standard
        deviations (d'); above ~3 the landings sound clearly different.
    """

    n_heel: int
    n_forefoot: int
    cv_folds: int
    cv_accuracy: float
    cv_labelled_share: float
    cv_labelled_accuracy: float | None
    separation: float

    @property
    def verdict(self) -> str:
        """One word for humans: "good", "fair" or "poor"."""
        if self.cv_accuracy >= 0.9:
            return "good"
        if self.cv_accuracy >= POOR_BELOW:
            return "fair"
        return "poor"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CalibrationReport":
        """Rebuild from :meth:`to_dict` output; ParameterError if a field is missing or of the wrong kind."""
        if not isinstance(d, dict):
            raise ParameterError("malformed calibration report (not an object)")
        values = {}
        for name in cls.__dataclass_fields__:
            if name not in d:
                raise ParameterError(f"malformed calibration report (no {name!r})")
            v = d[name]
            if name == "cv_labelled_accuracy" and v is None:
                values[name] = None
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ParameterError(f"malformed calibration report ({name!r} must be a number, not {v!r})")
            if name.startswith(("n_", "cv_folds")):
                if int(v) != v or v < 0:
                    raise ParameterError(f"malformed calibration report ({name!r} must be a count, not {v!r})")
                v = int(v)
            values[name] = float(v) if not isinstance(v, int) or not name.startswith(("n_", "cv_folds")) else v
        return cls(**values)


class StrikeClassifier:
    """A runner's heel-vs-forefoot classifier (see the module notes).

    Build it with :func:`fit_strike_classifier`; store it with
    :meth:`to_dict` / :meth:`from_dict`.

    Parameters
    ----------
    mean, scale : np.ndarray [shape=(d,)]
        Standardisation of :data:`STRIKE_FEATURES`.
    weights : np.ndarray [shape=(d,)], bias : float
        Logistic regression on the standardised features (score > 0: heel).
    platt_a, platt_c : float
        Calibrated P(heel) = sigmoid(platt_a * score + platt_c).
    class_means : np.ndarray [shape=(2, d)], class_precisions : [shape=(2, d, d)]
        Shrunk Gaussians of the (forefoot, heel) calibration steps, for the
        novelty check.
    novelty_d2 : float
        Squared Mahalanobis distance beyond which a step is novel.
    min_confidence : float in (0.5, 1]
        Calibrated probability a label needs.

    Notes
    -----
    Stateless once fitted: :meth:`classify` may be called from any thread.
    """

    def __init__(self, *, mean, scale, weights, bias, platt_a, platt_c, class_means, class_precisions,
                 novelty_d2, min_confidence=0.8, features=None):
        self.features = STRIKE_FEATURES if features is None else tuple(features)
        if self.features != STRIKE_FEATURES:
            raise ParameterError(f"classifier features {list(self.features)} differ from this version's "
                                 f"{list(STRIKE_FEATURES)}: calibrate again")
        d = len(self.features)
        self.mean = np.asarray(mean, float).reshape(d)
        self.scale = np.asarray(scale, float).reshape(d)
        self.weights = np.asarray(weights, float).reshape(d)
        self.bias = float(bias)
        self.platt_a = float(platt_a)
        self.platt_c = float(platt_c)
        self.class_means = np.asarray(class_means, float).reshape(2, d)
        self.class_precisions = np.asarray(class_precisions, float).reshape(2, d, d)
        self.novelty_d2 = float(novelty_d2)
        self.min_confidence = check_min_confidence(min_confidence)
        arrays = (self.mean, self.scale, self.weights, self.class_means, self.class_precisions)
        if not all(np.all(np.isfinite(a)) for a in arrays) or not np.all(self.scale > 0) or not all(
                math.isfinite(v) for v in (self.bias, self.platt_a, self.platt_c, self.novelty_d2)):
            raise ParameterError("classifier parameters must be finite (scales > 0)")

    # -- use ----------------------------------------------------------------------
    def _z(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean) / self.scale

    def score(self, X) -> np.ndarray:
        """Raw scores [shape=(n,)] of :data:`STRIKE_FEATURES` rows (> 0 leans heel)."""
        return self._z(np.atleast_2d(X)) @ self.weights + self.bias

    def heel_probability(self, X) -> np.ndarray:
        """Calibrated P(heel-first) [shape=(n,)] of feature rows (NaN rows: 0.5)."""
        X = np.atleast_2d(np.asarray(X, float))
        p = _sigmoid(self.platt_a * self.score(np.nan_to_num(X)) + self.platt_c)
        p[~np.all(np.isfinite(X), axis=1)] = 0.5
        return p

    def novelty(self, X) -> np.ndarray:
        """Squared Mahalanobis distance to the nearer class [shape=(n,)] (inf for NaN rows)."""
        Z = self._z(np.atleast_2d(np.asarray(X, float)))
        d2 = np.full(len(Z), np.inf)
        ok = np.all(np.isfinite(Z), axis=1)
        for m, P in zip(self.class_means, self.class_precisions):
            D = Z[ok] - m
            d2[ok] = np.minimum(d2[ok], np.einsum("ij,jk,ik->i", D, P, D))
        return d2

    def classify_rows(self, X) -> tuple[list, np.ndarray]:
        """Labels and confidences of feature rows.

        Returns
        -------
        labels : list of {"heel", "forefoot", "uncertain"}
        confidence : np.ndarray [shape=(n,), float64]
            Calibrated probability of the likelier landing (0.5–1); 0.5 for a
            novel step (the model has not heard such a landing).
        """
        X = np.atleast_2d(np.asarray(X, float))
        p = self.heel_probability(X)
        novel = self.novelty(X) > self.novelty_d2
        conf = np.where(novel, 0.5, np.maximum(p, 1.0 - p))
        labels = []
        for pi, ci, nv in zip(p, conf, novel):
            if nv or ci < self.min_confidence:
                labels.append("uncertain")
            else:
                labels.append("heel" if pi >= 0.5 else "forefoot")
        return labels, conf

    def classify(self, features: dict) -> tuple[str, float]:
        """Classify one step from its detector features: (label, confidence 0–1)."""
        labels, conf = self.classify_rows(strike_vector(features)[None, :])
        return labels[0], float(conf[0])

    # -- storage ------------------------------------------------------------------
    def to_dict(self) -> dict:
        """A JSON-serialisable description (see :meth:`from_dict`)."""
        return {
            "model": "standardised L2 logistic regression + Platt scaling + novelty check",
            "features": list(self.features),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "weights": self.weights.tolist(),
            "bias": self.bias,
            "platt_a": self.platt_a,
            "platt_c": self.platt_c,
            "class_means": self.class_means.tolist(),
            "class_precisions": self.class_precisions.tolist(),
            "novelty_d2": self.novelty_d2,
            "min_confidence": self.min_confidence,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "StrikeClassifier":
        """Rebuild from :meth:`to_dict` output; ParameterError if malformed."""
        try:
            return cls(mean=d["mean"], scale=d["scale"], weights=d["weights"], bias=d["bias"],
                       platt_a=d["platt_a"], platt_c=d["platt_c"], class_means=d["class_means"],
                       class_precisions=d["class_precisions"], novelty_d2=d["novelty_d2"],
                       min_confidence=d.get("min_confidence", 0.8),
                       features=d.get("features"))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ParameterError):
                raise
            raise ParameterError(f"malformed strike classifier ({type(exc).__name__}: {exc})") from None


def check_min_confidence(value) -> float:
    """Validate ``min_confidence`` (0.5 < value <= 1)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"min_confidence={value!r} must be a number in (0.5, 1]") from None
    if not (math.isfinite(v) and 0.5 < v <= 1.0):
        raise ParameterError(f"min_confidence={value!r} must be a number in (0.5, 1]")
    return v


def _fit_core(X: np.ndarray, y: np.ndarray, l2: float):
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale = np.where(scale > 1e-6, scale, 1.0)
    Z = (X - mean) / scale
    w, b = _fit_logistic(Z, y, l2)
    return mean, scale, w, b


def fit_strike_classifier(heel, forefoot, *, min_confidence: float = 0.8, l2: float = 1.0,
                          folds: int = 5, shrink: float = 0.2, novelty_quantile: float = 0.999,
                          min_steps: int = MIN_STEPS_PER_CLASS) -> tuple[StrikeClassifier, CalibrationReport]:
    """Learn a runner's heel-vs-forefoot signature from calibration steps.

    Parameters
    ----------
    heel, forefoot : sequence
        Steps landed heel-first / on the forefoot: feature dicts or objects
        with a ``features`` dict (e.g. :class:`stepsound.engine.Step`).
    min_confidence : float in (0.5, 1]
        Calibrated probability a label needs (below: "uncertain").
    l2 : float > 0
        Ridge penalty of the logistic regression (standardised features).
    folds : int >= 2
        Cross-validation folds (fewer when a class has fewer steps).
    shrink : float in [0, 1]
        Covariance shrinkage of the novelty check's class Gaussians.
    novelty_quantile : float in (0, 1)
        Chi-square quantile beyond which a step is novel.
    min_steps : int
        Fewest steps per class.

    Returns
    -------
    classifier : StrikeClassifier
    report : CalibrationReport
        Cross-validated self-check.

    Raises
    ------
    CalibrationError
        Too few usable steps of a class (including none: silence).
    ParameterError
        Invalid parameters.
    """
    min_confidence = check_min_confidence(min_confidence)
    if not (math.isfinite(l2) and l2 > 0):
        raise ParameterError(f"l2={l2!r} must be a positive number")
    if not (int(folds) >= 2):
        raise ParameterError(f"folds={folds!r} must be >= 2")
    if not (0.0 <= shrink <= 1.0):
        raise ParameterError(f"shrink={shrink!r} must be in [0, 1]")
    if not (0.0 < novelty_quantile < 1.0):
        raise ParameterError(f"novelty_quantile={novelty_quantile!r} must be in (0, 1)")
    Xh = strike_matrix(heel)
    Xf = strike_matrix(forefoot)
    Xh = Xh[np.all(np.isfinite(Xh), axis=1)]
    Xf = Xf[np.all(np.isfinite(Xf), axis=1)]
    for name, X in (("heel-first", Xh), ("forefoot", Xf)):
        if len(X) == 0:
            raise CalibrationError(f"no {name} steps were heard: check the recording (silence? wrong file?)")
        if len(X) < min_steps:
            raise CalibrationError(f"only {len(X)} {name} steps were heard; calibration needs at least "
                                   f"{min_steps} of each landing (about 20 is better)")
    X = np.vstack([Xh, Xf])
    y = np.concatenate([np.ones(len(Xh)), np.zeros(len(Xf))])

    # cross-validation: out-of-fold scores for Platt scaling and the self-check
    k = int(min(folds, len(Xh), len(Xf)))
    oof = np.empty(len(y))
    for test in _stratified_folds(y, k):
        train = np.setdiff1d(np.arange(len(y)), test)
        mean, scale, w, b = _fit_core(X[train], y[train], l2)
        oof[test] = ((X[test] - mean) / scale) @ w + b
    platt_a, platt_c = _fit_platt(oof, y)

    mean, scale, w, b = _fit_core(X, y, l2)
    Z = (X - mean) / scale
    means, precs = [], []
    for label in (0, 1):
        m, P = _shrunk_gaussian(Z[y == label], shrink)
        means.append(m)
        precs.append(P)
    from scipy.stats import chi2

    clf = StrikeClassifier(mean=mean, scale=scale, weights=w, bias=b, platt_a=platt_a, platt_c=platt_c,
                           class_means=np.array(means), class_precisions=np.array(precs),
                           novelty_d2=float(chi2.ppf(novelty_quantile, X.shape[1])),
                           min_confidence=min_confidence)

    # self-check: held-out labels under the out-of-fold scores
    p = _sigmoid(platt_a * oof + platt_c)
    conf = np.maximum(p, 1.0 - p)
    labelled = conf >= min_confidence
    correct = (p >= 0.5) == (y == 1)
    s1, s0 = oof[y == 1], oof[y == 0]
    pooled = math.sqrt(0.5 * (np.var(s1) + np.var(s0))) or 1e-9
    report = CalibrationReport(
        n_heel=int(len(Xh)), n_forefoot=int(len(Xf)), cv_folds=k,
        cv_accuracy=float(np.mean(correct & labelled)),
        cv_labelled_share=float(np.mean(labelled)),
        cv_labelled_accuracy=float(np.mean(correct[labelled])) if labelled.any() else None,
        separation=float((np.mean(s1) - np.mean(s0)) / pooled),
    )
    return clf, report
