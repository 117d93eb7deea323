"""Step ground truth: one row per footfall, written and read as CSV with a JSON-ish header, and the
:class:`Scene` (audio + truth) a synthesiser returns."""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from stepsynth.constants import TRUTH_COLUMNS
from stepsound.errors import AudioFileError


# --------------------------------------------------------------------------- truth


@dataclass
class StepTruth:
    """Ground truth of one footfall.

    Attributes
    ----------
    onset_sample : int [samples, int64]
        First contact: index in the scene's audio of the first sample of the
        footfall.  The room's direct path has zero delay, so reverb does not
        shift it; the microphone filters are causal.
    side : str
        ``"L"`` or ``"R"``; consecutive steps alternate.
    level_db : float [dB]
        Exact gain applied to this step relative to the scene's nominal step
        level (user level + natural jitter + left/right asymmetry).  The dry
        impacts of every footfall are first normalised to the nominal energy,
        so the energy of a step's impacts is proportional to
        ``10**(level_db/10)``.
    strike : str
        ``"heel"`` or ``"forefoot"``.
    second_impact_ms : float or None [milliseconds]
        Heel strikes: delay of the forefoot slap after heel contact
        (25–70 ms).  Forefoot strikes: None (the quiet heel settle that
        follows is listed in ``Scene.meta["step_details"]``).
    """

    onset_sample: int
    side: str
    level_db: float
    strike: str
    second_impact_ms: float | None = None


def write_truth_csv(path, steps: Sequence[StepTruth], sample_rate: int, header: dict | None = None) -> None:
    """Write step truth as CSV.

    The first line is a comment ``# key=value, key=value, ...`` starting with
    ``sample_rate``; then the header row :data:`TRUTH_COLUMNS`; then one row
    per step.  ``second_impact_ms`` is empty for None.

    Parameters
    ----------
    path : str or os.PathLike
    steps : sequence of StepTruth
    sample_rate : int [Hz]
        Used for the ``time_s`` column (``onset_sample / sample_rate``).
    header : dict, optional
        Extra ``key=value`` items for the comment line (values without commas).
    """
    items = {"sample_rate": int(sample_rate)}
    for key, value in (header or {}).items():
        if key != "sample_rate":
            items[key] = value
    with open(path, "w", newline="") as fh:
        fh.write("# " + ", ".join(f"{k}={_header_value(v)}" for k, v in items.items()) + "\n")
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(TRUTH_COLUMNS)
        for s in steps:
            writer.writerow(
                [
                    int(s.onset_sample),
                    f"{s.onset_sample / sample_rate:.6f}",
                    s.side,
                    f"{s.level_db:.4f}",
                    s.strike,
                    "" if s.second_impact_ms is None else f"{s.second_impact_ms:.3f}",
                ]
            )


def _header_value(value) -> str:
    if value is None:
        return "None"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value).replace(",", ";").replace("\n", " ")


def read_truth_header(path) -> dict:
    """Read the ``# key=value, ...`` comment line of a truth CSV.

    Values are returned as int, float, None or str.  Returns ``{}`` when the
    file has no comment line.
    """
    out: dict = {}
    with open(path, newline="") as fh:
        first = fh.readline()
    if not first.startswith("#"):
        return out
    for item in first[1:].split(","):
        if "=" not in item:
            continue
        key, value = item.split("=", 1)
        out[key.strip()] = _parse_value(value.strip())
    return out


def _parse_value(text: str):
    if text == "None":
        return None
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def read_truth_csv(path) -> list[StepTruth]:
    """Read a truth CSV written by :func:`write_truth_csv` / :meth:`Scene.write`.

    Comment lines (``#``) are skipped; ``time_s`` is ignored (it is derived
    from ``onset_sample``).

    Returns
    -------
    list of StepTruth
    """
    try:
        with open(path, newline="") as fh:
            rows = [line for line in fh if line.strip() and not line.startswith("#")]
    except OSError as exc:
        raise AudioFileError(f"cannot read truth file {os.fspath(path)!r}: {exc}") from exc
    reader = csv.DictReader(rows)
    missing = set(TRUTH_COLUMNS) - set(reader.fieldnames or ())
    if missing:
        raise AudioFileError(f"truth file {os.fspath(path)!r} lacks columns {sorted(missing)}")
    steps = []
    for row in reader:
        sim = row["second_impact_ms"].strip()
        steps.append(
            StepTruth(
                onset_sample=int(row["onset_sample"]),
                side=row["side"].strip(),
                level_db=float(row["level_db"]),
                strike=row["strike"].strip(),
                second_impact_ms=None if sim in ("", "None") else float(sim),
            )
        )
    return steps


