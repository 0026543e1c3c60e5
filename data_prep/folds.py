"""Subject-wise folds of the train subjects (paper §4.3).

``folds.method``:
- ``casia``: the public 5-fold split of CASIA-FASD (``casia.CASIA_FOLDS``); every train
  subject must be in it. The synthetic set uses CASIA's subject numbers, so it gets
  the same folds by this same path.
- ``stratified``: deterministic, by subject: subjects sorted by their genuine fraction
  (ties in a seeded random order) are dealt to folds in snake order, so each fold has a
  similar real/fake ratio.
- ``auto`` (default): ``casia`` if every train subject is in CASIA_FOLDS, else ``stratified``.

No subject is in two folds and no test subject is in any fold: ``check_folds`` asserts it.

A fold that model selection uses (1..``folds.use``) but that holds no train subject, as
the public folds leave with a partial CASIA-FASD copy, is an error here, before any
training (``check_used_folds``). ``auto`` does not switch to ``stratified`` for it: that
would silently replace the paper's protocol by another one, and ``stratified`` leaves
folds empty too when there are fewer train subjects than ``folds.count``.
"""
from __future__ import annotations

import numpy as np

from data_prep import casia


def assign_folds(train_subjects: dict[int, float], test_subjects, method: str, count: int,
                 seed: int, use: int | None = None) -> tuple[list[tuple[int, ...]], str]:
    """Folds (tuples of subject numbers, fold k = index k-1) and the method used.

    ``train_subjects``: subject -> fraction of its videos that are genuine. ``use``: the
    number of folds model selection uses (``folds.use``); when given, each of folds
    1..use must hold a subject (``check_used_folds``).
    """
    subs = sorted(train_subjects)
    known = {s for f in casia.CASIA_FOLDS for s in f}
    if method == "auto":
        method = "casia" if set(subs) <= known and count == len(casia.CASIA_FOLDS) else "stratified"
    if method == "casia":
        if count != len(casia.CASIA_FOLDS):
            raise ValueError(f"folds.method=casia has {len(casia.CASIA_FOLDS)} folds, "
                             f"folds.count={count}; use folds.method=stratified")
        stray = sorted(set(subs) - known)
        if stray:
            raise ValueError(f"train subjects {stray} are not in the public CASIA-FASD folds; "
                             f"use folds.method=stratified")
        folds = [tuple(s for s in f if s in train_subjects) for f in casia.CASIA_FOLDS]
    elif method == "stratified":
        if count < 2:
            raise ValueError(f"folds.count must be at least 2, got {count}")
        rng = np.random.default_rng(seed)
        order = [subs[i] for i in rng.permutation(len(subs))]
        order.sort(key=lambda s: train_subjects[s])          # stable: ties keep the seeded order
        buckets: list[list[int]] = [[] for _ in range(count)]
        for i, s in enumerate(order):
            r, k = divmod(i, count)
            buckets[k if r % 2 == 0 else count - 1 - k].append(s)
        folds = [tuple(sorted(b)) for b in buckets]
    else:
        raise ValueError(f"folds.method must be auto, casia or stratified, got {method!r}")
    check_folds(folds, subs, test_subjects)
    if use is not None:
        check_used_folds(folds, use, method, subs)
    return folds, method


def check_used_folds(folds, use: int, method: str, train_subjects) -> None:
    """ValueError naming every empty fold among 1..use and the config keys to change."""
    empty = [k for k, f in enumerate(folds[:use], 1) if not f]
    if not empty:
        return
    n = len(train_subjects)
    subs = ", ".join(str(s) for s in sorted(train_subjects))
    which = "fold " + str(empty[0]) if len(empty) == 1 else \
        "folds " + ", ".join(str(k) for k in empty[:-1]) + f" and {empty[-1]}"
    why = (f"the public CASIA-FASD folds (folds.method: auto or casia) place none of this "
           f"data set's train subjects ({subs}) there" if method == "casia" else
           f"{n} train subjects ({subs}) do not fill folds.count: {len(folds)} stratified folds")
    raise ValueError(
        f"{which} of {len(folds)} would have no train subject: {why}, and model selection "
        f"validates on folds 1..{use} (folds.use: {use}). In your config, set "
        f"folds.method: stratified with folds.count and folds.use at most {n}, "
        f"or add the missing subjects to the data set.")


def check_folds(folds, train_subjects, test_subjects) -> None:
    """Assert: folds are disjoint, cover the train subjects, and hold no test subject.

    Subjects are numbered within their split (CASIA's train 1..20 and test 1..30 are
    different people), so the test check is by identity (split, subject): a fold holds
    train subjects only by construction, asserted here against the index.
    """
    seen: dict[int, int] = {}
    for k, f in enumerate(folds, 1):
        for s in f:
            assert s not in seen, f"subject {s} is in fold {seen[s]} and fold {k}"
            seen[s] = k
    assert set(seen) == set(train_subjects), (
        f"folds cover {sorted(seen)}, train subjects are {sorted(train_subjects)}")
    test_ids = {("test", s) for s in test_subjects}
    fold_ids = {("train", s) for s in seen}
    assert not (test_ids & fold_ids), "a test subject is in a fold"
