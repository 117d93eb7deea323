"""Steps, cadence and landings of recordings, offline (``stepsound analyze``).

The file is streamed block by block through the very :class:`Engine` a live
session uses (no look-ahead, no second pass), so what is measured here is
what a runner would have been told live.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from stepsound.atomic import output_file
from stepsound.detect.cadence import side_asymmetry
from stepsound.engine import CadenceTick, Engine, Step
from stepsound.errors import AudioFileError, ParameterError, StepsoundError
from stepsound.audio.files import DEFAULT_BLOCK_SIZE, FileSource

SCHEMA_VERSION = 1


@dataclass
class Analysis:
    """The result of analysing one recording.

    Attributes
    ----------
    file : str
    sample_rate : int [Hz]
    duration_s : float [seconds]
    steps : list of Step
    cadence : list of CadenceTick
        What a live display would have shown, every 0.25 s.
    latency_ms : float
        Detector's worst-case detection latency.
    heavy_db : float [dB]
        Heavy-landing threshold used.
    warning : str or None
        Set when the file could only be read in part (truncated or corrupt
        data): the results cover the readable part, ``duration_s`` long.
    """

    file: str
    sample_rate: int
    duration_s: float
    steps: list = field(default_factory=list)
    cadence: list = field(default_factory=list)
    latency_ms: float = 0.0
    heavy_db: float = 6.0
    warning: str | None = None

    def summary(self) -> dict:
        """Summary statistics (see README for each key)."""
        return summarize([s.to_dict() for s in self.steps], [t.spm for t in self.cadence],
                         self.heavy_db, self.latency_ms)

    def steps_frame(self):
        """The steps as a pandas DataFrame, one row per step (the ``--csv`` columns and the features).

        Needs the optional pandas extra (``pip install "stepsound[pandas]"``).

        Returns
        -------
        pandas.DataFrame
            Indexed by step number; ``time_s`` [s], ``impact_db`` [dB re the runner's baseline],
            ``cadence_spm`` [steps/min], ``heavy``, ``side``, ``strike`` ... (see README, "Outputs").
        """
        try:
            import pandas as pd
        except ImportError:
            raise ParameterError('steps_frame() needs pandas: pip install "stepsound[pandas]"') from None
        records = [s.to_dict() for s in self.steps]
        frame = pd.DataFrame.from_records(records) if records else pd.DataFrame(
            columns=["time_s", "onset_sample", "impact_db", "heavy", "cadence_spm", "side", "extra"])
        frame.index.name = "step"
        return frame

    def to_dict(self) -> dict:
        """The ``--json`` document (schema in README.md)."""
        return {
            "schema": SCHEMA_VERSION,
            "file": self.file,
            "sample_rate": self.sample_rate,
            "duration_s": round(self.duration_s, 4),
            "warning": self.warning,
            "steps": [s.to_dict() for s in self.steps],
            "cadence": [{"time_s": round(t.time_s, 3), "spm": _round(t.spm)} for t in self.cadence],
            "summary": self.summary(),
        }


def summarize(steps: list, displayed_spm: list, heavy_db: float, latency_ms: float) -> dict:
    """Summary statistics of step records (``Step.to_dict()``) and displayed cadence values.

    Shared by ``analyze`` and live sessions, so both summarise alike.

    Parameters
    ----------
    steps : list of dict
        Step records, extra detections included (flagged ``extra``).
    displayed_spm : list of float or None
        The cadence a live display showed, every tick [steps/min].
    heavy_db : float [dB]
        Heavy-landing threshold used.
    latency_ms : float [ms]
        The detector's bound on detection latency (a property of its
        configuration), reported as ``detect_latency_bound_ms``; the measured
        latencies of the steps give ``detect_latency_median_ms`` and
        ``detect_latency_p95_ms``.

    Returns
    -------
    dict
        The ``summary`` object of the JSON schema in README.md.
    """
    real = [s for s in steps if not s.get("extra")]
    spm = np.array([s["cadence_spm"] for s in real if s.get("cadence_spm") is not None], dtype=float)
    shown = np.array([v for v in displayed_spm if v is not None], dtype=float)
    impacts = np.array([s["impact_db"] for s in real if s.get("impact_db") is not None], dtype=float)
    heavy = sum(bool(s.get("heavy")) for s in real)
    delays = np.array([s["detect_latency_ms"] for s in real if s.get("detect_latency_ms") is not None], dtype=float)
    strikes = [s.get("strike") for s in real if s.get("strike")]
    out = {
        "steps": len(real),
        "detections": len(steps),
        "extra_detections": len(steps) - len(real),
        "median_cadence_spm": _round(np.median(spm)) if spm.size else None,
        "cadence_iqr_spm": ([_round(np.percentile(spm, 25)), _round(np.percentile(spm, 75))]
                            if spm.size >= 4 else None),
        "mean_displayed_cadence_spm": _round(shown.mean()) if shown.size else None,
        "cadence_known_share": _round(shown.size / len(displayed_spm), 3) if displayed_spm else None,
        "heavy_steps": int(heavy),
        "heavy_share": _round(heavy / len(real), 4) if real else None,
        "heavy_threshold_db": heavy_db,
        "median_impact_db": _round(np.median(impacts)) if impacts.size else None,
        "detect_latency_bound_ms": _round(latency_ms),
        "detect_latency_median_ms": _round(np.median(delays)) if delays.size else None,
        "detect_latency_p95_ms": _round(np.percentile(delays, 95)) if delays.size else None,
    }
    if strikes:
        out["strike_counts"] = {k: strikes.count(k) for k in ("heel", "forefoot", "uncertain")}
        labelled = out["strike_counts"]["heel"] + out["strike_counts"]["forefoot"]
        out["heel_share"] = _round(out["strike_counts"]["heel"] / labelled, 4) if labelled else None
    records = [{"side": s.get("side"), "cadence_spm": s.get("cadence_spm"), "missed": s.get("missed_before"),
                "energy_db": s.get("energy_db")} for s in real]
    asym = side_asymmetry(records)
    out["timing_asymmetry_pct"] = _round(asym["timing_asymmetry_pct"])
    out["loudness_asymmetry_db"] = _round(asym["loudness_asymmetry_db"])
    return out


def _round(value, digits: int = 2):
    if value is None:
        return None
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


def _collect(events: list, steps: list, ticks: list) -> None:
    """Keep the engine's measured steps and display ticks (the onset events are for live displays)."""
    for ev in events:
        if isinstance(ev, Step):
            if ev.supersedes is not None:
                # a sound just before this step had been taken for it: it is no step
                for old in reversed(steps[-4:]):
                    if old.onset_sample == ev.supersedes:
                        old.extra = True
                        break
            steps.append(ev)
        elif isinstance(ev, CadenceTick):
            ticks.append(ev)


