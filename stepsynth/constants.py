"""Constants shared by the synthesiser's modules."""
from __future__ import annotations





#: Names accepted by :func:`make_noise` and by ``synth_run(noise=...)``.
NOISE_KINDS: tuple[str, ...] = (
    "treadmill",
    "treadmill_b",
    "fan",
    "street",
    "babble",
    "music",
    "hum",
    "pink",
    "white",
    "silence",
)

#: Noise kinds reserved for held-out evaluation: never tune the detector on these.
HELDOUT_NOISE_KINDS: tuple[str, ...] = ("treadmill_b",)

#: Peak ceiling of a scene's audio (a limiter gain <= 1 is applied above it).
PEAK_CEILING = 0.9

#: Nominal footfall: the impacts of a step at level_db = 0 carry the energy of a
#: 100 ms window at this RMS (dBFS), before room, microphone and mic gain.
NOMINAL_STEP_RMS_DBFS = -30.0

MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 192000

TRUTH_COLUMNS = ("onset_sample", "time_s", "side", "level_db", "strike", "second_impact_ms")
