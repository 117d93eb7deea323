"""Trained model weights shipped with stepsound (data only; see stepsound.detect.stepnet and the
candidate gate of stepsound.detect.detector)."""
from pathlib import Path

#: Shipped archives by name: ``DetectorConfig.model = "stepnet"``, ``DetectorConfig.gate = "gate"``.
SHIPPED = {name: Path(__file__).resolve().parent / f"{name}.npz" for name in ("stepnet", "gate")}


def archive(name: str) -> str:
    """The path of a shipped archive's name, or ``name`` itself (the path of another archive)."""
    return str(SHIPPED[name]) if name in SHIPPED else str(name)
