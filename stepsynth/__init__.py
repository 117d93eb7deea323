"""stepsynth: synthetic treadmill-run scenes with exact step ground truth (test and benchmark tooling).

Not part of the installed ``stepsound`` package: tests, benchmarks and
``audio_fixtures/make_fixtures.py`` import it from the repository root.
Modules, by what they make: :mod:`stepsynth.footfalls` (runners, schedules,
footfalls), :mod:`stepsynth.noise` (noise beds), :mod:`stepsynth.room` (room
and microphone), :mod:`stepsynth.scene` (:func:`synth_run`, the whole scene),
:mod:`stepsynth.truth` (ground truth files and :class:`Scene`).

Everything here is synthesised from first principles (no recorded samples):
a footfall model, a room, a microphone and a family of noise beds.  The step
detector is tested and benchmarked on these scenes, so every footfall comes
with its ground truth (:class:`StepTruth`).

Signal chain of :func:`synth_run`::

    step schedule (cadence, jitter, L/R asymmetry, pauses)
      -> footfalls (heel / forefoot impact model, per-step variation, level_db)
      -> room (direct path + early reflections + exponential diffuse tail)
      -> microphone colouration (causal high-pass, presence peak, low-pass)
      = footstep track
    noise bed (unit RMS) -> same microphone colouration -> scaled to snr_db
      = noise track
    audio = (footstep track + noise track) * mic gain [* peak limiter gain]

SNR definition
--------------
``snr_db = 10*log10(P_steps / P_noise)`` where ``P_steps`` is the mean power of
the footstep track (after room and microphone, i.e. as it appears in the output)
and ``P_noise`` the mean power of the noise track, both averaged over the whole
scene (pauses included).  The mic gain and the output limiter scale both tracks
alike and do not change it.

Determinism
-----------
A scene is a pure function of its arguments.  ``seed`` feeds a
:class:`numpy.random.SeedSequence` whose independent children drive the step
schedule, the footfall waveforms, the noise bed, the room and the microphone;
so the same seed with ``snr_db=None`` gives exactly the footstep track of the
noisy scene (tests use this to measure the realised SNR independently).
``runner_seed`` (default: ``seed``) draws the runner's traits (slap delay,
shoe brightness, which foot is louder...) so two scenes can share a runner.
"""
from stepsynth.constants import HELDOUT_NOISE_KINDS, NOISE_KINDS, PEAK_CEILING, TRUTH_COLUMNS  # noqa: F401
from stepsynth.noise import make_noise  # noqa: F401
from stepsynth.scene import synth_run  # noqa: F401
from stepsynth.truth import Scene, StepTruth, read_truth_csv, read_truth_header, write_truth_csv  # noqa: F401

__all__ = [
    "NOISE_KINDS",
    "HELDOUT_NOISE_KINDS",
    "TRUTH_COLUMNS",
    "StepTruth",
    "Scene",
    "synth_run",
    "make_noise",
    "read_truth_csv",
    "read_truth_header",
    "write_truth_csv",
]
