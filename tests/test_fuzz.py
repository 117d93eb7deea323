"""Property-based tests (hypothesis) of every parser at the edge of stepsound.

Whatever a user or a damaged disk hands in -- durations, targets, plan files,
profiles, the session database, audio headers -- stepsound answers with its
result or with one line on stderr starting ``stepsound:`` and exit 1 (2 for a
usage error): never a traceback, an internal error or a hang.  Example counts
are bounded so the whole file runs in well under a minute.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sqlite3

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from stepsound.cli.main import main
from stepsound.coach.coach import CoachConfig
from stepsound.errors import ParameterError
from stepsound.coach.plans import PlanError, parse_plan
from stepsound.units import parse_duration_s, parse_target

from _signals import bursts
from test_plans import GOOD     # a plan using every kind of segment and faded feedback

#: Multiplies every example count, for a deeper search by hand (``STEPSOUND_FUZZ_SCALE=20``).
SCALE = max(1, int(os.environ.get("STEPSOUND_FUZZ_SCALE", "1")))


def budget(n: int) -> settings:
    """Settings of one property: ``n`` examples (times SCALE), no deadline (CI machines are slow).

    The default run draws the same examples every time (a red CI is then a real, repeatable finding, not
    the luck of the draw); a deeper search by hand (SCALE > 1) draws new ones each run.
    """
    return settings(max_examples=n * SCALE, deadline=None, derandomize=SCALE == 1,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


#: The budgets of the properties (bounded: the whole file stays well under a minute).
FAST = budget(150)
SLOW = budget(25)

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)
QUANTITY = st.from_regex(r"\A[ +\-]?[0-9]{0,4}(\.[0-9]{0,3})?[ ]?(ms|s|min|h|m|%|spm|x|:|e5|inf|nan)?"
                         r"([0-9]{0,2}(s|min)?)?\Z")


@contextlib.contextmanager
def no_hang(seconds: int = 60):
    """Fail (instead of hanging CI) when the block runs longer than ``seconds``."""
    def _timeout(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def run_cli(capfd, argv, codes=(1,)) -> tuple[int, list[str]]:
    """Run the CLI in-process; check the error contract; return (exit code, stderr lines).

    Exit 0 may come with notes and warnings but no error; any other code must
    be one of ``codes`` with exactly one line ``stepsound: error: ...`` (what
    reaches the terminal, C libraries included).
    """
    capfd.readouterr()
    with no_hang():
        code = main(argv)
    err = capfd.readouterr().err.splitlines()
    assert not any("Traceback" in line or "internal error" in line for line in err), err
    if code == 0:
        assert not any("error" in line for line in err), err
    else:
        assert code in codes, (code, err)
        assert len(err) == 1 and err[0].startswith("stepsound: error: "), err
    return code, err


# ----------------------------------------------------------------------------- durations and targets


@FAST
@given(text=st.one_of(TEXT, QUANTITY))
@example(text="-5s")
@example(text="1e309s")
@example(text="99999999999999999999999h")
@example(text="1:60:61")
def test_durations_parse_to_finite_seconds_or_a_parameter_error(text):
    try:
        value = parse_duration_s(text)
    except ParameterError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert math.isfinite(value) and value >= 0


@SLOW
@given(text=st.one_of(TEXT, QUANTITY))
@example(text="-5s")
def test_duration_options_are_one_usage_line(capfd, text):
    # --live with --heel is refused once the options are parsed: every path ends in a usage error
    run_cli(capfd, ["calibrate", "--live", "--heel", "h.wav", "--name", "x", f"--settle={text}"], codes=(2,))


@FAST
@given(text=st.one_of(TEXT, QUANTITY))
@example(text="5%")
@example(text="+1e400%")
@example(text="baseline")
def test_targets_parse_or_give_a_parameter_error(text):
    try:
        target = parse_target(text)
    except ParameterError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert math.isfinite(target.value)
    try:
        spm = target.resolve(160.0)
    except ParameterError:
        return
    assert math.isfinite(spm)


@FAST
@given(text=st.one_of(TEXT, QUANTITY, st.sampled_from([".", "/", "..", "/dev/null", "plus5", "x.toml"])))
@example(text="5%")
@example(text="\n")              # a plan "name" with a line break: still one line
def test_run_targets_are_a_goal_or_a_parameter_error(text):
    """What ``run --target`` does with the text before any audio (plans included)."""
    try:
        CoachConfig(target=text).validate()
    except ParameterError as exc:
        assert str(exc) and "\n" not in str(exc)


# ----------------------------------------------------------------------------- plan files


VALUES = st.one_of(
    st.sampled_from(['"+5%"', '"-3%"', '"170"', '"0s"', '"-1min"', '"1e9h"', '"nan"', "nan", "inf", "-inf",
                     "0", "-1", "1e308", "true", "[]", "{}", '"baseline"', '""', '"steps"', '"ramp"', '"hold"',
                     '"intervals"', "99999999999999999999", '"x"']),
    st.integers(-10**6, 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda f: repr(f).replace("inf", "inf")),
)


def _mutate_lines(text: str, edits) -> str:
    lines = text.splitlines()
    for kind, index, value in edits:
        i = index % len(lines)
        if kind == "value" and "=" in lines[i]:
            key = lines[i].split("=", 1)[0]
            lines[i] = f"{key}= {value}"
        elif kind == "drop":
            del lines[i]
        elif kind == "dup":
            lines.insert(i, lines[i])
        elif kind == "chars":
            lines[i] = lines[i][: len(value)] + value + lines[i][len(value) * 2:]
        if not lines:
            lines = ["x"]
    return "\n".join(lines) + "\n"


EDITS = st.lists(st.tuples(st.sampled_from(["value", "value", "drop", "dup", "chars"]), st.integers(0, 200),
                           VALUES), min_size=1, max_size=4)


@FAST
@given(edits=EDITS, baseline=st.one_of(st.none(), st.floats(40, 260)))
def test_mutated_plans_resolve_or_give_a_plan_error(edits, baseline):
    text = _mutate_lines(GOOD, edits)
    try:
        plan = parse_plan(text, "fuzz.toml")
        tm = plan.resolve(baseline)
    except PlanError as exc:
        assert str(exc).startswith("fuzz.toml") and "\n" not in str(exc)
        return
    except ParameterError as exc:
        assert "\n" not in str(exc)
        return
    assert tm.duration_s > 0
    for t in (0.0, tm.duration_s / 2, max(tm.duration_s - 1e-3, 0.0)):
        spm, _ = tm.target_at(t)
        assert 60.0 <= spm <= 240.0


@SLOW
@given(edits=EDITS, raw=st.binary(max_size=40))
def test_mutated_plan_files_on_the_command_line(capfd, tmp_path, edits, raw):
    path = tmp_path / "fuzz.toml"
    path.write_bytes(_mutate_lines(GOOD, edits).encode() + raw)
    code, _ = run_cli(capfd, ["plans", str(path), "--baseline-spm", "160"], codes=(2,))
    if code == 0:
        assert main(["plans", str(path), "--baseline-spm", "160", "--json"]) == 0


# ----------------------------------------------------------------------------- runner profiles


@pytest.fixture(scope="module")
def profile_doc():
    from stepsound.grade.calibrate import make_profile

    rng = np.random.default_rng(5)
    feats = [{"low_db": -30 + 8 * (i % 2) + rng.normal(), "mid_db": -32 + rng.normal(), "high_db": -40 - 6 * (i % 2),
              "energy_db": -29 + rng.normal(), "peak_db": -15, "attack_ms": 3 + 30 * (i % 2) + rng.normal(),
              "second_impact_db": float("nan"), "second_impact_ms": float("nan"), "pre_onset_db": -3.0}
             for i in range(60)]
    return make_profile("fuzz", feats[0::2], feats[1::2]).to_dict()


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory):
    x, _ = bursts(sample_rate=8000, duration_s=2.0, noise_rms=0.01, seed=41)
    path = tmp_path_factory.mktemp("clip") / "clip.wav"
    sf.write(path, x, 8000)
    return str(path)


JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=False),
                      st.text(max_size=8), st.just([]), st.just({}), st.lists(st.floats(allow_nan=False), max_size=3))


def _paths(doc, prefix=()):
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield prefix + (i,)
            yield from _paths(v, prefix + (i,))


def _set(doc, path, value, delete=False):
    for key in path[:-1]:
        doc = doc[key]
    if delete:
        if isinstance(doc, dict):
            del doc[path[-1]]
        else:
            doc.pop(path[-1])
    else:
        doc[path[-1]] = value


@SLOW
@given(data=st.data())
def test_mutated_profiles_load_or_give_one_store_error(capfd, tmp_path, monkeypatch, profile_doc, short_clip, data):
    monkeypatch.setenv("STEPSOUND_DATA_DIR", str(tmp_path / "d"))
    doc = json.loads(json.dumps(profile_doc))
    paths = list(_paths(doc))
    for _ in range(data.draw(st.integers(1, 3))):
        paths = list(_paths(doc))
        if not paths:
            break
        where = data.draw(st.sampled_from(paths))
        _set(doc, where, data.draw(JSON_LEAF), delete=data.draw(st.booleans()))
    text = json.dumps(doc)
    if data.draw(st.booleans()):
        cut = data.draw(st.integers(0, len(text)))
        text = text[:cut] + data.draw(st.text(max_size=3)) + text[cut + 1:]
    folder = tmp_path / "d" / "profiles"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fuzz.json").write_text(text, encoding="utf-8")
    run_cli(capfd, ["profiles", "show", "fuzz"])
    run_cli(capfd, ["analyze", short_clip, "--profile", "fuzz", "--quiet"])


@pytest.mark.parametrize("where, value", [
    (("calibration", "n_heel"), None),          # found by a deep run: "int * None" in 'profiles show'
    (("calibration", "cv_accuracy"), "high"),
    (("calibration", "cv_folds"), 2.5),
    (("step_spread_db",), None),                # found by a deep run: formatting None
])
def test_profiles_found_broken_by_deep_runs(capfd, tmp_path, monkeypatch, profile_doc, short_clip, where, value):
    monkeypatch.setenv("STEPSOUND_DATA_DIR", str(tmp_path / "d"))
    doc = json.loads(json.dumps(profile_doc))
    _set(doc, where, value)
    folder = tmp_path / "d" / "profiles"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fuzz.json").write_text(json.dumps(doc), encoding="utf-8")
    code, err = run_cli(capfd, ["profiles", "show", "fuzz"])
    if where[0] == "calibration":
        assert code == 1 and "corrupt profile" in err[0]
    else:
        assert code == 0 and doc["heavy_db"] is not None
    run_cli(capfd, ["analyze", short_clip, "--profile", "fuzz", "--quiet"])


# ----------------------------------------------------------------------------- the session database


@pytest.fixture(scope="module")
def session_db(tmp_path_factory, short_clip):
    db = tmp_path_factory.mktemp("db") / "s.sqlite"
    assert main(["run", "--input-file", short_clip, "--fast", "--target", "170", "--db", str(db), "--quiet"]) == 0
    return db


@budget(12)
@given(flips=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(1, 255)), min_size=1, max_size=8),
       cut=st.one_of(st.none(), st.integers(0, 1 << 20)))
def test_mutated_session_databases_for_history_and_report(capfd, tmp_path, session_db, flips, cut):
    data = bytearray(session_db.read_bytes())
    for pos, xor in flips:
        data[pos % len(data)] ^= xor
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    db = tmp_path / "fuzz.sqlite"
    db.write_bytes(bytes(data))
    run_cli(capfd, ["history", "--db", str(db), "--json"])
    run_cli(capfd, ["report", "last", "--db", str(db), "-o", str(tmp_path / "r.html")])


@budget(12)
@given(column=st.sampled_from(["record_json", "summary_json", "started_at", "status", "duration_s", "source",
                               "sample_rate", "time_s", "spm", "kind", "target_spm"]),
       value=st.one_of(st.none(), st.text(max_size=12), st.integers(-2**63, 2**63 - 1),
                       st.floats(allow_nan=True), st.binary(max_size=6),
                       st.sampled_from(['{"time_s": "x"}', "[]", "{}", '{"steps": []}', "null"])))
@example(column="record_json", value="[]")          # valid JSON, not a step record
@example(column="summary_json", value="{not json")
@example(column="status", value=b"\x00\xff")          # a blob where text belongs
@example(column="record_json", value=None)          # NOT NULL: SQLite refuses it, the example is skipped
@example(column="started_at", value=253402300800.0)   # the year 10000: no calendar date (found by a deep run)
def test_nonsense_values_in_the_session_database(capfd, tmp_path, session_db, column, value):
    db = tmp_path / "odd.sqlite"
    db.write_bytes(session_db.read_bytes())
    with contextlib.closing(sqlite3.connect(db)) as con:
        try:
            for table in ("sessions", "steps", "cadence", "cues"):
                cols = [r[1] for r in con.execute(f"PRAGMA table_info({table})")]
                if column in cols:
                    con.execute(f"UPDATE {table} SET {column} = ?", (value,))
            con.commit()
        except sqlite3.IntegrityError:        # a NOT NULL column: SQLite itself refuses the value
            assume(False)
    run_cli(capfd, ["history", "--db", str(db)])
    run_cli(capfd, ["report", "last", "--db", str(db), "-o", str(tmp_path / "r.html")])


# ----------------------------------------------------------------------------- audio headers


@pytest.fixture(scope="module")
def audio_files(tmp_path_factory):
    x, _ = bursts(sample_rate=8000, duration_s=1.5, noise_rms=0.01, seed=42)
    folder = tmp_path_factory.mktemp("audio")
    out = {}
    for ext, subtype in (("wav", "PCM_16"), ("flac", "PCM_16"), ("wav", "FLOAT"), ("ogg", "VORBIS")):
        path = folder / f"good-{subtype}.{ext}"
        sf.write(path, np.stack([x, 0.5 * x], axis=1), 8000, subtype=subtype)
        out[f"{ext}-{subtype}"] = path.read_bytes()
    return out


@budget(120)
@given(data=st.data())
def test_mutated_audio_headers_give_one_line(capfd, tmp_path, audio_files, data):
    kind = data.draw(st.sampled_from(sorted(audio_files)))
    raw = bytearray(audio_files[kind])
    for _ in range(data.draw(st.integers(1, 6))):
        pos = data.draw(st.integers(0, min(len(raw) - 1, 120)))     # the header and the first frames
        raw[pos] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    ext = data.draw(st.sampled_from([kind.split("-")[0], "mp3", "m4a"]))   # a wrong extension too
    path = tmp_path / f"fuzz.{ext}"
    path.write_bytes(bytes(raw))
    code, err = run_cli(capfd, ["analyze", str(path), "--json", str(tmp_path / "o.json"), "--quiet"])
    if code == 1:
        assert str(path) in err[0]
    else:
        assert len(err) <= 1 and all(line.startswith("stepsound: warning: ") for line in err), err
        doc = json.loads((tmp_path / "o.json").read_text())
        assert (doc["warning"] is None) == (err == [])
