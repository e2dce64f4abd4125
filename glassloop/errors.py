"""The error family. Every message says what happened (with the received value), what was expected, and the fix.

The command line turns a `GlassloopError` into one line on stderr and exit code 2 (bad input), never a traceback.
"""

from __future__ import annotations


class GlassloopError(Exception):
    """Base of every error glassloop raises on purpose."""


class ConfigError(GlassloopError, ValueError):
    """An argument or configuration value is wrong (caught before the first batch)."""


class DataError(GlassloopError, ValueError):
    """Input data is missing, unreadable or malformed."""


class CheckpointError(GlassloopError):
    """A checkpoint file is missing, truncated, foreign, of another version, or carries code."""


class CallbackError(GlassloopError):
    """A callback raised; the message names the callback and the event."""


def one_line(message: str) -> str:
    """Collapse a message to one line (the CLI prints exactly one line for bad input)."""
    return " ".join(str(message).split())
