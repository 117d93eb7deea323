"""Session history in SQLite, and the user data directory.

Every live session (and every replay) is written as it runs: a ``sessions``
row at the start, its steps, cadence ticks and cues every couple of seconds,
and its summary at the end.  A session cut short (Ctrl-C, a lost device, a
full disk) keeps everything written so far, marked with its status.
"""
from __future__ import annotations

import json
import os
import sqlite3
import time

from stepsound.errors import StoreError

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at REAL NOT NULL,          -- unix time [s]
    ended_at REAL,
    status TEXT NOT NULL,              -- running | complete | interrupted | failed
    source TEXT NOT NULL,              -- 'live' or the replayed file
    sample_rate INTEGER NOT NULL,
    duration_s REAL,
    target TEXT,
    cues_mode TEXT,
    profile TEXT,
    steps INTEGER,
    median_cadence_spm REAL,
    heavy_share REAL,
    baseline_spm REAL,
    recording TEXT,
    message TEXT,
    summary_json TEXT
);
CREATE TABLE IF NOT EXISTS steps (
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    time_s REAL NOT NULL,
    record_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cadence (
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    time_s REAL NOT NULL,
    spm REAL
);
CREATE TABLE IF NOT EXISTS cues (
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    time_s REAL NOT NULL,
    kind TEXT NOT NULL,
    target_spm REAL
);
CREATE INDEX IF NOT EXISTS steps_by_session ON steps(session_id);
CREATE INDEX IF NOT EXISTS cadence_by_session ON cadence(session_id);
CREATE INDEX IF NOT EXISTS cues_by_session ON cues(session_id);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value_json TEXT NOT NULL);
"""


def data_dir() -> str:
    """The user data directory (``$STEPSOUND_DATA_DIR`` overrides the platform default)."""
    override = os.environ.get("STEPSOUND_DATA_DIR")
    if override:
        return override
    from platformdirs import user_data_dir

    return user_data_dir("stepsound", appauthor=False)


def default_db_path() -> str:
    """Where the session database lives by default."""
    return os.path.join(data_dir(), "sessions.sqlite")


class SessionStore:
    """The session database.

    Parameters
    ----------
    path : str, optional
        Database file (default: :func:`default_db_path`); created if absent.

    Raises
    ------
    StoreError
        The file cannot be created, opened or is not a stepsound database.
    """

    def __init__(self, path: str | None = None, *, create: bool = True):
        self.path = path or default_db_path()
        if not create and not os.path.exists(self.path):
            # listing and reporting leave no empty database (or folders) behind
            raise StoreError(f"{self.path}: no sessions yet (no session database)")
        self.db = None
        try:
            parent = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(parent, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=10)
            self.db.executescript(SCHEMA)
            self.db.commit()
        except (OSError, sqlite3.Error, ValueError) as exc:   # ValueError: text that is not UTF-8
            self.close()        # a half-opened connection must not keep the file locked
            raise StoreError(f"{self.path}: cannot open the session database ({exc})") from None

    def _fail(self, exc) -> StoreError:
        return StoreError(f"{self.path}: cannot write the session database ({exc})")

    def close(self) -> None:
        if self.db is None:
            return
        try:
            self.db.close()
        except sqlite3.Error:
            pass

    # -- writing ---------------------------------------------------------------
    def begin(self, *, source: str, sample_rate: int, target: str | None, cues_mode: str,
              profile: str | None = None, recording: str | None = None) -> int:
        """Create a session row (status ``running``); return its id."""
        try:
            cur = self.db.execute(
                "INSERT INTO sessions (started_at, status, source, sample_rate, target, cues_mode, profile, recording)"
                " VALUES (?, 'running', ?, ?, ?, ?, ?, ?)",
                (time.time(), source, int(sample_rate), target, cues_mode, profile, recording))
            self.db.commit()
            return int(cur.lastrowid)
        except sqlite3.Error as exc:
            raise self._fail(exc) from None

    def append(self, session_id: int, steps=(), ticks=(), cues=()) -> None:
        """Add steps (dicts), cadence ticks ((time_s, spm)) and cues (dicts); commit."""
        try:
            self.db.executemany("INSERT INTO steps VALUES (?, ?, ?)",
                                [(session_id, s["time_s"], json.dumps(s)) for s in steps])
            self.db.executemany("INSERT INTO cadence VALUES (?, ?, ?)",
                                [(session_id, t, spm) for t, spm in ticks])
            self.db.executemany("INSERT INTO cues VALUES (?, ?, ?, ?)",
                                [(session_id, c["time_s"], c["kind"], c["target_spm"]) for c in cues])
            self.db.commit()
        except sqlite3.Error as exc:
            try:
                self.db.rollback()
            except sqlite3.Error:
                pass
            raise self._fail(exc) from None

    def finish(self, session_id: int, *, status: str, duration_s: float, summary: dict,
               baseline_spm: float | None = None, message: str | None = None) -> None:
        """Store the summary and final status of a session."""
        try:
            self.db.execute(
                "UPDATE sessions SET ended_at=?, status=?, duration_s=?, steps=?, median_cadence_spm=?,"
                " heavy_share=?, baseline_spm=?, message=?, summary_json=? WHERE id=?",
                (time.time(), status, duration_s, summary.get("steps"), summary.get("median_cadence_spm"),
                 summary.get("heavy_share"), baseline_spm, message, json.dumps(summary), session_id))
            self.db.commit()
        except sqlite3.Error as exc:
            raise self._fail(exc) from None

    # -- settings (e.g. measured round-trip latency per device) ----------------------
    def set_setting(self, key: str, value) -> None:
        try:
            self.db.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", (key, json.dumps(value)))
            self.db.commit()
        except sqlite3.Error as exc:
            raise self._fail(exc) from None

    def get_setting(self, key: str, default=None):
        try:
            row = self.db.execute("SELECT value_json FROM settings WHERE key=?", (key,)).fetchone()
            return default if row is None else json.loads(row[0])
        except (sqlite3.Error, ValueError, TypeError) as exc:
            raise self._read_fail(exc) from None

    # -- reading ---------------------------------------------------------------
    def _read_fail(self, exc) -> StoreError:
        return StoreError(f"{self.path}: cannot read the session database ({exc})")

    def _corrupt(self, what: str) -> StoreError:
        return StoreError(f"{self.path}: corrupt session database ({what})")

    def _check_row(self, row: dict) -> dict:
        """A ``sessions`` row whose every column has its type (else StoreError naming it)."""
        for col, value in row.items():
            kinds = _ROW_TYPES.get(col, (str,))
            if value is not None and (isinstance(value, bool) or not isinstance(value, kinds)):
                raise self._corrupt(f"session {row.get('id')!r}: {col} is {value!r:.40}")
        if not isinstance(row.get("id"), int):
            raise self._corrupt(f"a session without an id ({row.get('id')!r:.40})")
        return row

    def sessions(self, limit: int = 50) -> list[dict]:
        """The most recent sessions, oldest first.

        Raises
        ------
        StoreError
            Unreadable or corrupt database (a value of the wrong type included).
        """
        try:
            cur = self.db.execute("SELECT * FROM sessions ORDER BY id DESC LIMIT ?", (int(limit),))
            cols = [c[0] for c in cur.description]
            rows = [dict(zip(cols, r)) for r in cur.fetchall()]
        except (sqlite3.Error, ValueError) as exc:
            raise self._read_fail(exc) from None
        return [self._check_row(r) for r in rows[::-1]]

    def load(self, session_id: int) -> dict:
        """One session as the ``run --json`` document (plus its database row).

        Raises
        ------
        StoreError
            No such session; unreadable or corrupt database.
        """
        # every query is read to its end before anything is parsed: no statement stays open
        # (an open one would keep the file locked after an error)
        try:
            cur = self.db.execute("SELECT * FROM sessions WHERE id=?", (int(session_id),))
            cols = [c[0] for c in cur.description]
            rows = cur.fetchall()
            step_rows = self.db.execute(
                "SELECT record_json FROM steps WHERE session_id=? ORDER BY time_s", (session_id,)).fetchall()
            cadence = [{"time_s": t, "spm": spm} for t, spm in self.db.execute(
                "SELECT time_s, spm FROM cadence WHERE session_id=? ORDER BY time_s", (session_id,)).fetchall()]
            cues = [{"time_s": t, "kind": k, "target_spm": s} for t, k, s in self.db.execute(
                "SELECT time_s, kind, target_spm FROM cues WHERE session_id=? ORDER BY time_s",
                (session_id,)).fetchall()]
        except (sqlite3.Error, ValueError) as exc:
            raise self._read_fail(exc) from None
        if not rows:
            raise StoreError(f"{self.path}: no session {session_id}")
        meta = self._check_row(dict(zip(cols, rows[0])))
        try:
            steps = [json.loads(r[0]) for r in step_rows]
            summary = json.loads(meta["summary_json"]) if meta.get("summary_json") else {}
        except (ValueError, TypeError) as exc:
            raise self._corrupt(f"session {session_id}: {exc}") from None
        if not isinstance(summary, dict):
            raise self._corrupt(f"session {session_id}: summary is not an object")
        for rec in steps:
            if not (isinstance(rec, dict) and _is_number(rec.get("time_s"))):
                raise self._corrupt(f"session {session_id}: a step record is {rec!r:.40}")
        for c in cadence:
            if not (_is_number(c["time_s"]) and (c["spm"] is None or _is_number(c["spm"]))):
                raise self._corrupt(f"session {session_id}: a cadence value is {c!r:.40}")
        for c in cues:
            if not (_is_number(c["time_s"]) and isinstance(c["kind"], str)
                    and (c["target_spm"] is None or _is_number(c["target_spm"]))):
                raise self._corrupt(f"session {session_id}: a cue is {c!r:.40}")
        return {"session": meta, "file": meta["source"], "sample_rate": meta["sample_rate"],
                "duration_s": meta["duration_s"], "steps": steps, "cadence": cadence, "cues": cues,
                "summary": summary}


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


#: Python types of the ``sessions`` columns (others are text); None (NULL) is always allowed.
_ROW_TYPES = {
    "id": (int,), "sample_rate": (int,), "steps": (int,),
    "started_at": (int, float), "ended_at": (int, float), "duration_s": (int, float),
    "median_cadence_spm": (int, float), "heavy_share": (int, float), "baseline_spm": (int, float),
}
