"""The project's error types and exit codes. The exit code comes from the type, never from the text.

``UserError`` and its subclasses are errors the user can fix (a config key, a path, an
experiment name, a missing earlier step) or that end a command with a reason (no GPU,
a diverged training): every command line (``python -m ...``, through :func:`cli`) prints
the message as one ``error: <message>`` line on stderr, with no traceback, and exits
with the class's ``exit_code``. The codes, the same for every command (the Python ones,
``make``'s recipes, which show them as "Error N", and the GPU bundle's ``check.sh``):

====  ==================  ==================================================================
code  constant            meaning
====  ==================  ==================================================================
0     EXIT_OK             done (predict: scored, whatever the decision)
1     EXIT_FAILED         a check ran and failed (a validation verdict FAIL, a CPU-vs-GPU
                          mismatch of gpu-check or of the bundle's check.sh)
2     EXIT_USAGE          bad command line, config key or value, path or order of steps
                          (``UserError``'s own code; argparse's usage errors too)
3     EXIT_MISSING        the input to score (a video file) does not exist
4     EXIT_UNREADABLE     the input cannot be read (cannot open, or zero frames decoded)
5     EXIT_NO_FACE        no face in any frame, or no window of T frames with faces
6     EXIT_MODEL          the model folder is not a finished experiment
7     EXIT_BACKEND        the backend cannot load here (Caffe or onnxruntime not importable,
                          no model.onnx; for check.sh a library the bundle needs is missing
                          or the CPU lacks the instruction sets it was built for)
8     EXIT_NO_GPU         no usable GPU (a CPU-only Caffe, no GPU or driver, a GPU id out
                          of range); gpu-check and check.sh: the CPU parts ran and passed
9     EXIT_DIVERGED       training diverged (the loss became NaN or infinite)
10    EXIT_CAFFE_ABORTED  Caffe aborted the training (a failed CHECK: a signal); its reason
                          from caffe.log is printed
====  ==================  ==================================================================

Python itself exits 1 with a traceback on an exception that is not a ``UserError``:
that is a bug of the project, never one of its messages.
"""
from __future__ import annotations

import functools
import sys

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_MISSING = 3
EXIT_UNREADABLE = 4
EXIT_NO_FACE = 5
EXIT_MODEL = 6
EXIT_BACKEND = 7
EXIT_NO_GPU = 8
EXIT_DIVERGED = 9
EXIT_CAFFE_ABORTED = 10

# code -> its one meaning (the table above; tests/test_errors.py holds the two together)
EXIT_CODES = {
    EXIT_OK: "done",
    EXIT_FAILED: "a check ran and failed",
    EXIT_USAGE: "bad command line, config, path or order of steps",
    EXIT_MISSING: "the input file does not exist",
    EXIT_UNREADABLE: "the input cannot be read",
    EXIT_NO_FACE: "no face, or no window of T frames with faces",
    EXIT_MODEL: "the model folder is not a finished experiment",
    EXIT_BACKEND: "the backend cannot load here",
    EXIT_NO_GPU: "no usable GPU",
    EXIT_DIVERGED: "training diverged",
    EXIT_CAFFE_ABORTED: "Caffe aborted",
}


class UserError(Exception):
    """Bad config, input or order of steps; the message names the file/key/value and the fix."""
    exit_code = EXIT_USAGE


def report(e: UserError) -> int:
    """Print ``e`` as one ``error:`` line on stderr; return its exit code."""
    print(f"error: {e}", file=sys.stderr)
    return int(e.exit_code)


def cli(main=None, *, also: tuple = ()):
    """Decorate a command's ``main(argv=None) -> int``: a ``UserError`` becomes its
    ``error:`` line and exit code (:func:`report`), and so does an exception of a type in
    ``also`` (a library's ``ValueError`` or ``FileNotFoundError`` on a bad value or path),
    with code 2. Anything else keeps its traceback. Used as ``@errors.cli`` or
    ``@errors.cli(also=(ValueError,))``; the module's ``__main__`` block exits with what
    ``main()`` returns (tests/test_errors.py checks every command does both)."""
    def wrap(fn):
        @functools.wraps(fn)
        def run(argv=None):
            try:
                return fn(argv)
            except UserError as e:
                return report(e)
            except also as e:
                return report(UserError(str(e)))
        run.cli = True
        return run
    return wrap if main is None else wrap(main)


class TrainingError(UserError):
    """Training cannot start or go on (a missing list file, an unfinished fold); the
    message says why and what to run first."""


class TrainingDiverged(TrainingError):
    """The training loss became NaN or infinite; the message names the last good snapshot."""
    exit_code = EXIT_DIVERGED


class CaffeAborted(TrainingError):
    """Caffe aborted the training process (a failed CHECK); the message holds its reason."""
    exit_code = EXIT_CAFFE_ABORTED



class GPUUnavailable(UserError, RuntimeError):
    """No usable GPU for Caffe (a CPU-only build, no GPU or driver, an id out of range);
    the message says why and what to do."""
    exit_code = EXIT_NO_GPU


class SubcommandFailed(UserError):
    """A project command that this one ran failed (its own ``error:`` line is above it):
    exit with that command's code, or ``EXIT_CAFFE_ABORTED`` when a signal ended it."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.exit_code = code if code in EXIT_CODES and code else EXIT_CAFFE_ABORTED
