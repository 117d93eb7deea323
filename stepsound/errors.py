"""The one exception family of stepsound.

The command line turns every :class:`StepsoundError` into one line on stderr
and a non-zero exit code; anything else escaping is a bug.
"""


class StepsoundError(Exception):
    """Base class of every error stepsound raises on purpose."""


class ParameterError(StepsoundError, ValueError):
    """A parameter (argument, option, plan field) has an invalid value."""


class AudioFileError(StepsoundError):
    """An audio file is missing, unreadable, corrupt, empty of audio frames or absurd."""


class AudioDeviceError(StepsoundError):
    """An audio device is missing, busy, lost, or PortAudio is unavailable."""


class StoreError(StepsoundError):
    """The session database or a profile could not be read or written."""
