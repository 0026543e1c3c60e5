"""Micro-benchmark: threshold search and rates on a million scores (``python -m eval.bench_metrics``).

Prints wall-clock seconds (best of ``--repeat``) for eer_threshold, eer, min_hter_threshold,
farfrr and roc on ``--n`` scores (a quarter genuine), plus a 1000-resample subject
bootstrap on 30 subjects. Numbers depend on the machine; the point is O(n log n).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from configs import errors
from eval import metrics
from eval.bootstrap import subject_bootstrap


def _best(fn, repeat):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


@errors.cli
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1701)
    a = ap.parse_args(argv)
    rng = np.random.default_rng(a.seed)
    npos = a.n // 4
    pos = 1 / (1 + np.exp(-rng.normal(2, 1.5, npos)))
    neg = 1 / (1 + np.exp(-rng.normal(-2, 1.5, a.n - npos)))
    t = metrics.eer_threshold(neg, pos)
    print(f"{a.n:,} scores ({npos:,} genuine), best of {a.repeat}:")
    for name, fn in (("eer_threshold", lambda: metrics.eer_threshold(neg, pos)),
                     ("eer", lambda: metrics.eer(neg, pos)),
                     ("min_hter_threshold", lambda: metrics.min_hter_threshold(neg, pos)),
                     ("farfrr", lambda: metrics.farfrr(neg, pos, t)),
                     ("roc", lambda: metrics.roc(neg, pos))):
        print(f"  {name:<20s} {_best(fn, a.repeat):7.3f} s")
    m = 50_000
    subj = rng.integers(1, 31, m)
    lab = (rng.random(m) < 0.25).astype(int)
    sc = np.where(lab == 1, pos[:m], neg[:m])
    print(f"  subject_bootstrap (30 subjects, {m:,} scores, 1000 resamples) "
          f"{_best(lambda: subject_bootstrap(subj, lab, sc, t, 1000, 0.95, a.seed), 1):7.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