def analyze_file(path: str, *, block_size: int = DEFAULT_BLOCK_SIZE, engine_factory=None,
                 on_progress=None) -> Analysis:
    """Stream one recording through the engine.

    Parameters
    ----------
    path : str
    block_size : int [samples]
        Block size used to feed the engine (results do not depend on it).
    engine_factory : callable(sample_rate) -> Engine, optional
    on_progress : callable(seconds_done), optional

    Returns
    -------
    Analysis
        Of the readable part of the file: a file truncated or corrupt after
        some audio gives the results up to there, with ``warning`` set.

    Raises
    ------
    AudioFileError
        Missing, unreadable or not audio; no readable audio at all;
        non-finite samples.
    """
    source = FileSource(path, block_size=block_size)
    rate = source.info.sample_rate
    engine = engine_factory(rate) if engine_factory else Engine(rate)
    steps: list[Step] = []
    ticks: list[CadenceTick] = []
    done = 0
    for block in source.blocks():
        before = engine.detector.nonfinite_count
        _collect(engine.process(block), steps, ticks)
        if engine.detector.nonfinite_count != before:
            bad = np.flatnonzero(~np.isfinite(block))
            first = (done + int(bad[0])) / rate if bad.size else done / rate
            raise AudioFileError(f"{path}: contains non-finite (NaN/inf) samples, first at {first:.3f} s")
        done += len(block)
        if on_progress is not None:
            on_progress(done / rate)
    return Analysis(os.fspath(path), rate, done / rate, steps, ticks,
                    1000.0 * engine.latency_samples / rate, engine.grader.heavy_db, source.warning)


