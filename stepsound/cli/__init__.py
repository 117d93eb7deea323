"""The command line: parse arguments and call the library.

``stepsound.cli.main:entry`` is the ``stepsound`` console script.
"""
