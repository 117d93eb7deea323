"""Runner profiles: a runner's calibration, stored as JSON in the user data dir.

A profile holds what ``stepsound calibrate`` learned about one runner: the
heel-vs-forefoot classifier (:class:`stepsound.grade.strike.StrikeClassifier`),
its cross-validated self-check, and optionally a learned heavy-step
threshold.  It holds no absolute loudness: that depends on the microphone's
gain and distance, which change between sessions.

Where
-----
``<data dir>/profiles/<NAME>.json`` where the data dir is
``$STEPSOUND_DATA_DIR`` when set, else ``platformdirs.user_data_dir("stepsound")``.
Names: 1–64 characters, letters, digits, ``_``, ``-`` and ``.``, starting
with a letter or digit.  Files are written atomically (temporary file,
fsync, then rename), so a crash never leaves half a profile.

Every problem (unreadable, corrupt, from a newer stepsound, invalid name)
is one :class:`~stepsound.errors.StoreError` naming the file.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from stepsound.atomic import atomic_open
from stepsound.errors import ParameterError, StoreError
from stepsound.grade.strike import STRIKE_FEATURES, CalibrationReport, StrikeClassifier

__all__ = ["PROFILE_SCHEMA", "RunnerProfile", "data_dir", "profiles_dir", "profile_path", "check_name",
           "save_profile", "load_profile", "list_profiles", "delete_profile"]

#: Version of the profile file layout.
PROFILE_SCHEMA = 1

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


def data_dir() -> Path:
    """stepsound's data directory (``$STEPSOUND_DATA_DIR`` or the platform's user data dir)."""
    env = os.environ.get("STEPSOUND_DATA_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("stepsound"))


def profiles_dir() -> Path:
    """Directory of the runner profiles."""
    return data_dir() / "profiles"


def check_name(name) -> str:
    """Validate a profile name; return it or raise ParameterError (a usage error)."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or name.endswith(".json"):
        raise ParameterError(f"invalid profile name {name!r}: use 1-64 letters, digits, '_', '-' or '.', "
                             "starting with a letter or digit")
    return name


def profile_path(name: str) -> Path:
    """Path of the profile file of ``name``."""
    return profiles_dir() / f"{check_name(name)}.json"


@dataclass
class RunnerProfile:
    """One runner's calibration.

    Attributes
    ----------
    name : str
    classifier : StrikeClassifier
    report : CalibrationReport
        Cross-validated self-check of the classifier.
    heavy_db : float or None [dB]
        Heavy threshold learned from the calibration steps' spread (None:
        use the default 6 dB).
    step_spread_db : float or None [dB]
        Robust standard deviation of the calibration steps' loudness about
        their landing's median.
    created : str
        ISO 8601 time of the calibration (UTC).
    sources : list of str
        Where the calibration steps came from (files or "live").
    sample_rate : int or None [Hz]
    """

    name: str
    classifier: StrikeClassifier
    report: CalibrationReport
    heavy_db: float | None = None
    step_spread_db: float | None = None
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    sources: list = field(default_factory=list)
    sample_rate: int | None = None

    def to_dict(self) -> dict:
        """The JSON document of the profile."""
        from stepsound import __version__

        return {
            "schema": PROFILE_SCHEMA,
            "stepsound_version": __version__,
            "name": self.name,
            "created": self.created,
            "sources": list(self.sources),
            "sample_rate": self.sample_rate,
            "heavy_db": self.heavy_db,
            "step_spread_db": self.step_spread_db,
            "calibration": self.report.to_dict(),
            "strike_classifier": self.classifier.to_dict(),
        }

    @classmethod
    def from_dict(cls, doc: dict, *, where: str = "profile") -> "RunnerProfile":
        """Rebuild from :meth:`to_dict` output; StoreError (naming ``where``) if malformed."""
        if not isinstance(doc, dict):
            raise StoreError(f"{where}: corrupt profile (not a JSON object)")
        schema = doc.get("schema")
        if not isinstance(schema, int) or schema < 1:
            raise StoreError(f"{where}: corrupt profile (no schema version)")
        if schema > PROFILE_SCHEMA:
            raise StoreError(f"{where}: profile schema {schema} is newer than this stepsound understands "
                             f"({PROFILE_SCHEMA}); upgrade stepsound or calibrate again")
        clf = doc.get("strike_classifier")
        features = clf.get("features") if isinstance(clf, dict) else None
        if isinstance(features, list) and tuple(features) != STRIKE_FEATURES:
            raise StoreError(f"{where}: made by an older stepsound, whose landing features differ from this "
                             f"version's; calibrate again")
        try:
            heavy = doc.get("heavy_db")
            spread = doc.get("step_spread_db")
            rate = doc.get("sample_rate")
            return cls(
                name=str(doc["name"]),
                classifier=StrikeClassifier.from_dict(doc["strike_classifier"]),
                report=CalibrationReport.from_dict(doc["calibration"]),
                heavy_db=None if heavy is None else float(heavy),
                step_spread_db=None if spread is None else float(spread),
                created=str(doc.get("created", "")),
                sources=[str(s) for s in doc.get("sources", [])],
                sample_rate=None if rate is None else int(rate),
            )
        except ParameterError as exc:
            raise StoreError(f"{where}: corrupt profile ({exc})") from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            what = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
            raise StoreError(f"{where}: corrupt profile ({what})") from None


def save_profile(profile: RunnerProfile) -> Path:
    """Write a profile (replacing one of the same name); return its path.

    Raises
    ------
    StoreError
        Invalid name, or the file cannot be written.
    """
    path = profile_path(profile.name)
    text = json.dumps(profile.to_dict(), indent=1, allow_nan=False) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(path) as fh:
            fh.write(text)
    except OSError as exc:
        raise StoreError(f"{path}: cannot write the profile ({exc.strerror or exc})") from None
    return path


def load_profile(name: str) -> RunnerProfile:
    """Read the profile of ``name``.

    Raises
    ------
    StoreError
        Invalid name, no such profile (the message lists the known ones),
        unreadable or corrupt file.
    """
    path = profile_path(name)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        known = list_profiles()
        hint = f"known profiles: {', '.join(known)}" if known else "no profiles yet"
        raise StoreError(f"no profile named {name!r} ({hint}); create one with `stepsound calibrate --name {name}`") \
            from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreError(f"{path}: cannot read the profile ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise StoreError(f"{path}: corrupt profile (not valid JSON: {exc})") from None
    return RunnerProfile.from_dict(doc, where=str(path))


def list_profiles() -> list[str]:
    """Names of the stored profiles, sorted (empty when there is none)."""
    folder = profiles_dir()
    try:
        names = [p.stem for p in folder.glob("*.json") if p.is_file()]
    except OSError:
        return []
    return sorted(n for n in names if _NAME_RE.match(n))


def delete_profile(name: str) -> None:
    """Delete the profile of ``name`` (StoreError if it does not exist or cannot be removed)."""
    path = profile_path(name)
    try:
        path.unlink()
    except FileNotFoundError:
        raise StoreError(f"no profile named {name!r}") from None
    except OSError as exc:
        raise StoreError(f"{path}: cannot delete the profile ({exc.strerror or exc})") from None
