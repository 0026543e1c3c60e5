"""The project's error types. The exit code comes from the type, never from the text.

``UserError`` and its subclasses are errors the user can fix (a config key, a path, an
experiment name, a missing earlier step): the command lines print the message as one
line on stderr, with no traceback, and exit with ``exit_code``.
"""
from __future__ import annotations

import sys


class UserError(Exception):
    """Bad config, input or order of steps; the message names the file/key/value and the fix."""
    exit_code = 2


def report(e: UserError) -> int:
    """Print ``e`` as one ``error:`` line on stderr; return its exit code."""
    print(f"error: {e}", file=sys.stderr)
    return int(e.exit_code)


class TrainingError(UserError):
    """Training cannot start or go on (a missing list file, an unfinished fold); the
    message says why and what to run first."""


class TrainingDiverged(TrainingError):
    """The training loss became NaN or infinite; the message names the last good snapshot."""
    exit_code = 3
