"""Disk needed by the prepared HDF5 at the real CASIA-FASD's size (``python -m data_prep.sizes``).

Sample counts of the real data set at the paper's settings (windows with stride
ceil(T/2), T = 1 every frame, windows with a face-less frame dropped), derived from the
per-frame face locations of the public ``bob.db.casia_fasd`` package (BSD-3, Idiap,
version 2.0.10): 600 videos, 111,166 frames (train 45,197, test 65,969), 580 frames
without a face. Bytes per sample are measured on a prepared folder of this project
(file sizes / samples) and scaled to the crop size: T x 3 x S x S bytes of pixels plus
the per-sample metadata and the per-file overhead seen in the files.

    python -m data_prep.sizes [--prep OUT] [--size 128]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from configs import errors
from data_prep import hdf5_layout as L
from data_prep import shards

# T -> (train samples, test samples) of the real CASIA-FASD at the paper's settings.
CASIA_FASD_SAMPLES = {1: (45_110, 65_476), 3: (22_337, 32_337), 5: (14_745, 21_313),
                      7: (10_953, 15_821), 9: (8_678, 12_522)}
SCALES = 5


def measured_overhead(prep: Path) -> tuple[float, float, int]:
    """(bytes per sample beyond the pixels, bytes per file beyond that, shards looked at)
    from every shard under ``prep``, by least squares over the files."""
    import h5py
    import numpy as np
    rows, sizes = [], []
    for man in sorted(Path(prep).glob("s*_T*/manifest.json")):
        for p in man.parent.glob("*.h5"):
            with h5py.File(p, "r") as f:
                n, shape = f[L.DATA].shape[0], f[L.DATA].shape[1:]
            pixels = n * int(np.prod(shape))
            rows.append([n, 1.0])
            sizes.append(p.stat().st_size - pixels)
    if len(rows) < 2:
        raise ValueError(f"no prepared shards under {prep}: run `make prep` or `make demo` first")
    (per_sample, per_file), *_ = np.linalg.lstsq(np.asarray(rows, float), np.asarray(sizes, float),
                                                 rcond=None)
    return float(per_sample), float(per_file), len(rows)


def table(size: int, per_sample: float, per_file: float, shard_mb: float = 256.0) -> list[dict]:
    out = []
    for T, (tr, te) in CASIA_FASD_SAMPLES.items():
        n = tr + te
        files = len(shards.split_counts(tr, T, size, shard_mb)) * 2 + 2   # fold-grouped train, test
        b = n * (shards.sample_bytes(T, size) + per_sample) + files * per_file
        out.append({"T": T, "train": tr, "test": te, "bytes_per_scale": b})
    return out


@errors.cli(also=(ValueError,))
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prep", default="runs/synth-demo/prep",
                    help="a prepared folder to measure the per-sample overhead on")
    ap.add_argument("--size", type=int, default=128)
    a = ap.parse_args(argv)
    per_sample, per_file, nfiles = measured_overhead(Path(a.prep))
    print(f"measured on {nfiles} shards of {a.prep}: {per_sample:.1f} bytes per sample beyond the "
          f"pixels, {per_file / 1024:.1f} KiB per file")
    rows = table(a.size, per_sample, per_file)
    print(f"{'T':>2} {'train':>8} {'test':>8} {'per (scale, T)':>15} {'x 5 scales':>11}")
    for r in rows:
        print(f"{r['T']:>2} {r['train']:>8,} {r['test']:>8,} {r['bytes_per_scale'] / 1e9:>12.2f} GB "
              f"{SCALES * r['bytes_per_scale'] / 1e9:>8.1f} GB")
    by_T = {r["T"]: r["bytes_per_scale"] for r in rows}
    print(f"all 25 (scale, T): {SCALES * sum(by_T.values()) / 1e9:.1f} GB; "
          f"Table 1 (s2.6 T1 + s1.8 T7): {(by_T[1] + by_T[7]) / 1e9:.1f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
