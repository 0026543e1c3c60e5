"""The one atomic writer: every output file is written to a temporary sibling and renamed
into place when complete, so a killed run never leaves a half-written file under the
final name. An OSError becomes :class:`OutputError` naming the file and the reason.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
from pathlib import Path

from configs.errors import UserError


class OutputError(UserError, RuntimeError):
    """The output folder cannot be written (unwritable, disk full); earlier outputs are untouched."""


def tmp_name(path: Path, suffix: str = "") -> Path:
    """Temporary sibling of ``path``: same folder (so os.replace is atomic), hidden.
    ``suffix`` keeps an extension that a writer needs (``.png`` for savefig, ``.npz``)."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp{os.getpid()}{suffix}")


def cleanup(p: Path) -> None:
    try:
        os.unlink(p)
    except OSError:
        pass


def output_error(e: OSError, path) -> OutputError:
    if e.errno == errno.ENOSPC:
        why = "disk full"
    elif e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        why = "not writable"
    else:
        why = e.strerror or str(e)
    return OutputError(f"cannot write {path}: {why} ({e.__class__.__name__}: {e}); "
                       f"outputs of earlier runs are untouched")


@contextlib.contextmanager
def atomic_path(path, suffix: str = ""):
    """Yield a temporary path to write; rename it onto ``path`` when the block ends
    without error, delete it otherwise."""
    path = Path(path)
    tmp = tmp_name(path, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        cleanup(tmp)
        raise output_error(e, path) from e
    except BaseException:
        cleanup(tmp)
        raise


def write_text_atomic(path, text: str, mode: int | None = None) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            f.write(text)
        if mode is not None:
            os.chmod(tmp, mode)
    return path


def write_json_atomic(path, obj, **dumps_kw) -> Path:
    """``obj`` as JSON (indent 1, a final newline)."""
    return write_text_atomic(path, json.dumps(obj, indent=1, **dumps_kw) + "\n")


def save_figure_atomic(fig, path, dpi: int) -> Path:
    """A matplotlib figure as PNG (the caller closes the figure)."""
    with atomic_path(path, ".png") as tmp:
        fig.savefig(tmp, dpi=dpi)
    return Path(path)