@dataclass(repr=False)
class Scene:
    """A synthesised scene: audio plus exact ground truth.

    Attributes
    ----------
    audio : np.ndarray [shape=(n,), float32]
        Mono audio, peak <= :data:`PEAK_CEILING` (0.9).  It is *not* normalised
        up: ``mic_gain_db`` sets the level; only when the peak would exceed
        0.9 is a limiter gain applied (``meta["limiter_gain_db"]``).
    sample_rate : int [Hz]
    steps : list of StepTruth
        In time order.
    snr_db : float or None [dB]
        Realised SNR (module docstring); None when there is no noise.
    noise : str
        Noise kind, the noise file's path, or ``"silence"`` when there is no noise.
    meta : dict
        Everything else (JSON-serialisable): seeds, cadence schedule, runner
        traits, room and microphone parameters, track powers, gains
        (``meta["output_gain"]``: audio = output_gain * (steps + noise)),
        per-step details (``meta["step_details"]``).
    """

    audio: np.ndarray
    sample_rate: int
    steps: list
    snr_db: float | None
    noise: str
    meta: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"Scene({self.audio.shape[0] / self.sample_rate:.2f} s @ {self.sample_rate} Hz, "
            f"{len(self.steps)} steps, noise={self.noise!r}, snr_db={self.snr_db})"
        )

    @property
    def duration_s(self) -> float:
        """Length of the audio [seconds]."""
        return self.audio.shape[0] / self.sample_rate

    def onset_samples(self) -> np.ndarray:
        """Onset sample of every step [shape=(n_steps,), int64]."""
        return np.array([s.onset_sample for s in self.steps], dtype=np.int64)

    def onset_times_s(self) -> np.ndarray:
        """Onset time of every step [shape=(n_steps,), float64, seconds]."""
        return self.onset_samples() / float(self.sample_rate)

    def truth_header(self) -> dict:
        """Items of the truth CSV comment line."""
        m = self.meta
        return {
            "sample_rate": self.sample_rate,
            "snr_db": None if self.snr_db is None else round(self.snr_db, 4),
            "noise": self.noise,
            "seed": m.get("seed"),
            "runner_seed": m.get("runner_seed"),
            "strike": m.get("strike"),
            "duration_s": round(self.duration_s, 6),
            "n_samples": int(self.audio.shape[0]),
            "output_gain_db": round(m.get("output_gain_db", 0.0), 4),
        }

    def write(self, path_audio, path_truth_csv=None, *, path_meta_json=None, subtype: str | None = None) -> None:
        """Write the audio and its truth.

        Parameters
        ----------
        path_audio : str or os.PathLike
            Format chosen by suffix (``.flac``, ``.wav``, ...) by soundfile;
            FLAC defaults to 16-bit PCM, WAV to 32-bit float.
        path_truth_csv : str, os.PathLike, None or False
            Truth CSV (see :func:`write_truth_csv`).  None: next to the audio
            as ``<stem>.steps.csv``; False: do not write it.
        path_meta_json : str, os.PathLike or None
            When given, also write ``meta`` (plus the header items) as JSON.
        subtype : str, optional
            soundfile subtype override (e.g. ``"PCM_24"``).
        """
        import soundfile as sf

        path_audio = os.fspath(path_audio)
        root, ext = os.path.splitext(path_audio)
        if subtype is None:
            subtype = "FLOAT" if ext.lower() == ".wav" else None
        try:
            sf.write(path_audio, self.audio, self.sample_rate, subtype=subtype)
        except Exception as exc:  # soundfile raises several types
            raise AudioFileError(f"cannot write {path_audio!r}: {exc}") from exc
        if path_truth_csv is None:
            path_truth_csv = root + ".steps.csv"
        if path_truth_csv is not False:
            write_truth_csv(path_truth_csv, self.steps, self.sample_rate, self.truth_header())
        if path_meta_json is not None:
            with open(path_meta_json, "w") as fh:
                fh.write(self.meta_json())

    def meta_json(self) -> str:
        """``{"header": ..., "meta": ...}`` as JSON text, one line per meta item and per step detail."""
        def dump(v):
            return json.dumps(v, default=_json_default)

        items = []
        for key, value in self.meta.items():
            if isinstance(value, list) and value and isinstance(value[0], dict):
                body = ",\n".join("   " + dump(v) for v in value)
                items.append(f"  {dump(key)}: [\n{body}\n  ]")
            else:
                items.append(f"  {dump(key)}: {dump(value)}")
        return '{\n "header": ' + dump(self.truth_header()) + ',\n "meta": {\n' + ",\n".join(items) + "\n }\n}\n"


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj)}")