def analyze_array(samples, sample_rate: int, *, block_size: int = DEFAULT_BLOCK_SIZE, engine_factory=None,
                  name: str = "<array>") -> Analysis:
    """Stream audio already in memory through the engine, as :func:`analyze_file` does a file.

    Parameters
    ----------
    samples : array_like [shape=(n,) or (n, channels)]
        Audio in [-1, 1] (any float or integer dtype is converted to float32; integers are scaled by
        their full range); channels are averaged.
    sample_rate : int [Hz]
        8000 to 384000.
    block_size : int [samples]
        Block size used to feed the engine (results do not depend on it).
    engine_factory : callable(sample_rate) -> Engine, optional
        E.g. :class:`stepsound.engine.EngineFactory` for a runner profile.
    name : str
        What the analysis names as its ``file``.

    Returns
    -------
    Analysis

    Raises
    ------
    ParameterError
        Not 1-D or 2-D audio, an impossible sample rate or block size, or non-finite samples.
    """
    x = np.asarray(samples)
    if x.ndim not in (1, 2) or x.size == 0:
        raise ParameterError(f"samples must be a non-empty array of shape (n,) or (n, channels), not {x.shape}")
    if np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float64) / float(np.iinfo(x.dtype).max)
    elif not np.issubdtype(x.dtype, np.floating):
        raise ParameterError(f"samples must be numbers, not {x.dtype}")
    if x.ndim == 2:
        x = x.mean(axis=1)
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not isinstance(sample_rate, (int, np.integer)) or not 8000 <= int(sample_rate) <= 384000:
        raise ParameterError(f"sample_rate={sample_rate!r} must be a whole number of Hz from 8000 to 384000")
    if not isinstance(block_size, (int, np.integer)) or block_size < 1:
        raise ParameterError(f"block_size={block_size!r} must be a positive number of samples")
    bad = np.flatnonzero(~np.isfinite(x))
    if bad.size:
        raise ParameterError(f"{name}: contains non-finite (NaN/inf) samples, first at {bad[0] / sample_rate:.3f} s")
    rate = int(sample_rate)
    engine = engine_factory(rate) if engine_factory else Engine(rate)
    steps: list[Step] = []
    ticks: list[CadenceTick] = []
    for start in range(0, len(x), block_size):
        _collect(engine.process(x[start:start + block_size]), steps, ticks)
    return Analysis(name, rate, len(x) / rate, steps, ticks, 1000.0 * engine.latency_samples / rate,
                    engine.grader.heavy_db, None)


# -- output ---------------------------------------------------------------------

CSV_COLUMNS = ["time_s", "onset_sample", "cadence_spm", "smoothed_spm", "side", "impact_db", "heavy",
               "strike", "strike_confidence", "detect_latency_ms", "extra", "missed_before",
               "supersedes"]


