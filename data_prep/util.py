"""Small shared helpers: atomic writes, hashing, worker setup, the test kill hook."""
from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
from pathlib import Path


class OutputError(RuntimeError):
    """The output folder cannot be written (unwritable, disk full); earlier outputs are untouched."""


def stable_hash(obj, n: int = 16) -> str:
    """Short sha256 of a JSON-able object with sorted keys."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def tmp_name(path: Path) -> Path:
    """Temporary sibling of ``path``: same folder (so os.replace is atomic), never listed."""
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def write_json_atomic(path: Path, obj) -> None:
    path = Path(path)
    tmp = tmp_name(path)
    try:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=1, sort_keys=False)
            f.write("\n")
        os.replace(tmp, path)
    except OSError as e:
        _cleanup(tmp)
        raise output_error(e, path) from e


def _cleanup(p: Path) -> None:
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


def worker_init() -> None:
    """One OpenCV thread per worker process: the workers are the parallelism."""
    import cv2
    cv2.setNumThreads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# Test hook: DATA_PREP_KILL_AT="<point>:<n>" SIGKILLs the whole process group the n-th
# time the main process passes <point> (detect, stage, shard, combo). Used by the
# resume tests to kill at a known moment; unset in normal runs.
_kill_counts: dict[str, int] = {}


def kill_hook(point: str) -> None:
    spec = os.environ.get("DATA_PREP_KILL_AT")
    if not spec:
        return
    want, _, n = spec.partition(":")
    if want != point:
        return
    _kill_counts[point] = _kill_counts.get(point, 0) + 1
    if _kill_counts[point] >= int(n or 1):
        os.killpg(os.getpgid(0), signal.SIGKILL)
