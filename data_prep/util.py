"""Small shared helpers: hashing, the worker pool, the test kill hook.

Atomic writes live in configs/files.py (imported here under the names data_prep uses)."""
from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import signal
from pathlib import Path

from configs.files import (OutputError, cleanup, output_error, tmp_name,  # noqa: F401
                           write_json_atomic, write_text_atomic)


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


def progress_bar(total, desc: str, on: bool, unit: str = "frame"):
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit=unit, disable=not on, smoothing=0.1,
                dynamic_ncols=True, mininterval=0.5)


def run_jobs(fn, jobs: list, workers: int, bar, kill_point: str, advance=lambda r: 1,
             init_serial: bool = False) -> list:
    """``fn`` over ``jobs``: a spawn pool of ``workers`` (results in completion order), or
    in this process when ``workers`` <= 1 (``init_serial``: set it up as a worker first).
    After each result: ``bar`` advances by ``advance(result)`` and the test kill hook
    ``kill_point`` runs. The pool and the bar are closed on every exit."""
    if workers > 1:
        pool = mp.get_context("spawn").Pool(workers, initializer=worker_init)
        it = pool.imap_unordered(fn, jobs, chunksize=1)
    else:
        pool = None
        if init_serial:
            worker_init()
        it = map(fn, jobs)
    out = []
    try:
        for r in it:
            out.append(r)
            bar.update(advance(r))
            kill_hook(kill_point)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
        bar.close()
    return out


def worker_init() -> None:
    """One OpenCV thread per worker process: the workers are the parallelism."""
    import cv2
    cv2.setNumThreads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# Test hook: DATA_PREP_KILL_AT="<point>:<n>" SIGKILLs the whole process group the n-th
# time the main process passes <point> (detect, stage, shard, combo, render). Used by the
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