def write_csv(analyses: list[Analysis], path: str) -> None:
    """Write the per-step table of one or more analyses (a ``file`` column first)."""
    import csv

    from stepsound.detect.detector import FEATURE_NAMES

    columns = ["file"] + CSV_COLUMNS + list(FEATURE_NAMES)
    with output_file(path, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for a in analyses:
            for s in a.steps:
                rec = s.to_dict()
                writer.writerow([a.file] + ["" if rec.get(c) is None else rec.get(c) for c in columns[1:]])


def write_analyses_json(items: list, path: str, single: bool) -> None:
    """Stream analyses to JSON without building the whole document in memory.

    Parameters
    ----------
    items : list of Analysis or dict
        An :class:`Analysis`, or an ``{"file", "error"}`` dict for a failure.
    single : bool
        Write one object (one file) instead of a list.
    """
    import json

    def dump_one(fh, item):
        if not isinstance(item, Analysis):
            fh.write(json.dumps(item))
            return
        head = {"schema": SCHEMA_VERSION, "file": item.file, "sample_rate": item.sample_rate,
                "duration_s": round(item.duration_s, 4), "warning": item.warning}
        fh.write(json.dumps(head)[:-1])
        fh.write(', "steps": [')
        for i, st in enumerate(item.steps):
            fh.write((",\n  " if i else "\n  ") + json.dumps(st.to_dict(), allow_nan=False))
        fh.write('],\n "cadence": [')
        for i, t in enumerate(item.cadence):
            fh.write(("," if i else "") + json.dumps({"time_s": round(t.time_s, 3), "spm": _round(t.spm)}))
        fh.write('],\n "summary": ' + json.dumps(item.summary(), allow_nan=False) + "}")

    with output_file(path) as fh:
        if single:
            dump_one(fh, items[0])
        else:
            fh.write("[")
            for i, item in enumerate(items):
                if i:
                    fh.write(",\n")
                dump_one(fh, item)
            fh.write("]")
        fh.write("\n")


def write_json(docs, path: str) -> None:
    """Write a JSON document (``-`` = stdout; a file is replaced atomically)."""
    import json

    with output_file(path) as fh:
        json.dump(docs, fh, indent=1, allow_nan=False)
        fh.write("\n")


def strike_line(summary: dict) -> str | None:
    """``"heel/forefoot: 62% heel-first, 38% forefoot of 400 labelled landings, 12 uncertain"`` (None without a profile)."""
    counts = summary.get("strike_counts")
    if not counts:
        return None
    heel, fore, unc = counts.get("heel", 0), counts.get("forefoot", 0), counts.get("uncertain", 0)
    labelled = heel + fore
    if not labelled:
        return f"heel/forefoot: all {unc} landings uncertain"
    return (f"heel/forefoot: {100 * heel / labelled:.0f}% heel-first, {100 * fore / labelled:.0f}% forefoot "
            f"of {labelled} labelled landings" + (f", {unc} uncertain" if unc else ""))


def format_summary(a: Analysis) -> str:
    """A short human summary of one analysis."""
    s = a.summary()
    lines = [f"{a.file}: {a.duration_s:.1f} s at {a.sample_rate} Hz"]
    if not s["steps"]:
        lines.append("  no steps found")
        return "\n".join(lines)
    cad = "unknown" if s["median_cadence_spm"] is None else f"{s['median_cadence_spm']:.1f} steps/min"
    iqr = "" if not s["cadence_iqr_spm"] else f" (middle half {s['cadence_iqr_spm'][0]:.1f}–{s['cadence_iqr_spm'][1]:.1f})"
    lines.append(f"  steps: {s['steps']}   cadence: median {cad}{iqr}")
    lines.append(f"  landings: {s['heavy_share'] * 100:.1f}% heavy (≥ +{s['heavy_threshold_db']:g} dB over "
                 f"the runner's own baseline)")
    strike = strike_line(s)
    if strike:
        lines.append("  " + strike)
    ta, la = s["timing_asymmetry_pct"], s["loudness_asymmetry_db"]
    if ta is not None or la is not None:
        parts = []
        if ta is not None:
            parts.append(f"timing {ta:+.1f}%")
        if la is not None:
            parts.append(f"loudness {la:+.1f} dB")
        lines.append("  left/right (alternate feet): " + ", ".join(parts))
    if s["extra_detections"]:
        lines.append(f"  {s['extra_detections']} extra detections ignored for cadence")
    return "\n".join(lines)


def _worker(path: str, block_size: int, engine_factory=None):
    try:
        return analyze_file(path, block_size=block_size, engine_factory=engine_factory), None
    except StepsoundError as exc:
        return None, str(exc)
    except MemoryError:
        return None, f"{path}: out of memory"


INTERRUPTED = "interrupted"


def _worker_init():
    """Worker initializer: Ctrl-C is the parent's to handle (no traceback from each worker).

    SIGINT arrives blocked (see :func:`_analyze_in_pool`): it is ignored, then unblocked.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _analyze_in_pool(paths: list, jobs: int, block_size: int, factory, progress, results: list,
                     errors: list) -> bool:
    """Analyse ``paths`` in ``jobs`` worker processes, filling ``results``/``errors`` in place.

    At most ``jobs`` files are handed out at a time.  A first Ctrl-C hands out
    no more and waits for the files being analysed; a second one stops the
    workers at once (``KeyboardInterrupt`` propagates).  The workers never
    outlive this call.

    Returns
    -------
    interrupted : bool
        True after a first Ctrl-C (the files not analysed have neither result nor error).
    """
    import multiprocessing
    import signal

    # workers must never see SIGINT before they ignore it: block it while they are made
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        pool = multiprocessing.Pool(processes=jobs, initializer=_worker_init)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
    pending = list(range(len(paths)))[::-1]
    running: dict = {}
    interrupted = False
    try:
        while pending or running:
            try:
                while pending and len(running) < jobs:
                    i = pending.pop()
                    running[i] = pool.apply_async(_worker, (paths[i], block_size, factory))
                for i, res in list(running.items()):
                    if res.ready():
                        results[i], errors[i] = res.get()
                        del running[i]
                        progress.advance()
                if running:
                    next(iter(running.values())).wait(0.05)
            except KeyboardInterrupt:
                if interrupted:
                    raise           # the second Ctrl-C: stop now (the pool is terminated below)
                interrupted = True
                pending.clear()     # the first: finish the files being analysed, start no more
        pool.close()
    finally:
        pool.terminate()
        pool.join()
    return interrupted


class _NoProgress:
    def advance(self):
        pass

    def file_progress(self, seconds: float):
        pass


def analyze_files(paths: list, *, block_size: int = DEFAULT_BLOCK_SIZE, engine_factory=None, jobs: int = 1,
                  progress=None) -> tuple[list, list, bool]:
    """Analyse several recordings, in ``jobs`` worker processes when more than one.

    Parameters
    ----------
    paths : list of str
    block_size : int
        Samples per block fed to the engine (results do not depend on it).
    engine_factory : callable or None
        Makes each file's :class:`Engine` (e.g. ``stepsound.grade.impact.EngineFactory``); picklable.
    jobs : int
        Worker processes (1: analyse here, in this process).
    progress : object or None
        Told ``advance()`` after each file and, for a single file, ``file_progress(seconds)``.

    Returns
    -------
    (list, list, bool)
        Per path: an :class:`Analysis` or None; per path: an error message or None
        (``INTERRUPTED`` for files left out after a first Ctrl-C); and whether a
        first Ctrl-C stopped the work early.  A second Ctrl-C raises KeyboardInterrupt.
    """
    progress = progress or _NoProgress()
    results: list = [None] * len(paths)
    errors: list = [None] * len(paths)
    interrupted = False
    if jobs <= 1:
        try:
            for i, path in enumerate(paths):
                try:
                    results[i] = analyze_file(path, block_size=block_size, engine_factory=engine_factory,
                                              on_progress=progress.file_progress if len(paths) == 1 else None)
                except StepsoundError as exc:
                    errors[i] = str(exc)
                progress.advance()
        except KeyboardInterrupt:
            interrupted = True
    else:
        interrupted = _analyze_in_pool(paths, jobs, block_size, engine_factory, progress, results, errors)
    if interrupted:
        errors = [INTERRUPTED if r is None and e is None else e for r, e in zip(results, errors)]
    return results, errors, interrupted
