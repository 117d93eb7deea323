"""``python -m stepsound`` runs the command line."""
from stepsound.cli import entry

entry()
