"""``python -m stepsound`` runs the command line."""
from stepsound.cli.main import entry

entry()
